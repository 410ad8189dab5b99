//! Exclusive locks on the data directories.
//!
//! Two processes writing one log append over each other's records and silently lose
//! acknowledged writes (a restart that overlaps the old process, two containers on one
//! volume). A server therefore holds an exclusive `flock` on `<dir>/paddock.lock` in its dataDir
//! and dataLogDir from before recovery until it exits; the offline tools (`paddock purge`,
//! `paddock log truncate*`) take the same lock for as long as they run. The kernel drops the
//! lock when the process dies, however it dies, so a SIGKILLed holder never blocks the next
//! start. The file also names the holder's pid, for the error message only: the lock is the
//! flock, never the file's existence or content.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = "paddock.lock";

/// Why a directory could not be locked.
#[derive(Debug, Error)]
pub enum LockError {
    #[error("{dir} is in use by another Paddock process ({holder}); stop it first, or give this one its own directory")]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

/// Held locks; dropping it (or exiting) releases them.
#[derive(Debug)]
pub struct DirLocks {
    _files: Vec<File>,
    dirs: Vec<PathBuf>,
}

impl DirLocks {
    /// Locks every directory given (each once, however it is spelled), creating the lock files
    /// as needed. Fails on the first directory another process holds.
    pub fn acquire(dirs: &[&Path]) -> Result<DirLocks, LockError> {
        let mut files = Vec::new();
        let mut locked: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            let canonical = std::fs::canonicalize(dir).map_err(|err| LockError::Io {
                path: dir.to_path_buf(),
                err,
            })?;
            if locked.contains(&canonical) {
                continue;
            }
            files.push(lock_one(&canonical)?);
            locked.push(canonical);
        }
        Ok(DirLocks {
            _files: files,
            dirs: locked,
        })
    }

    /// The directories held, canonical.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

fn lock_one(dir: &Path) -> Result<File, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |err| LockError::Io {
        path: path.clone(),
        err,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "pid unknown".to_owned(),
            };
            return Err(LockError::Held {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(err)) => return Err(io(err)),
    }
    // Only the holder writes the pid, so a reader that loses the race sees the holder's.
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("paddock-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_holder_is_refused_with_the_pid_and_a_released_lock_is_taken() {
        let d = temp_dir("second");
        let first = DirLocks::acquire(&[&d]).unwrap();
        // flock conflicts between two opens even within one process.
        let e = DirLocks::acquire(&[&d]).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains(&d.display().to_string()), "{e}");
        drop(first);
        let again = DirLocks::acquire(&[&d]).unwrap();
        assert_eq!(again.dirs().len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn one_directory_named_twice_is_locked_once() {
        let d = temp_dir("twice");
        let dotted = d.join(".");
        let locks = DirLocks::acquire(&[&d, &dotted]).unwrap();
        assert_eq!(locks.dirs().len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_stale_lock_file_without_a_holder_does_not_block() {
        let d = temp_dir("stale");
        std::fs::write(d.join(LOCK_FILE), "999999\n").unwrap();
        DirLocks::acquire(&[&d]).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}

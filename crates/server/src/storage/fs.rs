//! The file operations storage needs, behind a trait, so that the same storage code runs over
//! the real file system in the server and over a power-loss simulator (`sim_fs`) in tests.
//!
//! The trait is small on purpose: positioned writes, length changes, the two kinds of fsync,
//! whole-file reads, and the directory operations whose durability needs a directory fsync
//! (create, rename, remove). Everything storage does to a disk goes through it.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

thread_local! {
    /// Set while this thread runs the core task's work (between its awaits).
    static ON_CORE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as running the core task until dropped. The core task owns the
/// tree and answers every client: a file-system call there would stall them all, so the real
/// file system refuses to be used inside one of these (see `check_off_core`). Enter it only
/// around code without an await: a task may move to another thread at each await.
pub struct CoreSection {
    was: bool,
}

impl CoreSection {
    pub fn enter() -> CoreSection {
        CoreSection {
            was: ON_CORE.with(|c| c.replace(true)),
        }
    }
}

impl Drop for CoreSection {
    fn drop(&mut self) {
        let was = self.was;
        ON_CORE.with(|c| c.set(was));
    }
}

/// Whether the current thread is inside a `CoreSection`.
pub fn on_core() -> bool {
    ON_CORE.with(|c| c.get())
}

/// `PADDOCK_TEST_CORE_NO_DISK=1` (CI sets it for every test): a file-system call on the core
/// task panics, which stops the server, so the test that provoked it fails. Otherwise it is
/// logged as the bug it is.
fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var("PADDOCK_TEST_CORE_NO_DISK").is_ok_and(|v| v == "1"))
}

/// Called by every real file-system operation: never on the core task.
fn check_off_core(op: &'static str, path: &Path) {
    check_off_core_as(strict(), op, path)
}

fn check_off_core_as(strict: bool, op: &'static str, path: &Path) {
    if !on_core() {
        return;
    }
    if strict {
        panic!("file-system call on the core task: {op} {}", path.display());
    }
    tracing::error!(op, path = %path.display(), "file-system call on the core task (a bug: it stalls every client)");
}

/// A shared handle on a file system.
pub type Fs = Arc<dyn FileSystem>;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading and writing.
    Existing,
    /// A new file; fails if one exists.
    CreateNew,
    /// A new or emptied file.
    CreateTruncate,
}

/// File-system operations used by storage. Directory entries created, renamed or removed are
/// durable only after `sync_dir` of their directory; file contents only after `sync_data` or
/// `sync_all` of the file.
pub trait FileSystem: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (NotFound if it does not exist).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file.
pub trait StorageFile: Send {
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
    /// fdatasync: the contents (and the size when it changed).
    fn sync_data(&self) -> io::Result<()>;
    /// fsync: contents and metadata.
    fn sync_all(&self) -> io::Result<()>;
    /// Starts writing `len` bytes from `offset` back to the disk, and waits until what was
    /// written before `offset` is on the device; no durability promise (metadata is not
    /// flushed). A large file written in the background this way keeps at most about one range
    /// of dirty data in flight, so the log's fsyncs never queue behind a huge flush.
    fn write_behind(&self, _offset: u64, _len: u64) {}
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// The real file system as a shared handle.
pub fn real() -> Fs {
    Arc::new(RealFs)
}

struct RealFile(File);

impl StorageFile for RealFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        check_off_core("write", Path::new("<open file>"));
        self.0.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        check_off_core("set_len", Path::new("<open file>"));
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        check_off_core("size", Path::new("<open file>"));
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        check_off_core("sync_data", Path::new("<open file>"));
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        check_off_core("sync_all", Path::new("<open file>"));
        self.0.sync_all()
    }
    fn write_behind(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let fd = self.0.as_raw_fd();
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is owned by
        // self.0 and open for the duration of the calls. A failure is harmless (a hint: the
        // final fsync still makes the file durable).
        unsafe {
            libc::sync_file_range(
                fd,
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
            if offset > 0 {
                libc::sync_file_range(
                    fd,
                    0,
                    offset as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
        }
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        check_off_core("create_dir_all", dir);
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        check_off_core("list", dir);
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Some(n) = e?.file_name().to_str() {
                out.push(n.to_owned());
            }
        }
        Ok(out)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        check_off_core("read", path);
        std::fs::read(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        check_off_core("open", path);
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        match mode {
            OpenMode::Existing => {}
            OpenMode::CreateNew => {
                o.create_new(true);
            }
            OpenMode::CreateTruncate => {
                o.create(true).truncate(true);
            }
        }
        Ok(Box::new(RealFile(o.open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        check_off_core("rename", from);
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        check_off_core("remove_file", path);
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        check_off_core("sync_dir", dir);
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard can fail: inside a core section a file-system call is caught (a panic when
    /// strict, as CI runs every server), outside it nothing is, and the section ends with its
    /// guard.
    #[test]
    fn file_system_calls_are_caught_on_the_core_task() {
        let dir = std::env::temp_dir();
        assert!(!on_core());
        check_off_core_as(true, "list", &dir);
        {
            let _core = CoreSection::enter();
            assert!(on_core());
            let caught = std::panic::catch_unwind(|| check_off_core_as(true, "list", &dir));
            let msg = caught.expect_err("a file-system call on the core task went unnoticed");
            let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(
                text.contains("file-system call on the core task: list"),
                "{text}"
            );
            // Not strict: logged, the call goes on.
            check_off_core_as(false, "list", &dir);
        }
        assert!(!on_core(), "the section ends with its guard");
        real().list(&dir).unwrap();
    }
}

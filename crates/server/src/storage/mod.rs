//! Durable state on disk: the transaction log (txn_log.rs), snapshots (snapshot.rs), and what a
//! server recovers from them at start (recovery.rs). The layout is in docs/storage.md.

pub mod dir_lock;
pub mod epoch;
pub mod fs;
pub mod purge;
pub mod recovery;
pub mod sim_fs;
pub mod snapshot;
pub mod txn_log;
pub mod zk_compress;
pub mod zk_export;
pub mod zk_fuzz;
pub mod zk_import;
pub mod zk_jute;
pub mod zk_log;
pub mod zk_snapshot;

use fs::Fs;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A storage problem that stops the server from starting or from accepting writes.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path} is corrupt at offset {offset}: {reason}. The server will not start on damaged data; `paddock log truncate <file> <offset>` cuts it there if you accept losing what follows (docs/storage.md)")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{0}")]
    Inconsistent(String),
}

impl StorageError {
    /// Wraps an IO error with the file it concerns.
    pub fn io(path: &Path, err: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_owned(),
            err,
        }
    }
}

/// Where transaction log segments live.
pub fn log_dir(data_log_dir: &Path) -> PathBuf {
    data_log_dir.join("log")
}

/// Where snapshots live.
pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// Parses `<prefix><16 hex digits>` file names.
pub fn parse_zxid_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// Files in `dir` named `<prefix><zxid>`, sorted by zxid.
pub fn list_by_zxid(
    fs: &Fs,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut v = Vec::new();
    let names = match fs.list(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for n in names {
        if let Some(z) = parse_zxid_name(&n, prefix) {
            v.push((z, dir.join(n)));
        }
    }
    v.sort();
    Ok(v)
}

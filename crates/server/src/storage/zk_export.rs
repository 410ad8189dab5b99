//! `paddock export-zk`: a stopped Paddock server's data directory into an Apache ZooKeeper data
//! directory, the way back from `paddock import-zk`. The tree is recovered as the server would
//! recover it (the newest snapshot and every logged transaction after it), without writing a
//! byte to Paddock's directory, and written as one ZooKeeper snapshot at the last zxid, with its
//! digest, plus the epoch files a member of an ensemble reads at start.

use super::fs::Fs;
use super::{epoch, recovery, zk_snapshot, StorageError};
use std::path::{Path, PathBuf};

/// What an export found and wrote.
#[derive(Debug, Default)]
pub struct Report {
    pub last_zxid: i64,
    /// Znodes (root included), open sessions, and how many of those ZooKeeper can resume: the
    /// ones whose password is ZooKeeper's derivation. A session with Paddock's random password
    /// is carried over (its ephemerals stay until it expires) but its client cannot resume it.
    pub znodes: usize,
    pub sessions: usize,
    pub resumable: usize,
    pub ephemerals: usize,
    /// ZooKeeper's digest of the tree, also in the snapshot's trailer.
    pub digest: i64,
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    /// The ZooKeeper snapshot written.
    pub written: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0} is not empty: export-zk writes only into a new ZooKeeper directory")]
    NotEmpty(PathBuf),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Exports Paddock's `data_dir` (logs in `data_log_dir`) into ZooKeeper's `to/version-2`.
pub fn export(
    fs: &Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    to: &Path,
) -> Result<Report, ExportError> {
    let v2 = to.join("version-2");
    // ZooKeeper's dataDir may hold myid and zoo.cfg already; its version-2 must be empty.
    if fs.list(&v2).is_ok_and(|names| !names.is_empty()) {
        return Err(ExportError::NotEmpty(v2));
    }
    let r = recovery::inspect(fs, data_dir, data_log_dir)?;
    let tree = r.tree;
    let mut report = Report {
        last_zxid: tree.last_zxid(),
        znodes: tree.node_count(),
        sessions: tree.sessions().len(),
        ephemerals: tree.ephemeral_count(),
        digest: tree.zk_digest(),
        ..Report::default()
    };
    report.resumable = tree
        .sessions()
        .keys()
        .filter(|&&id| tree.session_password(id).is_none())
        .count();
    // A server of an ensemble has its epochs; a standalone one's are its last zxid's. ZooKeeper
    // refuses to start with a current epoch older than its last zxid's.
    let last_epoch = (report.last_zxid >> 32) as u64;
    let ours = |name| epoch::read(fs, data_dir, name).map(|e| e.unwrap_or(0).max(last_epoch));
    report.accepted_epoch = ours(epoch::ACCEPTED)?;
    report.current_epoch = ours(epoch::CURRENT)?;
    fs.create_dir_all(&v2)
        .map_err(|e| StorageError::io(&v2, e))?;
    report.written = zk_snapshot::write(fs, &v2, &tree).map_err(|e| StorageError::io(&v2, e))?;
    epoch::write(fs, &v2, epoch::ACCEPTED, report.accepted_epoch)?;
    epoch::write(fs, &v2, epoch::CURRENT, report.current_epoch)?;
    Ok(report)
}

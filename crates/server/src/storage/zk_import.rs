//! `paddock import-zk`: an Apache ZooKeeper data directory (`version-2/`) into a new Paddock
//! data directory. The newest valid snapshot is loaded, the logs after it are replayed
//! transaction by transaction (a torn last record is dropped; corruption anywhere else stops
//! the import, naming the file and offset), ZooKeeper's digests are checked where the files
//! carry them, and the tree is written as Paddock's snapshot at the last zxid, with the epoch
//! files. The ZooKeeper directory is only read.

use super::fs::Fs;
use super::zk_jute::ZkFileError;
use super::{zk_log, zk_snapshot, StorageError};
use paddock_tree::snapshot::SnapshotLoader;
use paddock_tree::{DataTree, Txn};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// What an import found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// The snapshot it started from, and its zxid.
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    /// Log files read, transactions replayed after the snapshot.
    pub logs: usize,
    pub replayed: u64,
    /// A torn last record dropped: the file and the offset where it began.
    pub torn: Option<(PathBuf, usize)>,
    pub last_zxid: i64,
    /// Znodes (root included) and sessions now in the tree, and the ephemerals of those.
    pub znodes: usize,
    pub sessions: usize,
    pub ephemerals: usize,
    /// ZooKeeper's digests compared with the tree's (the snapshot's trailer and each logged
    /// transaction's past the snapshot's fuzzy part), and how many differed.
    pub digests_checked: u64,
    pub digest_mismatches: u64,
    /// The tree's digest at the last zxid.
    pub digest: i64,
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    /// The Paddock snapshot written.
    pub written: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} is not empty: import-zk writes only into a new data directory")]
    NotEmpty(PathBuf),
    #[error("{0} holds no snapshot.<zxid> file (is it ZooKeeper's dataDir, holding version-2/?)")]
    NoSnapshot(PathBuf),
    #[error("no snapshot in {dir} could be read; the newest: {first}")]
    NoValidSnapshot { dir: PathBuf, first: String },
    #[error(transparent)]
    File(#[from] ZkFileError),
    #[error("{path}: transaction 0x{zxid:x} does not follow 0x{prev:x}: the logs have a gap")]
    Gap { path: PathBuf, prev: i64, zxid: i64 },
    #[error("{path}: its last record is torn, but later logs follow it")]
    TornInside { path: PathBuf },
    #[error("the snapshot's node {path} has no parent before it")]
    Tree { path: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("the backup's tree at 0x{zxid:x} has digest {ours}, but the file says {theirs}: it is damaged")]
    DigestMismatch { zxid: i64, ours: i64, theirs: i64 },
}

/// `<dir>/version-2`, where ZooKeeper keeps its files.
fn version2(dir: &Path) -> PathBuf {
    dir.join("version-2")
}

fn list(
    dir: &Path,
    name_zxid: fn(&str) -> Option<i64>,
) -> Result<Vec<(i64, PathBuf)>, ImportError> {
    let rd = std::fs::read_dir(dir).map_err(|err| ImportError::Io {
        path: dir.to_owned(),
        err,
    })?;
    let mut v: Vec<(i64, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            if name.ends_with(".tmp") {
                return None;
            }
            Some((name_zxid(name)?, p))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Imports ZooKeeper's `zk_data` (and `zk_log`, where its logs are kept apart) into `to`.
pub fn import(
    fs: &Fs,
    zk_data: &Path,
    zk_log_dir: Option<&Path>,
    to: &Path,
) -> Result<Report, ImportError> {
    check_empty(to)?;
    let snap_dir = version2(zk_data);
    let log_dir = version2(zk_log_dir.unwrap_or(zk_data));
    let mut report = Report::default();

    // The newest snapshot that reads whole, as ZooKeeper chooses at start.
    let snaps = list(&snap_dir, zk_snapshot::name_zxid)?;
    if snaps.is_empty() {
        return Err(ImportError::NoSnapshot(snap_dir));
    }
    let mut first_err = None;
    let mut chosen = None;
    for (_, path) in snaps.iter().rev() {
        match zk_snapshot::read(path) {
            Ok(s) => {
                chosen = Some((path.clone(), s));
                break;
            }
            Err(e) => {
                warn!(error = %e, "skipping a snapshot that does not read");
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    let Some((path, snap)) = chosen else {
        return Err(ImportError::NoValidSnapshot {
            dir: snap_dir,
            first: first_err.unwrap_or_default(),
        });
    };
    info!(snapshot = %path.display(), nodes = snap.nodes.len(), sessions = snap.sessions.len(), "read ZooKeeper's snapshot");
    let mut tree = load_tree(&snap)?;
    report.snapshot = path;
    report.snapshot_zxid = snap.zxid;
    // The snapshot is fuzzy up to its trailer's zxid: digests compare from there on. The
    // trailer itself can be off by one transaction: ZooKeeper records a digest after it applies
    // a transaction, so a snapshot that ends while one is being applied holds that change but
    // the digest from before it (ZooKeeper itself then counts a digest mismatch at start). A
    // trailer that differs is therefore settled by the logged digests after it: that
    // transaction is always in the log, since ZooKeeper logs before it applies.
    let mut compare_from = snap.zxid;
    let mut trailer = snap.trailer.filter(|t| t.zxid >= snap.zxid);
    let mut trailer_differs = false;
    let mut checked_after_trailer = 0u64;
    let trailer_differs_at = |z: i64| {
        warn!(
            zxid = format_args!("0x{z:x}"),
            "the snapshot's digest differs from its tree: a transaction was being applied as \
             it was written, or the snapshot is wrong; the logged digests after it decide"
        );
    };
    if let Some(t) = trailer.filter(|t| t.zxid == snap.zxid) {
        report.digests_checked += 1;
        if tree.zk_digest() != t.digest {
            trailer_differs = true;
            trailer_differs_at(t.zxid);
        }
        trailer = None;
    } else if let Some(t) = trailer {
        compare_from = t.zxid;
    }

    // The logs from the one that holds the snapshot's next zxid on (ZooKeeper's choice).
    let logs = list(&log_dir, zk_log::name_zxid)?;
    let start = logs
        .iter()
        .rposition(|(z, _)| *z <= snap.zxid + 1)
        .unwrap_or(0);
    let logs = &logs[start.min(logs.len())..];
    let mut last = snap.zxid;
    // A bar on a terminal, for imports with large logs: bytes of log replayed.
    let sizes: Vec<u64> = logs
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let total: u64 = sizes.iter().sum();
    let mut done = 0;
    let mut bar = crate::progress::Bar::new("replaying ZooKeeper's logs");
    for (i, (_, path)) in logs.iter().enumerate() {
        bar.bytes(done, total);
        let log = zk_log::read(path)?;
        done += sizes[i];
        report.logs += 1;
        if log.torn {
            if i + 1 < logs.len() {
                return Err(ImportError::TornInside { path: path.clone() });
            }
            warn!(log = %path.display(), offset = log.end, "dropping a torn last record");
            report.torn = Some((path.clone(), log.end));
        }
        for t in log.txns {
            let z = t.txn.zxid;
            if z <= last {
                continue;
            }
            if !follows(last, z) {
                return Err(ImportError::Gap {
                    path: path.clone(),
                    prev: last,
                    zxid: z,
                });
            }
            replay(&mut tree, &t.txn);
            report.replayed += 1;
            last = z;
            if z > compare_from {
                if let Some(d) = t.digest {
                    report.digests_checked += 1;
                    checked_after_trailer += 1;
                    if tree.zk_digest() != d {
                        report.digest_mismatches += 1;
                        warn!(
                            zxid = format_args!("0x{z:x}"),
                            "ZooKeeper's logged digest differs from the tree's"
                        );
                    }
                }
            } else if let Some(tr) = trailer.filter(|tr| tr.zxid == z) {
                report.digests_checked += 1;
                if tree.zk_digest() != tr.digest {
                    trailer_differs = true;
                    trailer_differs_at(z);
                }
                trailer = None;
            }
        }
    }
    bar.finish();
    if trailer_differs {
        if checked_after_trailer == 0 {
            // Nothing after it to settle it: the snapshot itself is wrong.
            report.digest_mismatches += 1;
        } else {
            info!(
                later = checked_after_trailer,
                "the snapshot's digest was one transaction behind its tree; the later digests decide"
            );
        }
    }
    report.last_zxid = tree.last_zxid().max(last);
    // ZooKeeper's epochs (a standalone server has none: the last zxid's epoch).
    let zk_epoch = |name: &str| -> Result<Option<u64>, ImportError> {
        Ok(super::epoch::read(fs, &snap_dir, name)?)
    };
    let last_epoch = (report.last_zxid >> 32) as u64;
    report.accepted_epoch = zk_epoch(super::epoch::ACCEPTED)?.unwrap_or(last_epoch);
    report.current_epoch = zk_epoch(super::epoch::CURRENT)?.unwrap_or(last_epoch);
    write_paddock(fs, to, &tree, &mut report)?;
    Ok(report)
}

/// Restores a backup (a ZooKeeper snapshot file under any name, as the AdminServer's
/// `snapshot` command or ZooKeeper's own streams it, plain, gz or snappy) into a new Paddock
/// data directory `to`, at the backup's zxid.
pub fn restore(fs: &Fs, file: &Path, to: &Path) -> Result<Report, ImportError> {
    check_empty(to)?;
    let snap = zk_snapshot::read_any(file)?;
    let tree = load_tree(&snap)?;
    let mut report = Report {
        snapshot: file.to_owned(),
        snapshot_zxid: snap.zxid,
        last_zxid: tree.last_zxid(),
        ..Report::default()
    };
    match snap.trailer {
        Some(t) if t.zxid == snap.zxid => {
            report.digests_checked = 1;
            if tree.zk_digest() != t.digest {
                report.digest_mismatches = 1;
            }
        }
        Some(_) => warn!(
            "a fuzzy snapshot (its digest is of an earlier zxid): ZooKeeper's own backups are; \
             the tree may hold changes made while it was taken"
        ),
        None => {}
    }
    let epoch = (report.last_zxid >> 32) as u64;
    report.accepted_epoch = epoch;
    report.current_epoch = epoch;
    write_paddock(fs, to, &tree, &mut report)?;
    Ok(report)
}

/// A backup received whole (the AdminServer's `restore`): its tree, checked against the
/// digest it carries. A fuzzy snapshot (its digest is of an earlier zxid) is taken unchecked,
/// as `restore` takes it.
pub fn load_backup(bytes: Vec<u8>) -> Result<DataTree, ImportError> {
    let snap = zk_snapshot::from_bytes(bytes)?;
    let mut snap = snap;
    snap.zxid = snap.zxid.max(snap.last_zxid.unwrap_or(0)).max(0);
    let tree = load_tree(&snap)?;
    if let Some(t) = snap.trailer.filter(|t| t.zxid == snap.zxid) {
        if tree.zk_digest() != t.digest {
            return Err(ImportError::DigestMismatch {
                zxid: snap.zxid,
                ours: tree.zk_digest(),
                theirs: t.digest,
            });
        }
    }
    Ok(tree)
}

/// `to` is empty but for the lock the caller holds on it and the server's `myid` (a new
/// member of an ensemble is given its id first).
fn check_empty(to: &Path) -> Result<(), ImportError> {
    let occupied = std::fs::read_dir(to).is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| e.file_name() != super::dir_lock::LOCK_FILE && e.file_name() != "myid")
    });
    if occupied {
        return Err(ImportError::NotEmpty(to.to_owned()));
    }
    Ok(())
}

/// The tree a ZooKeeper snapshot holds, at its zxid.
pub(super) fn load_tree(snap: &zk_snapshot::ZkSnapshot) -> Result<DataTree, ImportError> {
    let mut loader = SnapshotLoader::new();
    for (id, timeout) in &snap.sessions {
        loader.session(*id, *timeout);
    }
    for n in &snap.nodes {
        loader.node(n).map_err(|_| ImportError::Tree {
            path: n.path.clone(),
        })?;
    }
    Ok(loader.finish(snap.zxid))
}

/// Paddock's directory: the snapshot at the last zxid, an empty log, the epochs; the tree's
/// figures into the report.
fn write_paddock(
    fs: &Fs,
    to: &Path,
    tree: &DataTree,
    report: &mut Report,
) -> Result<(), ImportError> {
    report.znodes = tree.node_count();
    report.sessions = tree.sessions().len();
    report.ephemerals = tree.ephemeral_count();
    report.digest = tree.zk_digest();
    let sdir = super::snap_dir(to);
    let ldir = super::log_dir(to);
    for d in [&sdir, &ldir] {
        fs.create_dir_all(d).map_err(|e| StorageError::io(d, e))?;
    }
    let dbid = rand::random::<u64>().max(1);
    report.written = super::snapshot::write_whole(fs, &sdir, tree, dbid)
        .map_err(|e| StorageError::io(&sdir, e))?;
    super::epoch::write(fs, to, super::epoch::ACCEPTED, report.accepted_epoch)?;
    super::epoch::write(fs, to, super::epoch::CURRENT, report.current_epoch)?;
    Ok(())
}

/// Within an epoch zxids are consecutive; a new epoch starts its own counter.
fn follows(prev: i64, next: i64) -> bool {
    next == prev + 1 || (next >> 32) > (prev >> 32)
}

/// Applies a logged transaction as ZooKeeper's replay does: NONODE and NODEEXISTS (a fuzzy
/// snapshot already holding the change) change nothing more, which `apply` does already.
fn replay(tree: &mut DataTree, txn: &Txn) {
    let _ = tree.apply(txn);
}

//! Start-up: the newest valid snapshot, then every logged transaction after it.

use super::fs::Fs;
use super::snapshot::{load_with, write_whole};
use super::txn_log::{cut_at, read_segment_records, LoggedRecord, SegmentRecords};
use super::{list_by_zxid, log_dir, snap_dir, StorageError};
use paddock_tree::DataTree;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// What a server starts from.
pub struct Recovered {
    pub tree: DataTree,
    /// The newest segment and the end of its valid records, where appends continue.
    pub log_tail: Option<(PathBuf, u64)>,
    /// Transactions replayed from the log.
    pub replayed: u64,
    /// With `replay` off (a server): the logged transactions after the snapshot, not applied
    /// (some may never have been committed) and not decoded. The replication core applies
    /// those its leader commits, decoding each as it does.
    pub logged: Vec<LoggedRecord>,
    /// The database id: chosen when the data directory was created, written into every
    /// snapshot and log segment, so logs of another database are never replayed.
    pub dbid: u64,
    /// Time to load the snapshot and to read (or replay) the log after it, ms.
    pub snapshot_ms: u64,
    pub log_ms: u64,
}

/// A fresh database id: random, never 0 (a segment whose header was never written reads 0).
fn new_dbid() -> u64 {
    rand::random::<u64>().max(1)
}

fn connects(prev: i64, next: i64) -> bool {
    // Within an epoch zxids are consecutive; a new epoch starts its own counter.
    next == prev + 1 || (next >> 32) > (prev >> 32)
}

/// Recovers the tree from `data_dir` (snapshots) and `data_log_dir` (log). A fresh directory
/// gets a durable snapshot of the empty tree before anything is served.
pub fn recover(fs: &Fs, data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    recover_with(fs, data_dir, data_log_dir, true)
}

/// As `recover`; with `replay` off the log is read and checked but not applied to the tree
/// (see `Recovered::logged`).
pub fn recover_with(
    fs: &Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    replay: bool,
) -> Result<Recovered, StorageError> {
    recover_as(fs, data_dir, data_log_dir, replay, true)
}

/// The tree a stopped server's directories hold, every logged transaction replayed, for the
/// offline tools that read them (`paddock export-zk`): nothing is written, so unfinished
/// snapshots and a torn log tail stay where they are (and are skipped), and a directory with no
/// snapshot is an error instead of a fresh database.
pub fn inspect(fs: &Fs, data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    recover_as(fs, data_dir, data_log_dir, true, false)
}

fn recover_as(
    fs: &Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    replay: bool,
    write: bool,
) -> Result<Recovered, StorageError> {
    let sdir = snap_dir(data_dir);
    let ldir = log_dir(data_log_dir);
    if write {
        for d in [&sdir, &ldir] {
            fs.create_dir_all(d).map_err(|e| StorageError::io(d, e))?;
        }
        remove_unfinished_snapshots(fs, &sdir)?;
    }
    let snaps = list_by_zxid(fs, &sdir, "snap.")?;
    let segs = list_by_zxid(fs, &ldir, "log.")?;
    if snaps.is_empty() {
        if !write {
            return Err(StorageError::Inconsistent(format!(
                "{} holds no snapshot: not a Paddock data directory (or never started)",
                sdir.display()
            )));
        }
        if !segs.is_empty() {
            return Err(StorageError::Inconsistent(format!(
                "{} holds transaction logs but {} holds no snapshot: refusing to start from a partial history",
                ldir.display(),
                sdir.display()
            )));
        }
        let tree = DataTree::new();
        let dbid = new_dbid();
        let p = write_whole(fs, &sdir, &tree, dbid).map_err(|e| StorageError::io(&sdir, e))?;
        info!(snapshot = %p.display(), "fresh data directory: wrote the initial snapshot");
        return Ok(Recovered {
            tree,
            log_tail: None,
            replayed: 0,
            logged: Vec::new(),
            dbid,
            snapshot_ms: 0,
            log_ms: 0,
        });
    }
    let started = std::time::Instant::now();
    // A segment wholly before the snapshot at `z` is not needed (the next one starts in time).
    let first_needed = |z: i64| {
        (0..segs.len())
            .find(|&i| segs.get(i + 1).is_none_or(|(next, _)| *next > z + 1))
            .unwrap_or(segs.len())
    };
    let newest_snap_z = snaps.last().map_or(0, |(z, _)| *z);
    let prefetch_from = first_needed(newest_snap_z);
    std::thread::scope(|scope| {
        // While the snapshot loads, a second thread reads and checks the log segments the
        // newest snapshot will need, one ahead of the replay.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<SegmentRecords, StorageError>>(1);
        let segs_ref = &segs;
        scope.spawn(move || {
            for (i, (_, path)) in segs_ref.iter().enumerate().skip(prefetch_from) {
                let newest = i + 1 == segs_ref.len();
                if tx.send(read_segment_records(fs, path, newest)).is_err() {
                    return; // the replay went another way
                }
            }
        });
        let mut tree = None;
        let mut first_err = None;
        for (_, p) in snaps.iter().rev() {
            let mut bar = crate::progress::Bar::new("loading snapshot");
            let loaded = load_with(fs, p, &mut |done, total| bar.bytes(done, total));
            bar.finish();
            match loaded {
                Ok((t, id)) => {
                    info!(snapshot = %p.display(), zxid = format_args!("0x{:x}", t.last_zxid()), nodes = t.node_count(), ms = started.elapsed().as_millis() as u64, "loaded snapshot");
                    tree = Some((t, id));
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "skipping an unusable snapshot");
                    first_err.get_or_insert(e);
                }
            }
        }
        let Some((mut tree, dbid)) = tree else {
            return Err(first_err.expect("at least one snapshot failed"));
        };
        let snapshot_ms = started.elapsed().as_millis() as u64;
        let log_started = std::time::Instant::now();
        let snap_z = tree.last_zxid();
        let start = first_needed(snap_z);
        // The prefetched segments are the ones needed only if the newest snapshot loaded.
        let prefetched = (start == prefetch_from && snap_z == newest_snap_z).then_some(rx);
        let mut last = snap_z;
        let mut replayed = 0u64;
        let mut logged = Vec::new();
        let mut log_tail = None;
        for (i, (_, path)) in segs.iter().enumerate().skip(start) {
            let newest = i + 1 == segs.len();
            let r = match &prefetched {
                Some(rx) => rx
                    .recv()
                    .map_err(|_| StorageError::Inconsistent("the log reader stopped".into()))??,
                None => read_segment_records(fs, path, newest)?,
            };
            if newest && r.records.is_empty() && (r.end == 0 || r.dbid != dbid) {
                // Never got its header whole (a torn database id included): nothing in it
                // was ever acknowledged.
                if write {
                    fs.remove_file(path)
                        .map_err(|e| StorageError::io(path, e))?;
                }
                warn!(segment = %path.display(), "removed a log segment whose header never reached the disk");
                continue;
            }
            if r.dbid != dbid {
                return Err(StorageError::Inconsistent(format!(
                    "{} belongs to database {:016x}, but the snapshots are of database {:016x}: logs and snapshots of different data directories are mixed",
                    path.display(),
                    r.dbid,
                    dbid
                )));
            }
            for (i, rec) in r.records.iter().enumerate() {
                if rec.zxid <= last {
                    continue;
                }
                if !connects(last, rec.zxid) {
                    return Err(StorageError::Inconsistent(format!(
                        "{}: transaction 0x{:x} does not follow 0x{:x}: the log has a gap or does not connect to the snapshot",
                        path.display(),
                        rec.zxid,
                        last
                    )));
                }
                last = rec.zxid;
                replayed += 1;
                if !replay {
                    logged.push(rec.clone());
                    continue;
                }
                // Replay tolerates what a fuzzy snapshot already holds.
                let _ = tree.apply(&r.decode(i, path)?);
            }
            if newest {
                if write {
                    cut_at(fs, path, r.end)?;
                }
                log_tail = Some((path.clone(), r.end));
            }
        }
        info!(
            zxid = format_args!("0x{last:x}"),
            replayed,
            sessions = tree.sessions().len(),
            ms = started.elapsed().as_millis() as u64,
            "recovered"
        );
        Ok(Recovered {
            tree,
            log_tail,
            replayed,
            logged,
            dbid,
            snapshot_ms,
            log_ms: log_started.elapsed().as_millis() as u64,
        })
    })
}

/// Removes snapshots that were being written when the server stopped (`snap.<zxid>.tmp`): they
/// were never renamed into place, so nothing depends on them.
fn remove_unfinished_snapshots(fs: &Fs, dir: &Path) -> Result<(), StorageError> {
    let names = fs.list(dir).map_err(|e| StorageError::io(dir, e))?;
    for n in names
        .iter()
        .filter(|n| n.starts_with("snap.") && n.ends_with(".tmp"))
    {
        let p = dir.join(n);
        fs.remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
        info!(file = %p.display(), "removed an unfinished snapshot");
    }
    Ok(())
}

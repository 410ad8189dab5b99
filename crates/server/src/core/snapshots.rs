//! Snapshot scheduling and the snapshot walk.
//!
//! A snapshot is due by transaction count or by log size, whichever comes first, each
//! randomised between half and all of its limit as ZooKeeper does (servers of an ensemble do
//! not snapshot together), and never while one runs. A snapshot is fuzzy: the core hands the
//! tree in chunks of nodes to a writer thread between batches, while writes go on; replaying
//! the log from the snapshot's zxid repairs what changed during the walk. The writer thread
//! also purges old files when `autopurge.purgeInterval` is set, so the core never waits on the
//! file system.

use crate::log::LogMsg;
use crate::msg::{CoreMsg, SnapshotDone};
use crate::storage::fs::Fs;
use crate::storage::snapshot::SnapshotWriter;
use paddock_tree::DataTree;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Most nodes in one chunk handed to the snapshot writer, and the idle walk's step (about a
/// tenth of a millisecond of work, so a request arriving meanwhile waits no longer).
pub(crate) const SNAPSHOT_CHUNK: usize = 256;
/// Chunks the writer may have queued before the walk waits for it.
const SNAPSHOT_QUEUE: usize = 16;
/// How long the core must be quiet before it walks a snapshot in idle time.
pub(crate) const SNAPSHOT_IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// When the next snapshot is due.
#[derive(Debug)]
pub(crate) struct Schedule {
    snap_count: u64,
    limit_kb: i64,
    /// Transactions applied since the last snapshot began, and the count that starts the next.
    since: u64,
    next_at: u64,
    /// Log bytes queued since the last snapshot began, and the size that starts the next.
    logged: u64,
    next_bytes: u64,
    running: bool,
}

impl Schedule {
    /// A schedule for `snapCount` transactions or `snapSizeLimitInKb` of log (0 or less: off).
    pub fn new(snap_count: u64, limit_kb: i64) -> Schedule {
        Schedule {
            snap_count,
            limit_kb,
            since: 0,
            next_at: interval(snap_count),
            logged: 0,
            next_bytes: bytes_limit(limit_kb),
            running: false,
        }
    }

    /// A transaction was applied.
    pub fn applied(&mut self) {
        self.since += 1;
    }

    /// Log bytes were queued.
    pub fn logged(&mut self, bytes: u64) {
        self.logged += bytes;
    }

    /// Whether a snapshot starts now; if so, it counts as running and the counts start again
    /// (with new random limits).
    pub fn take_due(&mut self) -> bool {
        if self.running || (self.since < self.next_at && self.logged < self.next_bytes) {
            return false;
        }
        self.restart();
        self.running = true;
        true
    }

    /// The running snapshot ended (written or failed).
    pub fn finished(&mut self) {
        self.running = false;
    }

    /// The counts start again: the tree was replaced by one that is on disk already.
    pub fn restart(&mut self) {
        self.since = 0;
        self.next_at = interval(self.snap_count);
        self.logged = 0;
        self.next_bytes = bytes_limit(self.limit_kb);
    }
}

/// Transactions until the next snapshot: randomised in (snapCount/2, snapCount].
fn interval(snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rand::random::<u64>() % (snap_count - half + 1).max(1)
}

/// Log bytes after which the next snapshot starts: between half and all of the limit; never
/// when the limit is off.
fn bytes_limit(limit_kb: i64) -> u64 {
    if limit_kb <= 0 {
        return u64::MAX;
    }
    let full = limit_kb as u64 * 1024;
    full / 2 + rand::random::<u64>() % (full / 2 + 1)
}

/// A snapshot being walked: the core hands chunks of nodes to a writer thread, never holding
/// more than a few chunks, so memory stays bounded whatever the tree's size.
struct Walk {
    cursor: Option<String>,
    /// Encoded node records and how many nodes they hold.
    tx: Option<std_mpsc::SyncSender<(Vec<u8>, u64)>>,
    pending: Option<(Vec<u8>, u64)>,
    /// Set when the tree is replaced mid-walk: the writer must not seal what it has.
    abort: Arc<AtomicBool>,
}

/// Where snapshots go and what follows them.
pub(crate) struct Target {
    pub fs: Fs,
    pub dbid: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// `autopurge.snapRetainCount` when `autopurge.purgeInterval` is set.
    pub purge_keep: Option<usize>,
    pub log: std_mpsc::Sender<LogMsg>,
    pub core: mpsc::Sender<CoreMsg>,
}

/// The schedule and the running walk.
pub(crate) struct Snapshots {
    pub schedule: Schedule,
    walk: Option<Walk>,
    target: Target,
}

impl Snapshots {
    pub fn new(schedule: Schedule, target: Target) -> Snapshots {
        Snapshots {
            schedule,
            walk: None,
            target,
        }
    }

    /// Whether a walk is under way.
    pub fn walking(&self) -> bool {
        self.walk.is_some()
    }

    /// Starts a snapshot of `tree` if one is due. Checked after each apply and when a
    /// snapshot ends (one that took longer than the interval is followed at once).
    pub fn maybe_start(&mut self, tree: &DataTree) {
        if self.schedule.take_due() && !self.start(tree) {
            self.schedule.finished();
        }
    }

    /// Starts a fuzzy snapshot of the tree as applied so far; false if it could not.
    fn start(&mut self, tree: &DataTree) -> bool {
        let t = &self.target;
        let dir = crate::storage::snap_dir(&t.data_dir);
        let mut sessions: Vec<(i64, i32)> = tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort();
        let zxid = tree.last_zxid();
        let (tx, rx) = std_mpsc::sync_channel::<(Vec<u8>, u64)>(SNAPSHOT_QUEUE);
        let core = t.core.clone();
        let (fs, dbid) = (t.fs.clone(), t.dbid);
        // Retention runs on the snapshot thread after the snapshot is whole (ZooKeeper purges
        // every purgeInterval hours; Paddock after each snapshot when it is set).
        let purge = t
            .purge_keep
            .map(|keep| (t.data_dir.clone(), t.data_log_dir.clone(), keep));
        // The snapshot covers everything logged so far: the log starts a new segment, so that
        // the older ones can go whole once this snapshot is old enough.
        let _ = t.log.send(LogMsg::RollSegment);
        let abort = Arc::new(AtomicBool::new(false));
        let aborted = abort.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let result = (|| {
                    let mut w = SnapshotWriter::create(&fs, &dir, zxid, dbid, &sessions)?;
                    while let Ok((records, nodes)) = rx.recv() {
                        w.records(&records, nodes)?;
                    }
                    if aborted.load(Ordering::Acquire) {
                        return Err(std::io::Error::other(
                            "snapshot abandoned: the tree was replaced",
                        ));
                    }
                    let path = w.finish()?;
                    let mut log_purged_through = None;
                    if let Some((data_dir, data_log_dir, keep)) = &purge {
                        match crate::storage::purge::purge(&fs, data_dir, data_log_dir, *keep) {
                            Ok(p) => log_purged_through = p.log_purged_through,
                            Err(e) => warn!(error = %e, "purge failed"),
                        }
                    }
                    Ok(SnapshotDone {
                        path,
                        log_purged_through,
                    })
                })();
                if result.is_err() {
                    // A full disk must not be made fuller by a half-written snapshot.
                    let tmp = format!("{}.tmp", crate::storage::snapshot::snap_name(zxid));
                    let _ = fs.remove_file(&dir.join(tmp));
                }
                let _ =
                    core.blocking_send(CoreMsg::SnapshotDone(result.map_err(|e| e.to_string())));
            });
        if spawned.is_err() {
            warn!("could not start the snapshot thread");
            return false;
        }
        info!(zxid = format_args!("0x{zxid:x}"), "snapshot started");
        self.walk = Some(Walk {
            cursor: None,
            tx: Some(tx),
            pending: None,
            abort,
        });
        true
    }

    /// Abandons a running walk (the tree is about to be replaced).
    pub fn abort(&mut self) {
        if let Some(walk) = self.walk.take() {
            walk.abort.store(true, Ordering::Release);
        }
    }

    /// Walks up to `nodes` more nodes of the running snapshot, as far as the writer keeps up.
    /// Returns whether it made progress (false when the writer's queue is full or no
    /// snapshot runs).
    pub fn step(&mut self, tree: &DataTree, nodes: usize) -> bool {
        let Some(walk) = self.walk.as_mut() else {
            return false;
        };
        let mut budget = nodes;
        while budget > 0 {
            let (chunk, last) = match walk.pending.take() {
                Some(c) => (c, false),
                None => {
                    let n = budget.min(SNAPSHOT_CHUNK);
                    budget -= n;
                    let mut c = Vec::with_capacity(n * 160);
                    let (more, walked) = tree.snapshot_chunk_encoded(&mut walk.cursor, n, &mut c);
                    if c.is_empty() {
                        // Walk complete: closing the channel tells the writer to seal the file.
                        self.walk = None;
                        return true;
                    }
                    ((c, walked as u64), !more)
                }
            };
            match walk.tx.as_ref().map(|tx| tx.try_send(chunk)) {
                Some(Ok(())) if last => {
                    self.walk = None;
                    return true;
                }
                Some(Ok(())) => {}
                Some(Err(std_mpsc::TrySendError::Full(c))) => {
                    walk.pending = Some(c);
                    return false;
                }
                _ => {
                    self.walk = None;
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_count_within_half_and_all_of_snap_count() {
        for _ in 0..50 {
            let mut s = Schedule::new(100, 0);
            let mut n = 0;
            while !s.take_due() {
                s.applied();
                n += 1;
                assert!(n <= 100, "never later than snapCount");
            }
            assert!(n >= 50, "never before half of snapCount ({n})");
        }
    }

    #[test]
    fn due_by_log_size_first_when_that_comes_first() {
        let mut s = Schedule::new(1_000_000, 1);
        s.logged(600);
        s.applied();
        let due_at_600 = s.take_due();
        s.logged(1024);
        assert!(due_at_600 || s.take_due(), "at most 1 KiB of log");
    }

    #[test]
    fn never_while_one_runs_and_counts_restart() {
        let mut s = Schedule::new(2, 0);
        s.applied();
        s.applied();
        assert!(s.take_due());
        assert_eq!(s.since, 0);
        s.applied();
        s.applied();
        assert!(!s.take_due(), "one is running");
        s.finished();
        assert!(
            s.take_due(),
            "the one due meanwhile starts as soon as the last ends"
        );
    }

    #[test]
    fn restart_forgets_what_was_counted() {
        let mut s = Schedule::new(2, 1);
        s.applied();
        s.logged(5000);
        s.restart();
        assert!(!s.take_due());
    }
}

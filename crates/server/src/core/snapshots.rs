//! Snapshot scheduling and the snapshot walk.
//!
//! A snapshot is due by transaction count or by log size, whichever comes first, each
//! randomised between half and all of its limit as ZooKeeper does (servers of an ensemble do
//! not snapshot together), and never while one runs. A snapshot is fuzzy: the snapshot thread
//! walks the shared tree a chunk of nodes at a time between the core's rounds
//! (`crate::tree_lock`), while writes go on; replaying the log from the snapshot's zxid
//! repairs what changed during the walk. The core only notes the zxid and the sessions. The
//! thread also purges old files when `autopurge.purgeInterval` is set, so the core never
//! walks the tree or waits on the file system for a snapshot.
//!
//! The walk is paced by the core's work (`Pace`): under load it goes about as fast as needed
//! to end when half of snapCount transactions have gone by (when the next snapshot may be due),
//! but never faster than one node per message the core handles, so a large tree under heavy
//! load is snapshotted less often rather than taking CPU and disk from every write (ZooKeeper
//! likewise skips a snapshot while one runs; the walk Paddock used to do on the core was
//! paced the same way). Unpaced, back-to-back snapshots of the tree `bench/compare.sh` grows
//! cost setData 14% and create-1k 10% of their throughput here. Once the core has been quiet
//! for a millisecond the walk goes at full speed.

use crate::log::LogMsg;
use crate::msg::{CoreMsg, SnapshotDone};
use crate::storage::fs::Fs;
use crate::storage::snapshot::SnapshotWriter;
use crate::tree_lock::HeldTree;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Nodes a walker reads per hold of the tree's read lock: about a tenth of a millisecond, the
/// longest the core may wait for it.
pub(crate) const WALK_CHUNK: usize = 512;

/// How long the core must be quiet before a snapshot walk goes at full speed, and how often a
/// paced walk looks again.
const QUIET: Duration = Duration::from_millis(1);

/// The core's work so far, counted by the core and read by the snapshot thread to pace its
/// walk.
#[derive(Default, Debug)]
pub(crate) struct Pace {
    messages: AtomicU64,
    rounds: AtomicU64,
}

impl Pace {
    /// The core handled a round of `messages` messages.
    pub fn round(&self, messages: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }

    fn now(&self) -> (u64, u64) {
        (
            self.messages.load(Ordering::Relaxed),
            self.rounds.load(Ordering::Relaxed),
        )
    }
}

/// Nodes a walk may have covered once the core handled `messages` messages in `rounds`
/// rounds since it began: enough to end by the time half of `snap_count` transactions have
/// gone by, but at most one per message; at least 32 per round, so small trees finish at
/// once. (The two floors are not added: that doubled the walk's speed under load, so a large
/// tree was snapshotted twice as often, and the extra snapshot writes cost setData about a
/// quarter of its throughput on 2 cores.)
fn allowance(messages: u64, rounds: u64, nodes: u64, snap_count: u64) -> u64 {
    let needed = messages.saturating_mul(nodes.saturating_mul(2)) / snap_count.max(2);
    needed.min(messages).max(rounds * 32)
}

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
    /// When the running snapshot began.
    began: Option<std::time::Instant>,
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
            began: None,
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
        self.began = Some(std::time::Instant::now());
        true
    }

    /// The running snapshot ended (written or failed): how long it took.
    pub fn finished(&mut self) -> Option<std::time::Duration> {
        self.running = false;
        self.began.take().map(|b| b.elapsed())
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

/// Where snapshots go and what follows them.
pub(crate) struct Target {
    pub fs: Fs,
    pub dbid: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// `autopurge.snapRetainCount` when `autopurge.purgeInterval` is set.
    pub purge_keep: Option<usize>,
    pub snap_count: u64,
    pub pace: Arc<Pace>,
    pub log: std_mpsc::Sender<LogMsg>,
    pub core: mpsc::Sender<CoreMsg>,
}

/// The schedule, and where snapshots go.
pub(crate) struct Snapshots {
    pub schedule: Schedule,
    target: Target,
}

impl Snapshots {
    pub fn new(schedule: Schedule, target: Target) -> Snapshots {
        Snapshots { schedule, target }
    }

    /// Starts a snapshot of `tree` if one is due. Checked after each apply and when a
    /// snapshot ends (one that took longer than the interval is followed at once).
    pub fn maybe_start(&mut self, tree: &HeldTree) {
        if self.schedule.take_due() && !self.start(tree) {
            self.schedule.finished();
        }
    }

    /// Starts a fuzzy snapshot of the tree as applied so far; false if it could not.
    fn start(&mut self, tree: &HeldTree) -> bool {
        let t = &self.target;
        let dir = crate::storage::snap_dir(&t.data_dir);
        let sessions = crate::storage::snapshot::SessionTable::of(tree);
        let zxid = tree.last_zxid();
        let mut cursor = tree.snapshot_cursor();
        let shared = tree.shared();
        let generation = shared.generation();
        let (pace, snap_count, size) = (t.pace.clone(), t.snap_count, tree.node_count() as u64);
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
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let result = (|| {
                    let mut w = SnapshotWriter::create(&fs, &dir, zxid, dbid, &sessions)?;
                    let mut chunk = Vec::with_capacity(WALK_CHUNK * 160);
                    let (start, mut last) = (pace.now(), pace.now());
                    let (mut done, mut quiet_credit) = (0u64, 0u64);
                    loop {
                        let now = pace.now();
                        let allowed = allowance(now.0 - start.0, now.1 - start.1, size, snap_count)
                            + quiet_credit;
                        if done >= allowed {
                            std::thread::sleep(QUIET);
                            if pace.now() == last {
                                // Nothing happened meanwhile: the core is idle.
                                quiet_credit += WALK_CHUNK as u64 * 8;
                            }
                            last = pace.now();
                            continue;
                        }
                        let n = ((allowed - done) as usize).min(WALK_CHUNK);
                        chunk.clear();
                        let walked = shared.read_chunk(generation, |t| {
                            t.snapshot_chunk_encoded(&mut cursor, n, &mut chunk)
                        });
                        let Some((more, nodes)) = walked else {
                            return Err(std::io::Error::other(
                                "snapshot abandoned: the tree was replaced",
                            ));
                        };
                        done += nodes as u64;
                        w.records(&chunk, nodes as u64)?;
                        if !more {
                            break;
                        }
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
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_is_paced_by_the_cores_work() {
        // A 1M-node tree, snapCount 100,000: 20 nodes per transaction would end the walk in
        // 50,000 transactions, but never more than one node per message.
        assert_eq!(allowance(1000, 0, 1_000_000, 100_000), 1000);
        // A smaller tree: what half of snapCount needs.
        assert_eq!(allowance(1000, 0, 10_000, 100_000), 200);
        // Every round lets at least 32 go...
        assert_eq!(allowance(0, 3, 1_000_000, 100_000), 96);
        assert_eq!(allowance(10, 3, 1_000_000, 100_000), 96);
        // ...which does not add to one per message.
        assert_eq!(allowance(1000, 3, 1_000_000, 100_000), 1000);
        assert_eq!(allowance(0, 0, 5, 0), 0);
    }

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

//! The log stage of the write pipeline: a thread that carries out the replication core's disk
//! orders in order (appends, truncations, epoch files, snapshots from a leader), fsyncs once
//! for everything it has (group commit), and reports how far it got (`CoreMsg::Persisted`).
//! Every mode takes this one road: a standalone server is a one-voter ensemble.
//!
//! Disk failures, one policy for every mode (docs/storage.md, "Failures while running"):
//! - a full disk (ENOSPC, EDQUOT) is a stalled disk: what was written before the full write is
//!   made durable and reported, the rest waits and is retried until space returns. Nothing is
//!   acknowledged meanwhile and nothing is lost; reads go on. In an ensemble the others commit
//!   without this server's acknowledgement, as with any slow disk.
//! - any other write error, and every fsync error, stops the server (exit 70): after a failed
//!   fsync the kernel may have dropped the pages, so nothing later can be trusted, and recovery
//!   on restart reads what is really on disk (ZooKeeper exits too).

use crate::msg::CoreMsg;
use crate::storage::txn_log::LogWriter;
use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// What the core hands the log thread.
pub enum LogMsg {
    /// The replication core's disk orders, carried out in order, and when they were handed
    /// over (for the queue-time figures).
    Disk(Vec<DiskOp>, std::time::Instant),
    /// A snapshot started: begin a new segment with the next write, so that retention can
    /// later drop the segments it covers.
    RollSegment,
}

/// One disk order of the replication core. Each has a sequence number; the thread reports the
/// highest one done (and durable) with `CoreMsg::Persisted`.
#[derive(Debug)]
pub enum DiskOp {
    Append {
        seq: u64,
        records: Vec<u8>,
        first_zxid: i64,
    },
    /// Drop every logged transaction after `after`.
    Truncate { seq: u64, after: i64 },
    /// Write acceptedEpoch and currentEpoch.
    Epochs {
        seq: u64,
        accepted: u32,
        current: u32,
    },
    /// Write a snapshot received from the leader and drop the log after it.
    Snapshot {
        seq: u64,
        zxid: i64,
        image: bytes::Bytes,
    },
}

impl DiskOp {
    /// The order's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            DiskOp::Append { seq, .. }
            | DiskOp::Truncate { seq, .. }
            | DiskOp::Epochs { seq, .. }
            | DiskOp::Snapshot { seq, .. } => *seq,
        }
    }
}

/// Why disk orders stopped.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// No space: everything before the failed order is durable through `durable`; the failed
    /// order and those after it are still queued, to be retried.
    #[error("disk full: {msg}")]
    Full { durable: u64, msg: String },
    /// Anything else: the server must stop.
    #[error("{0}")]
    Failed(String),
}

/// Whether an IO error means "no space left" (retried) rather than a broken disk (fatal).
fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
}

fn storage_is_full(e: &crate::storage::StorageError) -> bool {
    match e {
        crate::storage::StorageError::Io { err, .. } => is_full(err),
        _ => false,
    }
}

/// How long a stalled (full) disk waits before the next try.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// Where the ensemble's disk orders write besides the log.
pub struct DiskPlaces {
    pub fs: crate::storage::fs::Fs,
    pub data_dir: std::path::PathBuf,
}

/// Runs the log thread until the core goes away.
pub fn run(
    w: LogWriter,
    places: DiskPlaces,
    rx: std_mpsc::Receiver<LogMsg>,
    core: mpsc::Sender<CoreMsg>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut stage = LogStage::new(w);
    stage.metrics = Some(metrics);
    let mut queue: VecDeque<DiskOp> = VecDeque::new();
    // When each batch of orders in `queue` was handed over.
    let mut handed: Vec<std::time::Instant> = Vec::new();
    let mut stalled_since: Option<std::time::Instant> = None;
    // While the disk is full: when to try the waiting orders again. New orders arriving
    // meanwhile only queue behind them; each try is a write that fails.
    let mut next_try: Option<std::time::Instant> = None;
    loop {
        // Wait for work, or (stalled on a full disk) for the next retry.
        let first = match next_try {
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
            Some(at) => {
                match rx.recv_timeout(at.saturating_duration_since(std::time::Instant::now())) {
                    Ok(m) => Some(m),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        };
        let mut roll = false;
        let taken_at = std::time::Instant::now();
        let mut take = |m: LogMsg| match m {
            LogMsg::Disk(d, queued) => {
                queue.extend(d);
                handed.push(queued);
            }
            LogMsg::RollSegment => roll = true,
        };
        if let Some(m) = first {
            take(m);
        }
        // Everything queued meanwhile shares one fsync.
        while let Ok(more) = rx.try_recv() {
            take(more);
        }
        if let Some(m) = &stage.metrics {
            let mut q = m.sync_queue_time.lock();
            for at in &handed {
                q.record(taken_at.saturating_duration_since(*at).as_millis() as u64);
            }
            drop(q);
            m.sync_queue_size.lock().record(queue.len() as u64);
        }
        if roll {
            // Everything the snapshot covers was written before it began, so rolling anywhere
            // in this round keeps the new segment after it.
            stage.roll_next();
        }
        if queue.is_empty() || next_try.is_some_and(|at| std::time::Instant::now() < at) {
            continue;
        }
        let flush_began = std::time::Instant::now();
        let done = stage.disk_ops(&places, &mut queue);
        if let Some(m) = &stage.metrics {
            let now = std::time::Instant::now();
            m.sync_flush_time
                .lock()
                .record(now.duration_since(flush_began).as_millis() as u64);
            if queue.is_empty() {
                let mut qf = m.sync_queue_and_flush_time.lock();
                for at in handed.drain(..) {
                    qf.record(now.saturating_duration_since(at).as_millis() as u64);
                }
            }
        }
        let reported = match done {
            Ok(seq) => {
                next_try = None;
                if let Some(since) = stalled_since.take() {
                    info!(
                        stalled_ms = since.elapsed().as_millis() as u64,
                        "the disk has room again; writes go on"
                    );
                }
                seq
            }
            Err(DiskError::Full { durable, msg }) => {
                if stalled_since.is_none() {
                    warn!(error = %msg, waiting = queue.len(),
                        "disk full: writes wait (nothing is acknowledged) until space returns");
                    stalled_since = Some(std::time::Instant::now());
                }
                next_try = Some(std::time::Instant::now() + FULL_RETRY);
                durable
            }
            Err(DiskError::Failed(e)) => {
                // A replica that cannot write must not acknowledge anything more: stop, as
                // ZooKeeper does, and let recovery sort it out on restart.
                error!(error = %e, "disk write failed; stopping the server");
                std::process::exit(70);
            }
        };
        if reported > 0 && core.blocking_send(CoreMsg::Persisted(reported)).is_err() {
            return;
        }
    }
}

/// Carries out disk orders and reports how far they are durable. Separate from the thread so
/// tests can drive it step by step over a simulated disk.
pub struct LogStage {
    w: LogWriter,
    /// Test-only planted bug: report orders durable before their fsync, which then happens at
    /// the start of the next round (the power-loss tests must catch it; a process kill cannot).
    pub reply_before_fsync: bool,
    /// With the planted bug: written but not yet fsynced.
    unsynced: bool,
    /// Where fsync times and group-commit sizes go.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl LogStage {
    pub fn new(w: LogWriter) -> LogStage {
        LogStage {
            w,
            reply_before_fsync: false,
            unsynced: false,
            metrics: None,
        }
    }

    /// Starts a new segment with the next write.
    pub fn roll_next(&mut self) {
        self.w.roll_next();
    }

    fn sync(&mut self) -> Result<(), DiskError> {
        let began = std::time::Instant::now();
        self.w
            .sync()
            .map_err(|e| DiskError::Failed(format!("log fsync: {e}")))?;
        if let Some(m) = &self.metrics {
            m.fsynctime
                .lock()
                .record(began.elapsed().as_millis() as u64);
        }
        Ok(())
    }

    /// Carries out the replication core's disk orders from the front of `ops`, in order, with
    /// one fsync for the appends at the end; removes each order once done and returns the last
    /// sequence number done, durable (0 if none). On a full disk the orders done before are
    /// made durable and reported in the error; the rest stay in `ops` for a retry.
    pub fn disk_ops(
        &mut self,
        at: &DiskPlaces,
        ops: &mut VecDeque<DiskOp>,
    ) -> Result<u64, DiskError> {
        if self.unsynced {
            self.sync()?;
            self.unsynced = false;
        }
        let mut last = 0;
        let mut dirty = false;
        let mut appends = 0u64;
        while let Some(op) = ops.front() {
            let seq = op.seq();
            let done: Result<(), (bool, String)> = match op {
                DiskOp::Append {
                    records,
                    first_zxid,
                    ..
                } => match self.w.write(records, *first_zxid) {
                    Ok(()) => {
                        dirty = true;
                        appends += 1;
                        Ok(())
                    }
                    Err(e) => Err((is_full(&e), format!("log append: {e}"))),
                },
                DiskOp::Truncate { after, .. } => match self.w.truncate_after(*after) {
                    Ok(()) => {
                        dirty = false;
                        Ok(())
                    }
                    Err(e) => Err((storage_is_full(&e), e.to_string())),
                },
                DiskOp::Epochs {
                    accepted, current, ..
                } => {
                    // The appends before it are durable first: order is what the core asked.
                    if dirty {
                        self.sync()?;
                        dirty = false;
                    }
                    use crate::storage::epoch;
                    epoch::write(&at.fs, &at.data_dir, epoch::ACCEPTED, *accepted as u64)
                        .and_then(|()| {
                            epoch::write(&at.fs, &at.data_dir, epoch::CURRENT, *current as u64)
                        })
                        .map_err(|e| (storage_is_full(&e), e.to_string()))
                }
                DiskOp::Snapshot { zxid, image, .. } => {
                    if dirty {
                        self.sync()?;
                        dirty = false;
                    }
                    let dir = crate::storage::snap_dir(&at.data_dir);
                    crate::storage::snapshot::write_image(&at.fs, &dir, *zxid, image)
                        .map(|_| ())
                        .map_err(|e| (is_full(&e), format!("snapshot from the leader: {e}")))
                        // Anything logged past the snapshot belongs to a history the leader
                        // replaced.
                        .and_then(|()| {
                            self.w
                                .truncate_after(*zxid)
                                .map_err(|e| (storage_is_full(&e), e.to_string()))
                        })
                }
            };
            match done {
                Ok(()) => {
                    ops.pop_front();
                    last = seq;
                }
                Err((true, msg)) => {
                    if dirty {
                        self.sync()?;
                    }
                    return Err(DiskError::Full { durable: last, msg });
                }
                Err((false, msg)) => return Err(DiskError::Failed(msg)),
            }
        }
        if dirty {
            if self.reply_before_fsync {
                self.unsynced = true;
            } else {
                self.sync()?;
            }
        }
        if let (Some(m), 1..) = (&self.metrics, appends) {
            m.sync_batch.lock().record(appends);
        }
        Ok(last)
    }
}

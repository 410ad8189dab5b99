//! The log stage of the write pipeline: a thread that appends each batch of prepared
//! transactions, fsyncs once for everything it has (group commit), and tells the core how far
//! the log is durable. The core applies and answers a write only after that.

use crate::core::CoreMsg;
use crate::storage::txn_log::LogWriter;
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;
use tracing::error;

/// A batch for the log thread.
pub struct Append {
    /// Encoded records.
    pub records: Vec<u8>,
    pub first_zxid: i64,
    pub last_zxid: i64,
    /// The core's generation: after a failure, batches of an older generation were prepared
    /// against writes that failed, and are refused.
    pub generation: u64,
}

/// The log thread's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    pub generation: u64,
    /// Everything up to here is durable.
    pub up_to: i64,
    /// The batch from this zxid on failed, and so does everything after it in this generation.
    pub failed_from: Option<i64>,
}

/// What the core hands the log thread.
pub enum LogMsg {
    /// Standalone: a batch of prepared transactions.
    Append(Append),
    /// Ensemble: the replication core's disk orders, carried out in order.
    Disk(Vec<DiskOp>),
    /// A snapshot started: begin a new segment with the next write, so that retention can
    /// later drop the segments it covers.
    RollSegment,
}

/// One disk order of the replication core. Each has a sequence number; the thread reports the
/// highest one done (and durable) with `CoreMsg::Persisted`.
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
    Snapshot { seq: u64, zxid: i64, image: Vec<u8> },
}

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
) {
    let mut stage = LogStage::new(w);
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut ops = Vec::new();
        let mut roll = false;
        let mut take = |m: LogMsg| match m {
            LogMsg::Append(a) => batch.push(a),
            LogMsg::Disk(d) => ops.extend(d),
            LogMsg::RollSegment => roll = true,
        };
        take(first);
        // Everything queued meanwhile shares one fsync.
        while let Ok(more) = rx.try_recv() {
            take(more);
        }
        if roll {
            // Everything the snapshot covers was written before it began, so rolling anywhere
            // in this round keeps the new segment after it.
            stage.roll_next();
        }
        if !ops.is_empty() {
            match stage.disk_ops(&places, ops) {
                Ok(seq) => {
                    if core.blocking_send(CoreMsg::Persisted(seq)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // A replica that cannot write must not acknowledge anything more: stop,
                    // as ZooKeeper does, and let recovery sort it out on restart.
                    error!(error = %e, "disk write failed in the ensemble log; stopping the server");
                    std::process::exit(70);
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut gone = false;
        stage.process(batch, &mut |d| {
            gone |= core.blocking_send(CoreMsg::Durable(d)).is_err();
        });
        if gone {
            return;
        }
    }
}

/// Writes batches and reports how far the log is durable. Separate from the thread so tests
/// can drive it step by step over a simulated disk.
pub struct LogStage {
    w: LogWriter,
    refuse_below: u64,
    /// Test-only planted bug: report batches durable before their fsync (the power-loss tests
    /// must catch it; a process kill cannot).
    pub reply_before_fsync: bool,
}

impl LogStage {
    pub fn new(w: LogWriter) -> LogStage {
        LogStage {
            w,
            refuse_below: 0,
            reply_before_fsync: false,
        }
    }

    /// Carries out the replication core's disk orders in order, with one fsync for the appends
    /// at the end; returns the last sequence number, durable.
    /// Starts a new segment with the next write.
    pub fn roll_next(&mut self) {
        self.w.roll_next();
    }

    pub fn disk_ops(&mut self, at: &DiskPlaces, ops: Vec<DiskOp>) -> Result<u64, String> {
        let mut last = 0;
        let mut dirty = false;
        for op in ops {
            match op {
                DiskOp::Append {
                    seq,
                    records,
                    first_zxid,
                } => {
                    self.w
                        .write(&records, first_zxid)
                        .map_err(|e| format!("log append: {e}"))?;
                    dirty = true;
                    last = seq;
                }
                DiskOp::Truncate { seq, after } => {
                    self.w.truncate_after(after).map_err(|e| e.to_string())?;
                    dirty = false;
                    last = seq;
                }
                DiskOp::Epochs {
                    seq,
                    accepted,
                    current,
                } => {
                    // The appends before it are durable first: order is what the core asked.
                    if dirty {
                        self.w.sync().map_err(|e| format!("log fsync: {e}"))?;
                        dirty = false;
                    }
                    use crate::storage::epoch;
                    epoch::write(&at.fs, &at.data_dir, epoch::ACCEPTED, accepted as u64)
                        .map_err(|e| e.to_string())?;
                    epoch::write(&at.fs, &at.data_dir, epoch::CURRENT, current as u64)
                        .map_err(|e| e.to_string())?;
                    last = seq;
                }
                DiskOp::Snapshot { seq, zxid, image } => {
                    if dirty {
                        self.w.sync().map_err(|e| format!("log fsync: {e}"))?;
                        dirty = false;
                    }
                    let dir = crate::storage::snap_dir(&at.data_dir);
                    crate::storage::snapshot::write_image(&at.fs, &dir, zxid, &image)
                        .map_err(|e| format!("snapshot from the leader: {e}"))?;
                    // Anything logged past the snapshot belongs to a history the leader
                    // replaced.
                    self.w.truncate_after(zxid).map_err(|e| e.to_string())?;
                    last = seq;
                }
            }
        }
        if dirty {
            self.w.sync().map_err(|e| format!("log fsync: {e}"))?;
        }
        Ok(last)
    }

    /// Appends `batch` with one fsync for all of it and reports, through `report`, what is
    /// durable and what failed.
    pub fn process(&mut self, batch: Vec<Append>, report: &mut dyn FnMut(Durable)) {
        let mut failures: Vec<Durable> = Vec::new();
        let mut written: Option<(u64, i64)> = None;
        let mut failed: Option<(u64, i64)> = None;
        for a in &batch {
            if a.generation < self.refuse_below || failed.is_some_and(|(g, _)| g == a.generation) {
                failures.push(Durable {
                    generation: a.generation,
                    up_to: a.first_zxid - 1,
                    failed_from: Some(a.first_zxid),
                });
                continue;
            }
            match self.w.write(&a.records, a.first_zxid) {
                Ok(()) => written = Some((a.generation, a.last_zxid)),
                Err(e) => {
                    error!(error = %e, zxid = format_args!("0x{:x}", a.first_zxid), "transaction log write failed");
                    failed = Some((a.generation, a.first_zxid));
                    self.refuse_below = a.generation + 1;
                }
            }
        }
        if let Some((g, up_to)) = written {
            let ok = Durable {
                generation: g,
                up_to,
                failed_from: None,
            };
            if self.reply_before_fsync {
                report(ok.clone());
                let _ = self.w.sync();
            } else {
                match self.w.sync() {
                    Ok(()) => report(ok),
                    Err(e) => {
                        error!(error = %e, "transaction log fsync failed: refusing writes until restart");
                        self.refuse_below = u64::MAX;
                        report(Durable {
                            generation: g,
                            up_to: i64::MIN,
                            failed_from: Some(i64::MIN),
                        });
                    }
                }
            }
        }
        for f in failures {
            report(f);
        }
        if let Some((g, from)) = failed {
            report(Durable {
                generation: g,
                up_to: from - 1,
                failed_from: Some(from),
            });
        }
    }
}

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

/// Runs the log thread until the core goes away.
pub fn run(w: LogWriter, rx: std_mpsc::Receiver<Append>, core: mpsc::Sender<CoreMsg>) {
    let mut stage = LogStage::new(w);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Everything queued meanwhile shares one fsync.
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
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

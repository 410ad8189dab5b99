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
#[derive(Debug)]
pub struct Durable {
    pub generation: u64,
    /// Everything up to here is durable.
    pub up_to: i64,
    /// The batch from this zxid on failed, and so does everything after it in this generation.
    pub failed_from: Option<i64>,
}

/// Runs the log thread until the core goes away.
pub fn run(mut w: LogWriter, rx: std_mpsc::Receiver<Append>, core: mpsc::Sender<CoreMsg>) {
    let mut refuse_below = 0u64;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Everything queued meanwhile shares one fsync.
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut reports: Vec<Durable> = Vec::new();
        let mut written: Option<(u64, i64)> = None;
        let mut failed: Option<(u64, i64)> = None;
        for a in &batch {
            if a.generation < refuse_below || failed.is_some_and(|(g, _)| g == a.generation) {
                reports.push(Durable {
                    generation: a.generation,
                    up_to: a.first_zxid - 1,
                    failed_from: Some(a.first_zxid),
                });
                continue;
            }
            match w.write(&a.records, a.first_zxid) {
                Ok(()) => written = Some((a.generation, a.last_zxid)),
                Err(e) => {
                    error!(error = %e, zxid = format_args!("0x{:x}", a.first_zxid), "transaction log write failed");
                    failed = Some((a.generation, a.first_zxid));
                    refuse_below = a.generation + 1;
                }
            }
        }
        if let Some((g, up_to)) = written {
            match w.sync() {
                Ok(()) => reports.insert(
                    0,
                    Durable {
                        generation: g,
                        up_to,
                        failed_from: None,
                    },
                ),
                Err(e) => {
                    error!(error = %e, "transaction log fsync failed: refusing writes until restart");
                    refuse_below = u64::MAX;
                    reports.insert(
                        0,
                        Durable {
                            generation: g,
                            up_to: i64::MIN,
                            failed_from: Some(i64::MIN),
                        },
                    );
                }
            }
        }
        if let Some((g, from)) = failed {
            reports.push(Durable {
                generation: g,
                up_to: from - 1,
                failed_from: Some(from),
            });
        }
        for r in reports {
            if core.blocking_send(CoreMsg::Durable(r)).is_err() {
                return;
            }
        }
    }
}

//! Client histories, checked at the end of a run (session order and read-after-sync are also
//! checked as they happen, in the world):
//! - every acknowledged write is in the committed order, at the zxid it was acknowledged with;
//! - a refused write is never committed, and no payload is committed twice;
//! - writes are linearizable: if write A was acknowledged before write B was sent, A precedes B
//!   in the committed order (the committed order is a total order consistent with real time).

use crate::sim::checkers::applied_prefix::GlobalOrder;
use crate::sim::history::{OpKind, OpRecord, Outcome};
use crate::zxid::Zxid;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Checks the history against the committed order.
pub fn check(history: &[OpRecord], order: &GlobalOrder) -> Result<(), String> {
    let mut pos: BTreeMap<&Bytes, Zxid> = BTreeMap::new();
    for (z, p) in &order.entries {
        if pos.insert(p, *z).is_some() {
            return Err(format!("payload committed twice (again at {z})"));
        }
    }
    // acknowledged writes, by completion time, with the running max zxid
    let mut acked: Vec<(u64, Zxid)> = Vec::new();
    for op in history {
        let OpKind::Write(p) = &op.kind else { continue };
        match op.outcome {
            Outcome::Ok(z) => {
                match pos.get(p) {
                    Some(&c) if c == z => {}
                    Some(&c) => {
                        return Err(format!("write acknowledged at {z} is committed at {c}"))
                    }
                    None => {
                        return Err(format!(
                            "write acknowledged at {z} is not in the committed order"
                        ))
                    }
                }
                acked.push((op.complete.unwrap_or(0), z));
            }
            Outcome::Failed => {
                if let Some(z) = pos.get(p) {
                    return Err(format!(
                        "refused write (sent at t={}) is committed at {z}",
                        op.invoke
                    ));
                }
            }
            _ => {}
        }
    }
    acked.sort();
    let mut running = Vec::with_capacity(acked.len());
    let mut m = Zxid::ZERO;
    for (_, z) in &acked {
        m = m.max(*z);
        running.push(m);
    }
    for op in history {
        let OpKind::Write(p) = &op.kind else { continue };
        let Some(&z) = pos.get(p) else { continue };
        // every write acknowledged before this one was sent must precede it
        let n = acked.partition_point(|(t, _)| *t < op.invoke);
        if n > 0 && running[n - 1] >= z {
            return Err(format!(
                "write committed at {z} (sent at t={}) precedes {} acknowledged before it was sent",
                op.invoke,
                running[n - 1]
            ));
        }
    }
    Ok(())
}

//! The one committed order. Every node's applied sequence must be a prefix of it: a node that
//! applies position n must apply exactly what every other node applied at n. The first node to
//! apply position n defines it. This checks at once that committed prefixes agree, that nothing
//! committed changes, and that each server applies a prefix of one order.

use crate::sim::disk::SmState;
use crate::zxid::{Txn, Zxid};
use bytes::Bytes;

/// The global committed order, as applied.
#[derive(Debug, Default)]
pub struct GlobalOrder {
    /// (zxid, payload) by position.
    pub entries: Vec<(Zxid, Bytes)>,
    /// Time each position was first applied.
    pub first_applied: Vec<u64>,
}

impl GlobalOrder {
    /// Node `sm` applies `txn` at position `sm.len`.
    pub fn on_apply(
        &mut self,
        node: &str,
        sm: &mut SmState,
        txn: &Txn,
        now: u64,
    ) -> Result<(), String> {
        let pos = sm.len as usize;
        if txn.zxid <= sm.zxid {
            return Err(format!(
                "{node} applied {} after {} (out of order)",
                txn.zxid, sm.zxid
            ));
        }
        match self.entries.get(pos) {
            Some((z, p)) => {
                if *z != txn.zxid || *p != txn.payload {
                    return Err(format!(
                        "{node} applied {} at position {pos}, where the committed order has {z}",
                        txn.zxid
                    ));
                }
            }
            None => {
                self.entries.push((txn.zxid, txn.payload.clone()));
                self.first_applied.push(now);
            }
        }
        sm.len += 1;
        sm.zxid = txn.zxid;
        Ok(())
    }

    /// A state machine image (snapshot or restart) must be a prefix of the order.
    pub fn check_image(&self, node: &str, sm: &SmState) -> Result<(), String> {
        if sm.len == 0 {
            return if sm.zxid == Zxid::ZERO {
                Ok(())
            } else {
                Err(format!("{node}: empty image at {}", sm.zxid))
            };
        }
        match self.entries.get(sm.len as usize - 1) {
            Some((z, _)) if *z == sm.zxid => Ok(()),
            Some((z, _)) => Err(format!(
                "{node}: image of {} txns ends at {}, committed order has {z} there",
                sm.len, sm.zxid
            )),
            None => Err(format!(
                "{node}: image of {} txns is longer than the committed order",
                sm.len
            )),
        }
    }

    /// Number of committed transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last committed zxid.
    pub fn last(&self) -> Option<Zxid> {
        self.entries.last().map(|(z, _)| *z)
    }
}

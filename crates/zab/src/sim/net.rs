//! `SimNet`: delay, loss, duplication, reordering and partitions (asymmetric too).
//!
//! Election notifications are datagrams: each may be lost, duplicated or overtaken. Learner
//! connections behave as TCP does: messages arrive in order, and once one is lost (or blocked
//! by a partition) the connection is broken and nothing more on it arrives.

use crate::message::{ConnId, Message};
use crate::zxid::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// Network state.
#[derive(Debug, Default)]
pub struct SimNet {
    /// Directed pairs that cannot talk.
    pub blocked: BTreeSet<(ServerId, ServerId)>,
    broken: BTreeSet<(ServerId, ServerId, ConnId)>,
    /// Delivery time of the last message on each connection direction (keeps FIFO).
    fifo: BTreeMap<(ServerId, ServerId, ConnId), u64>,
}

/// What happens to a message being sent.
pub enum Fate {
    /// Deliver at these times (two for a duplicate).
    Deliver(Vec<u64>),
    /// Lost.
    Drop,
}

impl SimNet {
    /// Decides a message's fate. `delay` and `extra` come from the caller's RNG.
    pub fn send(
        &mut self,
        now: u64,
        from: ServerId,
        to: ServerId,
        msg: &Message,
        lost: bool,
        delays: [u64; 2],
        dup: bool,
    ) -> Fate {
        let blocked = self.blocked.contains(&(from, to));
        match msg {
            Message::Notification { .. } => {
                if blocked || lost {
                    return Fate::Drop;
                }
                let mut ts = vec![now + delays[0]];
                if dup {
                    ts.push(now + delays[1]);
                }
                Fate::Deliver(ts)
            }
            Message::Learner { conn, .. } => {
                let key = (from, to, *conn);
                if self.broken.contains(&key) {
                    return Fate::Drop;
                }
                if blocked || lost {
                    self.break_conn(key);
                    return Fate::Drop;
                }
                let t = self
                    .fifo
                    .get(&key)
                    .copied()
                    .unwrap_or(0)
                    .max(now + delays[0]);
                self.fifo.insert(key, t);
                Fate::Deliver(vec![t])
            }
        }
    }

    /// Whether a message may still be delivered now (partitions that appeared in flight cut it).
    pub fn deliverable(
        &mut self,
        from: ServerId,
        to: ServerId,
        msg: &Message,
        to_up: bool,
    ) -> bool {
        let ok = to_up && !self.blocked.contains(&(from, to));
        if let Message::Learner { conn, .. } = msg {
            let key = (from, to, *conn);
            if self.broken.contains(&key) {
                return false;
            }
            if !ok {
                self.break_conn(key);
            }
        }
        ok
    }

    fn break_conn(&mut self, key: (ServerId, ServerId, ConnId)) {
        self.fifo.remove(&key);
        self.broken.insert(key);
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }
}

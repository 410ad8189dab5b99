//! `SimNet`: delay, loss, duplication, reordering and partitions (asymmetric too).
//!
//! Election notifications are datagrams: each may be lost, duplicated or overtaken. Learner
//! connections behave as TCP does: messages arrive in order, and once one is lost (or cut by a
//! partition) the connection is broken: nothing sent after it arrives, while what was sent
//! before it still does.

use crate::message::{ConnId, Message};
use crate::zxid::ServerId;
use std::collections::{BTreeMap, BTreeSet};

type Key = (ServerId, ServerId, ConnId);

/// Network state.
#[derive(Debug, Default)]
pub struct SimNet {
    /// Directed pairs that cannot talk.
    pub blocked: BTreeSet<(ServerId, ServerId)>,
    /// For a broken connection direction, the number of its first lost message: that one and
    /// every later one never arrive.
    broken: BTreeMap<Key, u64>,
    /// Per connection direction: delivery time of the last message (keeps FIFO) and the number
    /// of the next message.
    fifo: BTreeMap<Key, (u64, u64)>,
    /// Connection directions (from, to) broken since the last `take_breaks`.
    breaks: Vec<(ServerId, ServerId)>,
}

/// What happens to a message being sent.
pub enum Fate {
    /// Deliver at these times (two for a duplicate), with the message's number on its
    /// connection (0 for notifications).
    Deliver(Vec<u64>, u64),
    /// Lost.
    Drop,
}

impl SimNet {
    /// Decides a message's fate. `lost`, `delays` and `dup` come from the caller's RNG.
    #[allow(clippy::too_many_arguments)]
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
                Fate::Deliver(ts, 0)
            }
            Message::Learner { conn, .. } => {
                let key = (from, to, *conn);
                let (last_t, n) = self.fifo.get(&key).copied().unwrap_or((0, 1));
                self.fifo.insert(key, (last_t, n + 1));
                if self.broken.contains_key(&key) {
                    return Fate::Drop;
                }
                if blocked || lost {
                    self.broken.insert(key, n);
                    self.breaks.push((from, to));
                    return Fate::Drop;
                }
                let t = last_t.max(now + delays[0]);
                self.fifo.insert(key, (t, n + 1));
                Fate::Deliver(vec![t], n)
            }
        }
    }

    /// Whether a message (number `n` on its connection) may be delivered now: the target must
    /// be up, and a partition that appeared while it was in flight cuts it (and its connection).
    pub fn deliverable(
        &mut self,
        from: ServerId,
        to: ServerId,
        msg: &Message,
        n: u64,
        to_up: bool,
    ) -> bool {
        let ok = to_up && !self.blocked.contains(&(from, to));
        if let Message::Learner { conn, .. } = msg {
            let key = (from, to, *conn);
            if self
                .broken
                .get(&key)
                .is_some_and(|&first_lost| n >= first_lost)
            {
                return false;
            }
            if !ok {
                let e = self.broken.entry(key).or_insert_with(|| {
                    self.breaks.push((from, to));
                    n
                });
                *e = (*e).min(n);
            }
        }
        ok
    }

    /// The connection directions (from, to) that broke since the last call.
    pub fn take_breaks(&mut self) -> Vec<(ServerId, ServerId)> {
        std::mem::take(&mut self.breaks)
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }
}

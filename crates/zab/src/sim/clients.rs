//! The simulated client workload: sessions, writes of unique payloads, reads, sync(), and how
//! their outcomes are recorded (the history the client checkers read).

use crate::event::Event;
use crate::sim::faults::TICK;
use crate::sim::history::{payload, OpKind, OpRecord, Outcome};
use crate::sim::world::{Ev, World};
use crate::zxid::{ServerId, Zxid};
use bytes::Bytes;

/// A simulated client: one operation at a time, on one node, remembering the last zxid it saw
/// (it only moves to a node that has applied at least that much, as ZooKeeper clients do).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub(super) node: Option<usize>,
    pub(super) pending: Option<usize>,
    pub(super) deadline: u64,
    pub(super) last_seen: Zxid,
    pub(super) seq: u64,
}

#[derive(Debug, Clone)]
pub(super) struct PendingWrite {
    pub(super) op: usize,
    pub(super) node: usize,
    pub(super) client: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct PendingSync {
    pub(super) op: usize,
    pub(super) node: usize,
    pub(super) client: Option<usize>,
    /// Highest zxid acknowledged to any client when the sync was sent.
    pub(super) need: Zxid,
}

impl World {
    pub(super) fn disconnect_clients(&mut self, i: usize) {
        let writes: Vec<Bytes> = self
            .pending_writes
            .iter()
            .filter(|(_, p)| p.node == i)
            .map(|(k, _)| k.clone())
            .collect();
        for k in writes {
            let p = self.pending_writes.remove(&k).expect("present");
            self.complete(p.op, p.client, Outcome::Unknown);
        }
        let syncs: Vec<u64> = self
            .pending_syncs
            .iter()
            .filter(|(_, p)| p.node == i)
            .map(|(k, _)| *k)
            .collect();
        for k in syncs {
            let p = self.pending_syncs.remove(&k).expect("present");
            self.complete(p.op, p.client, Outcome::Failed);
        }
        for c in self.clients.iter_mut() {
            if c.node == Some(i) {
                c.node = None;
            }
        }
    }

    pub(super) fn complete(&mut self, op: usize, client: Option<usize>, outcome: Outcome) {
        let rec = &mut self.history[op];
        if rec.complete.is_some() {
            return;
        }
        rec.complete = Some(self.time);
        rec.outcome = outcome;
        let is_write = matches!(rec.kind, OpKind::Write(_));
        if let Outcome::Ok(z) = outcome {
            if is_write {
                self.stats.acked_writes += 1;
                self.max_acked = self.max_acked.max(z);
            }
            if let Some(c) = client {
                // session order: everything a client sees moves forward
                if z < self.clients[c].last_seen {
                    let ls = self.clients[c].last_seen;
                    self.fail(
                        "client_history",
                        format!("client {c} saw {z} after {ls} (session order)"),
                    );
                }
                self.clients[c].last_seen = self.clients[c].last_seen.max(z);
            }
        }
        if let Some(c) = client {
            if self.clients[c].pending == Some(op) {
                self.clients[c].pending = None;
            }
        }
    }

    /// Sends a write to a node on behalf of a scripted client; returns its op index.
    pub fn submit_write(&mut self, id: ServerId, client: Option<usize>) -> usize {
        let p = match client {
            Some(c) => {
                self.clients[c].seq += 1;
                payload(c, self.clients[c].seq)
            }
            None => {
                self.scenario_seq += 1;
                payload(usize::MAX, self.scenario_seq)
            }
        };
        self.submit_payload(id, client, p)
    }

    /// Sends a sync() to a node; returns its op index.
    pub fn submit_sync(&mut self, id: ServerId, client: Option<usize>) -> usize {
        let i = self.idx(id);
        let op = self.history.len();
        self.history.push(OpRecord {
            client: client.unwrap_or(usize::MAX),
            node: i,
            kind: OpKind::Sync,
            invoke: self.time,
            complete: None,
            outcome: Outcome::Pending,
        });
        self.next_request += 1;
        let request_id = 1 << 40 | self.next_request;
        self.pending_syncs.insert(
            request_id,
            PendingSync {
                op,
                node: i,
                client,
                need: self.max_acked,
            },
        );
        self.feed(i, Event::ClientSync { request_id });
        op
    }

    pub(super) fn client_step(&mut self, c: usize) {
        let next = self.rng.range(TICK / 5, 3 * TICK);
        self.schedule(next, Ev::Client(c));
        if !self.clients_active {
            return;
        }
        if let Some(op) = self.clients[c].pending {
            if self.time >= self.clients[c].deadline {
                // no answer: the outcome of a write is unknown; move to another server
                let outcome = match self.history[op].kind {
                    OpKind::Write(ref p) => {
                        let p = p.clone();
                        self.pending_writes.remove(&p);
                        Outcome::Unknown
                    }
                    _ => {
                        self.pending_syncs.retain(|_, s| s.op != op);
                        Outcome::Failed
                    }
                };
                self.complete(op, Some(c), outcome);
                self.clients[c].node = None;
            }
            return;
        }
        // keep the server while it serves; otherwise move to one that has seen at least as much
        let keep = self.clients[c].node.filter(|&i| self.nodes[i].serving());
        let i = match keep {
            Some(i) => i,
            None => {
                let seen = self.clients[c].last_seen;
                let cands: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| self.nodes[i].serving() && self.nodes[i].sm.zxid >= seen)
                    .collect();
                if cands.is_empty() {
                    return;
                }
                let i = self.rng.pick(&cands);
                self.clients[c].node = Some(i);
                i
            }
        };
        let id = self.nodes[i].id;
        // the client's session is alive: its server reports that to the leader with a ping
        self.feed(
            i,
            Event::SessionTouched {
                session_id: c as u64 + 1,
            },
        );
        let r = self.rng.below(100);
        self.clients[c].deadline = self.time + 40 * TICK;
        if r < 50 {
            let op = self.submit_write(id, Some(c));
            if self.history[op].complete.is_none() {
                self.clients[c].pending = Some(op);
            }
        } else if r < 85 {
            let z = self.nodes[i].sm.zxid;
            self.stats.reads += 1;
            let op = self.history.len();
            self.history.push(OpRecord {
                client: c,
                node: i,
                kind: OpKind::Read,
                invoke: self.time,
                complete: None,
                outcome: Outcome::Pending,
            });
            self.complete(op, Some(c), Outcome::Ok(z));
        } else {
            let op = self.submit_sync(id, Some(c));
            if self.history[op].complete.is_none() {
                self.clients[c].pending = Some(op);
            }
        }
    }
}

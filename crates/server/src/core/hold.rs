//! Keeping clients through a planned leadership transfer, and through a counter rollover
//! (the leader moves the ensemble to the next epoch in one quorum round trip: requests wait
//! that long).
//!
//! An election drops every client connection (`drop_clients`): what waited on the old leader
//! may be lost, and the clients find out by reconnecting. A planned handover loses nothing,
//! so the server keeps its clients instead. While the old leader holds proposals, and while
//! any server changes role to follow (or become) the new leader, requests and handshakes
//! that arrive wait here, in arrival order. Once the server serves again it first sends the
//! leader what the handover left unanswered (forwarded writes the old leader never received,
//! syncs that failed with the old role), then takes the waiting requests as if they had just
//! arrived. Clients see a pause of tens of milliseconds, no error and no session event.
//!
//! If an election comes instead, or the hold lasts longer than a planned handover should, the
//! server falls back to dropping its clients, as for any failover.

use super::Core;
use crate::conn_shared::ConnId;
use paddock_proto::{ConnectRequest, ErrorCode, Request};
use paddock_zab::Event;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// A hold longer than this is no planned handover going well: clients are dropped.
const HOLD_LIMIT: Duration = Duration::from_secs(2);

/// Requests held beyond this many are not kept: clients are dropped (they reconnect).
const HOLD_MAX_MESSAGES: usize = 100_000;

/// What arrived while held, to be taken in order afterwards.
#[derive(Debug)]
pub(crate) enum Held {
    Connect {
        conn: ConnId,
        req: ConnectRequest,
    },
    Request {
        conn: ConnId,
        xid: i32,
        op: i32,
        req: Result<Request, ErrorCode>,
        arrived: Instant,
    },
}

/// A hold under way.
#[derive(Debug)]
pub(crate) struct Hold {
    since: Instant,
    held: VecDeque<Held>,
    /// The handover's word on this server's forwarded writes: the old leader took those up
    /// to this request id; the later ones are sent again. None until the handover came
    /// (a leader's own hold while it waits for its target).
    taken_through: Option<Option<u64>>,
    /// Keys of syncs and writes that failed with the old role: asked again.
    retry: Vec<i64>,
}

impl Hold {
    fn new() -> Hold {
        Hold {
            since: Instant::now(),
            held: VecDeque::new(),
            taken_through: None,
            retry: Vec::new(),
        }
    }
}

impl Core {
    /// Whether requests wait now: a hold is on, or this leader holds proposals for a
    /// transfer or a counter rollover (a hold starts with the first request then).
    pub(crate) fn holding(&self) -> bool {
        self.hold.is_some() || self.replica.node.holding_proposals()
    }

    /// Keeps a request or handshake for later; past the limit, drops the clients instead.
    pub(crate) fn hold_back(&mut self, msg: Held) {
        let h = self.hold.get_or_insert_with(Hold::new);
        if h.held.len() >= HOLD_MAX_MESSAGES {
            warn!(
                held = h.held.len(),
                "too many requests wait for the leadership handover; dropping clients"
            );
            self.give_up_hold();
            return;
        }
        h.held.push_back(msg);
    }

    /// The replication core hands leadership over (`Action::Handover`): keep the clients.
    pub(crate) fn handover_began(&mut self, taken_through: Option<u64>) {
        let h = self.hold.get_or_insert_with(Hold::new);
        h.taken_through = Some(taken_through);
        // What was prepared here against the old role's pending changes is either in the new
        // leader's history (applied through the sync) or never proposed.
        self.prep.reset();
        info!("leadership handover: clients stay connected; requests wait until this server serves again");
    }

    /// A write or sync under `key` failed while held: true if it is asked again once this
    /// server serves (the caller then keeps its origin).
    pub(crate) fn retry_when_serving(&mut self, key: i64) -> bool {
        match &mut self.hold {
            Some(h) => {
                h.retry.push(key);
                true
            }
            None => false,
        }
    }

    /// Ends the hold when this server serves again, or gives it up when the handover did
    /// not happen as planned. Called after each replication step and on the session clock.
    pub(crate) fn check_hold(&mut self) {
        let Some(h) = &self.hold else {
            return;
        };
        let node = &self.replica.node;
        if self.serving() && !node.holding_proposals() {
            self.release_hold();
        } else if !(node.holding_proposals() || node.in_handover()) {
            info!("the leadership handover became an election: dropping clients");
            self.give_up_hold();
        } else if h.since.elapsed() > HOLD_LIMIT {
            warn!(
                waited_ms = h.since.elapsed().as_millis() as u64,
                "the leadership handover takes too long: dropping clients"
            );
            self.give_up_hold();
        }
    }

    fn give_up_hold(&mut self) {
        self.hold = None;
        self.drop_clients();
    }

    fn release_hold(&mut self) {
        let Some(h) = self.hold.take() else {
            return;
        };
        let waited = h.since.elapsed();
        // Forwarded writes the old leader never received, and what failed with the old role,
        // oldest first (keys fall as they are handed out).
        let mut again: Vec<i64> = match h.taken_through {
            Some(through) => self.replica.forwarded_after(through),
            None => Vec::new(),
        };
        again.extend(h.retry);
        again.sort_unstable_by(|a, b| b.cmp(a));
        again.dedup();
        info!(
            waited_ms = waited.as_millis() as u64,
            sent_again = again.len(),
            held = h.held.len(),
            "serving again after the leadership handover"
        );
        for key in again {
            self.ask_again(key);
        }
        let mut rest = h.held;
        while let Some(msg) = rest.pop_front() {
            if self.holding() {
                // Holding again (a new transfer began): the rest wait behind what was held
                // meanwhile, which arrived before them.
                rest.push_front(msg);
                self.hold.get_or_insert_with(Hold::new).held.extend(rest);
                return;
            }
            match msg {
                Held::Connect { conn, req } => self.connect(conn, req),
                Held::Request {
                    conn,
                    xid,
                    op,
                    req,
                    arrived,
                } => self.request_at(conn, xid, op, req, arrived),
            }
        }
    }

    /// Sends a write or sync waiting under `key` to the (new) leader again, under the same
    /// key: whoever waits for it keeps waiting.
    fn ask_again(&mut self, key: i64) {
        if let Some(payload) = self.replica.forwarded_payload(key) {
            if self.prepares() {
                let me = self.replica.node.id();
                self.prepare_forwarded(me, key as u64, &payload);
            } else {
                self.zab_step(Event::ClientWrite {
                    request_id: key as u64,
                    payload,
                });
            }
        } else if self.order.is_sync(key) || self.barrier.is_barrier(key) {
            self.zab_step(Event::ClientSync {
                request_id: key as u64,
            });
        }
    }
}

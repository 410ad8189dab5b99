//! Reply order: each session's replies leave in the order its requests arrived. A write's
//! reply waits for its transaction to apply; a read runs only once everything before it in
//! its session has been answered, and only while its connection is taking its replies. Other
//! sessions never wait for each other.
//!
//! Also who waits for what: the origin of each write, keyed by its zxid where it was prepared
//! here, or by a key of the replication driver where it waits without one (a forwarded write,
//! a sync).

use crate::conn_shared::ConnId;
use bytes::Bytes;
use paddock_proto::{ErrorCode, Request};
use paddock_tree::AuthInfo;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// Who waits for a transaction to be applied.
#[derive(Debug)]
pub(crate) enum Origin {
    Client {
        conn: ConnId,
        xid: i32,
        req: Request,
        arrived: Instant,
    },
    Connect {
        conn: ConnId,
        session: i64,
    },
    Expire {
        session: i64,
    },
    /// A client's sync() in an ensemble.
    Sync {
        conn: ConnId,
        session: i64,
        xid: i32,
        path: String,
        arrived: Instant,
    },
    /// A linearizable read (`linearizableReads`): run once the sync started for it is done.
    Read {
        conn: ConnId,
        session: i64,
        xid: i32,
        req: Request,
        auth: std::sync::Arc<paddock_tree::AuthInfo>,
        arrived: Instant,
    },
    Internal,
}

/// A reply ready to go out, waiting for its turn in its session's order.
#[derive(Debug)]
pub(crate) struct Done {
    pub conn: ConnId,
    pub frame: Bytes,
    pub arrived: Instant,
    /// Answers a counted request (not the handshake).
    pub is_reply: bool,
    /// The request's opcode (0 for what answers none), for the latency figures.
    pub op: i32,
    pub close_after: bool,
}

/// A read waiting for its turn.
#[derive(Debug)]
pub(crate) struct PendingRead {
    pub conn: ConnId,
    pub xid: i32,
    pub req: Result<Request, ErrorCode>,
    pub auth: Arc<AuthInfo>,
    pub arrived: Instant,
}

/// An entry of a session's ordering queue.
#[derive(Debug)]
enum Queued {
    Write { key: i64, done: Option<Done> },
    Read(PendingRead),
}

/// What is next for a session.
#[derive(Debug)]
pub(crate) enum Next {
    /// A write's reply, now at the front: send it.
    Deliver(Done),
    /// A read, now at the front, whose connection takes replies: run it and send its reply.
    Run(PendingRead),
    /// A read at the front whose connection is congested: it stays queued.
    Blocked(ConnId),
    /// Nothing can go now (empty, or a write not yet applied at the front).
    Wait,
}

/// The order of every session's replies, and the origins of pending writes.
#[derive(Default)]
pub(crate) struct ReplyOrder {
    queues: HashMap<i64, VecDeque<Queued>>,
    origins: HashMap<i64, Origin>,
}

impl ReplyOrder {
    /// Remembers who waits for `key`; a session's own request also takes its place in the
    /// session's order.
    pub fn await_reply(&mut self, key: i64, origin: Origin, ordered_in: Option<i64>) {
        if let Some(sid) = ordered_in {
            self.queues
                .entry(sid)
                .or_default()
                .push_back(Queued::Write { key, done: None });
        }
        self.origins.insert(key, origin);
    }

    /// Whether a client's sync(), or a linearizable read, waits under `key`.
    pub fn is_sync(&self, key: i64) -> bool {
        matches!(
            self.origins.get(&key),
            Some(Origin::Sync { .. } | Origin::Read { .. })
        )
    }

    /// Who waits for `key`, no longer waiting.
    pub fn take_origin(&mut self, key: i64) -> Option<Origin> {
        self.origins.remove(&key)
    }

    /// Whether nothing of this session waits: a read may run at once.
    pub fn is_idle(&self, sid: i64) -> bool {
        self.queues.get(&sid).is_none_or(|q| q.is_empty())
    }

    /// Queues a read behind what the session has pending.
    pub fn push_read(&mut self, sid: i64, read: PendingRead) {
        self.queues
            .entry(sid)
            .or_default()
            .push_back(Queued::Read(read));
    }

    /// Records the reply of the write waiting under `key`. Gives the reply back if the
    /// session holds no such write (it was not ordered, or the session ended): send it now.
    pub fn complete(&mut self, sid: i64, key: i64, done: Done) -> Option<Done> {
        let slot = self.queues.get_mut(&sid).and_then(|q| {
            q.iter_mut().find_map(|e| match e {
                Queued::Write { key: k, done } if *k == key => Some(done),
                _ => None,
            })
        });
        match slot {
            Some(slot) => {
                *slot = Some(done);
                None
            }
            None => Some(done),
        }
    }

    /// Takes what may go next for a session. A read at the front runs only if its
    /// connection is not `congested`.
    pub fn next(&mut self, sid: i64, congested: impl Fn(ConnId) -> bool) -> Next {
        let Some(q) = self.queues.get_mut(&sid) else {
            return Next::Wait;
        };
        let next = match q.front_mut() {
            None => Next::Wait,
            Some(Queued::Write { done, .. }) => match done.take() {
                Some(d) => {
                    q.pop_front();
                    Next::Deliver(d)
                }
                None => Next::Wait,
            },
            Some(Queued::Read(r)) if congested(r.conn) => Next::Blocked(r.conn),
            Some(Queued::Read(_)) => match q.pop_front() {
                Some(Queued::Read(r)) => Next::Run(r),
                _ => unreachable!("the front is a read"),
            },
        };
        if q.is_empty() {
            self.queues.remove(&sid);
        }
        next
    }

    /// Forgets a session's order (it ended).
    pub fn end_session(&mut self, sid: i64) {
        self.queues.remove(&sid);
    }

    /// Forgets everything (the server stopped serving: every client reconnects).
    pub fn clear(&mut self) {
        self.queues.clear();
        self.origins.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(conn: ConnId, tag: u8) -> Done {
        Done {
            conn,
            frame: Bytes::from(vec![tag]),
            arrived: Instant::now(),
            is_reply: true,
            op: 0,
            close_after: false,
        }
    }

    fn read(conn: ConnId, xid: i32) -> PendingRead {
        PendingRead {
            conn,
            xid,
            req: Ok(Request::Ping),
            auth: Arc::new(AuthInfo::for_ip("127.0.0.1")),
            arrived: Instant::now(),
        }
    }

    const S: i64 = 7;

    #[test]
    fn a_read_waits_behind_its_sessions_write_and_replies_leave_in_order() {
        let mut o = ReplyOrder::default();
        o.await_reply(10, Origin::Internal, Some(S));
        assert!(!o.is_idle(S));
        o.push_read(S, read(1, 2));
        assert!(
            matches!(o.next(S, |_| false), Next::Wait),
            "the write is not applied yet"
        );
        assert!(o.complete(S, 10, done(1, b'w')).is_none());
        match o.next(S, |_| false) {
            Next::Deliver(d) => assert_eq!(&d.frame[..], b"w"),
            other => panic!("{other:?}"),
        }
        match o.next(S, |_| false) {
            Next::Run(r) => assert_eq!(r.xid, 2),
            other => panic!("{other:?}"),
        }
        assert!(o.is_idle(S));
    }

    #[test]
    fn writes_applied_out_of_order_still_reply_in_order() {
        let mut o = ReplyOrder::default();
        o.await_reply(1, Origin::Internal, Some(S));
        o.await_reply(2, Origin::Internal, Some(S));
        assert!(o.complete(S, 2, done(1, b'2')).is_none());
        assert!(matches!(o.next(S, |_| false), Next::Wait));
        assert!(o.complete(S, 1, done(1, b'1')).is_none());
        let mut got = Vec::new();
        while let Next::Deliver(d) = o.next(S, |_| false) {
            got.push(d.frame[0]);
        }
        assert_eq!(got, b"12");
    }

    #[test]
    fn other_sessions_never_wait() {
        let mut o = ReplyOrder::default();
        o.await_reply(1, Origin::Internal, Some(S));
        assert!(o.is_idle(S + 1));
        o.push_read(S + 1, read(2, 1));
        assert!(matches!(o.next(S + 1, |_| false), Next::Run(_)));
    }

    #[test]
    fn a_congested_connection_holds_its_reads() {
        let mut o = ReplyOrder::default();
        o.push_read(S, read(3, 1));
        assert!(matches!(o.next(S, |c| c == 3), Next::Blocked(3)));
        assert!(!o.is_idle(S), "the read stays queued");
        assert!(matches!(o.next(S, |_| false), Next::Run(_)));
    }

    #[test]
    fn a_reply_with_no_place_in_order_goes_at_once() {
        let mut o = ReplyOrder::default();
        o.await_reply(5, Origin::Expire { session: S }, None);
        assert!(o.complete(S, 5, done(1, b'x')).is_some());
        assert!(matches!(
            o.take_origin(5),
            Some(Origin::Expire { session: S })
        ));
        assert!(o.take_origin(5).is_none());
    }

    #[test]
    fn clear_and_end_session_forget() {
        let mut o = ReplyOrder::default();
        o.await_reply(1, Origin::Internal, Some(S));
        o.await_reply(2, Origin::Internal, Some(S + 1));
        o.end_session(S);
        assert!(o.is_idle(S));
        assert!(o.take_origin(1).is_some(), "origins outlive the order");
        o.clear();
        assert!(o.is_idle(S + 1));
        assert!(o.take_origin(2).is_none());
    }
}

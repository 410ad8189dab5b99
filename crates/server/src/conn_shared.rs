//! What a connection's tasks and the core share: the outbound queue and the counters that make
//! the reader stop when the client does not keep up.

use bytes::Bytes;
use paddock_tree::AuthInfo;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Identifies a client connection.
pub type ConnId = u64;

/// Bytes of replies queued for one connection above which the server stops reading its requests.
pub const OUTBOUND_LIMIT: usize = 4 << 20;
/// Requests of one connection in the pipeline above which the server stops reading more.
pub const MAX_IN_FLIGHT: usize = 1000;

/// A frame or an instruction for a connection's writer.
#[derive(Debug)]
pub enum OutMsg {
    Frame(Bytes),
    /// Flush what is queued, then close the connection.
    Close,
}

/// Counters shared by a connection's reader, writer and the core.
#[derive(Default, Debug)]
pub struct ConnShared {
    /// Bytes queued but not yet written.
    pub queued: AtomicUsize,
    /// Requests read but not yet answered.
    pub in_flight: AtomicUsize,
    /// Wakes the reader when the counters go down.
    pub drained: Notify,
    /// Set once the connection is closing.
    pub closed: AtomicBool,
    /// Wakes the reader when the connection is closing.
    pub close_notify: Notify,
    /// The core holds reads of this connection until its writer catches up.
    pub wants_drain: AtomicBool,
    /// The server is stopping: read no more requests; the core answers those in flight,
    /// then closes the connection.
    pub stop_reading: AtomicBool,
    /// Replies sent so far, counted when `largeRequestThreshold` is set; the n-th answers the
    /// n-th request read (one reply per request, in order).
    pub replies: AtomicU64,
    /// This connection's large requests not answered yet.
    pub large: LargeLedger,
    /// Its reads answered on its own task (`crate::read_path`), and the core's pass for them.
    pub direct: parking_lot::Mutex<Direct>,
}

/// Direct reads a connection keeps before it hands their figures to the core.
const HAND_OVER_AT: usize = 256;

/// A connection's direct reads: the core's pass, and the reads answered under it that the
/// core has not counted yet. The pass is changed only under the tree's write lock and read
/// under its read lock; the core counts without the tree, so that lock is held for a few
/// pushes and one take at most.
#[derive(Debug, Default)]
pub struct Direct {
    pub pass: Option<Pass>,
    done: Vec<DirectRead>,
}

/// The core's leave for a connection to answer reads itself: for this session, with these
/// identities.
#[derive(Debug, Clone)]
pub struct Pass {
    pub sid: i64,
    pub auth: Arc<AuthInfo>,
}

/// One direct read, as the core's figures count a request.
#[derive(Debug, Clone, Copy)]
pub struct DirectRead {
    pub op: i32,
    pub xid: i32,
    pub micros: u32,
    pub request_bytes: u32,
    pub reply_bytes: u32,
    /// The tree's zxid the read saw.
    pub zxid: i64,
}

impl Direct {
    /// Records a read; true when enough are kept to hand over.
    pub fn done(&mut self, r: DirectRead) -> bool {
        self.done.push(r);
        self.done.len() >= HAND_OVER_AT
    }

    /// The reads not counted yet.
    pub fn take(&mut self) -> Vec<DirectRead> {
        std::mem::take(&mut self.done)
    }

    /// Lets the connection answer reads of `sid` with `auth` (it already may: nothing changes).
    pub fn grant(&mut self, sid: i64, auth: &Arc<AuthInfo>) {
        match &self.pass {
            Some(p) if p.sid == sid && Arc::ptr_eq(&p.auth, auth) => {}
            _ => {
                self.pass = Some(Pass {
                    sid,
                    auth: auth.clone(),
                })
            }
        }
    }
}

/// ZooKeeper's budget for large requests in flight across all connections: a request longer
/// than `largeRequestThreshold` bytes takes its length from `largeRequestMaxBytes` until it
/// is answered, and one that does not fit closes its connection (the client reconnects and
/// retries), so that many large writes at once cannot exhaust the server's memory.
#[derive(Debug)]
pub struct LargeRequests {
    threshold: usize,
    max_bytes: usize,
    current: AtomicUsize,
}

impl LargeRequests {
    /// `None` when `threshold` is off (ZooKeeper's -1, the default).
    pub fn new(threshold: Option<usize>, max_bytes: usize) -> Option<Arc<LargeRequests>> {
        threshold.map(|threshold| {
            Arc::new(LargeRequests {
                threshold,
                max_bytes,
                current: AtomicUsize::new(0),
            })
        })
    }

    pub fn is_large(&self, len: usize) -> bool {
        len > self.threshold
    }

    /// Whether a request of `len` bytes, announced but not read yet, may still fit.
    pub fn may_fit(&self, len: usize) -> bool {
        !self.is_large(len) || self.current.load(Ordering::Acquire) + len <= self.max_bytes
    }

    /// Takes `len` bytes of the budget; false (and nothing taken) when they do not fit.
    fn take(&self, len: usize) -> bool {
        let now = self.current.fetch_add(len, Ordering::AcqRel) + len;
        if now > self.max_bytes {
            self.current.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give_back(&self, len: usize) {
        self.current.fetch_sub(len, Ordering::AcqRel);
    }

    /// Bytes of large requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }
}

/// One connection's large requests in flight: (request number, length), oldest first.
#[derive(Debug, Default)]
pub struct LargeLedger {
    pending: Mutex<VecDeque<(u64, usize)>>,
    /// Entries in `pending`, read without the lock on every reply.
    count: AtomicUsize,
}

impl LargeLedger {
    /// Admits the `seq`-th request of the connection, `len` bytes long, into `pool`.
    pub fn admit(&self, pool: &LargeRequests, seq: u64, len: usize) -> bool {
        if !pool.is_large(len) {
            return true;
        }
        if !pool.take(len) {
            return false;
        }
        self.lock().push_back((seq, len));
        self.count.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Gives back the budget of every request answered by the first `replied` replies.
    fn settle(&self, pool: &LargeRequests, replied: u64) {
        let mut q = self.lock();
        while let Some(&(seq, len)) = q.front() {
            if seq > replied {
                break;
            }
            q.pop_front();
            self.count.fetch_sub(1, Ordering::AcqRel);
            pool.give_back(len);
        }
    }

    /// Gives back everything (the connection is gone; its requests will not be answered).
    pub fn release_all(&self, pool: &LargeRequests) {
        self.settle(pool, u64::MAX);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, usize)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnShared {
    /// Whether the reader should pause.
    pub fn congested(&self) -> bool {
        self.queued.load(Ordering::Acquire) > OUTBOUND_LIMIT
            || self.in_flight.load(Ordering::Acquire) >= MAX_IN_FLIGHT
    }

    /// Stops the reader at the next request (it waits for the close).
    pub fn stop_reading(&self) {
        self.stop_reading.store(true, Ordering::Release);
        self.close_notify.notify_waiters();
        self.drained.notify_waiters();
    }

    /// Marks the connection closed and wakes the reader.
    pub fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
        self.close_notify.notify_waiters();
        self.drained.notify_waiters();
    }
}

/// The core's handle on a connection.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub tx: mpsc::UnboundedSender<OutMsg>,
    pub shared: Arc<ConnShared>,
    /// The large-request budget, when `largeRequestThreshold` is set.
    pub large: Option<Arc<LargeRequests>>,
}

impl Outbound {
    /// Queues a frame.
    pub fn send(&self, frame: Bytes) {
        self.shared.queued.fetch_add(frame.len(), Ordering::AcqRel);
        let _ = self.tx.send(OutMsg::Frame(frame));
    }

    /// Queues a reply to a request, which also frees one in-flight slot.
    pub fn reply(&self, frame: Bytes) {
        self.answer(frame, 1);
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.shared.drained.notify_waiters();
    }

    /// Queues the replies to `count` requests that never went in flight (direct reads), in
    /// one buffer.
    pub fn answer(&self, frames: Bytes, count: u64) {
        self.send(frames);
        if let Some(pool) = &self.large {
            let replied = self.shared.replies.fetch_add(count, Ordering::AcqRel) + count;
            if self.shared.large.count.load(Ordering::Acquire) > 0 {
                self.shared.large.settle(pool, replied);
            }
        }
    }

    /// Asks the writer to flush and close.
    pub fn close(&self) {
        let _ = self.tx.send(OutMsg::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(pool: &Arc<LargeRequests>) -> (Outbound, mpsc::UnboundedReceiver<OutMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let out = Outbound {
            tx,
            shared: Arc::new(ConnShared::default()),
            large: Some(pool.clone()),
        };
        (out, rx)
    }

    #[test]
    fn large_requests_take_the_budget_until_answered() {
        let pool = LargeRequests::new(Some(100), 500).unwrap();
        let (a, _ra) = conn(&pool);
        let (b, _rb) = conn(&pool);
        fn ledger(o: &Outbound) -> &LargeLedger {
            &o.shared.large
        }
        // Requests 1..=3 of `a`: small, large, large.
        assert!(ledger(&a).admit(&pool, 1, 50));
        assert!(ledger(&a).admit(&pool, 2, 200));
        assert!(ledger(&a).admit(&pool, 3, 200));
        assert_eq!(pool.in_flight(), 400);
        assert!(!pool.may_fit(150), "announced, would pass the budget");
        assert!(pool.may_fit(100), "not large: never counted");
        assert!(!ledger(&b).admit(&pool, 1, 150));
        assert_eq!(pool.in_flight(), 400, "a refused request takes nothing");
        // The first reply answers the small request: nothing back yet.
        a.reply(Bytes::from_static(b"r1"));
        assert_eq!(pool.in_flight(), 400);
        a.reply(Bytes::from_static(b"r2"));
        assert_eq!(pool.in_flight(), 200);
        assert!(ledger(&b).admit(&pool, 1, 150));
        // A connection that goes away gives back what it still held.
        ledger(&a).release_all(&pool);
        ledger(&b).release_all(&pool);
        assert_eq!(pool.in_flight(), 0);
        a.reply(Bytes::from_static(b"r3"));
        assert_eq!(pool.in_flight(), 0, "nothing given back twice");
    }

    #[test]
    fn a_pass_is_kept_while_nothing_changes_and_direct_reads_are_handed_over_in_batches() {
        let mut d = Direct::default();
        let auth = Arc::new(AuthInfo::for_ip("10.0.0.1"));
        d.grant(7, &auth);
        let first = d.pass.clone().unwrap();
        d.grant(7, &auth);
        assert!(Arc::ptr_eq(&d.pass.as_ref().unwrap().auth, &first.auth));
        let gained = Arc::new(AuthInfo::for_ip("10.0.0.1"));
        d.grant(7, &gained);
        assert!(Arc::ptr_eq(&d.pass.as_ref().unwrap().auth, &gained));
        let read = DirectRead {
            op: 4,
            xid: 1,
            micros: 3,
            request_bytes: 20,
            reply_bytes: 90,
            zxid: 5,
        };
        for i in 1..HAND_OVER_AT {
            assert!(!d.done(read), "read {i} of {HAND_OVER_AT}");
        }
        assert!(d.done(read), "the {HAND_OVER_AT}th asks to be counted");
        assert_eq!(d.take().len(), HAND_OVER_AT);
        assert!(d.take().is_empty());
    }

    #[test]
    fn direct_answers_free_no_in_flight_slot_but_settle_large_requests() {
        let pool = LargeRequests::new(Some(10), 100).unwrap();
        let (a, _ra) = conn(&pool);
        assert!(a.shared.large.admit(&pool, 1, 50));
        assert!(a.shared.large.admit(&pool, 2, 5));
        a.answer(Bytes::from_static(b"two replies"), 2);
        assert_eq!(pool.in_flight(), 0);
        assert_eq!(a.shared.in_flight.load(Ordering::Acquire), 0);
        assert_eq!(a.shared.queued.load(Ordering::Acquire), 11);
    }

    #[test]
    fn the_threshold_off_is_no_budget() {
        assert!(LargeRequests::new(None, 10).is_none());
    }
}

//! What a connection's tasks and the core share: the outbound queue and the counters that make
//! the reader stop when the client does not keep up.

use bytes::Bytes;
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
        self.send(frame);
        if let Some(pool) = &self.large {
            let replied = self.shared.replies.fetch_add(1, Ordering::AcqRel) + 1;
            if self.shared.large.count.load(Ordering::Acquire) > 0 {
                self.shared.large.settle(pool, replied);
            }
        }
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.shared.drained.notify_waiters();
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
    fn the_threshold_off_is_no_budget() {
        assert!(LargeRequests::new(None, 10).is_none());
    }
}

//! What a connection's tasks and the core share: the outbound queue and the counters that make
//! the reader stop when the client does not keep up.

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
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
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.shared.drained.notify_waiters();
    }

    /// Asks the writer to flush and close.
    pub fn close(&self) {
        let _ = self.tx.send(OutMsg::Close);
    }
}

//! Transaction ids, epochs and server ids.

use std::fmt;

/// A server's id (the N of `server.N`).
pub type ServerId = u64;

/// A leader epoch. The top 32 bits of a zxid.
pub type Epoch = u32;

/// Sequence number of a disk order (append, truncate, epoch write, snapshot install).
///
/// The driver reports durability as a watermark over these numbers, not over zxids: after a
/// TRUNC or a SNAP the zxids in the log are no longer monotonic in time, so "durable up to zxid"
/// would be ambiguous; "every disk order up to number N is durable" is not.
pub type DiskSeq = u64;

/// A transaction id: `epoch << 32 | counter`. Zxid 0 means "nothing yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub u64);

impl Zxid {
    /// Zxid 0: an empty history.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from an epoch and a counter.
    pub fn new(epoch: Epoch, counter: u32) -> Zxid {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }

    /// The epoch part.
    pub fn epoch(self) -> Epoch {
        (self.0 >> 32) as Epoch
    }

    /// The counter part.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }

    /// Whether `next` may directly follow `self` in one log: the next counter in the same epoch,
    /// or the first transaction (counter 1) of a later epoch. A log that breaks this has a hole.
    pub fn may_precede(self, next: Zxid) -> bool {
        if next.epoch() == self.epoch() {
            next.counter() == self.counter().wrapping_add(1) && next.counter() != 0
        } else {
            next.epoch() > self.epoch() && next.counter() == 1
        }
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// One transaction of the replicated log. The payload is opaque to zab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its position in the one committed order.
    pub zxid: Zxid,
    /// What the state machine applies (the server puts its encoded `Txn` here).
    pub payload: bytes::Bytes,
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}B)", self.zxid, self.payload.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_order() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.epoch(), 3);
        assert_eq!(z.counter(), 7);
        assert_eq!(z.to_string(), "0x300000007");
        assert!(Zxid::new(2, 100) < Zxid::new(3, 1));
        assert!(Zxid::new(3, 7).may_precede(Zxid::new(3, 8)));
        assert!(Zxid::new(3, 7).may_precede(Zxid::new(5, 1)));
        assert!(!Zxid::new(3, 7).may_precede(Zxid::new(3, 9)));
        assert!(!Zxid::new(3, 7).may_precede(Zxid::new(4, 2)));
        assert!(Zxid::ZERO.may_precede(Zxid::new(1, 1)));
    }
}

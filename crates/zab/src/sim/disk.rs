//! `SimDisk`: durable records plus pending records. An fsync completes after a delay and makes
//! every record pending when it started durable; a crash keeps a random prefix of the pending
//! records (what the OS happened to write) and drops the rest. Whole records only: torn writes
//! and checksum failures belong to the server's log tests.

use crate::node::Recovered;
use crate::sim::rng::Rng;
use crate::zxid::{DiskSeq, Epoch, Txn, Zxid};

/// The simulated state machine: the applied prefix of the one committed order, as its length
/// and last zxid (the simulator's global order holds the contents, so this is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmState {
    /// Number of transactions applied.
    pub len: u64,
    /// Last zxid applied.
    pub zxid: Zxid,
}

impl SmState {
    /// Snapshot image bytes.
    pub fn encode(&self) -> bytes::Bytes {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.zxid.0.to_be_bytes());
        v.into()
    }

    /// Parses snapshot image bytes.
    pub fn decode(b: &[u8]) -> Option<SmState> {
        if b.len() != 16 {
            return None;
        }
        let len = u64::from_be_bytes(b[..8].try_into().ok()?);
        let zxid = Zxid(u64::from_be_bytes(b[8..].try_into().ok()?));
        Some(SmState { len, zxid })
    }
}

/// What survives a crash.
#[derive(Debug, Clone, Default)]
pub struct DiskImage {
    /// acceptedEpoch file.
    pub accepted: Epoch,
    /// currentEpoch file.
    pub current: Epoch,
    /// Latest snapshot.
    pub snap: SmState,
    /// Log records, in write order.
    pub log: Vec<Txn>,
}

/// One disk record.
#[derive(Debug, Clone)]
pub enum Op {
    /// A log append.
    Append(Txn),
    /// Drop log records after this zxid.
    Truncate(Zxid),
    /// Epoch files.
    Epochs(Epoch, Epoch),
    /// A snapshot replacing the log.
    Snapshot(SmState),
}

/// A simulated disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    /// Durable records.
    pub durable: DiskImage,
    pending: Vec<(DiskSeq, Op)>,
    /// An fsync is under way.
    pub fsync_in_flight: bool,
}

fn apply(img: &mut DiskImage, op: Op) {
    match op {
        Op::Append(t) => img.log.push(t),
        Op::Truncate(z) => img.log.retain(|t| t.zxid <= z),
        Op::Epochs(a, c) => {
            img.accepted = a;
            img.current = c;
        }
        Op::Snapshot(s) => {
            img.snap = s;
            img.log.clear();
        }
    }
}

impl SimDisk {
    /// Queues a record.
    pub fn push(&mut self, seq: DiskSeq, op: Op) {
        self.pending.push((seq, op));
    }

    /// The highest pending record's order, if any.
    pub fn last_pending(&self) -> Option<DiskSeq> {
        self.pending.last().map(|(s, _)| *s)
    }

    /// Whether nothing is pending.
    pub fn is_clean(&self) -> bool {
        self.pending.is_empty()
    }

    /// An fsync finished: records up to `through` are durable.
    pub fn sync_through(&mut self, through: DiskSeq) {
        let n = self.pending.partition_point(|(s, _)| *s <= through);
        for (_, op) in self.pending.drain(..n) {
            apply(&mut self.durable, op);
        }
    }

    /// A crash: a random prefix of the pending records reached the platter.
    pub fn crash(&mut self, rng: &mut Rng) {
        let keep = rng.below(self.pending.len() as u64 + 1) as usize;
        let pending = std::mem::take(&mut self.pending);
        for (_, op) in pending.into_iter().take(keep) {
            apply(&mut self.durable, op);
        }
        self.fsync_in_flight = false;
    }

    /// Records a snapshot of applied (committed) state taken by the driver, durable at once,
    /// and purges the log it covers. True if taken.
    pub fn take_snapshot(&mut self, sm: SmState) -> bool {
        if sm.zxid > self.durable.snap.zxid && self.pending.is_empty() {
            self.durable.snap = sm;
            self.durable.log.retain(|t| t.zxid > sm.zxid);
            return true;
        }
        false
    }

    /// The logged transactions in `(after, through]`, as written (durable or still pending:
    /// reads see the page cache).
    pub fn read_range(&self, after: Zxid, through: Zxid) -> Vec<Txn> {
        let mut img = self.durable.clone();
        for (_, op) in &self.pending {
            apply(&mut img, op.clone());
        }
        img.log
            .into_iter()
            .filter(|t| t.zxid > after && t.zxid <= through)
            .collect()
    }

    /// What a restart reads back.
    pub fn recover(&self) -> (Recovered, SmState) {
        let d = &self.durable;
        let rec = Recovered {
            accepted_epoch: d.accepted,
            current_epoch: d.current,
            snapshot_zxid: d.snap.zxid,
            log: d
                .log
                .iter()
                .filter(|t| t.zxid > d.snap.zxid)
                .cloned()
                .collect(),
        };
        (rec, d.snap)
    }

    /// Whether `z` is durably held (in the snapshot or the log).
    pub fn holds(&self, z: Zxid) -> bool {
        self.durable.snap.zxid >= z || self.durable.log.iter().rev().any(|t| t.zxid == z)
    }
}

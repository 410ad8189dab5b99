//! The in-memory view of a node's log: every uncommitted entry plus a window of the most recent
//! committed ones, above a base (a snapshot point or a trimmed prefix).

use crate::zxid::{DiskSeq, Epoch, Txn, Zxid};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
struct Entry {
    txn: Txn,
    /// Disk order that wrote it; durable once the persisted watermark reaches it.
    seq: DiskSeq,
}

/// Log entries strictly above `base`, ascending and without holes.
#[derive(Debug, Clone, Default)]
pub struct Log {
    base: Zxid,
    entries: VecDeque<Entry>,
}

impl Log {
    /// A log whose history up to `base` is in a snapshot.
    pub fn new(base: Zxid) -> Log {
        Log {
            base,
            entries: VecDeque::new(),
        }
    }

    /// Below this nothing is in memory.
    pub fn base(&self) -> Zxid {
        self.base
    }

    /// Last logged zxid (the base if the window is empty).
    pub fn last(&self) -> Zxid {
        self.entries.back().map(|e| e.txn.zxid).unwrap_or(self.base)
    }

    fn index_of(&self, z: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.txn.zxid.cmp(&z))
    }

    /// The entry with this zxid, if in memory.
    pub fn get(&self, z: Zxid) -> Option<&Txn> {
        self.index_of(z).ok().map(|i| &self.entries[i].txn)
    }

    /// Whether this zxid is the base or an entry in memory.
    pub fn has(&self, z: Zxid) -> bool {
        z == self.base || self.index_of(z).is_ok()
    }

    /// The zxid that follows `z` in this log (z must be the base or an entry).
    pub fn next_after(&self, z: Zxid) -> Option<Zxid> {
        let i = if z == self.base {
            0
        } else {
            self.index_of(z).ok()? + 1
        };
        self.entries.get(i).map(|e| e.txn.zxid)
    }

    /// Entries strictly after `z` (z must be the base or an entry; otherwise from the first
    /// entry above z).
    pub fn after(&self, z: Zxid) -> impl Iterator<Item = &Txn> {
        let i = match self.index_of(z) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.entries.range(i..).map(|e| &e.txn)
    }

    /// Highest zxid of epoch `e` in memory.
    pub fn last_in_epoch(&self, e: Epoch) -> Option<Zxid> {
        let upper = Zxid::new(e, u32::MAX);
        let i = match self.index_of(upper) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        if i == 0 {
            return (self.base.epoch() == e && self.base != Zxid::ZERO).then_some(self.base);
        }
        let z = self.entries[i - 1].txn.zxid;
        (z.epoch() == e).then_some(z)
    }

    /// Appends an entry; false (and nothing changes) if it does not directly follow the last.
    pub fn append(&mut self, txn: Txn, seq: DiskSeq) -> bool {
        if !self.last().may_precede(txn.zxid) {
            return false;
        }
        self.entries.push_back(Entry { txn, seq });
        true
    }

    /// Drops every entry after `z`. `z` must not be below the base.
    pub fn truncate_after(&mut self, z: Zxid) {
        while self.entries.back().is_some_and(|e| e.txn.zxid > z) {
            self.entries.pop_back();
        }
    }

    /// Forgets everything: the history up to `base` is now in a snapshot.
    pub fn reset(&mut self, base: Zxid) {
        self.entries.clear();
        self.base = base;
    }

    /// Keeps at most `keep` entries at or below `committed` in memory.
    pub fn trim(&mut self, committed: Zxid, keep: usize) {
        let n = match self.index_of(committed) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        if n > keep {
            let drop = n - keep;
            self.base = self.entries[drop - 1].txn.zxid;
            self.entries.drain(..drop);
        }
    }

    /// Highest entry written by a disk order up to `persisted` (disk orders are issued in log
    /// order, so this is a prefix). The base if none.
    pub fn durable_last(&self, persisted: DiskSeq) -> Zxid {
        let n = self.entries.partition_point(|e| e.seq <= persisted);
        if n == 0 {
            self.base
        } else {
            self.entries[n - 1].txn.zxid
        }
    }

    /// The logged zxids above `z` as runs of consecutive counters, `(first, last)`.
    pub fn runs_above(&self, z: Zxid) -> Vec<(Zxid, Zxid)> {
        let mut runs: Vec<(Zxid, Zxid)> = Vec::new();
        for t in self.after(z) {
            match runs.last_mut() {
                Some((_, last)) if last.epoch() == t.zxid.epoch() => *last = t.zxid,
                _ => runs.push((t.zxid, t.zxid)),
            }
        }
        runs
    }

    /// Number of entries in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries are in memory.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(e: u32, c: u32) -> Txn {
        Txn {
            zxid: Zxid::new(e, c),
            payload: bytes::Bytes::new(),
        }
    }

    #[test]
    fn append_runs_trim() {
        let mut l = Log::new(Zxid::ZERO);
        assert!(l.append(t(1, 1), 1));
        assert!(l.append(t(1, 2), 2));
        assert!(!l.append(t(1, 4), 3), "hole refused");
        assert!(l.append(t(3, 1), 3));
        assert_eq!(
            l.runs_above(Zxid::ZERO),
            vec![
                (Zxid::new(1, 1), Zxid::new(1, 2)),
                (Zxid::new(3, 1), Zxid::new(3, 1))
            ]
        );
        assert_eq!(l.last_in_epoch(1), Some(Zxid::new(1, 2)));
        assert_eq!(l.last_in_epoch(2), None);
        assert_eq!(l.durable_last(2), Zxid::new(1, 2));
        assert_eq!(l.next_after(Zxid::new(1, 2)), Some(Zxid::new(3, 1)));
        l.trim(Zxid::new(1, 2), 1);
        assert_eq!(l.base(), Zxid::new(1, 1));
        assert_eq!(l.len(), 2);
        l.truncate_after(Zxid::new(1, 2));
        assert_eq!(l.last(), Zxid::new(1, 2));
    }
}

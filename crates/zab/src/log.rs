//! The node's view of its log: every uncommitted entry plus a window of the most recent
//! committed ones in memory, above a base; below the base, the zxids (not the contents) of the
//! older entries still in the on-disk log, down to `disk_base` (a snapshot point or a purge).
//! DIFF is served from both: the driver reads the on-disk part (`Action::SendLogRange`).

use crate::zxid::{DiskSeq, Epoch, Txn, Zxid};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
struct Entry {
    txn: Txn,
    /// Disk order that wrote it; durable once the persisted watermark reaches it.
    seq: DiskSeq,
}

/// Log entries strictly above `base`, ascending and without holes; below it, runs of zxids on
/// disk in `(disk_base, base]`. Entries at or below `disk_base` are no longer on disk.
#[derive(Debug, Clone, Default)]
pub struct Log {
    disk_base: Zxid,
    /// Runs `(first, last)` of consecutive counters of one epoch, covering `(disk_base, base]`
    /// (empty when `disk_base >= base`: purged past the window's base).
    disk_runs: Vec<(Zxid, Zxid)>,
    base: Zxid,
    entries: VecDeque<Entry>,
}

impl Log {
    /// A log whose history up to `base` is in a snapshot.
    pub fn new(base: Zxid) -> Log {
        Log {
            disk_base: base,
            disk_runs: Vec::new(),
            base,
            entries: VecDeque::new(),
        }
    }

    /// Below this, the history is only in a snapshot.
    pub fn history_base(&self) -> Zxid {
        self.disk_base.min(self.base)
    }

    fn run_of(&self, z: Zxid) -> Option<usize> {
        let i = self.disk_runs.partition_point(|r| r.1 < z);
        self.disk_runs.get(i).filter(|r| r.0 <= z).map(|_| i)
    }

    /// Whether `z` is in the history (memory or disk), or is its base.
    pub fn hist_has(&self, z: Zxid) -> bool {
        z == self.disk_base || self.has(z) || self.run_of(z).is_some()
    }

    /// The zxid after `z` in the history (memory or disk).
    pub fn hist_next_after(&self, z: Zxid) -> Option<Zxid> {
        if z >= self.base {
            return self.next_after(z);
        }
        if z == self.disk_base {
            return self
                .disk_runs
                .first()
                .map(|r| r.0)
                .or_else(|| self.next_after(self.base));
        }
        let i = self.run_of(z)?;
        let r = self.disk_runs[i];
        if z < r.1 {
            Some(Zxid::new(z.epoch(), z.counter() + 1))
        } else {
            self.disk_runs.get(i + 1).map(|r| r.0)
        }
    }

    /// Highest zxid of epoch `e` in the history (memory or disk).
    pub fn hist_last_in_epoch(&self, e: Epoch) -> Option<Zxid> {
        if let Some(z) = self.last_in_epoch(e) {
            return Some(z);
        }
        let i = self
            .disk_runs
            .partition_point(|r| r.1 <= Zxid::new(e, u32::MAX));
        let z = self.disk_runs.get(i.checked_sub(1)?)?.1;
        (z.epoch() == e).then_some(z)
    }

    /// The driver dropped on-disk entries up to `through` (covered by a snapshot).
    pub fn purge(&mut self, through: Zxid) {
        if through >= self.base {
            // entries up to `through` still in memory are no longer on disk either
            self.disk_runs.clear();
            self.disk_base = self.disk_base.max(through);
            return;
        }
        if through <= self.disk_base {
            return;
        }
        self.disk_runs.retain(|r| r.1 > through);
        if let Some(r) = self.disk_runs.first_mut() {
            if r.0 <= through {
                r.0 = Zxid::new(through.epoch(), through.counter() + 1);
            }
        }
        self.disk_base = through;
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
        self.disk_runs.clear();
        self.base = base;
        self.disk_base = base;
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
            for e in self.entries.drain(..drop) {
                // still on disk (unless purged): remember its zxid for DIFF
                let z = e.txn.zxid;
                if z <= self.disk_base {
                    continue;
                }
                match self.disk_runs.last_mut() {
                    Some(r) if r.1.epoch() == z.epoch() => r.1 = z,
                    _ => self.disk_runs.push((z, z)),
                }
            }
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
        assert_eq!(l.history_base(), Zxid::ZERO);
        assert!(l.hist_has(Zxid::new(1, 1)) && !l.hist_has(Zxid::new(1, 5)));
        assert_eq!(l.hist_next_after(Zxid::ZERO), Some(Zxid::new(1, 1)));
        assert_eq!(l.hist_next_after(Zxid::new(1, 1)), Some(Zxid::new(1, 2)));
        assert_eq!(l.hist_last_in_epoch(1), Some(Zxid::new(1, 2)));
        l.truncate_after(Zxid::new(1, 2));
        assert_eq!(l.last(), Zxid::new(1, 2));
        l.purge(Zxid::new(1, 1));
        assert_eq!(l.history_base(), Zxid::new(1, 1));
        assert_eq!(l.hist_next_after(Zxid::new(1, 1)), Some(Zxid::new(1, 2)));
    }
}

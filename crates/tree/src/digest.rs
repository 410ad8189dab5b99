//! ZooKeeper's tree digest (3.6+, digest version 2), computed exactly as ZooKeeper computes it,
//! so that two servers of either kind holding the same tree show the same number.
//!
//! A node's digest is the CRC-32 of its path (the root's is empty), its data, and 60 bytes of
//! its stored Stat (czxid, mzxid, pzxid, ctime, mtime as big-endian i64; version, cversion as
//! counted creates, aversion as i32; the raw ephemeral owner, container and TTL markers
//! included, as i64). The tree's digest is the wrapping sum of every node's, leaving out the
//! nodes under `/zookeeper/` (their quota figures are kept locally). ACLs are not part of it.
//! The digest is kept up to date on every change, and the tree remembers it at every zxid that
//! is a multiple of 128, the last 1,024 of them, which the `hash` four-letter word lists.

use crate::store::{NodeId, ROOT};
use crate::tree::DataTree;
use crc32fast::Hasher;
use std::collections::VecDeque;

/// ZooKeeper's digest version: what the calculation is, written beside each digest.
pub const DIGEST_VERSION: i32 = 2;

/// Every this many zxids a digest is remembered (ZooKeeper's `DIGEST_LOG_INTERVAL`).
pub const DIGEST_LOG_INTERVAL: i64 = 128;

/// How many are remembered (`DIGEST_LOG_LIMIT`).
pub const DIGEST_LOG_LIMIT: usize = 1024;

/// A digest remembered at a zxid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub digest: i64,
}

/// The digest and its recent history.
#[derive(Debug, Clone, Default)]
pub struct Digests {
    /// The tree's digest now (a wrapping sum, read as Java's signed long).
    pub current: u64,
    pub log: VecDeque<ZxidDigest>,
    /// Each node's digest, by id (as ZooKeeper caches it in the node): what a change takes
    /// out of the sum is read here rather than computed again.
    cache: Vec<u32>,
}

impl Digests {
    /// A transaction at `zxid` was applied: remembered if it falls on the interval.
    pub fn applied(&mut self, zxid: i64) {
        if zxid % DIGEST_LOG_INTERVAL == 0 {
            self.log.push_back(ZxidDigest {
                zxid,
                digest: self.current as i64,
            });
            if self.log.len() > DIGEST_LOG_LIMIT {
                self.log.pop_front();
            }
        }
    }
}

/// The deepest path walked without allocating.
const STACK_DEPTH: usize = 32;

/// A node about to change: its digest is out of the sum, and the CRC states its next digest
/// starts from (the path, and the path and data when the data stays).
#[must_use = "the node's digest is out of the sum until digest_end puts it back"]
pub(crate) struct Pending {
    id: NodeId,
    path: Option<Hasher>,
    with_data: Option<Hasher>,
}

impl Pending {
    fn excluded(id: NodeId) -> Pending {
        Pending {
            id,
            path: None,
            with_data: None,
        }
    }
}

impl DataTree {
    /// The tree's digest now.
    pub fn zk_digest(&self) -> i64 {
        self.digests.current as i64
    }

    /// The digests remembered at every 128th zxid, oldest first.
    pub fn zk_digest_log(&self) -> impl Iterator<Item = &ZxidDigest> {
        self.digests.log.iter()
    }

    /// The newest remembered digest.
    pub fn zk_digest_latest(&self) -> Option<ZxidDigest> {
        self.digests.log.back().copied()
    }

    /// The digest remembered at `zxid`, if this tree applied it and still remembers it.
    pub fn zk_digest_at(&self, zxid: i64) -> Option<i64> {
        let log = &self.digests.log;
        log.binary_search_by_key(&zxid, |d| d.zxid)
            .ok()
            .map(|i| log[i].digest)
    }

    /// The CRC state after a node's path (the root's is empty), and after its parent's path
    /// (None for the root), from one walk up; None for nodes under `/zookeeper/`.
    fn path_states(&self, id: NodeId) -> Option<(Option<Hasher>, Hasher)> {
        let store = self.store();
        // The path's components, leaf first (walking up), then fed root first.
        let mut small = [ROOT; STACK_DEPTH];
        let mut deep: Vec<NodeId> = Vec::new();
        let mut n = 0;
        let mut at = id;
        while at != ROOT {
            if n < STACK_DEPTH {
                small[n] = at;
            } else {
                if deep.is_empty() {
                    deep.extend_from_slice(&small);
                }
                deep.push(at);
            }
            n += 1;
            at = store.parent(at);
        }
        let chain: &[NodeId] = if n > STACK_DEPTH { &deep } else { &small[..n] };
        if n >= 2 && store.name(chain[n - 1]) == "zookeeper" {
            return None; // under /zookeeper/
        }
        let mut crc = Hasher::new();
        let mut parent = None;
        for (i, &c) in chain.iter().rev().enumerate() {
            if i + 1 == n {
                parent = Some(crc.clone());
            }
            crc.update(b"/");
            crc.update(store.name(c).as_bytes());
        }
        Some((parent, crc))
    }

    /// Finishes a digest from the state after the path: the data, then the Stat.
    fn with_content(&self, mut crc: Hasher, id: NodeId) -> u64 {
        if let Some(d) = self.store().data(id) {
            crc.update(d);
        }
        self.with_stat(crc, id)
    }

    /// Finishes a digest from the state after the path and data: the stored Stat.
    fn with_stat(&self, mut crc: Hasher, id: NodeId) -> u64 {
        let s = self.store().stat(id);
        let mut b = [0u8; 60];
        b[0..8].copy_from_slice(&s.czxid.to_be_bytes());
        b[8..16].copy_from_slice(&s.mzxid.to_be_bytes());
        b[16..24].copy_from_slice(&s.pzxid.to_be_bytes());
        b[24..32].copy_from_slice(&s.ctime.to_be_bytes());
        b[32..40].copy_from_slice(&s.mtime.to_be_bytes());
        b[40..44].copy_from_slice(&s.version.to_be_bytes());
        b[44..48].copy_from_slice(&s.cversion.to_be_bytes());
        b[48..52].copy_from_slice(&s.aversion.to_be_bytes());
        b[52..60].copy_from_slice(&self.owner(id).to_be_bytes());
        crc.update(&b);
        u64::from(crc.finalize())
    }

    /// One node's digest; 0 under `/zookeeper/`.
    pub(crate) fn node_digest(&self, id: NodeId) -> u64 {
        match self.path_states(id) {
            Some((_, path)) => self.with_content(path, id),
            None => 0,
        }
    }

    fn cached(&self, id: NodeId) -> u64 {
        u64::from(self.digests.cache.get(id as usize).copied().unwrap_or(0))
    }

    /// Records node `id`'s digest (0 under `/zookeeper/`) and adds it to the sum.
    fn digest_add(&mut self, id: NodeId, d: u64) {
        let c = &mut self.digests.cache;
        if c.len() <= id as usize {
            c.resize(id as usize + 1, 0);
        }
        c[id as usize] = d as u32;
        self.digests.current = self.digests.current.wrapping_add(d);
    }

    /// Takes node `id`'s digest out of the sum.
    fn digest_sub(&mut self, id: NodeId) {
        let old = self.cached(id);
        self.digests.current = self.digests.current.wrapping_sub(old);
    }

    /// Before node `id` changes: its digest goes out, and what its digest after the change
    /// will start from (the path, and the data unless `data_changes`) is kept.
    pub(crate) fn digest_begin(&mut self, id: NodeId, data_changes: bool) -> Pending {
        self.digest_sub(id);
        let Some((_, path)) = self.path_states(id) else {
            return Pending::excluded(id);
        };
        self.pending(id, path, data_changes)
    }

    fn pending(&self, id: NodeId, path: Hasher, data_changes: bool) -> Pending {
        let with_data = (!data_changes).then(|| {
            let mut h = path.clone();
            if let Some(d) = self.store().data(id) {
                h.update(d);
            }
            h
        });
        Pending {
            id,
            path: Some(path),
            with_data,
        }
    }

    /// After the change: the node's new digest goes in.
    pub(crate) fn digest_end(&mut self, p: Pending) {
        let new = match (p.with_data, p.path) {
            (Some(d), _) => self.with_stat(d, p.id),
            (None, Some(path)) => self.with_content(path, p.id),
            (None, None) => 0,
        };
        self.digest_add(p.id, new);
    }

    /// A node just created under the parent `p` stands for: its digest goes in, from the
    /// parent's path.
    pub(crate) fn digest_child(&mut self, p: &Pending, child: NodeId) {
        let under_zookeeper =
            self.store().parent(p.id) == ROOT && self.store().name(p.id) == "zookeeper";
        let d = match p.path.clone() {
            Some(mut path) if !under_zookeeper => {
                path.update(b"/");
                path.update(self.store().name(child).as_bytes());
                self.with_content(path, child)
            }
            _ => 0,
        };
        self.digest_add(child, d);
    }

    /// Before node `id` is removed: its digest goes out, and its parent's too, from the same
    /// walk (the parent changes with the removal; finish it with `digest_end`).
    pub(crate) fn digest_remove(&mut self, id: NodeId) -> Pending {
        self.digest_sub(id);
        let parent = self.store().parent(id);
        self.digest_sub(parent);
        match self.path_states(id) {
            // Outside /zookeeper/, so is its parent.
            Some((Some(pp), _)) => self.pending(parent, pp, false),
            _ => match self.path_states(parent) {
                Some((_, path)) => self.pending(parent, path, false),
                None => Pending::excluded(parent),
            },
        }
    }

    /// The digest computed from every node afresh (what the kept one must equal).
    pub fn zk_digest_from_scratch(&self) -> i64 {
        let mut sum = 0u64;
        self.store()
            .preorder(|id| sum = sum.wrapping_add(self.node_digest(id)));
        sum as i64
    }

    /// The digest from scratch, every node's remembered (a fresh or loaded tree).
    pub(crate) fn recompute_digest(&mut self) {
        let mut ids = Vec::with_capacity(self.node_count());
        self.store().preorder(|id| ids.push(id));
        self.digests.current = 0;
        self.digests.cache.clear();
        for id in ids {
            let d = self.node_digest(id);
            self.digest_add(id, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC-32 ZooKeeper's DigestCalculator computes for a path, data and Stat.
    fn zk_digest(path: &str, data: &[u8], st: [i64; 9]) -> u64 {
        let mut b = Vec::new();
        for (i, v) in st.iter().enumerate() {
            if (5..8).contains(&i) {
                b.extend_from_slice(&(*v as i32).to_be_bytes());
            } else {
                b.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut c = crc32fast::Hasher::new();
        c.update(path.as_bytes());
        c.update(data);
        c.update(&b);
        u64::from(c.finalize())
    }

    #[test]
    fn a_fresh_tree_counts_the_root_and_zookeeper_only() {
        let t = DataTree::new();
        // The root (path "") and /zookeeper, all zeros; /zookeeper/quota and /config left out.
        let want = zk_digest("", b"", [0; 9]).wrapping_add(zk_digest("/zookeeper", b"", [0; 9]));
        assert_eq!(t.zk_digest(), want as i64);
    }

    #[test]
    fn the_log_keeps_every_128th_zxid_up_to_its_limit() {
        let mut d = Digests::default();
        for z in 1..=(DIGEST_LOG_INTERVAL * (DIGEST_LOG_LIMIT as i64 + 5)) {
            d.current = z as u64;
            d.applied(z);
        }
        assert_eq!(d.log.len(), DIGEST_LOG_LIMIT);
        assert_eq!(d.log.front().unwrap().zxid, 6 * DIGEST_LOG_INTERVAL);
        assert!(d.log.iter().all(|e| e.zxid == e.digest));
    }

    fn create(zxid: i64, path: &str, data: &[u8]) -> crate::Txn {
        crate::Txn {
            session_id: 1,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            op: crate::TxnOp::Create {
                path: path.into(),
                data: Some(data.to_vec()),
                acl: Vec::new(),
                owner: 0,
                parent_cversion: zxid as i32,
            },
        }
    }

    #[test]
    fn trees_that_applied_the_same_history_remember_the_same_digests_and_others_do_not() {
        let (mut a, mut b) = (DataTree::new(), DataTree::new());
        for z in 1..=300 {
            let txn = create(z, &format!("/n{z}"), b"same");
            a.apply(&txn);
            // b diverges at zxid 200: same path and zxid, other data.
            let txn = if z == 200 {
                create(z, "/n200", b"other")
            } else {
                txn
            };
            b.apply(&txn);
        }
        let latest = a.zk_digest_latest().expect("two marks by zxid 300");
        assert_eq!(latest.zxid, 256);
        assert_eq!(a.zk_digest_at(128), b.zk_digest_at(128));
        assert!(a.zk_digest_at(128).is_some());
        assert_ne!(a.zk_digest_at(256), b.zk_digest_at(256));
        assert_eq!(
            a.zk_digest_at(129),
            None,
            "only every 128th zxid is remembered"
        );
        assert_eq!(a.zk_digest_at(256), Some(latest.digest));
    }
}

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

impl DataTree {
    /// The tree's digest now.
    pub fn zk_digest(&self) -> i64 {
        self.digests.current as i64
    }

    /// The digests remembered at every 128th zxid, oldest first.
    pub fn zk_digest_log(&self) -> impl Iterator<Item = &ZxidDigest> {
        self.digests.log.iter()
    }

    /// One node's digest; 0 under `/zookeeper/`.
    pub(crate) fn node_digest(&self, id: NodeId) -> u64 {
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
            return 0;
        }
        let mut crc = crc32fast::Hasher::new();
        for &c in chain.iter().rev() {
            crc.update(b"/");
            crc.update(store.name(c).as_bytes());
        }
        if let Some(d) = store.data(id) {
            crc.update(d);
        }
        let s = store.stat(id);
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

    /// Takes `ids`' digests out before they change.
    pub(crate) fn digest_out(&mut self, ids: &[NodeId]) {
        for &id in ids {
            let d = self.node_digest(id);
            self.digests.current = self.digests.current.wrapping_sub(d);
        }
    }

    /// Puts `ids`' digests back in after they changed (or were created).
    pub(crate) fn digest_in(&mut self, ids: &[NodeId]) {
        for &id in ids {
            let d = self.node_digest(id);
            self.digests.current = self.digests.current.wrapping_add(d);
        }
    }

    /// The digest computed from every node afresh (what the kept one must equal).
    pub fn zk_digest_from_scratch(&self) -> i64 {
        let mut sum = 0u64;
        self.store()
            .preorder(|id| sum = sum.wrapping_add(self.node_digest(id)));
        sum as i64
    }

    /// The digest from scratch (a fresh or loaded tree).
    pub(crate) fn recompute_digest(&mut self) {
        self.digests.current = self.zk_digest_from_scratch() as u64;
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
}

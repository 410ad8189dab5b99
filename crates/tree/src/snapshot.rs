//! What a snapshot holds and how the tree is walked to write one while it keeps changing.
//!
//! The walk is a pre-order by name that resumes from the last path written, whatever changed in
//! between: a parent is always written before its children, and a node created behind the
//! cursor is missed, which is fine because snapshots are fuzzy: the log replayed from the
//! snapshot's starting zxid recreates it (every transaction carries absolute results).
//!
//! For the same reason a walk leaves out every node created after it began (`czxid` past the
//! cursor's `taken_at`), with its subtree (created later still): the log recreates those too.
//! Without that, a walk of a tree that grows ahead of its cursor (a bulk load adding parents
//! in name order) follows the growth and ends only when the load stops; paced by the core's
//! work, it never catches up.

use crate::acl::AclRef;
use crate::store::{NodeId, NodeStat, ROOT};
use crate::tree::{split, DataTree};
use crate::txn::Owner;
use bytes::BufMut;
use paddock_proto::{Acl, DecodeError, ErrorCode, Field, JuteWrite, Reader};

/// One node as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapNode {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub stat: NodeStat,
    /// Raw owner (session, container or TTL marker, or 0).
    pub owner: i64,
}

impl SnapNode {
    /// Appends the encoded node.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        encode_parts(
            buf,
            &self.path,
            self.data.as_deref(),
            &self.acl,
            &self.stat,
            self.owner,
        );
    }

    /// Decodes a node that fills `bytes` exactly.
    pub fn decode(bytes: &[u8]) -> Result<SnapNode, DecodeError> {
        let r = &mut Reader::new(bytes);
        let n = SnapNode {
            path: r.read_string()?,
            data: Option::<Vec<u8>>::get(r)?,
            acl: Vec::<Acl>::get(r)?,
            stat: NodeStat {
                czxid: r.read_i64()?,
                mzxid: r.read_i64()?,
                pzxid: r.read_i64()?,
                ctime: r.read_i64()?,
                mtime: r.read_i64()?,
                version: r.read_i32()?,
                cversion: r.read_i32()?,
                aversion: r.read_i32()?,
            },
            owner: r.read_i64()?,
        };
        if r.remaining() != 0 {
            return Err(DecodeError::Invalid("trailing bytes after snapshot node"));
        }
        Ok(n)
    }
}

/// How many nodes a chunk may look at per node it writes.
const LOOK_AHEAD: usize = 16;

/// Where a snapshot walk stands, and which nodes it is a snapshot of.
#[derive(Debug, Clone)]
pub struct SnapshotCursor {
    /// The last path walked (written or left out); None before the walk begins at the root.
    after: Option<String>,
    /// `after` was left out: the walk resumes past its subtree, not in it.
    left_out: bool,
    /// The zxid the walk began at: nodes created after it are left out.
    taken_at: i64,
}

impl SnapshotCursor {
    /// A walk of the tree as of zxid `taken_at` (the tree's last zxid when it begins): nodes
    /// created after it are left out, for the log from `taken_at` on to recreate.
    pub fn taken_at(taken_at: i64) -> SnapshotCursor {
        SnapshotCursor {
            after: None,
            left_out: false,
            taken_at,
        }
    }

    /// A walk of every node, however new (of a tree that does not change under it).
    pub fn whole() -> SnapshotCursor {
        SnapshotCursor::taken_at(i64::MAX)
    }
}

impl DataTree {
    /// A walk of the tree as it is now, for a snapshot that replays the log from
    /// `last_zxid()` on: it leaves out the nodes created after this point. (Nodes newer than
    /// the last zxid, restored from a fuzzy snapshot whose log has not been replayed over it,
    /// are not left out: only that log, not the one after this point, holds their creates.)
    pub fn snapshot_cursor(&self) -> SnapshotCursor {
        SnapshotCursor::taken_at(self.last_zxid().max(self.restored_czxid))
    }

    /// The path after `after` in pre-order by name, in the tree as it is now; `None` starts at
    /// the root. `after` need not exist any more.
    pub fn snapshot_successor(&self, after: Option<&str>) -> Option<String> {
        let Some(p) = after else {
            return Some("/".to_owned());
        };
        if let Some(id) = self.lookup(p) {
            if let Some(first) = self.children(id).into_iter().next() {
                return Some(join(p, &first));
            }
        }
        self.successor_past(p)
    }

    /// The path after `p`'s subtree in pre-order by name.
    fn successor_past(&self, p: &str) -> Option<String> {
        let mut cur = p;
        while cur != "/" {
            let (parent, name) = split(cur)?;
            if let Some(pid) = self.lookup(parent) {
                if let Some(next) = self.child_after(pid, name) {
                    return Some(join(parent, &next));
                }
            }
            cur = parent;
        }
        None
    }

    /// The node at `path` as a snapshot stores it.
    pub fn snap_node(&self, path: &str) -> Option<SnapNode> {
        let id = self.lookup(path)?;
        Some(self.snap_node_by_id(id, path))
    }

    /// Adds (or, for the root and built-ins, overwrites) a node read from a snapshot. Its parent
    /// must already be there.
    pub fn load_node(&mut self, n: &SnapNode) -> Result<(), ErrorCode> {
        self.restore_node(&n.path, n.data.as_deref(), &n.acl, n.stat, n.owner)
    }

    /// Records a session read from a snapshot.
    pub fn load_session(&mut self, id: i64, timeout: i32) {
        self.restore_session(id, timeout);
    }

    /// Records a session's random password read from a snapshot.
    pub fn load_session_password(&mut self, id: i64, password: [u8; 16]) {
        self.restore_password(id, password);
    }

    /// Ends a load: the last zxid the snapshot covers, and indexes rebuilt.
    pub fn finish_load(&mut self, zxid: i64) {
        self.set_last_zxid(zxid);
        self.rebuild_quotas();
        self.recompute_digest();
    }
}

/// The encoding of a node from its parts, so the walk can encode straight from the tree.
fn encode_parts(
    buf: &mut Vec<u8>,
    path: &str,
    data: Option<&[u8]>,
    acl: &[Acl],
    s: &NodeStat,
    owner: i64,
) {
    buf.put_string(path);
    buf.put_buffer_opt(data);
    buf.put_i32(acl.len() as i32);
    for a in acl {
        a.put(buf);
    }
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        buf.put_i64(v);
    }
    for v in [s.version, s.cversion, s.aversion] {
        buf.put_i32(v);
    }
    buf.put_i64(owner);
}

/// Builds a tree from snapshot nodes in the order a snapshot stores them (pre-order by name).
/// It keeps the chain of ancestors of the last node, so each node's parent is found without
/// resolving its path, and children arrive in order, so each insert is an append.
pub struct SnapshotLoader {
    tree: DataTree,
    /// Ancestors of the last node: (length of their path, id); their paths are prefixes of
    /// `path`.
    chain: Vec<(usize, NodeId)>,
    path: String,
    acl_hint: Option<AclRef>,
}

impl Default for SnapshotLoader {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotLoader {
    /// A loader starting from a fresh tree.
    pub fn new() -> SnapshotLoader {
        SnapshotLoader {
            tree: DataTree::new(),
            chain: Vec::new(),
            path: String::new(),
            acl_hint: None,
        }
    }

    /// Records a session of the snapshot's session table.
    pub fn session(&mut self, id: i64, timeout: i32) {
        self.tree.load_session(id, timeout);
    }

    /// Records a session's random password.
    pub fn session_password(&mut self, id: i64, password: [u8; 16]) {
        self.tree.load_session_password(id, password);
    }

    /// Adds the next node; its parent must have come before it.
    pub fn node(&mut self, n: &SnapNode) -> Result<(), ErrorCode> {
        let Some((parent_path, name)) = split(&n.path) else {
            self.tree.load_node(n)?;
            self.chain.clear();
            self.chain.push((1, ROOT));
            self.path.clear();
            self.path.push('/');
            return Ok(());
        };
        while let Some(&(len, _)) = self.chain.last() {
            if len == parent_path.len() && self.path.get(..len) == Some(parent_path) {
                break;
            }
            self.chain.pop();
        }
        let restored = match self.chain.last() {
            Some(&(_, parent)) => self.tree.restore_child(
                parent,
                name,
                n.data.as_deref(),
                &n.acl,
                n.stat,
                n.owner,
                &mut self.acl_hint,
            ),
            None => Err(ErrorCode::NoNode),
        };
        let id = match restored {
            Ok(id) => id,
            // A built-in node (it exists in a fresh tree), or a parent not on the chain: the
            // general path.
            Err(ErrorCode::NodeExists) | Err(ErrorCode::NoNode) => {
                self.tree.load_node(n)?;
                self.tree.lookup(&n.path).ok_or(ErrorCode::NoNode)?
            }
            Err(e) => return Err(e),
        };
        self.path.clear();
        self.path.push_str(&n.path);
        self.chain.push((n.path.len(), id));
        Ok(())
    }

    /// The loaded tree, covering the log up to `zxid`.
    pub fn finish(mut self, zxid: i64) -> DataTree {
        self.tree.finish_load(zxid);
        self.tree
    }
}

impl DataTree {
    /// Walks up to `max` nodes of a snapshot in pre-order by name, resuming after `cursor`,
    /// appending them to `out` and moving the cursor. Returns false once the walk is complete.
    /// The same walk as `snapshot_successor`, but resolving the cursor once per call and
    /// stepping by id in between, so a chunk costs little more than copying its nodes.
    pub fn snapshot_chunk(
        &self,
        cursor: &mut SnapshotCursor,
        max: usize,
        out: &mut Vec<SnapNode>,
    ) -> bool {
        self.walk_chunk(cursor, max, &mut |t, id, path| {
            out.push(t.snap_node_by_id(id, path));
        })
    }

    /// The same walk, appending each node as a snapshot file stores it (`[u32 length][node]`),
    /// with no allocation per node: what the server's snapshot job sends its writer. Returns
    /// whether the walk goes on, and how many nodes were appended.
    pub fn snapshot_chunk_encoded(
        &self,
        cursor: &mut SnapshotCursor,
        max: usize,
        out: &mut Vec<u8>,
    ) -> (bool, usize) {
        let mut appended = 0;
        let more = self.walk_chunk(cursor, max, &mut |t, id, path| {
            appended += 1;
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            encode_parts(
                out,
                path,
                t.data(id),
                t.acl(id),
                &t.node_stat(id),
                t.owner(id),
            );
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        });
        (more, appended)
    }

    /// A chunk ends after `max` nodes written, or after `max * LOOK_AHEAD` looked at (nodes
    /// left out are cheap, but a chunk must not run on through a long run of them); a node
    /// left out is not descended into.
    fn walk_chunk(
        &self,
        cursor: &mut SnapshotCursor,
        max: usize,
        emit: &mut dyn FnMut(&DataTree, NodeId, &str),
    ) -> bool {
        let first = match (&cursor.after, cursor.left_out) {
            (Some(after), true) => self.successor_past(after),
            (after, _) => self.snapshot_successor(after.as_deref()),
        };
        let Some(first) = first else {
            return false;
        };
        let Some(mut id) = self.lookup(&first) else {
            return false;
        };
        let store = self.store();
        // Positions of the walk in each ancestor's child list, root first.
        let mut stack: Vec<(NodeId, usize)> = Vec::new();
        {
            let mut x = id;
            while x != ROOT {
                let p = store.parent(x);
                let pos = store
                    .child_index(p, store.name(x))
                    .expect("a node is among its parent's children");
                stack.push((p, pos));
                x = p;
            }
            stack.reverse();
        }
        let mut path = first;
        // The path length of each ancestor on the stack: "/" for the root, then up to each
        // later slash (none when the walk starts at the root, which has no ancestor).
        let mut lens: Vec<usize> = if stack.is_empty() {
            Vec::new()
        } else {
            std::iter::once(1)
                .chain(path.match_indices('/').skip(1).map(|(i, _)| i))
                .collect()
        };
        debug_assert_eq!(lens.len(), stack.len());
        let (mut written, mut looked) = (0, 0);
        loop {
            let new = store.stat(id).czxid > cursor.taken_at;
            if !new {
                emit(self, id, &path);
                written += 1;
            }
            looked += 1;
            if written >= max || looked >= max.saturating_mul(LOOK_AHEAD) {
                cursor.after = Some(path);
                cursor.left_out = new;
                return true;
            }
            // Next in pre-order: the first child, else the next sibling of the nearest
            // ancestor that has one.
            let first_child = if new {
                None
            } else {
                store.children(id).first()
            };
            if let Some(&c) = first_child {
                stack.push((id, 0));
                lens.push(path.len());
                id = c;
            } else {
                loop {
                    let Some((p, pos)) = stack.last_mut() else {
                        cursor.after = Some(path);
                        cursor.left_out = new;
                        return false;
                    };
                    let kids = store.children(*p);
                    if *pos + 1 < kids.len() {
                        *pos += 1;
                        id = kids[*pos];
                        break;
                    }
                    stack.pop();
                    lens.pop();
                }
            }
            let parent_len = *lens.last().expect("a parent on the stack");
            path.truncate(parent_len);
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(store.name(id));
        }
    }

    fn snap_node_by_id(&self, id: NodeId, path: &str) -> SnapNode {
        SnapNode {
            path: path.to_owned(),
            data: self.data(id).map(|d| d.to_vec()),
            acl: self.acl(id).to_vec(),
            stat: self.node_stat(id),
            owner: self.owner(id),
        }
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl DataTree {
    /// A digest of everything a snapshot plus replay must reproduce: every node (path, data,
    /// ACL, stored stat, owner) in pre-order, the session table and the last zxid. Two trees
    /// with equal digests are the same as far as any client or later transaction can tell.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() has fixed keys: digests are comparable across trees and runs
        // of the same build.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.last_zxid().hash(&mut h);
        let mut sessions: Vec<(i64, i32)> = self.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort_unstable();
        sessions.hash(&mut h);
        let mut cur: Option<String> = None;
        let mut buf = Vec::new();
        while let Some(p) = self.snapshot_successor(cur.as_deref()) {
            if let Some(n) = self.snap_node(&p) {
                buf.clear();
                n.encode(&mut buf);
                buf.hash(&mut h);
            }
            cur = Some(p);
        }
        h.finish()
    }
}

/// Whether an owner is a session's (for tools that list ephemerals of a snapshot).
pub fn is_session_owner(raw: i64) -> bool {
    matches!(Owner::of(raw), Owner::Session(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnOp};

    fn create(t: &mut DataTree, zxid: i64, path: &str) {
        let a = t.apply(&Txn {
            session_id: 1,
            cxid: 0,
            zxid,
            time: zxid,
            op: TxnOp::Create {
                path: path.into(),
                data: Some(vec![zxid as u8]),
                acl: Acl::open_unsafe(),
                owner: 0,
                parent_cversion: 1,
            },
        });
        assert!(a.result.is_ok(), "{path}: {:?}", a.result);
    }

    #[test]
    fn a_walk_leaves_out_what_grows_ahead_of_it() {
        // A bulk load adds parents in name order, each with children, faster than the walk
        // moves: the walk must still end, with the nodes there when it began.
        let mut t = DataTree::new();
        create(&mut t, 1, "/p0000");
        create(&mut t, 2, "/p0000/c");
        let mut cursor = SnapshotCursor::taken_at(t.last_zxid());
        let (mut zxid, mut walked, mut chunks) = (2, Vec::new(), 0);
        loop {
            let mut out = Vec::new();
            let more = t.snapshot_chunk(&mut cursor, 1, &mut out);
            walked.extend(out.into_iter().map(|n| n.path));
            if !more {
                break;
            }
            chunks += 1;
            assert!(chunks < 100, "the walk follows the growth: {walked:?}");
            zxid += 1;
            create(&mut t, zxid, &format!("/p{zxid:04}"));
            zxid += 1;
            create(&mut t, zxid, &format!("/p{:04}/c", zxid - 1));
        }
        assert_eq!(
            walked,
            [
                "/",
                "/p0000",
                "/p0000/c",
                "/zookeeper",
                "/zookeeper/config",
                "/zookeeper/quota"
            ]
        );
    }

    #[test]
    fn a_walk_keeps_restored_nodes_newer_than_the_snapshot() {
        // A fuzzy snapshot at zxid 1 holding a node created at 2: until the log replays over
        // it, a walk of the loaded tree must write that node (its create is in the log before
        // the walk's point, not after it).
        let mut live = DataTree::new();
        create(&mut live, 1, "/a");
        create(&mut live, 2, "/a/new");
        let mut loader = SnapshotLoader::new();
        let mut nodes = Vec::new();
        live.snapshot_chunk(&mut SnapshotCursor::whole(), 100, &mut nodes);
        for n in &nodes {
            loader.node(n).unwrap();
        }
        let loaded = loader.finish(1);
        let mut walked = Vec::new();
        loaded.snapshot_chunk(&mut loaded.snapshot_cursor(), 100, &mut walked);
        assert!(walked.iter().any(|n| n.path == "/a/new"), "{walked:?}");
        // A tree that only applied its transactions leaves out what comes after its point.
        let mut walked = Vec::new();
        live.snapshot_chunk(&mut SnapshotCursor::taken_at(1), 100, &mut walked);
        assert!(!walked.iter().any(|n| n.path == "/a/new"), "{walked:?}");
    }

    #[test]
    fn walk_is_preorder_and_survives_changes() {
        let mut t = DataTree::new();
        for (i, p) in ["/a", "/a/x", "/a/y", "/b", "/b/z"].iter().enumerate() {
            create(&mut t, i as i64 + 1, p);
        }
        let mut seen = Vec::new();
        let mut cur = None;
        while let Some(p) = t.snapshot_successor(cur.as_deref()) {
            seen.push(p.clone());
            if p == "/a/x" {
                // Change the tree under the walk: delete where we are, add behind and ahead.
                t.apply(&Txn {
                    session_id: 1,
                    cxid: 0,
                    zxid: 10,
                    time: 10,
                    op: TxnOp::Delete {
                        path: "/a/x".into(),
                    },
                });
                create(&mut t, 11, "/0");
                create(&mut t, 12, "/a/xx");
            }
            cur = Some(p);
        }
        assert_eq!(
            seen,
            [
                "/",
                "/a",
                "/a/x",
                "/a/xx",
                "/a/y",
                "/b",
                "/b/z",
                "/zookeeper",
                "/zookeeper/config",
                "/zookeeper/quota"
            ]
        );
    }

    #[test]
    fn nodes_round_trip_and_reload() {
        let mut t = DataTree::new();
        create(&mut t, 1, "/a");
        create(&mut t, 2, "/a/b");
        let mut copy = DataTree::new();
        let mut cur = None;
        while let Some(p) = t.snapshot_successor(cur.as_deref()) {
            let n = t.snap_node(&p).unwrap();
            let mut b = Vec::new();
            n.encode(&mut b);
            copy.load_node(&SnapNode::decode(&b).unwrap()).unwrap();
            cur = Some(p);
        }
        copy.finish_load(2);
        for p in ["/", "/a", "/a/b", "/zookeeper", "/zookeeper/config"] {
            assert_eq!(
                t.stat(t.lookup(p).unwrap()),
                copy.stat(copy.lookup(p).unwrap()),
                "{p}"
            );
        }
        assert_eq!(copy.last_zxid(), 2);
    }
}

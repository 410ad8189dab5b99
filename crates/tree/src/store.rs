//! Compact storage of znodes.
//!
//! Memory is the tree's main cost, so a node is a fixed 64-byte record in one vector, indexed by
//! a `u32`. Its name (last path component only) and data live together in one blob in an arena
//! of large chunks, so there is no per-node allocation and no allocator header per node. Children
//! are kept per parent as a vector of node ids sorted by name, which serves both lookups
//! (binary search) and listings. Rare fields (ephemeral owner, TTL) live in side tables owned by
//! the tree.

use hashbrown::HashMap;

/// Index of a node in the store. The root is always 0.
pub type NodeId = u32;

/// The root node's id.
pub const ROOT: NodeId = 0;
const FREE: u32 = u32::MAX;

/// The stored part of a node's Stat (the rest is derived).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Stored form: counts child creates only (the client sees `2 * cversion - numChildren`).
    pub cversion: i32,
    pub aversion: i32,
}

/// The stat is spread out flat so that no padding creeps in between it and the other fields.
#[derive(Debug, Clone, Copy)]
struct Node {
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    parent: u32,
    acl: u32,
    blob: BlobRef,
}

impl Node {
    fn new(stat: NodeStat, parent: u32, acl: u32, blob: BlobRef) -> Node {
        let NodeStat {
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
        } = stat;
        Node {
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            parent,
            acl,
            blob,
        }
    }

    fn stat(&self) -> NodeStat {
        NodeStat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
        }
    }
}

// Keep the per-node record at 64 bytes: the memory budget depends on it.
const _: () = assert!(std::mem::size_of::<Node>() == 64);

type BlobRef = u32;

/// Chunk size of the blob arena. Chunks are zero-allocated, so untouched pages cost no RSS.
const CHUNK: usize = 1 << 20;
const UNIT: usize = 8;
const UNITS_PER_CHUNK: u32 = (CHUNK / UNIT) as u32;
/// Blobs larger than this get an allocation of their own.
const SMALL_MAX: usize = 4096;
const LARGE_BIT: u32 = 1 << 31;
/// A blob starts with two LEB128 varints: the name length, and the data length plus one (0 for
/// null data). Short names and small data, the common case, cost two header bytes.
const MAX_HEADER: usize = 3 + 5;

fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = b;
            return i + 1;
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn get_varint(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(10) {
        v |= ((x & 0x7F) as u64) << (7 * i);
        if x & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, b.len())
}

/// Where the parts of a blob are: (name start, name length, data length or None for null).
fn layout(b: &[u8]) -> (usize, usize, Option<usize>) {
    let (nlen, a) = get_varint(b);
    let (dlen, c) = get_varint(&b[a..]);
    let data = if dlen == 0 {
        None
    } else {
        Some(dlen as usize - 1)
    };
    (a + c, nlen as usize, data)
}

/// Name and data of every node, in 8-byte units inside 1 MiB chunks, with exact-size free lists.
#[derive(Default)]
struct BlobArena {
    chunks: Vec<Vec<u8>>,
    /// Next never-used unit.
    top: u32,
    /// Free blobs per size in units.
    free: Vec<Vec<u32>>,
    large: Vec<Option<Box<[u8]>>>,
    large_free: Vec<u32>,
}

impl BlobArena {
    fn encoded_len(name: &str, data: Option<&[u8]>) -> usize {
        let dcode = data.map_or(0, |d| d.len() as u64 + 1);
        varint_len(name.len() as u64) + varint_len(dcode) + name.len() + data.map_or(0, |d| d.len())
    }

    fn encode(name: &str, data: Option<&[u8]>, out: &mut [u8]) {
        let dcode = data.map_or(0, |d| d.len() as u64 + 1);
        let mut at = put_varint(out, name.len() as u64);
        at += put_varint(&mut out[at..], dcode);
        out[at..at + name.len()].copy_from_slice(name.as_bytes());
        at += name.len();
        if let Some(d) = data {
            out[at..at + d.len()].copy_from_slice(d);
        }
    }

    fn alloc(&mut self, name: &str, data: Option<&[u8]>) -> BlobRef {
        let len = Self::encoded_len(name, data);
        if len > SMALL_MAX {
            let mut b = vec![0u8; len].into_boxed_slice();
            Self::encode(name, data, &mut b);
            let idx = match self.large_free.pop() {
                Some(i) => {
                    self.large[i as usize] = Some(b);
                    i
                }
                None => {
                    self.large.push(Some(b));
                    (self.large.len() - 1) as u32
                }
            };
            return idx | LARGE_BIT;
        }
        let units = len.div_ceil(UNIT) as u32;
        let start = match self.free.get_mut(units as usize).and_then(|f| f.pop()) {
            Some(s) => s,
            None => {
                let in_chunk = self.top % UNITS_PER_CHUNK;
                if self.top == 0 || in_chunk + units > UNITS_PER_CHUNK || in_chunk == 0 {
                    if in_chunk != 0 && self.top != 0 {
                        // The chunk's tail is too small: keep it for a blob that fits.
                        let rest = UNITS_PER_CHUNK - in_chunk;
                        self.release(self.top, rest);
                        self.top += rest;
                    }
                    if (self.top / UNITS_PER_CHUNK) as usize >= self.chunks.len() {
                        self.chunks.push(vec![0u8; CHUNK]);
                    }
                }
                let s = self.top;
                self.top += units;
                assert!(self.top < LARGE_BIT, "blob arena exhausted");
                s
            }
        };
        let (c, off) = Self::locate(start);
        Self::encode(name, data, &mut self.chunks[c][off..off + len]);
        start
    }

    fn release(&mut self, start: u32, units: u32) {
        let u = units as usize;
        if self.free.len() <= u {
            self.free.resize_with(u + 1, Vec::new);
        }
        self.free[u].push(start);
    }

    fn locate(unit: u32) -> (usize, usize) {
        (
            (unit / UNITS_PER_CHUNK) as usize,
            (unit % UNITS_PER_CHUNK) as usize * UNIT,
        )
    }

    fn bytes(&self, r: BlobRef) -> &[u8] {
        if r & LARGE_BIT != 0 {
            return self.large[(r & !LARGE_BIT) as usize]
                .as_deref()
                .expect("live large blob");
        }
        let (c, off) = Self::locate(r);
        let chunk = &self.chunks[c];
        let head = &chunk[off..(off + MAX_HEADER).min(chunk.len())];
        let (start, nlen, dlen) = layout(head);
        &chunk[off..off + start + nlen + dlen.unwrap_or(0)]
    }

    fn free(&mut self, r: BlobRef) {
        if r & LARGE_BIT != 0 {
            let i = r & !LARGE_BIT;
            self.large[i as usize] = None;
            self.large_free.push(i);
            return;
        }
        let units = self.bytes(r).len().div_ceil(UNIT) as u32;
        self.release(r, units);
    }

    fn name(&self, r: BlobRef) -> &str {
        // Names are written from &str only.
        std::str::from_utf8(self.name_bytes(r)).unwrap_or("")
    }

    /// The name's bytes, unchecked: comparing them orders names as `str` does, without the
    /// UTF-8 validation `name` pays for (searches compare many names).
    fn name_bytes(&self, r: BlobRef) -> &[u8] {
        let b = self.bytes(r);
        let (start, nlen, _) = layout(b);
        &b[start..start + nlen]
    }

    fn data(&self, r: BlobRef) -> Option<&[u8]> {
        let b = self.bytes(r);
        let (start, nlen, dlen) = layout(b);
        dlen.map(|_| &b[start + nlen..])
    }
}

/// The node store: records, blobs and per-parent sorted children.
#[derive(Default)]
pub struct Store {
    nodes: Vec<Node>,
    free_nodes: Vec<NodeId>,
    blobs: BlobArena,
    children: HashMap<NodeId, Vec<NodeId>>,
    live: usize,
    data_bytes: u64,
}

impl Store {
    /// A store holding only the root, with empty data and the given ACL reference.
    pub fn with_root(acl: u32) -> Store {
        let mut s = Store::default();
        let blob = s.blobs.alloc("", Some(&[]));
        s.nodes
            .push(Node::new(NodeStat::default(), ROOT, acl, blob));
        s.live = 1;
        s
    }

    /// Number of live nodes, root included.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether only the root exists... never empty: the root always exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Sum of all data lengths.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// Whether `id` names a live node.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.nodes
            .get(id as usize)
            .is_some_and(|n| n.parent != FREE)
    }

    /// The node's stored stat.
    pub fn stat(&self, id: NodeId) -> NodeStat {
        self.node(id).stat()
    }

    /// Changes the stored stat.
    pub fn update_stat(&mut self, id: NodeId, f: impl FnOnce(&mut NodeStat)) {
        let n = &mut self.nodes[id as usize];
        let mut s = n.stat();
        f(&mut s);
        *n = Node::new(s, n.parent, n.acl, n.blob);
    }

    /// The node's ACL reference.
    pub fn acl(&self, id: NodeId) -> u32 {
        self.node(id).acl
    }

    /// Replaces the ACL reference.
    pub fn set_acl(&mut self, id: NodeId, acl: u32) {
        self.nodes[id as usize].acl = acl;
    }

    /// The node's parent (the root is its own parent).
    pub fn parent(&self, id: NodeId) -> NodeId {
        self.node(id).parent
    }

    /// The node's last path component.
    pub fn name(&self, id: NodeId) -> &str {
        self.blobs.name(self.node(id).blob)
    }

    /// The node's name as bytes, without the UTF-8 check `name` pays (names are written from
    /// `&str` only): for replies that copy many names.
    pub fn name_bytes(&self, id: NodeId) -> &[u8] {
        self.blobs.name_bytes(self.node(id).blob)
    }

    /// The node's data; `None` when it was written as null.
    pub fn data(&self, id: NodeId) -> Option<&[u8]> {
        self.blobs.data(self.node(id).blob)
    }

    /// The node's data length.
    pub fn data_len(&self, id: NodeId) -> usize {
        self.data(id).map_or(0, |d| d.len())
    }

    /// Replaces the data, keeping the name.
    pub fn set_data(&mut self, id: NodeId, data: Option<&[u8]>) {
        let old = self.node(id).blob;
        let name = self.blobs.name(old).to_owned();
        self.data_bytes -= self.data_len(id) as u64;
        let new = self.blobs.alloc(&name, data);
        self.blobs.free(old);
        self.nodes[id as usize].blob = new;
        self.data_bytes += data.map_or(0, |d| d.len()) as u64;
    }

    /// Children ids, sorted by name.
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        self.children.get(&id).map_or(&[], |v| v.as_slice())
    }

    /// Number of children.
    pub fn num_children(&self, id: NodeId) -> usize {
        self.children(id).len()
    }

    fn search(&self, parent: NodeId, name: &str) -> Result<usize, usize> {
        let kids = self.children(parent);
        let name = name.as_bytes();
        // Names often arrive in order (sequential nodes, snapshot loads): try the end first.
        match kids.last() {
            None => return Err(0),
            Some(&last) => match self.blobs.name_bytes(self.node(last).blob).cmp(name) {
                std::cmp::Ordering::Less => return Err(kids.len()),
                std::cmp::Ordering::Equal => return Ok(kids.len() - 1),
                std::cmp::Ordering::Greater => {}
            },
        }
        kids.binary_search_by(|&c| self.blobs.name_bytes(self.node(c).blob).cmp(name))
    }

    /// The children of `parent` whose names sort after `after` (all of them for "").
    pub fn children_after(&self, parent: NodeId, after: &str) -> &[NodeId] {
        let kids = self.children(parent);
        if after.is_empty() {
            return kids;
        }
        let from = match self.search(parent, after) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        &kids[from..]
    }

    /// Where the child called `name` is in `parent`'s child list.
    pub fn child_index(&self, parent: NodeId, name: &str) -> Option<usize> {
        self.search(parent, name).ok()
    }

    /// The child of `parent` called `name`.
    pub fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        self.search(parent, name)
            .ok()
            .map(|i| self.children(parent)[i])
    }

    /// Resolves an absolute path.
    /// `""` is the root too, as in ZooKeeper's node table (reads accept it).
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        if path == "/" || path.is_empty() {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut cur = ROOT;
        for comp in rest.split('/') {
            cur = self.child(cur, comp)?;
        }
        Some(cur)
    }

    /// Adds a child; `None` if the name is taken.
    pub fn insert(
        &mut self,
        parent: NodeId,
        name: &str,
        data: Option<&[u8]>,
        acl: u32,
        stat: NodeStat,
    ) -> Option<NodeId> {
        let pos = match self.search(parent, name) {
            Ok(_) => return None,
            Err(p) => p,
        };
        let blob = self.blobs.alloc(name, data);
        let node = Node::new(stat, parent, acl, blob);
        let id = match self.free_nodes.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        };
        self.children.entry(parent).or_default().insert(pos, id);
        self.live += 1;
        self.data_bytes += data.map_or(0, |d| d.len()) as u64;
        Some(id)
    }

    /// Removes a childless node.
    pub fn remove(&mut self, id: NodeId) {
        debug_assert!(id != ROOT && self.num_children(id) == 0);
        let parent = self.parent(id);
        if let Ok(pos) = self.search(parent, self.name(id)) {
            let v = self.children.get_mut(&parent).expect("parent has children");
            v.remove(pos);
            if v.is_empty() {
                self.children.remove(&parent);
            }
        }
        self.children.remove(&id);
        self.data_bytes -= self.data_len(id) as u64;
        let blob = self.node(id).blob;
        self.blobs.free(blob);
        self.nodes[id as usize].parent = FREE;
        self.free_nodes.push(id);
        self.live -= 1;
    }

    /// The absolute path of a node.
    pub fn path(&self, id: NodeId) -> String {
        if id == ROOT {
            return "/".to_owned();
        }
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != ROOT {
            parts.push(self.name(cur));
            cur = self.parent(cur);
        }
        let mut s = String::new();
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    /// Number of nodes below `id`, not counting `id`.
    pub fn descendants(&self, id: NodeId) -> usize {
        let mut n = 0;
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            let c = self.children(x);
            n += c.len();
            stack.extend_from_slice(c);
        }
        n
    }

    /// Visits every live node in pre-order (parents first).
    pub fn preorder(&self, mut f: impl FnMut(NodeId)) {
        let mut stack = vec![ROOT];
        while let Some(x) = stack.pop() {
            f(x);
            stack.extend(self.children(x).iter().rev());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove() {
        let mut s = Store::with_root(0);
        let a = s
            .insert(ROOT, "a", Some(b"x"), 0, NodeStat::default())
            .unwrap();
        let b = s.insert(a, "b", None, 0, NodeStat::default()).unwrap();
        assert!(s.insert(a, "b", None, 0, NodeStat::default()).is_none());
        assert_eq!(s.lookup("/a/b"), Some(b));
        assert_eq!(s.path(b), "/a/b");
        assert_eq!(s.data(a), Some(&b"x"[..]));
        assert_eq!(s.data(b), None);
        s.set_data(b, Some(&[7u8; 5000]));
        assert_eq!(s.data(b).unwrap().len(), 5000);
        assert_eq!(s.name(b), "b");
        s.remove(b);
        assert_eq!(s.lookup("/a/b"), None);
        assert_eq!(s.len(), 2);
        let c = s.insert(a, "c", Some(b""), 0, NodeStat::default()).unwrap();
        assert_eq!(c, b, "slot reused");
        assert_eq!(s.data(c), Some(&b""[..]));
    }

    #[test]
    fn header_lengths_of_every_size() {
        let mut s = Store::with_root(0);
        for (nlen, dlen) in [
            (1, 0),
            (127, 126),
            (128, 127),
            (300, 16_383),
            (5, 16_384),
            (9, 4090),
            (2, 1 << 20),
        ] {
            let name = "n".repeat(nlen);
            let data = vec![3u8; dlen];
            let id = s
                .insert(ROOT, &name, Some(&data), 0, NodeStat::default())
                .unwrap();
            assert_eq!(s.name(id), name);
            assert_eq!(s.data(id).unwrap(), &data[..]);
            s.set_data(id, None);
            assert_eq!(s.data(id), None);
            assert_eq!(s.name(id), name);
            s.remove(id);
        }
    }

    #[test]
    fn children_sorted_and_many_chunks() {
        let mut s = Store::with_root(0);
        for i in (0..20000).rev() {
            s.insert(
                ROOT,
                &format!("n{i:06}"),
                Some(&[1u8; 100]),
                0,
                NodeStat::default(),
            );
        }
        let names: Vec<_> = s
            .children(ROOT)
            .iter()
            .map(|&c| s.name(c).to_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(
            s.lookup("/n012345").map(|i| s.name(i).to_owned()),
            Some("n012345".into())
        );
        assert_eq!(s.data_bytes(), 2_000_000);
    }
}

//! Apache ZooKeeper's snapshot files (`version-2/snapshot.<zxid>`), read into the nodes and
//! sessions Paddock's tree loads, and written from a tree for `paddock export-zk`: the header, the session table, the ACL cache, every node
//! with its stored Stat, the Adler-32 seal, and the digest trailer of 3.6+ with its second
//! seal (`../shared/spec/zookeeper-server-formats.md` §2). The groundwork of `paddock
//! import-zk`; compressed snapshots (`.gz`, `.snappy`) are refused for now, by name.
//!
//! Every length is checked against what is left and against ZooKeeper's own limit, so a
//! damaged file is an error naming the offset, never a panic or a huge allocation.

use super::fs::{Fs, OpenMode, StorageFile};
use super::zk_compress;
use super::zk_jute::{self, Bad, In, ZkFileError};
use bytes::BufMut;
use paddock_proto::{Acl, Field, JuteWrite};
use paddock_tree::digest::DIGEST_VERSION;
use paddock_tree::store::NodeStat;
use paddock_tree::{DataTree, SnapNode};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// "ZKSN".
const MAGIC: i32 = 0x5A4B_534E;
/// A seal's length: the checksum, then the string "/".
const SEAL_LEN: usize = 8 + 4 + 1;

/// ZooKeeper's digest of the tree at a zxid, as a snapshot's trailer carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// What a ZooKeeper snapshot holds.
#[derive(Debug)]
pub struct ZkSnapshot {
    /// The zxid in the file's name: the log replays after it.
    pub zxid: i64,
    /// Global sessions and their timeouts (ms).
    pub sessions: Vec<(i64, i32)>,
    /// Every node, parents before children; the root's path is "/" (empty when only checked,
    /// see `check_any`).
    pub nodes: Vec<SnapNode>,
    /// How many nodes the file holds.
    pub node_count: usize,
    /// The digest trailer, if the writer had digests on.
    pub trailer: Option<Trailer>,
    /// ZooKeeper 3.9's last processed zxid (after the trailer), if written.
    pub last_zxid: Option<i64>,
}

/// The zxid a snapshot file's name gives (`snapshot.<hex>`), or None.
pub fn name_zxid(name: &str) -> Option<i64> {
    zk_jute::name_zxid(name, "snapshot")
}

/// Reads one ZooKeeper snapshot file, named as ZooKeeper names them (the name gives its zxid
/// and how it is compressed).
pub fn read(path: &Path) -> Result<ZkSnapshot, ZkFileError> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let zxid = name_zxid(name).ok_or_else(|| ZkFileError::Name {
        path: shown.clone(),
    })?;
    let bytes = zk_jute::read_file(path)?;
    decode(
        &shown,
        zk_compress::Method::of_name(name),
        bytes,
        Some(zxid),
        true,
    )
}

/// Reads a snapshot file under any name (a backup): compression is told from its first
/// bytes, the zxid from the name if it is ZooKeeper's, else from the last processed zxid
/// ZooKeeper 3.9 (and Paddock's backups) write after the digest.
pub fn read_any(path: &Path) -> Result<ZkSnapshot, ZkFileError> {
    read_any_as(path, true)
}

/// As `read_any`, checking every seal, the digest trailer's shape and every node's encoding,
/// but keeping no node (`nodes` stays empty, `node_count` says how many there are): how
/// `paddock backup` checks a large backup without holding its tree.
pub fn check_any(path: &Path) -> Result<ZkSnapshot, ZkFileError> {
    read_any_as(path, false)
}

fn read_any_as(path: &Path, keep: bool) -> Result<ZkSnapshot, ZkFileError> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let bytes = zk_jute::read_file(path)?;
    let method = zk_compress::Method::sniff(&bytes);
    let snap = decode(&shown, method, bytes, name_zxid(name), keep)?;
    if snap.zxid < 0 {
        return Err(ZkFileError::Corrupt {
            path: shown,
            offset: 0,
            what: "neither its name nor its content gives its zxid (name it snapshot.<hex zxid>)"
                .into(),
        });
    }
    Ok(snap)
}

/// A snapshot from bytes under no name (compression sniffed, the zxid from inside or -1).
pub fn from_bytes(bytes: Vec<u8>) -> Result<ZkSnapshot, ZkFileError> {
    let method = zk_compress::Method::sniff(&bytes);
    decode("<bytes>", method, bytes, None, true)
}

/// Parses a snapshot's bytes (`zxid` None: the one inside, or -1 if none is).
fn decode(
    shown: &str,
    method: zk_compress::Method,
    bytes: Vec<u8>,
    zxid: Option<i64>,
    keep: bool,
) -> Result<ZkSnapshot, ZkFileError> {
    let corrupt = |(offset, what): Bad| ZkFileError::Corrupt {
        path: shown.to_owned(),
        offset,
        what,
    };
    let bytes = zk_compress::inflate(method, bytes).map_err(corrupt)?;
    let mut snap =
        parse_as(&bytes, zxid.unwrap_or(-1), keep).map_err(|(offset, what)| match method {
            zk_compress::Method::Plain => corrupt((offset, what)),
            // The seals cover the inflated bytes: that is where a compressed snapshot is damaged.
            _ => corrupt((offset, format!("{what} (offset in the inflated snapshot)"))),
        })?;
    if zxid.is_none() {
        snap.zxid = snap.last_zxid.unwrap_or(-1);
    }
    Ok(snap)
}

/// The seal: the Adler-32 of everything before it, then "/".
fn seal(i: &mut In<'_>) -> Result<(), Bad> {
    let at = i.at;
    let want = adler2::adler32_slice(&i.buf[..at]);
    let got = i.long()?;
    if got != i64::from(want) {
        return Err((
            at,
            format!("checksum {got:#x}, the bytes before it give {want:#x}"),
        ));
    }
    match i.string()? {
        Some(s) if s == "/" => Ok(()),
        other => Err((at + 8, format!("a seal ending in {other:?}, not \"/\""))),
    }
}

#[cfg(test)]
fn parse(buf: &[u8], zxid: i64) -> Result<ZkSnapshot, Bad> {
    parse_as(buf, zxid, true)
}

/// Parses a snapshot; with `keep` off its nodes are read and checked, then dropped.
fn parse_as(buf: &[u8], zxid: i64, keep: bool) -> Result<ZkSnapshot, Bad> {
    let mut i = In::new(buf, 0);
    let magic = i.int()?;
    if magic != MAGIC {
        return Err((0, format!("magic {magic:#x}, not ZKSN")));
    }
    let _version = i.int()?;
    let _dbid = i.long()?;
    let n = i.count(12)?;
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push((i.long()?, i.int()?));
    }
    let n = i.count(12)?;
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::with_capacity(n);
    for _ in 0..n {
        let aref = i.long()?;
        acls.insert(aref, i.acl()?);
    }
    let mut nodes = Vec::new();
    let mut node_count = 0;
    loop {
        let path = i.text("node path")?;
        if path == "/" {
            break; // the end marker
        }
        let data = i.bytes()?;
        let aref = i.long()?;
        let czxid = i.long()?;
        let mzxid = i.long()?;
        let ctime = i.long()?;
        let mtime = i.long()?;
        let version = i.int()?;
        let cversion = i.int()?;
        let aversion = i.int()?;
        let owner = i.long()?;
        let pzxid = i.long()?;
        node_count += 1;
        if !keep {
            continue;
        }
        // -1 is ZooKeeper's open ACL for the built-in nodes; a ref missing from the map (a
        // fuzzy snapshot) is restored by the log replay, as in ZooKeeper.
        let acl = match aref {
            -1 => Acl::open_unsafe(),
            r => acls.get(&r).cloned().unwrap_or_default(),
        };
        nodes.push(SnapNode {
            path: if path.is_empty() { "/".into() } else { path },
            data: data.map(<[u8]>::to_vec),
            acl,
            stat: NodeStat {
                czxid,
                mzxid,
                pzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
            },
            owner,
        });
    }
    seal(&mut i)?;
    // 3.9's last processed zxid and its seal: 21 bytes, where a digest trailer takes 33.
    let last_zxid_section = 8 + SEAL_LEN;
    let trailer = if i.at == buf.len() || i.left() == last_zxid_section {
        None // written with digests off (or before 3.6)
    } else {
        let zxid = i.long()?;
        let version = i.int()?;
        let at = i.at;
        if version < 2 {
            return Err((at, format!("digest version {version} is not read")));
        }
        let digest = i.long()?;
        seal(&mut i)?;
        Some(Trailer {
            zxid,
            version,
            digest,
        })
    };
    let mut last_zxid = None;
    if i.left() > 0 {
        last_zxid = Some(i.long()?);
        seal(&mut i)?;
    }
    if i.left() > 0 {
        // ZooKeeper reads no further either: a later version's addition, not damage.
        tracing::warn!(
            at = i.at,
            bytes = i.left(),
            "bytes after the snapshot's last seal, ignored"
        );
    }
    Ok(ZkSnapshot {
        zxid,
        sessions,
        nodes,
        node_count,
        trailer,
        last_zxid,
    })
}

/// The name ZooKeeper gives the snapshot at `zxid`.
pub fn file_name(zxid: i64) -> String {
    format!("snapshot.{zxid:x}")
}

/// Bytes written as ZooKeeper's checked stream writes them: the running Adler-32 of every
/// byte, sealed into the stream where ZooKeeper seals it.
struct Sealed<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// How much of `buf` the checksum holds already.
    hashed: usize,
    adler: adler2::Adler32,
}

impl<W: Write> Sealed<W> {
    fn flush(&mut self) -> std::io::Result<()> {
        self.adler.write_slice(&self.buf[self.hashed..]);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.hashed = 0;
        Ok(())
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    /// The checksum of everything so far, then "/" (the seal bytes count in what follows).
    fn seal(&mut self) {
        self.adler.write_slice(&self.buf[self.hashed..]);
        self.hashed = self.buf.len();
        self.buf.put_i64(i64::from(self.adler.checksum()));
        self.buf.put_string("/");
    }
}

/// A storage file as a `Write`, from its start.
struct FileOut {
    file: Box<dyn StorageFile>,
    at: u64,
}

impl Write for FileOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_at(buf, self.at)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `tree` as ZooKeeper writes a snapshot with digests on (header, sessions, ACL cache,
/// nodes with their StatPersisted, seal, digest trailer, seal, and 3.9's last processed zxid
/// with its seal, which 3.8 does not read) into `dir/snapshot.<hex last zxid>`: first under a
/// name ZooKeeper ignores, then fsynced and renamed into place, so a crash never leaves a half
/// snapshot ZooKeeper would try.
pub fn write(fs: &Fs, dir: &Path, tree: &DataTree) -> std::io::Result<PathBuf> {
    let zxid = tree.last_zxid();
    let tmp = dir.join(format!(".{}.partial", file_name(zxid)));
    let path = dir.join(file_name(zxid));
    let file = fs.open(&tmp, OpenMode::CreateTruncate)?;
    let out = encode(tree, FileOut { file, at: 0 })?;
    out.file.sync_all()?;
    drop(out);
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)?;
    Ok(path)
}

/// The snapshot of `write`, into `out` (a backup streamed by the AdminServer); returns `out`.
pub fn encode<W: Write>(tree: &DataTree, out: W) -> std::io::Result<W> {
    let zxid = tree.last_zxid();
    let mut out = Sealed {
        out,
        buf: Vec::with_capacity(2 << 20),
        hashed: 0,
        adler: adler2::Adler32::new(),
    };
    out.buf.put_i32(MAGIC);
    out.buf.put_i32(2);
    out.buf.put_i64(-1); // ZooKeeper's snapshots carry no database id
    let mut sessions: Vec<(i64, i32)> = tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
    sessions.sort_unstable();
    out.buf.put_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        out.buf.put_i64(id);
        out.buf.put_i32(timeout);
    }
    // ZooKeeper's ACL cache: each distinct list once, under a number the nodes refer to.
    let mut refs: HashMap<Vec<Acl>, i64> = HashMap::new();
    walk(tree, |n| {
        let next = refs.len() as i64 + 1;
        refs.entry(n.acl.clone()).or_insert(next);
        Ok(())
    })?;
    let mut cache: Vec<(&Vec<Acl>, i64)> = refs.iter().map(|(a, &r)| (a, r)).collect();
    cache.sort_unstable_by_key(|&(_, r)| r);
    out.buf.put_i32(cache.len() as i32);
    for (acl, r) in cache {
        out.buf.put_i64(r);
        out.buf.put_i32(acl.len() as i32);
        for a in acl {
            a.put(&mut out.buf);
        }
    }
    walk(tree, |n| {
        // The root is "" in ZooKeeper's snapshots ("/" ends the node list).
        out.buf.put_string(if n.path == "/" { "" } else { &n.path });
        out.buf.put_buffer_opt(n.data.as_deref());
        out.buf.put_i64(refs[&n.acl]);
        let s = &n.stat;
        for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
            out.buf.put_i64(v);
        }
        for v in [s.version, s.cversion, s.aversion] {
            out.buf.put_i32(v);
        }
        out.buf.put_i64(n.owner);
        out.buf.put_i64(s.pzxid);
        out.maybe_flush()
    })?;
    out.buf.put_string("/");
    out.seal();
    out.buf.put_i64(zxid);
    out.buf.put_i32(DIGEST_VERSION);
    out.buf.put_i64(tree.zk_digest());
    out.seal();
    out.buf.put_i64(zxid);
    out.seal();
    out.flush()?;
    Ok(out.out)
}

/// Every node of `tree`, parents before children.
fn walk(
    tree: &DataTree,
    mut each: impl FnMut(&SnapNode) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut cursor = paddock_tree::SnapshotCursor::whole();
    let mut chunk = Vec::with_capacity(1024);
    loop {
        chunk.clear();
        let more = tree.snapshot_chunk(&mut cursor, 1024, &mut chunk);
        for n in &chunk {
            each(n)?;
        }
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jute_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn seal(out: &mut Vec<u8>) {
        let sum = adler2::adler32_slice(out);
        out.extend_from_slice(&i64::from(sum).to_be_bytes());
        jute_string(out, "/");
    }

    /// A minimal snapshot as the spec lays it out: no sessions, one ACL, the root.
    fn minimal(trailer: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i64.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        jute_string(&mut b, "world");
        jute_string(&mut b, "anyone");
        jute_string(&mut b, "");
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&[0; 60]);
        jute_string(&mut b, "/");
        seal(&mut b);
        if trailer {
            b.extend_from_slice(&5i64.to_be_bytes());
            b.extend_from_slice(&2i32.to_be_bytes());
            b.extend_from_slice(&(-7i64).to_be_bytes());
            seal(&mut b);
        }
        b
    }

    #[test]
    fn a_minimal_snapshot_reads_back() {
        let s = parse(&minimal(true), 5).unwrap();
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.node_count, 1);
        let checked = parse_as(&minimal(true), 5, false).unwrap();
        assert!(checked.nodes.is_empty());
        assert_eq!(checked.node_count, 1);
        assert_eq!(s.nodes[0].path, "/");
        assert_eq!(
            s.trailer,
            Some(Trailer {
                zxid: 5,
                version: 2,
                digest: -7
            })
        );
        assert!(parse(&minimal(false), 5).unwrap().trailer.is_none());
    }

    #[test]
    fn damage_is_an_error_with_its_offset_never_a_panic() {
        let good = minimal(true);
        // Cut right after the first seal, it is a snapshot written with digests off.
        let no_trailer = minimal(false).len();
        for cut in (0..good.len()).filter(|&c| c != no_trailer) {
            assert!(parse(&good[..cut], 5).is_err(), "cut at {cut}");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            // Either refused, or (a flipped bit the seal covers) refused by the seal.
            assert!(parse(&bad, 5).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn a_written_snapshot_reads_back_as_the_same_tree() {
        use paddock_tree::snapshot::SnapshotLoader;
        use paddock_tree::{Txn, TxnOp};
        let mut tree = DataTree::new();
        let mut zxid = 0;
        let mut txn = |tree: &mut DataTree, op: TxnOp| {
            zxid += 1;
            let _ = tree.apply(&Txn {
                zxid,
                session_id: 7,
                cxid: 0,
                time: 1000 + zxid,
                op,
            });
        };
        txn(
            &mut tree,
            TxnOp::CreateSession {
                timeout: 4000,
                password: None,
            },
        );
        for (path, acl) in [
            ("/a", Acl::open_unsafe()),
            ("/a/b", Acl::read_unsafe()),
            ("/c", Acl::open_unsafe()),
        ] {
            txn(
                &mut tree,
                TxnOp::Create {
                    path: path.into(),
                    data: Some(path.as_bytes().to_vec()),
                    acl,
                    owner: if path == "/c" { 7 } else { 0 },
                    parent_cversion: 1,
                },
            );
        }
        let dir = std::env::temp_dir().join(format!("paddock-zk-snap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fs = super::super::fs::real();
        let path = write(&fs, &dir, &tree).unwrap();
        assert_eq!(
            path.file_name().unwrap(),
            file_name(tree.last_zxid()).as_str()
        );
        let back = read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.sessions, vec![(7, 4000)]);
        assert_eq!(
            back.trailer,
            Some(Trailer {
                zxid: tree.last_zxid(),
                version: DIGEST_VERSION,
                digest: tree.zk_digest()
            })
        );
        let mut loader = SnapshotLoader::new();
        for (id, timeout) in &back.sessions {
            loader.session(*id, *timeout);
        }
        for n in &back.nodes {
            loader.node(n).unwrap();
        }
        let loaded = loader.finish(back.zxid);
        assert_eq!(loaded.digest(), tree.digest());
        assert_eq!(loaded.zk_digest(), tree.zk_digest());
    }
}

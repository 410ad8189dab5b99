//! Snapshot files: `snap.<zxid, 16 hex digits>` where the zxid is the last one applied when the
//! snapshot began (snapshots are fuzzy: they may hold later changes, which replaying the log from
//! that zxid on makes consistent).
//!
//! Layout: magic, format, start zxid, database id; the session table (format 2 adds the random
//! session passwords after it); node records `[u32 len][payload]`; an end marker `u32::MAX`;
//! the node count; a crc32 of everything before it. Written to a temporary file, fsynced,
//! renamed, and the directory fsynced. Format 1 (no passwords: every session's password is
//! derived from its id) still loads.

use super::fs::{Fs, OpenMode, StorageFile};
use super::StorageError;
use paddock_tree::snapshot::SnapshotLoader;
use paddock_tree::{DataTree, SnapNode};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"PDKSNAP\x01";
const FORMAT: u32 = 2;
const END: u32 = u32::MAX;

/// The file name of a snapshot begun at `zxid`.
pub fn snap_name(zxid: i64) -> String {
    format!("snap.{:016x}", zxid as u64)
}

/// The session table a snapshot starts with: each session's timeout, and the passwords of the
/// sessions that have random ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTable {
    pub timeouts: Vec<(i64, i32)>,
    pub passwords: Vec<(i64, [u8; 16])>,
}

impl SessionTable {
    /// The tree's sessions, in id order.
    pub fn of(tree: &DataTree) -> SessionTable {
        let mut timeouts: Vec<(i64, i32)> = tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        timeouts.sort_unstable();
        SessionTable {
            timeouts,
            passwords: tree.session_passwords(),
        }
    }
}

/// A snapshot's header: magic, format, zxid, database id, session table.
fn header(zxid: i64, dbid: u64, sessions: &SessionTable, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    out.extend_from_slice(&zxid.to_be_bytes());
    out.extend_from_slice(&dbid.to_be_bytes());
    out.extend_from_slice(&(sessions.timeouts.len() as u32).to_be_bytes());
    for (id, to) in &sessions.timeouts {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&to.to_be_bytes());
    }
    out.extend_from_slice(&(sessions.passwords.len() as u32).to_be_bytes());
    for (id, p) in &sessions.passwords {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(p);
    }
}

/// Bytes buffered before a write to the file, each write then written back at once
/// (`StorageFile::write_behind`): memory stays bounded whatever the tree's size, and a log
/// fsync queues behind at most this much snapshot data on the disk. With 1 MiB, latency-write's
/// p99 on a 10,000,000-znode tree was 1.95-2.92 ms while a snapshot ran (0.41-0.66 ms with
/// none); with 256 KiB 1.21-1.39 ms; with 64 KiB 0.77-0.88 ms, writes under load unchanged.
const BUFFER_BYTES: usize = 64 << 10;

/// Streams a snapshot to a temporary file.
pub struct SnapshotWriter {
    fs: Fs,
    file: Box<dyn StorageFile>,
    buf: Vec<u8>,
    written: u64,
    crc: crc32fast::Hasher,
    tmp: PathBuf,
    dir: PathBuf,
    zxid: i64,
    nodes: u64,
    scratch: Vec<u8>,
}

impl SnapshotWriter {
    /// Starts a snapshot of the state after `zxid`, with its session table.
    pub fn create(
        fs: &Fs,
        dir: &Path,
        zxid: i64,
        dbid: u64,
        sessions: &SessionTable,
    ) -> std::io::Result<SnapshotWriter> {
        fs.create_dir_all(dir)?;
        let tmp = dir.join(format!("{}.tmp", snap_name(zxid)));
        let file = fs.open(&tmp, OpenMode::CreateTruncate)?;
        let mut w = SnapshotWriter {
            fs: fs.clone(),
            file,
            buf: Vec::with_capacity(BUFFER_BYTES),
            written: 0,
            crc: crc32fast::Hasher::new(),
            tmp,
            dir: dir.to_owned(),
            zxid,
            nodes: 0,
            scratch: Vec::new(),
        };
        let mut head = Vec::new();
        header(zxid, dbid, sessions, &mut head);
        w.put(&head)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.buf.extend_from_slice(b);
        if self.buf.len() >= BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_at(&self.buf, self.written)?;
            // Start writing back what is written so far, so the final fsync is short and the
            // log's fsyncs do not wait behind the whole snapshot at once.
            self.file.write_behind(self.written, self.buf.len() as u64);
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Appends one node; its parent must have been written before it.
    pub fn node(&mut self, n: &SnapNode) -> std::io::Result<()> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.extend_from_slice(&[0; 4]);
        n.encode(&mut s);
        let len = (s.len() - 4) as u32;
        s[..4].copy_from_slice(&len.to_be_bytes());
        let r = self.put(&s);
        self.scratch = s;
        self.nodes += 1;
        r
    }

    /// Appends node records already encoded as the file stores them (`[u32 length][node]`,
    /// parents first), `nodes` of them.
    pub fn records(&mut self, bytes: &[u8], nodes: u64) -> std::io::Result<()> {
        self.put(bytes)?;
        self.nodes += nodes;
        Ok(())
    }

    /// Seals, fsyncs and renames the snapshot into place; returns its path.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        let mut tail = Vec::new();
        tail.extend_from_slice(&END.to_be_bytes());
        tail.extend_from_slice(&self.nodes.to_be_bytes());
        self.put(&tail)?;
        let crc = self.crc.clone().finalize();
        self.buf.extend_from_slice(&crc.to_be_bytes());
        self.flush()?;
        self.file.sync_all()?;
        let path = self.dir.join(snap_name(self.zxid));
        self.fs.rename(&self.tmp, &path)?;
        self.fs.sync_dir(&self.dir)?;
        Ok(path)
    }

    /// Where the snapshot is being written (removed by the caller if it fails).
    pub fn temporary_path(&self) -> &Path {
        &self.tmp
    }
}

/// Writes a whole tree at once (a fresh data directory's snapshot at zxid 0, and tests).
pub fn write_whole(fs: &Fs, dir: &Path, tree: &DataTree, dbid: u64) -> std::io::Result<PathBuf> {
    let sessions = SessionTable::of(tree);
    let mut w = SnapshotWriter::create(fs, dir, tree.last_zxid(), dbid, &sessions)?;
    let mut cursor = paddock_tree::SnapshotCursor::whole();
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let (more, nodes) = tree.snapshot_chunk_encoded(&mut cursor, 1024, &mut chunk);
        w.records(&chunk, nodes as u64)?;
        if !more {
            break;
        }
    }
    w.finish()
}

/// A snapshot image in memory, in the file's format (what a leader sends a learner that is too
/// far behind for a DIFF), begun at `zxid`, its nodes appended by `walk` a chunk at a time (it
/// returns whether the walk goes on and how many nodes it appended, or None to give up, and
/// then so does this). For walks of a tree that changes in between: the image is fuzzy, as
/// every snapshot is, and replaying the transactions after `zxid` over it makes it exact.
pub fn image_with(
    zxid: i64,
    dbid: u64,
    sessions: &SessionTable,
    nodes_hint: usize,
    mut walk: impl FnMut(&mut Vec<u8>) -> Option<(bool, usize)>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(nodes_hint * 96 + 64);
    header(zxid, dbid, sessions, &mut out);
    let mut nodes = 0u64;
    loop {
        let (more, n) = walk(&mut out)?;
        nodes += n as u64;
        if !more {
            break;
        }
    }
    out.extend_from_slice(&END.to_be_bytes());
    out.extend_from_slice(&nodes.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Some(out)
}

/// Writes a snapshot image durably as this data directory's snapshot file (temporary file,
/// fsync, rename, directory fsync).
pub fn write_image(fs: &Fs, dir: &Path, zxid: i64, image: &[u8]) -> std::io::Result<PathBuf> {
    fs.create_dir_all(dir)?;
    let tmp = dir.join(format!("{}.tmp", snap_name(zxid)));
    let f = fs.open(&tmp, OpenMode::CreateTruncate)?;
    f.write_at(image, 0)?;
    f.sync_all()?;
    let path = dir.join(snap_name(zxid));
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)?;
    Ok(path)
}

/// Loads a snapshot into a fresh tree, checking it whole first; returns the tree and the
/// database id.
pub fn load(fs: &Fs, path: &Path) -> Result<(DataTree, u64), StorageError> {
    load_with(fs, path, &mut |_, _| {})
}

/// As [`load`], telling `progress` how far the decoding is (bytes done, bytes in all) now and
/// then, for a progress bar.
pub fn load_with(
    fs: &Fs,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(DataTree, u64), StorageError> {
    let bytes = fs.read(path).map_err(|e| StorageError::io(path, e))?;
    parse_with(&bytes, path, progress)
}

/// Decodes a snapshot image (`path` names it in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<(DataTree, u64), StorageError> {
    parse_with(bytes, path, &mut |_, _| {})
}

/// Bytes decoded between two progress reports.
const PROGRESS_EVERY: usize = 1 << 20;

fn parse_with(
    bytes: &[u8],
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(DataTree, u64), StorageError> {
    let corrupt = |offset: usize, reason: &str| StorageError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 + 4 + 8 + 8 + 4 + 4 + 8 + 4 || &bytes[..8] != MAGIC {
        return Err(corrupt(0, "not a Paddock snapshot (bad header)"));
    }
    let body = &bytes[..bytes.len() - 4];
    let want = u32::from_be_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    if crc32fast::hash(body) != want {
        return Err(corrupt(bytes.len() - 4, "checksum mismatch"));
    }
    let be32 = |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    let be64 = |at: usize| i64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let format = be32(8);
    if format != 1 && format != 2 {
        return Err(corrupt(8, &format!("unknown snapshot format {format}")));
    }
    let zxid = be64(12);
    let dbid = be64(20) as u64;
    let nsess = be32(28) as usize;
    let mut at = 32;
    let mut tree = SnapshotLoader::new();
    if body.len() < at + nsess * 12 {
        return Err(corrupt(at, "session table cut short"));
    }
    for _ in 0..nsess {
        tree.session(be64(at), be32(at + 8) as i32);
        at += 12;
    }
    if format >= 2 {
        if body.len() < at + 4 {
            return Err(corrupt(at, "password table cut short"));
        }
        let npass = be32(at) as usize;
        at += 4;
        if body.len() < at + npass * 24 {
            return Err(corrupt(at, "password table cut short"));
        }
        for _ in 0..npass {
            let password: [u8; 16] = body[at + 8..at + 24].try_into().expect("16 bytes");
            tree.session_password(be64(at), password);
            at += 24;
        }
    }
    let mut count = 0u64;
    let mut reported = at;
    loop {
        if body.len() < at + 4 {
            return Err(corrupt(at, "node list cut short"));
        }
        let len = be32(at);
        if len == END {
            break;
        }
        let len = len as usize;
        if body.len() < at + 4 + len {
            return Err(corrupt(at, "node record cut short"));
        }
        let n = SnapNode::decode(&body[at + 4..at + 4 + len])
            .map_err(|e| corrupt(at, &format!("undecodable node: {e}")))?;
        tree.node(&n)
            .map_err(|e| corrupt(at, &format!("node {} does not fit the tree: {e}", n.path)))?;
        count += 1;
        at += 4 + len;
        if at - reported >= PROGRESS_EVERY {
            reported = at;
            progress(at as u64, bytes.len() as u64);
        }
    }
    if body.len() != at + 12 || be64(at + 4) as u64 != count {
        return Err(corrupt(at, "node count does not match"));
    }
    Ok((tree.finish(zxid), dbid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_tree::{Txn, TxnOp};

    /// A whole tree's image at once (the server builds one a chunk at a time, off the core).
    fn image(tree: &DataTree, dbid: u64) -> Vec<u8> {
        let sessions = SessionTable::of(tree);
        let mut cursor = paddock_tree::SnapshotCursor::whole();
        image_with(
            tree.last_zxid(),
            dbid,
            &sessions,
            tree.node_count(),
            |out| Some(tree.snapshot_chunk_encoded(&mut cursor, 4096, out)),
        )
        .expect("the walk never stops early")
    }

    fn session(tree: &mut DataTree, id: i64, zxid: i64, password: Option<[u8; 16]>) {
        tree.apply(&Txn {
            session_id: id,
            cxid: 0,
            zxid,
            time: 1,
            op: TxnOp::CreateSession {
                timeout: 4000,
                password,
            },
        });
    }

    #[test]
    fn random_session_passwords_are_kept() {
        let mut tree = DataTree::new();
        session(&mut tree, 11, 1, Some([9; 16]));
        session(&mut tree, 12, 2, None);
        let (back, dbid) = parse(&image(&tree, 7), Path::new("t")).unwrap();
        assert_eq!(dbid, 7);
        assert_eq!(back.session_password(11), Some([9; 16]));
        assert_eq!(back.session_password(12), None, "derived");
        assert_eq!(back.sessions(), tree.sessions());
    }

    #[test]
    fn a_format_1_snapshot_still_loads_with_derived_passwords() {
        let mut old = Vec::new();
        old.extend_from_slice(MAGIC);
        old.extend_from_slice(&1u32.to_be_bytes());
        old.extend_from_slice(&5i64.to_be_bytes());
        old.extend_from_slice(&0u64.to_be_bytes());
        old.extend_from_slice(&1u32.to_be_bytes());
        old.extend_from_slice(&11i64.to_be_bytes());
        old.extend_from_slice(&4000i32.to_be_bytes());
        let mut cursor = paddock_tree::SnapshotCursor::whole();
        let (_, n) = DataTree::new().snapshot_chunk_encoded(&mut cursor, 100, &mut old);
        old.extend_from_slice(&END.to_be_bytes());
        old.extend_from_slice(&(n as u64).to_be_bytes());
        let crc = crc32fast::hash(&old);
        old.extend_from_slice(&crc.to_be_bytes());
        let (tree, _) = parse(&old, Path::new("old")).unwrap();
        assert_eq!(tree.sessions().get(&11), Some(&4000));
        assert_eq!(tree.session_password(11), None);
        assert_eq!(tree.last_zxid(), 5);
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let mut img = image(&DataTree::new(), 0);
        img[11] = 9;
        let n = img.len() - 4;
        let crc = crc32fast::hash(&img[..n]);
        img[n..].copy_from_slice(&crc.to_be_bytes());
        let Err(e) = parse(&img, Path::new("x")) else {
            panic!("loaded a snapshot of format 9")
        };
        let e = e.to_string();
        assert!(e.contains("unknown snapshot format 9"), "{e}");
    }
}

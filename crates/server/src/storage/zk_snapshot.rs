//! Apache ZooKeeper's snapshot files (`version-2/snapshot.<zxid>`), read into the nodes and
//! sessions Paddock's tree loads: the header, the session table, the ACL cache, every node
//! with its stored Stat, the Adler-32 seal, and the digest trailer of 3.6+ with its second
//! seal (`../shared/spec/zookeeper-server-formats.md` §2). The groundwork of `paddock
//! import-zk`; compressed snapshots (`.gz`, `.snappy`) are refused for now, by name.
//!
//! Every length is checked against what is left and against ZooKeeper's own limit, so a
//! damaged file is an error naming the offset, never a panic or a huge allocation.

use super::zk_jute::{self, Bad, In, ZkFileError};
use paddock_proto::Acl;
use paddock_tree::store::NodeStat;
use paddock_tree::SnapNode;
use std::collections::HashMap;
use std::path::Path;

/// "ZKSN".
const MAGIC: i32 = 0x5A4B_534E;

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
    /// Every node, parents before children; the root's path is "/".
    pub nodes: Vec<SnapNode>,
    /// The digest trailer, if the writer had digests on.
    pub trailer: Option<Trailer>,
}

/// The zxid a snapshot file's name gives (`snapshot.<hex>`), or None.
pub fn name_zxid(name: &str) -> Option<i64> {
    zk_jute::name_zxid(name, "snapshot")
}

/// Reads one ZooKeeper snapshot file.
pub fn read(path: &Path) -> Result<ZkSnapshot, ZkFileError> {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let zxid = name_zxid(name).ok_or_else(|| ZkFileError::Name {
        path: shown.clone(),
    })?;
    if let Some(kind) = [".gz", ".snappy"].into_iter().find(|k| name.ends_with(k)) {
        return Err(ZkFileError::Compressed {
            path: shown,
            kind: kind[1..].to_owned(),
        });
    }
    zk_jute::read_with(path, |bytes| parse(bytes, zxid))
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

fn parse(buf: &[u8], zxid: i64) -> Result<ZkSnapshot, Bad> {
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
    loop {
        let path = i.text("node path")?;
        if path == "/" {
            break; // the end marker
        }
        let data = i.bytes()?.map(<[u8]>::to_vec);
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
        // -1 is ZooKeeper's open ACL for the built-in nodes; a ref missing from the map (a
        // fuzzy snapshot) is restored by the log replay, as in ZooKeeper.
        let acl = match aref {
            -1 => Acl::open_unsafe(),
            r => acls.get(&r).cloned().unwrap_or_default(),
        };
        nodes.push(SnapNode {
            path: if path.is_empty() { "/".into() } else { path },
            data,
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
    let trailer = if i.at == buf.len() {
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
    Ok(ZkSnapshot {
        zxid,
        sessions,
        nodes,
        trailer,
    })
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
}

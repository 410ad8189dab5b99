//! Apache ZooKeeper's transaction logs (`version-2/log.<zxid>`), read into Paddock's
//! transactions (`../shared/spec/zookeeper-server-formats.md` §3-4): the file header, each
//! record's Adler-32 and end-of-record byte, the TxnHeader, the record of every transaction
//! type ZooKeeper 3.8 writes, the TxnDigest trailer, the preallocated zero tail. A torn last
//! record ends the file quietly, as in ZooKeeper; a record whose checksum does not match is
//! an error naming the file and offset. The groundwork of `paddock import-zk`.

use super::zk_jute::{self, Bad, In, ZkFileError};
use paddock_proto::ErrorCode;
use paddock_tree::txn::{CONTAINER_OWNER, TTL_MARK};
use paddock_tree::{Txn, TxnOp};
use std::path::Path;

/// "ZKLG".
const MAGIC: i32 = 0x5A4B_4C47;

/// ZooKeeper refuses record lengths above jute.maxbuffer plus its extra size.
const MAX_RECORD: usize = 2 * 0xFFFFF;

/// A transaction as ZooKeeper logged it, and the tree digest it says follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkTxn {
    pub txn: Txn,
    /// The TxnDigest: the tree's digest after this transaction (3.6+, digests on).
    pub digest: Option<i64>,
}

/// What one log file holds.
#[derive(Debug)]
pub struct ZkLog {
    pub txns: Vec<ZkTxn>,
    /// Where the valid records end (a torn or zero tail after it).
    pub end: usize,
    /// The last record was cut short (a crash while it was written).
    pub torn: bool,
}

/// The zxid a log file's name gives (`log.<hex>`).
pub fn name_zxid(name: &str) -> Option<i64> {
    zk_jute::name_zxid(name, "log")
}

/// Reads one ZooKeeper transaction log file.
pub fn read(path: &Path) -> Result<ZkLog, ZkFileError> {
    zk_jute::read_with(path, parse)
}

/// A log from bytes under no name.
pub fn from_bytes(buf: &[u8]) -> Result<ZkLog, ZkFileError> {
    parse(buf).map_err(|(offset, what)| ZkFileError::Corrupt {
        path: "<bytes>".into(),
        offset,
        what,
    })
}

/// The file header: magic, version, database id.
const HEADER_LEN: usize = 16;

fn parse(buf: &[u8]) -> Result<ZkLog, Bad> {
    if buf.len() < HEADER_LEN {
        // Killed right after it created the file (a new log begins after each snapshot):
        // the header never reached the disk, so neither did any record. ZooKeeper reads such a
        // file as the end of its logs.
        return Ok(ZkLog {
            txns: Vec::new(),
            end: 0,
            torn: true,
        });
    }
    let mut i = In::new(buf, 0);
    let magic = i.int()?;
    if magic != MAGIC {
        return Err((0, format!("magic {magic:#x}, not ZKLG")));
    }
    let _version = i.int()?;
    let _dbid = i.long()?;
    let mut txns = Vec::new();
    let mut torn = false;
    loop {
        let start = i.at;
        // Checksum, length, entry, 'B': running out anywhere is the end of what was written.
        if i.left() < 12 {
            torn = i.buf[i.at..].iter().any(|&b| b != 0);
            break;
        }
        let sum = i.long()?;
        let len = i.int()?;
        if len == 0 {
            break; // the preallocated zeros
        }
        if len < 0 || len as usize > MAX_RECORD {
            return Err((start + 8, format!("unreasonable record length {len}")));
        }
        if i.left() < len as usize + 1 {
            torn = true;
            i.at = start;
            break;
        }
        let entry = i.take(len as usize)?;
        if i.take(1)?[0] != b'B' {
            // ZooKeeper: "Last transaction was partial."
            torn = true;
            i.at = start;
            break;
        }
        let want = adler2::adler32_slice(entry);
        if sum != i64::from(want) {
            return Err((
                start,
                format!("record checksum {sum:#x}, its bytes give {want:#x}"),
            ));
        }
        txns.push(entry_txn(entry, start + 12)?);
    }
    Ok(ZkLog {
        txns,
        end: i.at,
        torn,
    })
}

/// One entry: TxnHeader, the record, and the TxnDigest if there is one.
fn entry_txn(entry: &[u8], base: usize) -> Result<ZkTxn, Bad> {
    let mut i = In::new(entry, base);
    let session_id = i.long()?;
    let cxid = i.int()?;
    let zxid = i.long()?;
    let time = i.long()?;
    let kind = i.int()?;
    let op = if kind == op::CLOSE_SESSION {
        // The record is there when the writer had closeSessionTxn.enabled (the default); the
        // format does not say, so, as ZooKeeper's reader, try it and take a failure as "not
        // there" (what follows is then a TxnDigest or nothing).
        let before = i.at;
        let paths = (|| {
            let n = i.count(4)?;
            let mut paths = Vec::with_capacity(n);
            for _ in 0..n {
                paths.push(i.text("path")?);
            }
            Ok::<_, Bad>(paths)
        })();
        let ephemerals = paths.unwrap_or_else(|_| {
            i.at = before;
            Vec::new()
        });
        TxnOp::CloseSession { ephemerals }
    } else {
        record(&mut i, kind, session_id)?
    };
    let digest = if i.left() >= 12 {
        let version = i.int()?;
        let d = i.long()?;
        (version == paddock_tree::digest::DIGEST_VERSION).then_some(d)
    } else {
        None
    };
    Ok(ZkTxn {
        txn: Txn {
            session_id,
            cxid,
            zxid,
            time,
            op,
        },
        digest,
    })
}

/// ZooKeeper's transaction types (opcodes).
mod op {
    pub const ERROR: i32 = -1;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
}

/// The record of a transaction of type `kind`.
fn record(i: &mut In<'_>, kind: i32, session: i64) -> Result<TxnOp, Bad> {
    let at = i.offset();
    Ok(match kind {
        op::CREATE_SESSION => TxnOp::CreateSession {
            timeout: i.int()?,
            password: None,
        },
        op::CREATE | op::CREATE2 => {
            let path = i.text("path")?;
            let data = i.bytes()?.map(<[u8]>::to_vec);
            let acl = i.acl()?;
            let ephemeral = i.boolean()?;
            // Logs from before 3.3 lack the parent's cversion.
            let parent_cversion = if i.left() >= 4 { i.int()? } else { -1 };
            TxnOp::Create {
                path,
                data,
                acl,
                owner: if ephemeral { session } else { 0 },
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => TxnOp::Create {
            path: i.text("path")?,
            data: i.bytes()?.map(<[u8]>::to_vec),
            acl: i.acl()?,
            owner: CONTAINER_OWNER,
            parent_cversion: i.int()?,
        },
        op::CREATE_TTL => {
            let path = i.text("path")?;
            let data = i.bytes()?.map(<[u8]>::to_vec);
            let acl = i.acl()?;
            let parent_cversion = i.int()?;
            let ttl = i.long()?;
            TxnOp::Create {
                path,
                data,
                acl,
                owner: TTL_MARK | (ttl & paddock_tree::txn::MAX_TTL),
                parent_cversion,
            }
        }
        op::DELETE | op::DELETE_CONTAINER => TxnOp::Delete {
            path: i.text("path")?,
        },
        op::SET_DATA | op::RECONFIG => TxnOp::SetData {
            path: i.text("path")?,
            data: i.bytes()?.map(<[u8]>::to_vec),
            version: i.int()?,
        },
        op::SET_ACL => TxnOp::SetAcl {
            path: i.text("path")?,
            acl: i.acl()?,
            version: i.int()?,
        },
        op::CHECK => TxnOp::Check {
            path: i.text("path")?,
            version: i.int()?,
        },
        op::ERROR => {
            let code = i.int()?;
            TxnOp::Error {
                err: ErrorCode::from_code(code)
                    .ok_or_else(|| (at, format!("an error transaction with code {code}")))?,
            }
        }
        op::MULTI => {
            let n = i.count(8)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                let sub = i.int()?;
                let at = i.offset();
                let data = i
                    .bytes()?
                    .ok_or_else(|| (at, "a multi sub-transaction without data".to_owned()))?;
                let mut s = In::new(data, at + 4);
                if sub == op::MULTI || sub == op::CREATE_SESSION {
                    return Err((at, format!("type {sub} inside a multi")));
                }
                ops.push(record(&mut s, sub, session)?);
            }
            TxnOp::Multi(ops)
        }
        other => return Err((at - 4, format!("unknown transaction type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// A log with one setData record (and a digest), then zero padding.
    fn one_record() -> Vec<u8> {
        let mut entry = Vec::new();
        entry.extend_from_slice(&7i64.to_be_bytes());
        entry.extend_from_slice(&3i32.to_be_bytes());
        entry.extend_from_slice(&0x1_0000_0005i64.to_be_bytes());
        entry.extend_from_slice(&1_000i64.to_be_bytes());
        entry.extend_from_slice(&op::SET_DATA.to_be_bytes());
        string(&mut entry, "/a");
        string(&mut entry, "v");
        entry.extend_from_slice(&2i32.to_be_bytes());
        entry.extend_from_slice(&2i32.to_be_bytes());
        entry.extend_from_slice(&(-9i64).to_be_bytes());
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&i64::from(adler2::adler32_slice(&entry)).to_be_bytes());
        b.extend_from_slice(&(entry.len() as i32).to_be_bytes());
        b.extend_from_slice(&entry);
        b.push(b'B');
        b.extend_from_slice(&[0; 64]);
        b
    }

    #[test]
    fn a_log_whose_header_never_reached_the_disk_is_a_torn_end() {
        for len in 0..HEADER_LEN {
            let log = parse(&one_record()[..len]).unwrap();
            assert!(
                log.txns.is_empty() && log.torn && log.end == 0,
                "{len} bytes"
            );
        }
    }

    #[test]
    fn a_record_reads_back_and_the_zero_tail_ends_the_file() {
        let log = parse(&one_record()).unwrap();
        assert!(!log.torn);
        assert_eq!(log.txns.len(), 1);
        let t = &log.txns[0];
        assert_eq!(
            (t.txn.session_id, t.txn.cxid, t.txn.zxid),
            (7, 3, 0x1_0000_0005)
        );
        assert_eq!(
            t.txn.op,
            TxnOp::SetData {
                path: "/a".into(),
                data: Some(b"v".to_vec()),
                version: 2
            }
        );
        assert_eq!(t.digest, Some(-9));
    }

    #[test]
    fn a_torn_tail_ends_quietly_and_a_bad_checksum_names_its_offset() {
        let good = one_record();
        let record_end = good.len() - 64;
        for cut in 16..record_end {
            let log = parse(&good[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
            assert!(log.txns.is_empty() && log.end == 16, "cut {cut}");
        }
        let mut bad = good.clone();
        bad[40] ^= 1; // inside the entry
        let (offset, what) = parse(&bad).unwrap_err();
        assert_eq!(offset, 16, "{what}");
        for at in 0..good.len() {
            let mut b = good.clone();
            b[at] ^= 0x80;
            let _ = parse(&b); // never panics
        }
    }
}

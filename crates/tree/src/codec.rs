//! The byte form of transactions, as the log and (later) the quorum carry them. Jute primitives
//! with a one-byte tag per operation; the reader rejects anything it does not understand rather
//! than guess.

use crate::digest::ZxidDigest;
use crate::snapshot::SnapNode;
use crate::txn::{Txn, TxnOp};
use bytes::BufMut;
use paddock_proto::{Acl, DecodeError, ErrorCode, Field, JuteWrite, Reader};

/// Version of this encoding, written at the front of every transaction.
pub const TXN_FORMAT: u8 = 1;

/// The same encoding with a digest mark after the header: the tree digest the leader had at
/// an earlier zxid, for learners to compare with theirs (ZooKeeper carries a digest in every
/// proposal for the same check). Written only when a mark is carried, so a transaction
/// without one keeps the bytes of format 1.
pub const TXN_FORMAT_MARKED: u8 = 2;

/// The bytes a digest mark adds: its zxid and digest.
pub const MARK_BYTES: usize = 16;

mod tag {
    pub const CREATE_SESSION: u8 = 1;
    pub const CLOSE_SESSION: u8 = 2;
    pub const CREATE: u8 = 3;
    pub const DELETE: u8 = 4;
    pub const SET_DATA: u8 = 5;
    pub const SET_ACL: u8 = 6;
    pub const CHECK: u8 = 7;
    pub const ERROR: u8 = 8;
    pub const MULTI: u8 = 9;
    /// A createSession with a random password (tag 1 is one with a derived password, all
    /// that data written before random passwords holds).
    pub const CREATE_SESSION_RANDOM: u8 = 10;
    pub const RECONFIG: u8 = 11;
    pub const RESTORE: u8 = 12;
}

/// The largest encoded transaction any server accepts: the log refuses longer records when it
/// reads them back, so prep refuses a request whose transaction would be longer (a peer frame
/// may be far larger). Nothing accepted can then stall replication or a restart.
pub const MAX_TXN_BYTES: usize = 64 << 20;

/// The longest record the log accepts: the largest transaction with a digest mark.
pub const MAX_RECORD_BYTES: usize = MAX_TXN_BYTES + MARK_BYTES;

/// Bytes before the operation: format, session, cxid, zxid, time.
const TXN_HEADER: usize = 1 + 8 + 4 + 8 + 8;

/// The length `encode_txn` gives a transaction of `op`, without encoding it.
pub fn encoded_len(op: &TxnOp) -> usize {
    TXN_HEADER + op_len(op)
}

fn op_len(op: &TxnOp) -> usize {
    let string = |s: &str| 4 + s.len();
    let data = |d: &Option<Vec<u8>>| 4 + d.as_ref().map_or(0, |d| d.len());
    let acl = |a: &[Acl]| {
        4 + a
            .iter()
            .map(|e| 4 + string(&e.id.scheme) + string(&e.id.id))
            .sum::<usize>()
    };
    1 + match op {
        TxnOp::CreateSession { password, .. } => 4 + password.map_or(0, |p| p.len()),
        TxnOp::CloseSession { ephemerals } => {
            4 + ephemerals.iter().map(|p| string(p)).sum::<usize>()
        }
        TxnOp::Create {
            path,
            data: d,
            acl: a,
            ..
        } => string(path) + data(d) + acl(a) + 8 + 4,
        TxnOp::Delete { path } => string(path),
        TxnOp::SetData { path, data: d, .. } => string(path) + data(d) + 4,
        TxnOp::SetAcl { path, acl: a, .. } => string(path) + acl(a) + 4,
        TxnOp::Check { path, .. } => string(path) + 4,
        TxnOp::Error { .. } => 4,
        TxnOp::Multi(ops) => 4 + ops.iter().map(op_len).sum::<usize>(),
        TxnOp::Reconfig { config } => 4 + config.len(),
        TxnOp::Restore(image) => restore_len(image),
    }
}

/// The length `encode_txn` gives a restore of `image`, without encoding it or building the
/// transaction.
pub fn encoded_restore_len(image: &crate::RestoreImage) -> usize {
    TXN_HEADER + 1 + restore_len(image)
}

fn restore_len(image: &crate::RestoreImage) -> usize {
    let nodes: usize = image.nodes.iter().map(|n| 4 + snap_node_len(n)).sum();
    8 + 4
        + image.sessions.len() * (8 + 4 + 1)
        + 16 * image.sessions.iter().filter(|s| s.2.is_some()).count()
        + 4
        + nodes
}

/// Appends the encoded transaction.
pub fn encode_txn(t: &Txn, buf: &mut Vec<u8>) {
    encode_txn_marked(t, None, buf)
}

/// Appends the encoded transaction, carrying `mark` if given.
pub fn encode_txn_marked(t: &Txn, mark: Option<ZxidDigest>, buf: &mut Vec<u8>) {
    buf.push(if mark.is_some() {
        TXN_FORMAT_MARKED
    } else {
        TXN_FORMAT
    });
    buf.put_i64(t.session_id);
    buf.put_i32(t.cxid);
    buf.put_i64(t.zxid);
    buf.put_i64(t.time);
    if let Some(m) = mark {
        buf.put_i64(m.zxid);
        buf.put_i64(m.digest);
    }
    encode_op(&t.op, buf);
}

fn encode_op(op: &TxnOp, buf: &mut Vec<u8>) {
    match op {
        TxnOp::CreateSession {
            timeout,
            password: None,
        } => {
            buf.push(tag::CREATE_SESSION);
            buf.put_i32(*timeout);
        }
        TxnOp::CreateSession {
            timeout,
            password: Some(p),
        } => {
            buf.push(tag::CREATE_SESSION_RANDOM);
            buf.put_i32(*timeout);
            buf.extend_from_slice(p);
        }
        TxnOp::CloseSession { ephemerals } => {
            buf.push(tag::CLOSE_SESSION);
            ephemerals.put(buf);
        }
        TxnOp::Create {
            path,
            data,
            acl,
            owner,
            parent_cversion,
        } => {
            buf.push(tag::CREATE);
            buf.put_string(path);
            data.put(buf);
            acl.put(buf);
            buf.put_i64(*owner);
            buf.put_i32(*parent_cversion);
        }
        TxnOp::Delete { path } => {
            buf.push(tag::DELETE);
            buf.put_string(path);
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            buf.push(tag::SET_DATA);
            buf.put_string(path);
            data.put(buf);
            buf.put_i32(*version);
        }
        TxnOp::SetAcl { path, acl, version } => {
            buf.push(tag::SET_ACL);
            buf.put_string(path);
            acl.put(buf);
            buf.put_i32(*version);
        }
        TxnOp::Check { path, version } => {
            buf.push(tag::CHECK);
            buf.put_string(path);
            buf.put_i32(*version);
        }
        TxnOp::Error { err } => {
            buf.push(tag::ERROR);
            buf.put_i32(err.code());
        }
        TxnOp::Multi(ops) => {
            buf.push(tag::MULTI);
            buf.put_i32(ops.len() as i32);
            for o in ops {
                encode_op(o, buf);
            }
        }
        TxnOp::Reconfig { config } => {
            buf.push(tag::RECONFIG);
            buf.put_i32(config.len() as i32);
            buf.extend_from_slice(config);
        }
        TxnOp::Restore(image) => {
            buf.push(tag::RESTORE);
            buf.put_i64(image.zxid);
            buf.put_i32(image.sessions.len() as i32);
            for &(id, timeout, password) in &image.sessions {
                buf.put_i64(id);
                buf.put_i32(timeout);
                match password {
                    Some(p) => {
                        buf.push(1);
                        buf.extend_from_slice(&p);
                    }
                    None => buf.push(0),
                }
            }
            buf.put_i32(image.nodes.len() as i32);
            for n in &image.nodes {
                let at = buf.len();
                buf.put_u32(0);
                n.encode(buf);
                let len = (buf.len() - at - 4) as u32;
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }
}

/// The length `SnapNode::encode` gives a node.
fn snap_node_len(n: &SnapNode) -> usize {
    let string = |s: &str| 4 + s.len();
    string(&n.path)
        + 4
        + n.data.as_ref().map_or(0, |d| d.len())
        + 4
        + n.acl
            .iter()
            .map(|a| 4 + string(&a.id.scheme) + string(&a.id.id))
            .sum::<usize>()
        + 5 * 8
        + 3 * 4
        + 8
}

/// Where an encoded transaction's op tag sits: format, session, cxid, zxid, time.
const OP_AT: usize = 1 + 8 + 4 + 8 + 8;

/// Whether an encoded transaction (as `encode_txn` writes it) is a reconfiguration: one
/// byte read, so that the replication core can ask it of every entry it logs.
pub fn is_reconfig(bytes: &[u8]) -> bool {
    let at = match bytes.first() {
        Some(&TXN_FORMAT) => OP_AT,
        Some(&TXN_FORMAT_MARKED) => OP_AT + MARK_BYTES,
        _ => return false,
    };
    bytes.get(at) == Some(&tag::RECONFIG)
}

/// The zxid of an encoded transaction, read without decoding the rest (which a start-up
/// leaves to the apply, so a long log is decoded once, as it is applied).
pub fn txn_zxid(bytes: &[u8]) -> Result<i64, DecodeError> {
    match bytes.first() {
        Some(&TXN_FORMAT) | Some(&TXN_FORMAT_MARKED) => {}
        Some(_) => return Err(DecodeError::Invalid("unknown transaction format")),
        None => return Err(DecodeError::Invalid("empty transaction")),
    }
    const ZXID_AT: usize = 1 + 8 + 4;
    bytes
        .get(ZXID_AT..ZXID_AT + 8)
        .map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
        .ok_or(DecodeError::Invalid("transaction cut short"))
}

/// An encoded transaction without its digest mark, if it carries one: a mark is checked
/// against the tree as it was when the transaction was first applied, which a replay over a
/// fuzzy snapshot need not reproduce until it has passed the snapshot's walk.
pub fn without_mark(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() != Some(&TXN_FORMAT_MARKED) || bytes.len() < OP_AT + MARK_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() - MARK_BYTES);
    out.push(TXN_FORMAT);
    out.extend_from_slice(&bytes[1..OP_AT]);
    out.extend_from_slice(&bytes[OP_AT + MARK_BYTES..]);
    Some(out)
}

/// Decodes one transaction that must fill `bytes` exactly (a digest mark is read and left).
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    decode_txn_marked(bytes).map(|(t, _)| t)
}

/// Decodes one transaction that must fill `bytes` exactly, with its digest mark if any.
pub fn decode_txn_marked(bytes: &[u8]) -> Result<(Txn, Option<ZxidDigest>), DecodeError> {
    let r = &mut Reader::new(bytes);
    let marked = match r.read_u8()? {
        TXN_FORMAT => false,
        TXN_FORMAT_MARKED => true,
        _ => return Err(DecodeError::Invalid("unknown transaction format")),
    };
    let (session_id, cxid, zxid, time) =
        (r.read_i64()?, r.read_i32()?, r.read_i64()?, r.read_i64()?);
    let mark = if marked {
        Some(ZxidDigest {
            zxid: r.read_i64()?,
            digest: r.read_i64()?,
        })
    } else {
        None
    };
    let t = Txn {
        session_id,
        cxid,
        zxid,
        time,
        op: decode_op(r, 0)?,
    };
    if r.remaining() != 0 {
        return Err(DecodeError::Invalid("trailing bytes after transaction"));
    }
    Ok((t, mark))
}

fn decode_op(r: &mut Reader<'_>, depth: u8) -> Result<TxnOp, DecodeError> {
    Ok(match r.read_u8()? {
        tag::CREATE_SESSION => TxnOp::CreateSession {
            timeout: r.read_i32()?,
            password: None,
        },
        tag::CREATE_SESSION_RANDOM => {
            let timeout = r.read_i32()?;
            let mut password = [0u8; 16];
            for b in password.iter_mut() {
                *b = r.read_u8()?;
            }
            TxnOp::CreateSession {
                timeout,
                password: Some(password),
            }
        }
        tag::CLOSE_SESSION => TxnOp::CloseSession {
            ephemerals: Vec::<String>::get(r)?,
        },
        tag::CREATE => TxnOp::Create {
            path: r.read_string()?,
            data: Option::<Vec<u8>>::get(r)?,
            acl: Vec::<Acl>::get(r)?,
            owner: r.read_i64()?,
            parent_cversion: r.read_i32()?,
        },
        tag::DELETE => TxnOp::Delete {
            path: r.read_string()?,
        },
        tag::SET_DATA => TxnOp::SetData {
            path: r.read_string()?,
            data: Option::<Vec<u8>>::get(r)?,
            version: r.read_i32()?,
        },
        tag::SET_ACL => TxnOp::SetAcl {
            path: r.read_string()?,
            acl: Vec::<Acl>::get(r)?,
            version: r.read_i32()?,
        },
        tag::CHECK => TxnOp::Check {
            path: r.read_string()?,
            version: r.read_i32()?,
        },
        tag::ERROR => {
            let code = r.read_i32()?;
            TxnOp::Error {
                err: ErrorCode::from_code(code)
                    .ok_or(DecodeError::Invalid("unknown error code"))?,
            }
        }
        tag::RECONFIG => TxnOp::Reconfig {
            config: Option::<Vec<u8>>::get(r)?.unwrap_or_default(),
        },
        tag::RESTORE if depth == 0 => {
            let zxid = r.read_i64()?;
            let n = r.read_i32()?;
            // Each session takes at least 13 bytes: a count beyond what is left is a lie.
            if n < 0 || n as usize > r.remaining() / 13 {
                return Err(DecodeError::Invalid("bad session count"));
            }
            let mut sessions = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let id = r.read_i64()?;
                let timeout = r.read_i32()?;
                let password = match r.read_u8()? {
                    0 => None,
                    1 => {
                        let mut p = [0u8; 16];
                        for b in p.iter_mut() {
                            *b = r.read_u8()?;
                        }
                        Some(p)
                    }
                    _ => return Err(DecodeError::Invalid("bad password flag")),
                };
                sessions.push((id, timeout, password));
            }
            let n = r.read_i32()?;
            if n < 0 || n as usize > r.remaining() / 4 {
                return Err(DecodeError::Invalid("bad node count"));
            }
            let mut nodes = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let bytes = r
                    .read_buffer_opt()?
                    .ok_or(DecodeError::Invalid("null snapshot node"))?;
                nodes.push(SnapNode::decode(bytes)?);
            }
            TxnOp::Restore(Box::new(crate::restore::RestoreImage {
                zxid,
                sessions,
                nodes,
            }))
        }
        tag::MULTI if depth == 0 => {
            let n = r.read_i32()?;
            if n < 0 || n as usize > r.remaining() {
                return Err(DecodeError::Invalid("bad multi length"));
            }
            let mut ops = Vec::with_capacity(n as usize);
            for _ in 0..n {
                ops.push(decode_op(r, depth + 1)?);
            }
            TxnOp::Multi(ops)
        }
        _ => return Err(DecodeError::Invalid("unknown transaction operation")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_proto::Id;
    use proptest::prelude::*;

    fn arb_op() -> impl Strategy<Value = TxnOp> {
        let path = "/[a-z]{1,6}(/[a-z0-9]{1,4}){0,2}";
        let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..40));
        let acl =
            prop::collection::vec((0..32i32, "[a-z]{1,5}", "[a-z:]{0,8}"), 0..3).prop_map(|v| {
                v.into_iter()
                    .map(|(p, s, i)| Acl {
                        perms: p,
                        id: Id::new(s, i),
                    })
                    .collect::<Vec<_>>()
            });
        let leaf = prop_oneof![
            (any::<i32>(), any::<Option<[u8; 16]>>())
                .prop_map(|(timeout, password)| TxnOp::CreateSession { timeout, password }),
            prop::collection::vec(path, 0..3)
                .prop_map(|ephemerals| TxnOp::CloseSession { ephemerals }),
            (path, data.clone(), acl.clone(), any::<i64>(), any::<i32>()).prop_map(
                |(path, data, acl, owner, parent_cversion)| {
                    TxnOp::Create {
                        path,
                        data,
                        acl,
                        owner,
                        parent_cversion,
                    }
                }
            ),
            path.prop_map(|path| TxnOp::Delete { path }),
            (path, data, any::<i32>()).prop_map(|(path, data, version)| TxnOp::SetData {
                path,
                data,
                version
            }),
            (path, acl, any::<i32>()).prop_map(|(path, acl, version)| TxnOp::SetAcl {
                path,
                acl,
                version
            }),
            (path, any::<i32>()).prop_map(|(path, version)| TxnOp::Check { path, version }),
            prop::sample::select(ErrorCode::ALL.to_vec()).prop_map(|err| TxnOp::Error { err }),
            prop::collection::vec(any::<u8>(), 0..60).prop_map(|config| TxnOp::Reconfig { config }),
        ];
        let node = (
            "/[a-z]{1,6}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            any::<i64>(),
            any::<i32>(),
        )
            .prop_map(|(path, data, z, v)| crate::SnapNode {
                path,
                data,
                acl: Vec::new(),
                stat: crate::store::NodeStat {
                    czxid: z,
                    mzxid: z,
                    pzxid: z,
                    ctime: z,
                    mtime: z,
                    version: v,
                    cversion: v,
                    aversion: v,
                },
                owner: z,
            });
        let restore = (
            any::<i64>(),
            prop::collection::vec(
                (any::<i64>(), any::<i32>(), any::<Option<[u8; 16]>>()),
                0..3,
            ),
            prop::collection::vec(node, 0..4),
        )
            .prop_map(|(zxid, sessions, nodes)| {
                TxnOp::Restore(Box::new(crate::RestoreImage {
                    zxid,
                    sessions,
                    nodes,
                }))
            });
        prop_oneof![4 => leaf.clone(), 1 => prop::collection::vec(leaf, 0..5).prop_map(TxnOp::Multi), 1 => restore]
    }

    proptest! {
        #[test]
        fn round_trip(op in arb_op(), session_id in any::<i64>(), cxid in any::<i32>(), zxid in any::<i64>(), time in any::<i64>()) {
            let t = Txn { session_id, cxid, zxid, time, op };
            let mut b = Vec::new();
            encode_txn(&t, &mut b);
            prop_assert_eq!(encoded_len(&t.op), b.len());
            if let TxnOp::Restore(image) = &t.op {
                prop_assert_eq!(encoded_restore_len(image), b.len());
            }
            prop_assert_eq!(decode_txn(&b).unwrap(), t);
            // Any strict prefix is rejected, never misread.
            for cut in [b.len() / 2, b.len() - 1] {
                prop_assert!(decode_txn(&b[..cut]).is_err());
            }
        }

        #[test]
        fn a_digest_mark_round_trips_and_leaves_the_transaction_alone(op in arb_op(), zxid in any::<i64>(), mz in any::<i64>(), md in any::<i64>()) {
            let t = Txn { session_id: 7, cxid: 3, zxid, time: 11, op };
            let mark = ZxidDigest { zxid: mz, digest: md };
            let mut b = Vec::new();
            encode_txn_marked(&t, Some(mark), &mut b);
            prop_assert_eq!(encoded_len(&t.op) + MARK_BYTES, b.len());
            prop_assert_eq!(decode_txn_marked(&b).unwrap(), (t.clone(), Some(mark)));
            prop_assert_eq!(decode_txn(&b).unwrap(), t.clone());
            prop_assert_eq!(is_reconfig(&b), matches!(t.op, TxnOp::Reconfig { .. }));
            let mut plain = Vec::new();
            encode_txn(&t, &mut plain);
            prop_assert_eq!(plain[0], TXN_FORMAT);
            prop_assert_eq!(decode_txn_marked(&plain).unwrap(), (t.clone(), None));
            prop_assert_eq!(is_reconfig(&plain), matches!(t.op, TxnOp::Reconfig { .. }));
            for cut in [b.len() / 2, b.len() - 1] {
                prop_assert!(decode_txn_marked(&b[..cut]).is_err());
            }
            // Without its mark it is the plain encoding; a plain one has none to drop.
            prop_assert_eq!(without_mark(&b), Some(plain.clone()));
            prop_assert_eq!(without_mark(&plain), None);
            prop_assert_eq!(txn_zxid(&b).unwrap(), zxid);
            prop_assert_eq!(txn_zxid(&plain).unwrap(), zxid);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_txn(&bytes);
        }
    }
}

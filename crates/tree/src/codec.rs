//! The byte form of transactions, as the log and (later) the quorum carry them. Jute primitives
//! with a one-byte tag per operation; the reader rejects anything it does not understand rather
//! than guess.

use crate::txn::{Txn, TxnOp};
use bytes::BufMut;
use paddock_proto::{Acl, DecodeError, ErrorCode, Field, JuteWrite, Reader};

/// Version of this encoding, written at the front of every transaction.
pub const TXN_FORMAT: u8 = 1;

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
}

/// The largest encoded transaction any server accepts: the log refuses longer records when it
/// reads them back, so prep refuses a request whose transaction would be longer (a peer frame
/// may be far larger). Nothing accepted can then stall replication or a restart.
pub const MAX_TXN_BYTES: usize = 64 << 20;

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
    }
}

/// Appends the encoded transaction.
pub fn encode_txn(t: &Txn, buf: &mut Vec<u8>) {
    buf.push(TXN_FORMAT);
    buf.put_i64(t.session_id);
    buf.put_i32(t.cxid);
    buf.put_i64(t.zxid);
    buf.put_i64(t.time);
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
    }
}

/// Where an encoded transaction's op tag sits: format, session, cxid, zxid, time.
const OP_AT: usize = 1 + 8 + 4 + 8 + 8;

/// Whether an encoded transaction (as `encode_txn` writes it) is a reconfiguration: one
/// byte read, so that the replication core can ask it of every entry it logs.
pub fn is_reconfig(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TXN_FORMAT) && bytes.get(OP_AT) == Some(&tag::RECONFIG)
}

/// Decodes one transaction that must fill `bytes` exactly.
pub fn decode_txn(bytes: &[u8]) -> Result<Txn, DecodeError> {
    let r = &mut Reader::new(bytes);
    if r.read_u8()? != TXN_FORMAT {
        return Err(DecodeError::Invalid("unknown transaction format"));
    }
    let t = Txn {
        session_id: r.read_i64()?,
        cxid: r.read_i32()?,
        zxid: r.read_i64()?,
        time: r.read_i64()?,
        op: decode_op(r, 0)?,
    };
    if r.remaining() != 0 {
        return Err(DecodeError::Invalid("trailing bytes after transaction"));
    }
    Ok(t)
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
        prop_oneof![4 => leaf.clone(), 1 => prop::collection::vec(leaf, 0..5).prop_map(TxnOp::Multi)]
    }

    proptest! {
        #[test]
        fn round_trip(op in arb_op(), session_id in any::<i64>(), cxid in any::<i32>(), zxid in any::<i64>(), time in any::<i64>()) {
            let t = Txn { session_id, cxid, zxid, time, op };
            let mut b = Vec::new();
            encode_txn(&t, &mut b);
            prop_assert_eq!(encoded_len(&t.op), b.len());
            prop_assert_eq!(decode_txn(&b).unwrap(), t);
            // Any strict prefix is rejected, never misread.
            for cut in [b.len() / 2, b.len() - 1] {
                prop_assert!(decode_txn(&b[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_txn(&bytes);
        }
    }
}

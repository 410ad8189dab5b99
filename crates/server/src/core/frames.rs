//! The frames the core sends: replies (a reply header, then the body on success), the
//! handshake's answer, watch notifications, and the replies to applied writes, shaped by the
//! request they answer.

use bytes::{BufMut, Bytes, BytesMut};
use paddock_proto::{
    protocol, state, xid, ConnectResponse, Create2Response, CreateKind, CreateResponse, MultiOp,
    OpResult, Record, Request, Stat, StatResponse, WatcherEvent,
};
use paddock_tree::{Applied, Outcome};

pub(crate) use crate::read_path::frame;

pub(crate) fn record_frame(r: &impl Record) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    r.encode(&mut b);
    let len = (b.len() - 4) as i32;
    b[0..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

/// What a connection's handshake says about how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    /// Old clients omit the readOnly byte and must not get one back.
    pub read_only_byte: bool,
    /// The protocol version to answer: the lower of what the client asked for and what this
    /// server speaks (`paddock_proto::protocol`); 0 for every ZooKeeper client.
    pub protocol: i32,
}

impl Hello {
    pub(crate) fn of(req: &paddock_proto::ConnectRequest) -> Hello {
        Hello {
            read_only_byte: req.read_only.is_some(),
            protocol: req.protocol_version.clamp(0, protocol::CURRENT),
        }
    }
}

impl Default for Hello {
    fn default() -> Hello {
        Hello {
            read_only_byte: true,
            protocol: protocol::ZOOKEEPER,
        }
    }
}

/// The handshake's answer. Session 0 refuses the session (expired or invalid: timeout 0 and a
/// zero password, as ZooKeeper sends).
pub(crate) fn connect_frame(
    session: i64,
    timeout: i32,
    password: [u8; 16],
    hello: Hello,
    read_only: bool,
) -> Bytes {
    record_frame(&ConnectResponse {
        protocol_version: hello.protocol,
        timeout,
        session_id: session,
        passwd: password.to_vec(),
        read_only: hello.read_only_byte.then_some(read_only),
    })
}

/// A watch notification. `zxid` is the transaction that fired it, as ZooKeeper 3.9 sends
/// (ZOOKEEPER-4655; 3.8 sends -1 always); -1 for events that no transaction fired (those a
/// setWatches raises for changes made while the client was away).
pub(crate) fn notification(zxid: i64, event_type: i32, path: &str) -> Bytes {
    frame(xid::NOTIFICATION, zxid, 0, |b| {
        WatcherEvent {
            event_type,
            state: state::SYNC_CONNECTED,
            path: path.to_owned(),
        }
        .encode(b)
    })
}

/// The reply to an applied write, shaped by the request it answers.
pub(crate) fn reply_for_write(xid: i32, zxid: i64, req: &Request, applied: &Applied) -> Bytes {
    let outcome = match &applied.result {
        Err(e) => return frame(xid, zxid, e.code(), |_| {}),
        Ok(o) => o,
    };
    match (req, outcome) {
        (Request::Create(c), Outcome::Created { path, stat }) => match c.kind {
            CreateKind::Create => frame(xid, zxid, 0, |b| {
                CreateResponse { path: path.clone() }.encode(b)
            }),
            _ => frame(xid, zxid, 0, |b| {
                Create2Response {
                    path: path.clone(),
                    stat: stat.clone(),
                }
                .encode(b)
            }),
        },
        (Request::SetData(_) | Request::SetAcl(_), Outcome::Stat(stat)) => {
            frame(xid, zxid, 0, |b| {
                StatResponse { stat: stat.clone() }.encode(b)
            })
        }
        (Request::Multi(ops), Outcome::Multi(results)) => {
            let failed = results.iter().any(|r| r.is_err());
            let res: Vec<OpResult> = results
                .iter()
                .zip(ops.iter())
                .map(|(r, o)| match r {
                    Err(code) => OpResult::Error(*code),
                    Ok(_) if failed => OpResult::Error(0),
                    Ok(out) => multi_result(o, out),
                })
                .collect();
            frame(xid, zxid, 0, |b| {
                paddock_proto::encode_multi_response(&res, b)
            })
        }
        _ => frame(xid, zxid, 0, |_| {}),
    }
}

fn multi_result(op: &MultiOp, out: &Outcome) -> OpResult {
    match (op, out) {
        (MultiOp::Create(c), Outcome::Created { path, stat }) => match c.kind {
            CreateKind::Create => OpResult::Create(path.clone()),
            _ => OpResult::Create2(path.clone(), stat.clone()),
        },
        (MultiOp::Delete(_), _) => OpResult::Delete,
        (MultiOp::SetData(_), Outcome::Stat(s)) => OpResult::SetData(s.clone()),
        (MultiOp::Check(_), _) => OpResult::Check,
        _ => OpResult::SetData(Stat::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_proto::{ErrorCode, PathRequest};

    fn header(f: &[u8]) -> (i32, i32, i64, i32) {
        let n = |a: usize| i32::from_be_bytes(f[a..a + 4].try_into().unwrap());
        let z = i64::from_be_bytes(f[8..16].try_into().unwrap());
        (n(0), n(4), z, n(16))
    }

    #[test]
    fn an_error_reply_has_a_header_and_no_body() {
        let f = frame(7, 0x11, ErrorCode::NoNode.code(), |b| {
            PathRequest { path: "/x".into() }.encode(b)
        });
        assert_eq!(header(&f), (16, 7, 0x11, ErrorCode::NoNode.code()));
        assert_eq!(f.len(), 20);
    }

    #[test]
    fn a_refused_session_gets_timeout_zero_and_a_zero_password() {
        let f = connect_frame(0, 0, [0; 16], Hello::default(), false);
        let mut want = BytesMut::new();
        ConnectResponse {
            protocol_version: 0,
            timeout: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        }
        .encode(&mut want);
        assert_eq!(&f[4..], &want[..]);
        let old = Hello {
            read_only_byte: false,
            protocol: 0,
        };
        let old_client = connect_frame(5, 4000, [1; 16], old, false);
        assert_eq!(
            old_client.len(),
            f.len() - 1,
            "no readOnly byte for old clients"
        );
    }

    #[test]
    fn notifications_carry_the_zxid_given() {
        let f = notification(-1, paddock_proto::event::NODE_CREATED, "/a");
        let (_, x, z, err) = header(&f);
        assert_eq!((x, z, err), (xid::NOTIFICATION, -1, 0));
        let f = notification(0x1_0000_0007, paddock_proto::event::NODE_CREATED, "/a");
        assert_eq!(header(&f).2, 0x1_0000_0007);
    }
}

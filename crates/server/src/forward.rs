//! What a follower or observer sends its leader for a client's write: the request itself, not a
//! transaction, since only the leader can prepare writes (it alone knows every write in
//! flight). As ZooKeeper's REQUEST packet, it carries the session, the xid and the identities
//! of the connection, so the leader checks ACLs as the follower would have.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use paddock_proto::{Id, Request};
use paddock_tree::AuthInfo;

/// A write forwarded to the leader.
#[derive(Debug, Clone, PartialEq)]
pub enum Forward {
    /// A client's write request. `local`: its session is a local session of the sender
    /// (`localSessionsEnabled`), unknown to the leader, which prepares the write anyway and
    /// refuses any ephemeral node in it.
    Write {
        session: i64,
        xid: i32,
        auth: AuthInfo,
        request: Request,
        local: bool,
    },
    /// A write whose body could not be decoded (it still takes a zxid, as in ZooKeeper).
    Undecodable { session: i64, xid: i32 },
    /// A new session, its id chosen by the server the client connected to.
    /// Its random password travels with it (None: derived from the id).
    CreateSession {
        session: i64,
        timeout: i32,
        password: Option<[u8; 16]>,
    },
}

/// Why a forwarded payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("forwarded payload cut short")]
    Short,
    #[error("unknown forwarded kind {0}")]
    Kind(u8),
    #[error("forwarded request does not decode: {0}")]
    Request(String),
}

const WRITE: u8 = 1;
const UNDECODABLE: u8 = 2;
const CREATE_SESSION: u8 = 3;
/// A write of a local session: WRITE's layout under a kind of its own, so a forwarded write
/// of an older server still reads as before.
const LOCAL_WRITE: u8 = 4;

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u32(s.len() as u32);
    b.put_slice(s.as_bytes());
}

fn get_str(b: &mut &[u8]) -> Result<String, ForwardError> {
    if b.remaining() < 4 {
        return Err(ForwardError::Short);
    }
    let n = b.get_u32() as usize;
    if b.remaining() < n {
        return Err(ForwardError::Short);
    }
    let s = String::from_utf8_lossy(&b[..n]).into_owned();
    b.advance(n);
    Ok(s)
}

impl Forward {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(128);
        match self {
            Forward::Write {
                session,
                xid,
                auth,
                request,
                local,
            } => {
                b.put_u8(if *local { LOCAL_WRITE } else { WRITE });
                b.put_i64(*session);
                b.put_i32(*xid);
                b.put_u32(auth.ids.len() as u32);
                for id in &auth.ids {
                    put_str(&mut b, &id.scheme);
                    put_str(&mut b, &id.id);
                }
                b.put_i32(request.opcode());
                request.encode_body(&mut b);
            }
            Forward::Undecodable { session, xid } => {
                b.put_u8(UNDECODABLE);
                b.put_i64(*session);
                b.put_i32(*xid);
            }
            Forward::CreateSession {
                session,
                timeout,
                password,
            } => {
                b.put_u8(CREATE_SESSION);
                b.put_i64(*session);
                b.put_i32(*timeout);
                if let Some(p) = password {
                    b.put_slice(p);
                }
            }
        }
        b.freeze()
    }

    /// The session and xid of a forwarded client write whose request does not decode, read
    /// from the fixed header every payload starts with; `None` for any other payload.
    pub fn write_header(mut b: &[u8]) -> Option<(i64, i32)> {
        if b.len() < 1 + 12 || !matches!(b.get_u8(), WRITE | LOCAL_WRITE) {
            return None;
        }
        Some((b.get_i64(), b.get_i32()))
    }

    pub fn decode(mut b: &[u8]) -> Result<Forward, ForwardError> {
        let need = |b: &[u8], n: usize| {
            if b.len() < n {
                Err(ForwardError::Short)
            } else {
                Ok(())
            }
        };
        need(b, 1 + 12)?;
        let kind = b.get_u8();
        let session = b.get_i64();
        let x = b.get_i32();
        match kind {
            WRITE | LOCAL_WRITE => {
                need(b, 4)?;
                let n = b.get_u32() as usize;
                let mut auth = AuthInfo::default();
                for _ in 0..n.min(1024) {
                    let scheme = get_str(&mut b)?;
                    let id = get_str(&mut b)?;
                    auth.ids.push(Id::new(scheme, id));
                }
                need(b, 4)?;
                let opcode = b.get_i32();
                let request =
                    Request::decode(opcode, b).map_err(|e| ForwardError::Request(e.to_string()))?;
                Ok(Forward::Write {
                    session,
                    xid: x,
                    auth,
                    request,
                    local: kind == LOCAL_WRITE,
                })
            }
            UNDECODABLE => Ok(Forward::Undecodable { session, xid: x }),
            CREATE_SESSION => {
                let password = match b.len() {
                    0 => None,
                    16 => Some(b[..16].try_into().expect("16 bytes")),
                    _ => return Err(ForwardError::Short),
                };
                Ok(Forward::CreateSession {
                    session,
                    timeout: x,
                    password,
                })
            }
            k => Err(ForwardError::Kind(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_does_not_decode_still_names_its_session_and_xid() {
        let mut b = BytesMut::new();
        b.put_u8(WRITE);
        b.put_i64(0x1234);
        b.put_i32(77);
        b.put_u32(0);
        b.put_i32(5); // setData, with no body
        let payload = b.freeze();
        assert!(Forward::decode(&payload).is_err());
        assert_eq!(Forward::write_header(&payload), Some((0x1234, 77)));
        assert_eq!(Forward::write_header(&payload[..5]), None);
        let created = Forward::CreateSession {
            session: 9,
            timeout: 4000,
            password: None,
        }
        .encode();
        assert_eq!(Forward::write_header(&created), None);
    }
    use paddock_proto::{DeleteRequest, SetDataRequest};

    #[test]
    fn round_trips() {
        let mut auth = AuthInfo::for_ip("127.0.0.1");
        auth.add(Id::new("digest", "u:abc="));
        for f in [
            Forward::Write {
                session: 7,
                xid: 3,
                auth: auth.clone(),
                request: Request::SetData(SetDataRequest {
                    path: "/a".into(),
                    data: Some(b"x".to_vec()),
                    version: -1,
                }),
                local: false,
            },
            Forward::Write {
                session: 7,
                xid: 4,
                auth,
                request: Request::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: 2,
                }),
                local: true,
            },
            Forward::Undecodable { session: 9, xid: 1 },
            Forward::CreateSession {
                session: 1 << 56,
                timeout: 4000,
                password: None,
            },
            Forward::CreateSession {
                session: 1 << 56,
                timeout: 4000,
                password: Some([7; 16]),
            },
        ] {
            assert_eq!(Forward::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(Forward::decode(&[1, 2]), Err(ForwardError::Short));
        assert!(Forward::decode(&[9; 13]).is_err());
        let mut cut = Forward::CreateSession {
            session: 1,
            timeout: 1,
            password: None,
        }
        .encode()
        .to_vec();
        cut[0] = WRITE;
        assert!(Forward::decode(&cut).is_err());
    }
}

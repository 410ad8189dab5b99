//! Decoding of client requests by opcode, including multi and multiRead.

use crate::codes::{op, CreateMode};
use crate::jute::{DecodeError, Reader, Record};
use crate::records::*;
use bytes::BufMut;

/// Which create opcode a create came in as; it decides the reply's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// opcode 1: reply carries the path only.
    Create,
    /// opcode 15: path and Stat.
    Create2,
    /// opcode 19: path and Stat.
    Container,
    /// opcode 21: path and Stat, with a TTL.
    Ttl,
}

impl CreateKind {
    /// The opcode on the wire.
    pub fn opcode(self) -> i32 {
        match self {
            CreateKind::Create => op::CREATE,
            CreateKind::Create2 => op::CREATE2,
            CreateKind::Container => op::CREATE_CONTAINER,
            CreateKind::Ttl => op::CREATE_TTL,
        }
    }
}

/// A create of any kind; `ttl` is -1 unless it came as createTTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub kind: CreateKind,
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: i64,
}

impl Create {
    /// Whether it makes a node owned by its session (create or create2 with an ephemeral
    /// mode; createContainer makes a container whatever its flags say).
    pub fn is_ephemeral(&self) -> bool {
        self.kind != CreateKind::Container
            && CreateMode::from_flags(self.flags).is_some_and(|m| m.is_ephemeral())
    }

    fn decode(kind: CreateKind, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if kind == CreateKind::Ttl {
            let c = CreateTtlRequest::decode(r)?;
            Ok(Create {
                kind,
                path: c.path,
                data: c.data,
                acl: c.acl,
                flags: c.flags,
                ttl: c.ttl,
            })
        } else {
            let c = CreateRequest::decode(r)?;
            Ok(Create {
                kind,
                path: c.path,
                data: c.data,
                acl: c.acl,
                flags: c.flags,
                ttl: -1,
            })
        }
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        if self.kind == CreateKind::Ttl {
            CreateTtlRequest {
                path: self.path.clone(),
                data: self.data.clone(),
                acl: self.acl.clone(),
                flags: self.flags,
                ttl: self.ttl,
            }
            .encode(buf)
        } else {
            CreateRequest {
                path: self.path.clone(),
                data: self.data.clone(),
                acl: self.acl.clone(),
                flags: self.flags,
            }
            .encode(buf)
        }
    }
}

/// One write inside a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(Create),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
}

/// One read inside a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetChildren(String),
    GetData(String),
}

/// A decoded client request (after the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(Create),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    AddWatch(AddWatchRequest),
    SetWatches(SetWatches2),
    /// setWatches2 keeps its opcode so the server can tell the two apart in logs.
    SetWatches2(SetWatches2),
    Auth(AuthPacket),
    Sasl(SaslToken),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    WhoAmI,
    CloseSession,
    /// Paddock's paged getChildren.
    GetChildrenPage(GetChildrenPageRequest),
    /// Paddock's linearizable read: a read of the tree (`Request::reads_tree`), answered once
    /// the server has synced with the leader after it arrived.
    Linearizable(Box<Request>),
}

/// The body of a linearizable read (`op::LINEARIZABLE`) wrapping a read already encoded: the
/// read's opcode, then its body (what `Request::Linearizable` encodes from a decoded read).
pub fn linearizable_body(opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + body.len());
    b.put_i32(opcode);
    b.extend_from_slice(body);
    b
}

impl Request {
    /// Decodes the body of a request whose header carried `opcode`.
    pub fn decode(opcode: i32, body: &[u8]) -> Result<Request, DecodeError> {
        let r = &mut Reader::new(body);
        Ok(match opcode {
            op::CREATE => Request::Create(Create::decode(CreateKind::Create, r)?),
            op::CREATE2 => Request::Create(Create::decode(CreateKind::Create2, r)?),
            op::CREATE_CONTAINER => Request::Create(Create::decode(CreateKind::Container, r)?),
            op::CREATE_TTL => Request::Create(Create::decode(CreateKind::Ttl, r)?),
            op::DELETE => Request::Delete(DeleteRequest::decode(r)?),
            op::EXISTS => Request::Exists(PathWatchRequest::decode(r)?),
            op::GET_DATA => Request::GetData(PathWatchRequest::decode(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::decode(r)?),
            op::GET_ACL => Request::GetAcl(PathRequest::decode(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::decode(r)?),
            op::GET_CHILDREN => Request::GetChildren(PathWatchRequest::decode(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(PathWatchRequest::decode(r)?),
            op::SYNC => Request::Sync(PathRequest::decode(r)?),
            op::PING => Request::Ping,
            op::MULTI => Request::Multi(decode_multi(r)?),
            op::MULTI_READ => Request::MultiRead(decode_multi_read(r)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest::decode(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(WatchesRequest::decode(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(WatchesRequest::decode(r)?),
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::decode(r)?),
            op::SET_WATCHES => {
                let s = SetWatches::decode(r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    persistent_watches: vec![],
                    persistent_recursive_watches: vec![],
                })
            }
            op::SET_WATCHES2 => Request::SetWatches2(SetWatches2::decode(r)?),
            op::AUTH => Request::Auth(AuthPacket::decode(r)?),
            op::SASL => Request::Sasl(SaslToken::decode(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::decode(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::decode(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            op::GET_CHILDREN_PAGE => Request::GetChildrenPage(GetChildrenPageRequest::decode(r)?),
            op::LINEARIZABLE => {
                let inner = r.read_i32()?;
                // Checked before decoding: a chain of wrappers must not recurse.
                if inner == op::LINEARIZABLE {
                    return Err(DecodeError::Invalid("a linearizable read inside another"));
                }
                let read = Request::decode(inner, r.rest())?;
                if !read.reads_tree() {
                    return Err(DecodeError::Invalid("not a read of the tree"));
                }
                Request::Linearizable(Box::new(read))
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Whether it creates an ephemeral node, alone or in a multi: what a local session cannot
    /// do without becoming a global one.
    pub fn creates_ephemeral(&self) -> bool {
        match self {
            Request::Create(c) => c.is_ephemeral(),
            Request::Multi(ops) => ops
                .iter()
                .any(|o| matches!(o, MultiOp::Create(c) if c.is_ephemeral())),
            _ => false,
        }
    }

    /// Whether it reads the tree (what a linearizable read may wrap): pings, auth, watch
    /// bookkeeping and whoAmI read nothing replicated.
    pub fn reads_tree(&self) -> bool {
        matches!(
            self,
            Request::Exists(_)
                | Request::GetData(_)
                | Request::GetChildren(_)
                | Request::GetChildren2(_)
                | Request::GetChildrenPage(_)
                | Request::GetAcl(_)
                | Request::GetAllChildrenNumber(_)
                | Request::GetEphemerals(_)
                | Request::MultiRead(_)
        )
    }

    /// The opcode this request travels under.
    pub fn opcode(&self) -> i32 {
        match self {
            Request::Create(c) => c.kind.opcode(),
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::Auth(_) => op::AUTH,
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::GetChildrenPage(_) => op::GET_CHILDREN_PAGE,
            Request::Linearizable(_) => op::LINEARIZABLE,
        }
    }

    /// Encodes the request body (without header), as a client sends it.
    pub fn encode_body<B: BufMut>(&self, buf: &mut B) {
        match self {
            Request::Create(c) => c.encode(buf),
            Request::Delete(x) => x.encode(buf),
            Request::Exists(x)
            | Request::GetData(x)
            | Request::GetChildren(x)
            | Request::GetChildren2(x) => x.encode(buf),
            Request::SetData(x) => x.encode(buf),
            Request::GetAcl(x)
            | Request::Sync(x)
            | Request::GetEphemerals(x)
            | Request::GetAllChildrenNumber(x) => x.encode(buf),
            Request::SetAcl(x) => x.encode(buf),
            Request::GetChildrenPage(x) => x.encode(buf),
            Request::Linearizable(read) => {
                buf.put_i32(read.opcode());
                read.encode_body(buf);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Multi(ops) => {
                for o in ops {
                    match o {
                        MultiOp::Create(c) => {
                            MultiHeader {
                                op: c.kind.opcode(),
                                done: false,
                                err: -1,
                            }
                            .encode(buf);
                            c.encode(buf);
                        }
                        MultiOp::Delete(d) => {
                            MultiHeader {
                                op: op::DELETE,
                                done: false,
                                err: -1,
                            }
                            .encode(buf);
                            d.encode(buf);
                        }
                        MultiOp::SetData(d) => {
                            MultiHeader {
                                op: op::SET_DATA,
                                done: false,
                                err: -1,
                            }
                            .encode(buf);
                            d.encode(buf);
                        }
                        MultiOp::Check(d) => {
                            MultiHeader {
                                op: op::CHECK,
                                done: false,
                                err: -1,
                            }
                            .encode(buf);
                            d.encode(buf);
                        }
                    }
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .encode(buf);
            }
            Request::MultiRead(ops) => {
                for o in ops {
                    let (code, path) = match o {
                        ReadOp::GetChildren(p) => (op::GET_CHILDREN, p),
                        ReadOp::GetData(p) => (op::GET_DATA, p),
                    };
                    MultiHeader {
                        op: code,
                        done: false,
                        err: -1,
                    }
                    .encode(buf);
                    PathWatchRequest {
                        path: path.clone(),
                        watch: false,
                    }
                    .encode(buf);
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .encode(buf);
            }
            Request::Reconfig(x) => x.encode(buf),
            Request::CheckWatches(x) | Request::RemoveWatches(x) => x.encode(buf),
            Request::AddWatch(x) => x.encode(buf),
            Request::SetWatches(x) => SetWatches {
                relative_zxid: x.relative_zxid,
                data_watches: x.data_watches.clone(),
                exist_watches: x.exist_watches.clone(),
                child_watches: x.child_watches.clone(),
            }
            .encode(buf),
            Request::SetWatches2(x) => x.encode(buf),
            Request::Auth(x) => x.encode(buf),
            Request::Sasl(x) => x.encode(buf),
        }
    }
}

/// Reads multi sub-op headers until the terminator. `done` ends the list whatever its type.
fn read_multi_headers<T>(
    r: &mut Reader<'_>,
    mut f: impl FnMut(i32, &mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(out);
        }
        out.push(f(h.op, r)?);
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    read_multi_headers(r, |code, r| {
        Ok(match code {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                let kind = match code {
                    op::CREATE => CreateKind::Create,
                    op::CREATE2 => CreateKind::Create2,
                    op::CREATE_CONTAINER => CreateKind::Container,
                    _ => CreateKind::Ttl,
                };
                let c = Create::decode(kind, r)?;
                // Java builds a CreateMode while decoding the sub-op, so a bad flag fails the
                // whole request as a marshalling error rather than as BADARGUMENTS.
                if CreateMode::from_flags(c.flags).is_none() {
                    return Err(DecodeError::Invalid("unknown create mode in multi"));
                }
                MultiOp::Create(c)
            }
            op::DELETE => MultiOp::Delete(DeleteRequest::decode(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::decode(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::decode(r)?),
            _ => return Err(DecodeError::Invalid("sub-op not allowed in multi")),
        })
    })
}

fn decode_multi_read(r: &mut Reader<'_>) -> Result<Vec<ReadOp>, DecodeError> {
    read_multi_headers(r, |code, r| {
        let p = PathWatchRequest::decode(r)?;
        Ok(match code {
            op::GET_CHILDREN => ReadOp::GetChildren(p.path),
            op::GET_DATA => ReadOp::GetData(p.path),
            _ => return Err(DecodeError::Invalid("sub-op not allowed in multiRead")),
        })
    })
}

/// One entry of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Option<Vec<u8>>, Stat),
    /// A failed, rolled-back (0) or not attempted (-2) sub-op.
    Error(i32),
}

/// Encodes a multi/multiRead reply body.
pub fn encode_multi_response<B: BufMut>(results: &[OpResult], buf: &mut B) {
    for res in results {
        let (code, err) = match res {
            OpResult::Create(_) => (op::CREATE, 0),
            OpResult::Create2(..) => (op::CREATE2, 0),
            OpResult::Delete => (op::DELETE, 0),
            OpResult::SetData(_) => (op::SET_DATA, 0),
            OpResult::Check => (op::CHECK, 0),
            OpResult::GetChildren(_) => (op::GET_CHILDREN, 0),
            OpResult::GetData(..) => (op::GET_DATA, 0),
            OpResult::Error(e) => (op::ERROR, *e),
        };
        MultiHeader {
            op: code,
            done: false,
            err,
        }
        .encode(buf);
        match res {
            OpResult::Create(p) => CreateResponse { path: p.clone() }.encode(buf),
            OpResult::Create2(p, s) => {
                crate::jute::JuteWrite::put_string(buf, p);
                s.encode(buf)
            }
            OpResult::Delete | OpResult::Check => {}
            OpResult::SetData(s) => s.encode(buf),
            OpResult::GetChildren(c) => crate::jute::Field::put(c, buf),
            OpResult::GetData(d, s) => {
                crate::jute::Field::put(d, buf);
                s.encode(buf)
            }
            OpResult::Error(e) => ErrorResponse { err: *e }.encode(buf),
        }
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .encode(buf);
}

/// Decodes a multi/multiRead reply body (clients and tests).
pub fn decode_multi_response(r: &mut Reader<'_>) -> Result<Vec<OpResult>, DecodeError> {
    read_multi_headers(r, |code, r| {
        use crate::jute::Field;
        Ok(match code {
            op::CREATE => OpResult::Create(r.read_string()?),
            op::CREATE2 => OpResult::Create2(r.read_string()?, Stat::decode(r)?),
            op::DELETE => OpResult::Delete,
            op::SET_DATA => OpResult::SetData(Stat::decode(r)?),
            op::CHECK => OpResult::Check,
            op::GET_CHILDREN => OpResult::GetChildren(Vec::<String>::get(r)?),
            op::GET_DATA => OpResult::GetData(Option::<Vec<u8>>::get(r)?, Stat::decode(r)?),
            op::ERROR => OpResult::Error(r.read_i32()?),
            _ => return Err(DecodeError::Invalid("unknown multi result type")),
        })
    })
}

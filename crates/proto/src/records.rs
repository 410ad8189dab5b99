//! Every record of the client protocol, field by field, in wire order.

use crate::jute::{DecodeError, Reader, Record};
use crate::record;
use bytes::BufMut;

record! {
    /// Node metadata as clients see it (68 bytes on the wire).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

record! {
    /// An identity: an auth scheme and an id within it.
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

record! {
    /// One access-control entry: permission bits granted to an identity.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

impl Id {
    /// Builds an identity.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

impl Acl {
    /// Builds an ACL entry.
    pub fn new(perms: i32, scheme: &str, id: &str) -> Self {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }
    /// `[ALL, world:anyone]`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(crate::perms::ALL, "world", "anyone")]
    }
    /// `[READ, world:anyone]`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(crate::perms::READ, "world", "anyone")]
    }
}

record! {
    /// Header of every request after the handshake.
    pub struct RequestHeader {
        pub xid: i32,
        pub op: i32,
    }
}

record! {
    /// Header of every reply after the handshake.
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }
}

/// The first frame a client sends. `read_only` is absent in very old clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client omitted the trailing byte; the reply then omits it too.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        use crate::jute::JuteWrite;
        buf.put_i32(self.protocol_version);
        buf.put_i64(self.last_zxid_seen);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        buf.put_buffer_opt(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            buf.put_bool(ro);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer_opt()?.unwrap_or_default().to_vec(),
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        })
    }
}

/// The server's answer to a ConnectRequest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout: i32,
    pub session_id: i64,
    /// Always 16 bytes on the wire: the C client reads a fixed 41-byte frame.
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        use crate::jute::JuteWrite;
        buf.put_i32(self.protocol_version);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        buf.put_buffer_opt(Some(&self.passwd));
        if let Some(ro) = self.read_only {
            buf.put_bool(ro);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer_opt()?.unwrap_or_default().to_vec(),
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        })
    }
}

record! {
    /// create (1), create2 (15), createContainer (19) request.
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

record! {
    /// createTTL (21) request.
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

record! {
    /// Reply to create (1): the path actually created.
    pub struct CreateResponse { pub path: String }
}

record! {
    /// Reply to create2, createContainer and createTTL.
    pub struct Create2Response { pub path: String, pub stat: Stat }
}

record! {
    /// delete (2) request; version -1 matches any.
    pub struct DeleteRequest { pub path: String, pub version: i32 }
}

record! {
    /// A path plus a watch flag: exists (3), getData (4), getChildren (8), getChildren2 (12).
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}

record! {
    /// A bare path: getACL (6), sync (9), getAllChildrenNumber (104), getEphemerals (103).
    pub struct PathRequest { pub path: String }
}

record! {
    /// Reply holding a Stat: exists, setData, setACL.
    pub struct StatResponse { pub stat: Stat }
}

record! {
    /// getData (4) reply.
    pub struct GetDataResponse { pub data: Option<Vec<u8>>, pub stat: Stat }
}

record! {
    /// setData (5) request; version -1 matches any.
    pub struct SetDataRequest { pub path: String, pub data: Option<Vec<u8>>, pub version: i32 }
}

record! {
    /// getACL (6) reply.
    pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat }
}

record! {
    /// setACL (7) request; version is the expected aversion.
    pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 }
}

record! {
    /// getChildren (8) reply.
    pub struct GetChildrenResponse { pub children: Vec<String> }
}

record! {
    /// getChildren2 (12) reply.
    pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat }
}

record! {
    /// Paddock's getChildrenPage (1000): up to `max` children of `path` whose names sort after
    /// `after` ("" for the first page), in name order; `max` of 0 or less lets the server
    /// choose. `watch` sets a child watch, as getChildren's does.
    pub struct GetChildrenPageRequest {
        pub path: String,
        pub after: String,
        pub max: i32,
        pub watch: bool,
    }
}

record! {
    /// getChildrenPage (1000) reply: one page of names, the parent's Stat when the page was
    /// read, and whether children sort after the page's last.
    pub struct GetChildrenPageResponse {
        pub children: Vec<String>,
        pub stat: Stat,
        pub more: bool,
    }
}

record! {
    /// check (13) inside a multi.
    pub struct CheckVersionRequest { pub path: String, pub version: i32 }
}

record! {
    /// reconfig (16) request.
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}

record! {
    /// checkWatches (17) and removeWatches (18) request; `watcher_type` is a WatcherType number.
    pub struct WatchesRequest { pub path: String, pub watcher_type: i32 }
}

record! {
    /// addWatch (106) request; mode 0 persistent, 1 persistent-recursive.
    pub struct AddWatchRequest { pub path: String, pub mode: i32 }
}

record! {
    /// setWatches (101) request.
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

record! {
    /// setWatches2 (105) request.
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// auth (100) packet.
    pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Option<Vec<u8>> }
}

record! {
    /// sasl (102) request and reply.
    pub struct SaslToken { pub token: Option<Vec<u8>> }
}

record! {
    /// getEphemerals (103) reply: full paths.
    pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> }
}

record! {
    /// getAllChildrenNumber (104) reply.
    pub struct GetAllChildrenNumberResponse { pub total_number: i32 }
}

record! {
    /// One identity in a whoAmI reply.
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

record! {
    /// whoAmI (107) reply.
    pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> }
}

record! {
    /// A bare error code: the addWatch reply body and multi error results.
    pub struct ErrorResponse { pub err: i32 }
}

record! {
    /// A watch notification body (sent with xid -1).
    pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String }
}

record! {
    /// Separator between multi sub-ops and results.
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}

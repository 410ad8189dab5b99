//! Proptest strategies for every record, request and multi result, shared by the test binaries.
#![allow(dead_code)]

use paddock_proto::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Builds a record from one strategy per field: `rec!(Id { scheme: s(), id: s() })`.
macro_rules! rec {
    ($name:ident { $($f:ident : $s:expr),* $(,)? }) => {
        ($($s,)*).prop_map(|($($f,)*)| $name { $($f),* })
    };
}

/// Strings: mostly short printable text, sometimes paths, sometimes empty.
pub fn s() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => "\\PC{0,16}",
        2 => "(/[a-z0-9]{1,8}){1,3}",
        1 => Just(String::new()),
    ]
}

/// A jute buffer; null stays distinct from empty.
pub fn buf() -> impl Strategy<Value = Option<Vec<u8>>> + Clone {
    option::weighted(0.8, vec(any::<u8>(), 0..48))
}

pub fn strings() -> impl Strategy<Value = Vec<String>> + Clone {
    vec(s(), 0..5)
}

pub fn stat() -> impl Strategy<Value = Stat> + Clone {
    (
        any::<(i64, i64, i64, i64)>(),
        any::<(i32, i32, i32)>(),
        any::<(i64, i32, i32, i64)>(),
    )
        .prop_map(
            |((czxid, mzxid, ctime, mtime), (version, cversion, aversion), (eo, dl, nc, pzxid))| {
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner: eo,
                    data_length: dl,
                    num_children: nc,
                    pzxid,
                }
            },
        )
}

pub fn id() -> impl Strategy<Value = Id> + Clone {
    rec!(Id {
        scheme: s(),
        id: s()
    })
}

pub fn acl() -> impl Strategy<Value = Acl> + Clone {
    rec!(Acl {
        perms: any::<i32>(),
        id: id()
    })
}

pub fn acls() -> impl Strategy<Value = Vec<Acl>> + Clone {
    vec(acl(), 0..4)
}

pub fn request_header() -> impl Strategy<Value = RequestHeader> + Clone {
    rec!(RequestHeader {
        xid: any::<i32>(),
        op: any::<i32>()
    })
}

pub fn reply_header() -> impl Strategy<Value = ReplyHeader> + Clone {
    rec!(ReplyHeader {
        xid: any::<i32>(),
        zxid: any::<i64>(),
        err: any::<i32>()
    })
}

pub fn connect_request() -> impl Strategy<Value = ConnectRequest> + Clone {
    rec!(ConnectRequest {
        protocol_version: any::<i32>(),
        last_zxid_seen: any::<i64>(),
        timeout: any::<i32>(),
        session_id: any::<i64>(),
        passwd: vec(any::<u8>(), 0..24),
        read_only: any::<Option<bool>>(),
    })
}

pub fn connect_response() -> impl Strategy<Value = ConnectResponse> + Clone {
    rec!(ConnectResponse {
        protocol_version: any::<i32>(),
        timeout: any::<i32>(),
        session_id: any::<i64>(),
        passwd: vec(any::<u8>(), 0..24),
        read_only: any::<Option<bool>>(),
    })
}

pub fn create_request() -> impl Strategy<Value = CreateRequest> + Clone {
    rec!(CreateRequest {
        path: s(),
        data: buf(),
        acl: acls(),
        flags: any::<i32>()
    })
}

pub fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> + Clone {
    rec!(CreateTtlRequest {
        path: s(),
        data: buf(),
        acl: acls(),
        flags: any::<i32>(),
        ttl: any::<i64>(),
    })
}

pub fn create_response() -> impl Strategy<Value = CreateResponse> + Clone {
    rec!(CreateResponse { path: s() })
}

pub fn create2_response() -> impl Strategy<Value = Create2Response> + Clone {
    rec!(Create2Response {
        path: s(),
        stat: stat()
    })
}

pub fn delete_request() -> impl Strategy<Value = DeleteRequest> + Clone {
    rec!(DeleteRequest {
        path: s(),
        version: any::<i32>()
    })
}

pub fn path_watch_request() -> impl Strategy<Value = PathWatchRequest> + Clone {
    rec!(PathWatchRequest {
        path: s(),
        watch: any::<bool>()
    })
}

pub fn path_request() -> impl Strategy<Value = PathRequest> + Clone {
    rec!(PathRequest { path: s() })
}

pub fn stat_response() -> impl Strategy<Value = StatResponse> + Clone {
    rec!(StatResponse { stat: stat() })
}

pub fn get_data_response() -> impl Strategy<Value = GetDataResponse> + Clone {
    rec!(GetDataResponse {
        data: buf(),
        stat: stat()
    })
}

pub fn set_data_request() -> impl Strategy<Value = SetDataRequest> + Clone {
    rec!(SetDataRequest {
        path: s(),
        data: buf(),
        version: any::<i32>()
    })
}

pub fn get_acl_response() -> impl Strategy<Value = GetAclResponse> + Clone {
    rec!(GetAclResponse {
        acl: acls(),
        stat: stat()
    })
}

pub fn set_acl_request() -> impl Strategy<Value = SetAclRequest> + Clone {
    rec!(SetAclRequest {
        path: s(),
        acl: acls(),
        version: any::<i32>()
    })
}

pub fn get_children_response() -> impl Strategy<Value = GetChildrenResponse> + Clone {
    rec!(GetChildrenResponse {
        children: strings()
    })
}

pub fn get_children2_response() -> impl Strategy<Value = GetChildren2Response> + Clone {
    rec!(GetChildren2Response {
        children: strings(),
        stat: stat()
    })
}

pub fn check_version_request() -> impl Strategy<Value = CheckVersionRequest> + Clone {
    rec!(CheckVersionRequest {
        path: s(),
        version: any::<i32>()
    })
}

pub fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> + Clone {
    rec!(ReconfigRequest {
        joining_servers: s(),
        leaving_servers: s(),
        new_members: s(),
        cur_config_id: any::<i64>(),
    })
}

pub fn watches_request() -> impl Strategy<Value = WatchesRequest> + Clone {
    rec!(WatchesRequest {
        path: s(),
        watcher_type: any::<i32>()
    })
}

pub fn add_watch_request() -> impl Strategy<Value = AddWatchRequest> + Clone {
    rec!(AddWatchRequest {
        path: s(),
        mode: any::<i32>()
    })
}

pub fn set_watches() -> impl Strategy<Value = SetWatches> + Clone {
    rec!(SetWatches {
        relative_zxid: any::<i64>(),
        data_watches: strings(),
        exist_watches: strings(),
        child_watches: strings(),
    })
}

pub fn set_watches2() -> impl Strategy<Value = SetWatches2> + Clone {
    rec!(SetWatches2 {
        relative_zxid: any::<i64>(),
        data_watches: strings(),
        exist_watches: strings(),
        child_watches: strings(),
        persistent_watches: strings(),
        persistent_recursive_watches: strings(),
    })
}

pub fn auth_packet() -> impl Strategy<Value = AuthPacket> + Clone {
    rec!(AuthPacket {
        auth_type: any::<i32>(),
        scheme: s(),
        auth: buf()
    })
}

pub fn sasl_token() -> impl Strategy<Value = SaslToken> + Clone {
    rec!(SaslToken { token: buf() })
}

pub fn get_ephemerals_response() -> impl Strategy<Value = GetEphemeralsResponse> + Clone {
    rec!(GetEphemeralsResponse {
        ephemerals: strings()
    })
}

pub fn get_all_children_number_response(
) -> impl Strategy<Value = GetAllChildrenNumberResponse> + Clone {
    rec!(GetAllChildrenNumberResponse {
        total_number: any::<i32>()
    })
}

pub fn get_children_page_request() -> impl Strategy<Value = GetChildrenPageRequest> + Clone {
    rec!(GetChildrenPageRequest {
        path: s(),
        after: s(),
        max: any::<i32>(),
        watch: any::<bool>()
    })
}

pub fn get_children_page_response() -> impl Strategy<Value = GetChildrenPageResponse> + Clone {
    rec!(GetChildrenPageResponse {
        children: strings(),
        stat: stat(),
        more: any::<bool>()
    })
}

pub fn client_info() -> impl Strategy<Value = ClientInfo> + Clone {
    rec!(ClientInfo {
        auth_scheme: s(),
        user: s()
    })
}

pub fn who_am_i_response() -> impl Strategy<Value = WhoAmIResponse> + Clone {
    rec!(WhoAmIResponse {
        client_info: vec(client_info(), 0..4)
    })
}

pub fn error_response() -> impl Strategy<Value = ErrorResponse> + Clone {
    rec!(ErrorResponse { err: any::<i32>() })
}

pub fn watcher_event() -> impl Strategy<Value = WatcherEvent> + Clone {
    rec!(WatcherEvent {
        event_type: any::<i32>(),
        state: any::<i32>(),
        path: s()
    })
}

pub fn multi_header() -> impl Strategy<Value = MultiHeader> + Clone {
    rec!(MultiHeader {
        op: any::<i32>(),
        done: any::<bool>(),
        err: any::<i32>()
    })
}

pub fn create_kind() -> impl Strategy<Value = CreateKind> + Clone {
    prop_oneof![
        Just(CreateKind::Create),
        Just(CreateKind::Create2),
        Just(CreateKind::Container),
        Just(CreateKind::Ttl),
    ]
}

/// A create as `Request::decode` produces it: `ttl` is -1 unless the kind is createTTL.
/// `flags` comes from the given strategy (a multi only accepts valid create modes).
pub fn create_with(flags: impl Strategy<Value = i32> + Clone) -> impl Strategy<Value = Create> {
    (create_kind(), s(), buf(), acls(), flags, any::<i64>()).prop_map(
        |(kind, path, data, acl, flags, ttl)| Create {
            kind,
            path,
            data,
            acl,
            flags,
            ttl: if kind == CreateKind::Ttl { ttl } else { -1 },
        },
    )
}

pub fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create_with(0..=6i32).prop_map(MultiOp::Create),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_version_request().prop_map(MultiOp::Check),
    ]
}

pub fn read_op() -> impl Strategy<Value = ReadOp> {
    prop_oneof![
        s().prop_map(ReadOp::GetChildren),
        s().prop_map(ReadOp::GetData)
    ]
}

/// Every `Request` variant, shaped as the decoder returns it.
pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_with(any::<i32>()).prop_map(Request::Create),
        delete_request().prop_map(Request::Delete),
        path_watch_request().prop_map(Request::Exists),
        path_watch_request().prop_map(Request::GetData),
        set_data_request().prop_map(Request::SetData),
        path_request().prop_map(Request::GetAcl),
        set_acl_request().prop_map(Request::SetAcl),
        path_watch_request().prop_map(Request::GetChildren),
        path_watch_request().prop_map(Request::GetChildren2),
        path_request().prop_map(Request::Sync),
        Just(Request::Ping),
        vec(multi_op(), 0..6).prop_map(Request::Multi),
        vec(read_op(), 0..6).prop_map(Request::MultiRead),
        reconfig_request().prop_map(Request::Reconfig),
        watches_request().prop_map(Request::CheckWatches),
        watches_request().prop_map(Request::RemoveWatches),
        add_watch_request().prop_map(Request::AddWatch),
        // setWatches (101) has no persistent lists: they decode empty.
        set_watches().prop_map(|w| Request::SetWatches(SetWatches2 {
            relative_zxid: w.relative_zxid,
            data_watches: w.data_watches,
            exist_watches: w.exist_watches,
            child_watches: w.child_watches,
            persistent_watches: vec![],
            persistent_recursive_watches: vec![],
        })),
        set_watches2().prop_map(Request::SetWatches2),
        auth_packet().prop_map(Request::Auth),
        sasl_token().prop_map(Request::Sasl),
        path_request().prop_map(Request::GetEphemerals),
        path_request().prop_map(Request::GetAllChildrenNumber),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
        get_children_page_request().prop_map(Request::GetChildrenPage),
        path_watch_request().prop_map(|r| Request::Linearizable(Box::new(Request::GetData(r)))),
        path_request().prop_map(|r| Request::Linearizable(Box::new(Request::GetAcl(r)))),
    ]
}

pub fn op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        s().prop_map(OpResult::Create),
        (s(), stat()).prop_map(|(p, st)| OpResult::Create2(p, st)),
        Just(OpResult::Delete),
        stat().prop_map(OpResult::SetData),
        Just(OpResult::Check),
        strings().prop_map(OpResult::GetChildren),
        (buf(), stat()).prop_map(|(d, st)| OpResult::GetData(d, st)),
        any::<i32>().prop_map(OpResult::Error),
    ]
}

/// A client frame: 4-byte length plus payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A request frame payload: header then body.
pub fn request_payload(xid: i32, req: &Request) -> Vec<u8> {
    let mut v = RequestHeader {
        xid,
        op: req.opcode(),
    }
    .to_bytes();
    req.encode_body(&mut v);
    v
}

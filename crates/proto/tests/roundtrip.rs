//! Round trips for every record, request and multi reply, byte-exact layouts pinned against the
//! wire-protocol spec, and the framing helpers.

mod common;

use bytes::BytesMut;
use common::*;
use paddock_proto::frame::{
    four_letter_word, frame_len, take_frame, FrameError, DEFAULT_MAX_FRAME, FOUR_LETTER_WORDS,
};
use paddock_proto::*;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;

// ---------------------------------------------------------------------------------------------
// An allocator that remembers the largest single allocation made on the current thread, so a
// test can show that a hostile length prefix is refused before anything is allocated for it.

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| {
        if size > c.get() {
            c.set(size)
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation it made on this thread.
fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let out = f();
    (out, LARGEST.with(|c| c.get()))
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Encode, decode, compare; decoding must consume every byte, re-encoding must give the same
/// bytes, and (unless `prefix_may_decode`) every strict prefix must fail to decode.
fn roundtrip_with<T: Record + PartialEq + Debug>(
    v: &T,
    prefix_may_decode: bool,
) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    let mut r = Reader::new(&bytes);
    let back = T::decode(&mut r);
    prop_assert_eq!(back.as_ref(), Ok(v));
    prop_assert_eq!(r.remaining(), 0, "decode left bytes unread");
    prop_assert_eq!(back.unwrap().to_bytes(), bytes.clone(), "re-encode differs");
    if !prefix_may_decode {
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            prop_assert!(
                T::decode(&mut r).is_err(),
                "prefix of {} bytes decoded",
                cut
            );
        }
    }
    Ok(())
}

fn roundtrip<T: Record + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    roundtrip_with(v, false)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_all<T: Record>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    assert_eq!(r.remaining(), 0, "decode left bytes unread");
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Round trips

proptest! {
    #[test] fn rt_stat(v in stat()) { roundtrip(&v)?; }
    #[test] fn rt_id(v in id()) { roundtrip(&v)?; }
    #[test] fn rt_acl(v in acl()) { roundtrip(&v)?; }
    #[test] fn rt_request_header(v in request_header()) { roundtrip(&v)?; }
    #[test] fn rt_reply_header(v in reply_header()) { roundtrip(&v)?; }

    #[test]
    fn rt_connect_request(v in connect_request()) {
        // Without the readOnly byte, the record minus its last byte is a valid old-client one.
        roundtrip_with(&v, v.read_only.is_some())?;
        let bytes = v.to_bytes();
        prop_assert_eq!(bytes.len(), 28 + v.passwd.len() + v.read_only.map_or(0, |_| 1));
        if v.read_only.is_some() {
            let old = decode_all::<ConnectRequest>(&bytes[..bytes.len() - 1]).unwrap();
            prop_assert_eq!(old, ConnectRequest { read_only: None, ..v.clone() });
        }
    }

    #[test]
    fn rt_connect_response(v in connect_response()) {
        roundtrip_with(&v, v.read_only.is_some())?;
    }

    #[test] fn rt_create_request(v in create_request()) { roundtrip(&v)?; }
    #[test] fn rt_create_ttl_request(v in create_ttl_request()) { roundtrip(&v)?; }
    #[test] fn rt_create_response(v in create_response()) { roundtrip(&v)?; }
    #[test] fn rt_create2_response(v in create2_response()) { roundtrip(&v)?; }
    #[test] fn rt_delete_request(v in delete_request()) { roundtrip(&v)?; }
    #[test] fn rt_path_watch_request(v in path_watch_request()) { roundtrip(&v)?; }
    #[test] fn rt_path_request(v in path_request()) { roundtrip(&v)?; }
    #[test] fn rt_stat_response(v in stat_response()) { roundtrip(&v)?; }
    #[test] fn rt_get_data_response(v in get_data_response()) { roundtrip(&v)?; }
    #[test] fn rt_set_data_request(v in set_data_request()) { roundtrip(&v)?; }
    #[test] fn rt_get_acl_response(v in get_acl_response()) { roundtrip(&v)?; }
    #[test] fn rt_set_acl_request(v in set_acl_request()) { roundtrip(&v)?; }
    #[test] fn rt_get_children_response(v in get_children_response()) { roundtrip(&v)?; }
    #[test] fn rt_get_children2_response(v in get_children2_response()) { roundtrip(&v)?; }
    #[test] fn rt_check_version_request(v in check_version_request()) { roundtrip(&v)?; }
    #[test] fn rt_reconfig_request(v in reconfig_request()) { roundtrip(&v)?; }
    #[test] fn rt_watches_request(v in watches_request()) { roundtrip(&v)?; }
    #[test] fn rt_add_watch_request(v in add_watch_request()) { roundtrip(&v)?; }
    #[test] fn rt_set_watches(v in set_watches()) { roundtrip(&v)?; }
    #[test] fn rt_set_watches2(v in set_watches2()) { roundtrip(&v)?; }
    #[test] fn rt_auth_packet(v in auth_packet()) { roundtrip(&v)?; }
    #[test] fn rt_sasl_token(v in sasl_token()) { roundtrip(&v)?; }
    #[test] fn rt_get_ephemerals_response(v in get_ephemerals_response()) { roundtrip(&v)?; }
    #[test]
    fn rt_get_all_children_number_response(v in get_all_children_number_response()) {
        roundtrip(&v)?;
    }
    #[test] fn rt_client_info(v in client_info()) { roundtrip(&v)?; }
    #[test] fn rt_get_children_page_request(v in get_children_page_request()) { roundtrip(&v)?; }
    #[test]
    fn rt_get_children_page_response(v in get_children_page_response()) {
        roundtrip(&v)?;
    }
    #[test] fn rt_who_am_i_response(v in who_am_i_response()) { roundtrip(&v)?; }
    #[test] fn rt_error_response(v in error_response()) { roundtrip(&v)?; }
    #[test] fn rt_watcher_event(v in watcher_event()) { roundtrip(&v)?; }
    #[test] fn rt_multi_header(v in multi_header()) { roundtrip(&v)?; }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Every request variant, Multi with every sub-op kind and MultiRead included.
    #[test]
    fn rt_request(req in request()) {
        let mut bytes = Vec::new();
        req.encode_body(&mut bytes);
        let back = Request::decode(req.opcode(), &bytes);
        prop_assert_eq!(back.as_ref(), Ok(&req));
        let mut again = Vec::new();
        back.unwrap().encode_body(&mut again);
        prop_assert_eq!(&again, &bytes, "re-encode differs");
        // The wrapper built from an encoded read (clients, bench) is the same bytes.
        if let Request::Linearizable(read) = &req {
            let mut inner = Vec::new();
            read.encode_body(&mut inner);
            prop_assert_eq!(&linearizable_body(read.opcode(), &inner), &bytes);
        }
        // The decoder needs every byte: no strict prefix decodes.
        for cut in 0..bytes.len() {
            prop_assert!(
                Request::decode(req.opcode(), &bytes[..cut]).is_err(),
                "prefix of {} bytes decoded", cut
            );
        }
    }

    #[test]
    fn rt_multi_response(results in proptest::collection::vec(op_result(), 0..8)) {
        let mut bytes = Vec::new();
        encode_multi_response(&results, &mut bytes);
        let mut r = Reader::new(&bytes);
        let back = decode_multi_response(&mut r);
        prop_assert_eq!(back.as_ref(), Ok(&results));
        prop_assert_eq!(r.remaining(), 0);
        for cut in 0..bytes.len() {
            prop_assert!(decode_multi_response(&mut Reader::new(&bytes[..cut])).is_err());
        }
    }

    /// Arbitrary bytes never panic any decoder, and whatever decodes re-decodes to itself.
    #[test]
    fn request_decode_total(opcode in prop_oneof![0..=23i32, 100..=107i32, Just(-11), any::<i32>()],
                            body in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(req) = Request::decode(opcode, &body) {
            prop_assert_eq!(req.opcode(), opcode);
            let mut bytes = Vec::new();
            req.encode_body(&mut bytes);
            prop_assert_eq!(Request::decode(opcode, &bytes), Ok(req));
        }
        let _ = decode_multi_response(&mut Reader::new(&body));
    }
}

// ---------------------------------------------------------------------------------------------
// Exact bytes, per the spec

#[test]
fn connect_response_is_37_bytes() {
    // Section 2.2: 4 + 4 + 8 + (4 + 16) + 1 = 37 payload bytes, a 41-byte frame.
    let v = ConnectResponse {
        protocol_version: 0,
        timeout: 30_000,
        session_id: 0x0123_4567_89ab_cdef,
        passwd: (0u8..16).collect(),
        read_only: Some(false),
    };
    let bytes = v.to_bytes();
    assert_eq!(bytes.len(), 37);
    assert_eq!(
        bytes,
        hex("00000000 00007530 0123456789abcdef 00000010
             000102030405060708090a0b0c0d0e0f 00")
    );
    assert_eq!(decode_all::<ConnectResponse>(&bytes), Ok(v.clone()));
    // An old client's reply omits readOnly: 36 bytes.
    let old = ConnectResponse {
        read_only: None,
        ..v
    };
    assert_eq!(old.to_bytes().len(), 36);
    assert_eq!(decode_all::<ConnectResponse>(&old.to_bytes()), Ok(old));
}

#[test]
fn connect_request_c_client_is_45_bytes() {
    // Section 2.1: the C client always sends 4+8+4+8+4+16+1 = 45 payload bytes.
    let bytes = hex(
        "00000000 0000000000000000 00007530 0000000000000000 00000010
                     00000000000000000000000000000000 01",
    );
    assert_eq!(bytes.len(), 45);
    let v = decode_all::<ConnectRequest>(&bytes).unwrap();
    assert_eq!(
        v,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(true),
        }
    );
    assert_eq!(v.to_bytes(), bytes);
    // A pre-3.4 client omits the readOnly byte.
    let old = decode_all::<ConnectRequest>(&bytes[..44]).unwrap();
    assert_eq!(old.read_only, None);
    assert_eq!(old.to_bytes(), &bytes[..44]);
}

#[test]
fn headers_exact_bytes() {
    let h = ReplyHeader {
        xid: 7,
        zxid: 0x1_0000_0002,
        err: ErrorCode::NoNode.code(),
    };
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), 16);
    assert_eq!(bytes, hex("00000007 0000000100000002 ffffff9b"));
    // Ping: RequestHeader(-2, 11), header only.
    let ping = RequestHeader {
        xid: xid::PING,
        op: op::PING,
    };
    assert_eq!(ping.to_bytes(), hex("fffffffe 0000000b"));
    assert_eq!(
        decode_all::<RequestHeader>(&hex("fffffffe 0000000b")),
        Ok(ping)
    );
}

#[test]
fn stat_is_68_bytes_in_field_order() {
    let st = Stat {
        czxid: 0x0101010101010101,
        mzxid: 0x0202020202020202,
        ctime: 0x0303030303030303,
        mtime: 0x0404040404040404,
        version: 0x05050505,
        cversion: 0x06060606,
        aversion: 0x07070707,
        ephemeral_owner: 0x0808080808080808,
        data_length: 0x09090909,
        num_children: 0x0a0a0a0a,
        pzxid: 0x0b0b0b0b0b0b0b0b,
    };
    let bytes = st.to_bytes();
    assert_eq!(bytes.len(), 68);
    let widths = [8, 8, 8, 8, 4, 4, 4, 8, 4, 4, 8];
    let mut at = 0;
    for (i, w) in widths.iter().enumerate() {
        assert!(
            bytes[at..at + w].iter().all(|b| *b as usize == i + 1),
            "field {}",
            i + 1
        );
        at += w;
    }
    assert_eq!(decode_all::<Stat>(&bytes), Ok(st));
    assert_eq!(<Stat as Field>::MIN_SIZE, 68);
}

#[test]
fn failed_multi_response_layout() {
    // Sections 8.2/8.3: sub-op 2 of 3 fails with NONODE: every entry is type -1 (error), header
    // err and body err equal; earlier ops 0, later ops -2; terminator {-1, true, -1}.
    let results = [
        OpResult::Error(0),
        OpResult::Error(-101),
        OpResult::Error(-2),
    ];
    let mut bytes = Vec::new();
    encode_multi_response(&results, &mut bytes);
    assert_eq!(
        bytes,
        hex("ffffffff 00 00000000  00000000
             ffffffff 00 ffffff9b  ffffff9b
             ffffffff 00 fffffffe  fffffffe
             ffffffff 01 ffffffff")
    );
    assert_eq!(bytes.len(), 3 * 13 + 9);
    let mut r = Reader::new(&bytes);
    assert_eq!(decode_multi_response(&mut r), Ok(results.to_vec()));
    assert_eq!(r.remaining(), 0);
}

#[test]
fn successful_multi_response_layout() {
    let st = Stat {
        czxid: 5,
        ..Stat::default()
    };
    let results = [
        OpResult::Create("/a".into()),
        OpResult::Create2("/b".into(), st.clone()),
        OpResult::Delete,
        OpResult::SetData(st.clone()),
        OpResult::Check,
    ];
    let mut bytes = Vec::new();
    encode_multi_response(&results, &mut bytes);
    let st_hex = hex(&format!("0000000000000005{}", "00".repeat(60)));
    let mut want = hex("00000001 00 00000000 00000002 2f61");
    want.extend(hex("0000000f 00 00000000 00000002 2f62"));
    want.extend(&st_hex);
    want.extend(hex("00000002 00 00000000"));
    want.extend(hex("00000005 00 00000000"));
    want.extend(&st_hex);
    want.extend(hex("0000000d 00 00000000"));
    want.extend(hex("ffffffff 01 ffffffff"));
    assert_eq!(bytes, want);
    // An empty multi's reply is just the terminator.
    let mut empty = Vec::new();
    encode_multi_response(&[], &mut empty);
    assert_eq!(empty, hex("ffffffff 01 ffffffff"));
}

#[test]
fn multi_request_layout() {
    // Section 8.1: MultiHeader{op, false, -1} + record per sub-op, then {-1, true, -1}.
    let req = Request::Multi(vec![
        MultiOp::Create(Create {
            kind: CreateKind::Create,
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: -1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/b".into(),
            version: -1,
        }),
    ]);
    let want = hex("00000001 00 ffffffff
         00000002 2f61 00000001 78 00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65
         00000000
         00000002 00 ffffffff 00000002 2f62 ffffffff
         ffffffff 01 ffffffff");
    let mut bytes = Vec::new();
    req.encode_body(&mut bytes);
    assert_eq!(bytes, want);
    assert_eq!(Request::decode(op::MULTI, &want), Ok(req));
    // An empty multi is legal.
    assert_eq!(
        Request::decode(op::MULTI, &hex("ffffffff 01 ffffffff")),
        Ok(Request::Multi(vec![]))
    );
}

#[test]
fn kazoo_null_strings_decode_as_empty() {
    // kazoo writes "" as -1: an `auth` ACL id, and here an empty scheme too. Data None is -1 and
    // stays None (buffers keep null distinct).
    let body = hex("00000002 2f6e ffffffff 00000001 0000001f 00000004 61757468 ffffffff 00000000");
    assert_eq!(
        Request::decode(op::CREATE, &body),
        Ok(Request::Create(Create {
            kind: CreateKind::Create,
            path: "/n".into(),
            data: None,
            acl: vec![Acl::new(31, "auth", "")],
            flags: 0,
            ttl: -1,
        }))
    );
    // kazoo's auth packet with empty credentials: auth buffer written as -1.
    assert_eq!(
        Request::decode(op::AUTH, &hex("00000000 00000006 646967657374 ffffffff")),
        Ok(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: None
        }))
    );
    // An empty getEphemerals prefix.
    assert_eq!(
        Request::decode(op::GET_EPHEMERALS, &hex("ffffffff")),
        Ok(Request::GetEphemerals(PathRequest {
            path: String::new()
        }))
    );
    // A null vector reads as empty.
    assert_eq!(
        decode_all::<GetChildrenResponse>(&hex("ffffffff")),
        Ok(GetChildrenResponse { children: vec![] })
    );
    // Null string vs empty string vs empty buffer vs null buffer.
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(r.read_string_opt(), Ok(None));
    assert_eq!(r.read_string_opt(), Ok(Some(String::new())));
    let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(r.read_buffer_opt(), Ok(None));
    assert_eq!(r.read_buffer_opt(), Ok(Some(&[][..])));
}

#[test]
fn any_nonzero_bool_is_true() {
    assert_eq!(
        decode_all::<PathWatchRequest>(&hex("00000002 2f61 7f")),
        Ok(PathWatchRequest {
            path: "/a".into(),
            watch: true
        })
    );
}

#[test]
fn oversized_vector_count_is_rejected_without_allocating() {
    // Control: the tracker does see a vector that really is that long.
    let ok = GetChildrenResponse {
        children: vec![String::new(); 100],
    }
    .to_bytes();
    let (res, largest) = largest_alloc(|| decode_all::<GetChildrenResponse>(&ok));
    assert_eq!(res.unwrap().children.len(), 100);
    assert!(
        largest >= 100 * std::mem::size_of::<String>(),
        "tracker saw {largest}"
    );

    // getChildren reply claiming i32::MAX children, with 8 bytes behind it.
    let bytes = hex("7fffffff 00000001 61000000");
    let (res, largest) = largest_alloc(|| decode_all::<GetChildrenResponse>(&bytes));
    assert_eq!(
        res,
        Err(DecodeError::BadLength {
            offset: 0,
            len: i32::MAX
        })
    );
    assert!(largest < 1024, "allocated {largest} bytes");

    // A count that would fit as bytes but not as 12-byte ACLs.
    let bytes = hex("00000002 2f61 00000002 00000000 00000000 00000000 00000000 00000000");
    let (res, largest) = largest_alloc(|| decode_all::<SetAclRequest>(&bytes));
    assert_eq!(res, Err(DecodeError::BadLength { offset: 6, len: 2 }));
    assert!(largest < 1024, "allocated {largest} bytes");

    // The same inside a request body: create with an absurd ACL count.
    let body = hex("00000002 2f61 ffffffff 7ffffff0 00000000");
    let (res, largest) = largest_alloc(|| Request::decode(op::CREATE, &body));
    assert!(matches!(res, Err(DecodeError::BadLength { .. })), "{res:?}");
    assert!(largest < 1024, "allocated {largest} bytes");

    // setWatches with a huge list count.
    let body = hex("0000000000000000 40000000 00000000");
    let (res, largest) = largest_alloc(|| Request::decode(op::SET_WATCHES, &body));
    assert!(matches!(res, Err(DecodeError::BadLength { .. })), "{res:?}");
    assert!(largest < 1024, "allocated {largest} bytes");

    // A string or buffer longer than what is left.
    let (res, largest) = largest_alloc(|| decode_all::<PathRequest>(&hex("7fffffff 2f")));
    assert_eq!(
        res,
        Err(DecodeError::BadLength {
            offset: 0,
            len: i32::MAX
        })
    );
    assert!(largest < 1024, "allocated {largest} bytes");
    assert_eq!(
        decode_all::<SaslToken>(&hex("00000005 0102")),
        Err(DecodeError::BadLength { offset: 0, len: 5 })
    );
}

#[test]
fn bad_lengths_and_utf8_are_rejected() {
    assert_eq!(
        decode_all::<PathRequest>(&hex("fffffffe")),
        Err(DecodeError::BadLength { offset: 0, len: -2 })
    );
    assert_eq!(
        decode_all::<GetChildrenResponse>(&hex("80000000")),
        Err(DecodeError::BadLength {
            offset: 0,
            len: i32::MIN
        })
    );
    assert_eq!(
        decode_all::<PathRequest>(&hex("00000002 c328")),
        Err(DecodeError::BadUtf8 { offset: 0 })
    );
    assert_eq!(
        decode_all::<Stat>(&[0; 67]),
        Err(DecodeError::Truncated {
            offset: 60,
            needed: 1
        })
    );
}

#[test]
fn invalid_requests_are_rejected() {
    // Opcodes that are not client requests: notification, the unused 10, top-level check,
    // deleteContainer, createSession, and garbage.
    for code in [
        0,
        10,
        op::CHECK,
        op::DELETE_CONTAINER,
        op::CREATE_SESSION,
        23,
        99,
        108,
        -1,
    ] {
        assert_eq!(
            Request::decode(code, &[]),
            Err(DecodeError::UnknownOpcode(code))
        );
    }
    let pw = |code: i32| {
        let mut v = MultiHeader {
            op: code,
            done: false,
            err: -1,
        }
        .to_bytes();
        v.extend(
            PathWatchRequest {
                path: "/a".into(),
                watch: false,
            }
            .to_bytes(),
        );
        v.extend(
            MultiHeader {
                op: -1,
                done: true,
                err: -1,
            }
            .to_bytes(),
        );
        v
    };
    // A read inside a multi.
    assert!(matches!(
        Request::decode(op::MULTI, &pw(op::GET_DATA)),
        Err(DecodeError::Invalid(_))
    ));
    // A write inside a multiRead (its DeleteRequest body happens to have PathWatch's prefix).
    assert!(matches!(
        Request::decode(op::MULTI_READ, &pw(op::DELETE)),
        Err(DecodeError::Invalid(_))
    ));
    assert_eq!(
        Request::decode(op::MULTI_READ, &pw(op::GET_DATA)),
        Ok(Request::MultiRead(vec![ReadOp::GetData("/a".into())]))
    );
    // An invalid create mode in a multi create; valid modes 0..=6 pass.
    for flags in [-1, 7, 0x100] {
        let req = Request::Multi(vec![MultiOp::Create(Create {
            kind: CreateKind::Create,
            path: "/a".into(),
            data: None,
            acl: vec![],
            flags,
            ttl: -1,
        })]);
        let mut body = Vec::new();
        req.encode_body(&mut body);
        assert!(matches!(
            Request::decode(op::MULTI, &body),
            Err(DecodeError::Invalid(_))
        ));
    }
    // A multi without its terminator.
    let mut body = Vec::new();
    Request::Multi(vec![MultiOp::Check(CheckVersionRequest {
        path: "/a".into(),
        version: 1,
    })])
    .encode_body(&mut body);
    assert!(matches!(
        Request::decode(op::MULTI, &body[..body.len() - 9]),
        Err(DecodeError::Truncated { .. })
    ));
    // done = true ends the list whatever the header's type.
    assert_eq!(
        Request::decode(op::MULTI, &hex("00000001 01 00000000")),
        Ok(Request::Multi(vec![]))
    );
}

// ---------------------------------------------------------------------------------------------
// Framing

#[test]
fn take_frame_split_across_reads() {
    let wire = frame(b"hello world");
    let mut buf = BytesMut::new();
    for (i, b) in wire.iter().enumerate() {
        assert_eq!(
            take_frame(&mut buf, DEFAULT_MAX_FRAME),
            Ok(None),
            "early at byte {i}"
        );
        buf.extend_from_slice(&[*b]);
    }
    let f = take_frame(&mut buf, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert_eq!(&f[..], b"hello world");
    assert!(buf.is_empty());
    assert_eq!(take_frame(&mut buf, DEFAULT_MAX_FRAME), Ok(None));
}

#[test]
fn take_frame_several_in_one_buffer() {
    let mut wire = frame(b"one");
    wire.extend(frame(b""));
    wire.extend(frame(b"three"));
    wire.extend(&frame(b"partial")[..6]);
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(&take_frame(&mut buf, 16).unwrap().unwrap()[..], b"one");
    assert_eq!(&take_frame(&mut buf, 16).unwrap().unwrap()[..], b"");
    assert_eq!(&take_frame(&mut buf, 16).unwrap().unwrap()[..], b"three");
    assert_eq!(take_frame(&mut buf, 16), Ok(None));
    assert_eq!(buf.len(), 6, "a partial frame stays buffered");
    buf.extend_from_slice(b"rtial");
    assert_eq!(&take_frame(&mut buf, 16).unwrap().unwrap()[..], b"partial");
    assert!(buf.is_empty());
}

#[test]
fn take_frame_rejects_negative_and_oversized() {
    let max = DEFAULT_MAX_FRAME;
    for (prefix, len) in [
        ([0xff, 0xff, 0xff, 0xff], -1i64),
        ([0x80, 0, 0, 0], i32::MIN as i64),
        ([0x00, 0x10, 0x00, 0x00], 0x10_0000),
        ([0x7f, 0xff, 0xff, 0xff], i32::MAX as i64),
    ] {
        let mut buf = BytesMut::from(&prefix[..]);
        assert_eq!(
            take_frame(&mut buf, max),
            Err(FrameError::BadLength { len, max })
        );
        assert_eq!(
            frame_len(&prefix, max),
            Err(FrameError::BadLength { len, max })
        );
    }
    // Exactly jute.maxbuffer is allowed (it waits for the payload); one more is not.
    let mut buf = BytesMut::from(&(max as i32).to_be_bytes()[..]);
    assert_eq!(take_frame(&mut buf, max), Ok(None));
    assert_eq!(frame_len(&buf, max), Ok(Some(max)));
    // A small limit.
    let mut buf = BytesMut::from(&frame(b"12345")[..]);
    assert_eq!(
        take_frame(&mut buf, 4),
        Err(FrameError::BadLength { len: 5, max: 4 })
    );
    assert_eq!(&take_frame(&mut buf, 5).unwrap().unwrap()[..], b"12345");
    // Fewer than four bytes: need more.
    assert_eq!(frame_len(&[0xff, 0xff, 0xff], max), Ok(None));
}

#[test]
fn four_letter_words_match_the_spec() {
    // Section 11.1 gives each command as a big-endian int.
    let codes: [(&str, u32); 20] = [
        ("ruok", 0x72756f6b),
        ("stat", 0x73746174),
        ("srvr", 0x73727672),
        ("conf", 0x636f6e66),
        ("cons", 0x636f6e73),
        ("crst", 0x63727374),
        ("dump", 0x64756d70),
        ("envi", 0x656e7669),
        ("mntr", 0x6d6e7472),
        ("srst", 0x73727374),
        ("wchs", 0x77636873),
        ("wchc", 0x77636863),
        ("wchp", 0x77636870),
        ("dirs", 0x64697273),
        ("isro", 0x6973726f),
        ("gtmk", 0x67746d6b),
        ("stmk", 0x73746d6b),
        ("hash", 0x68617368),
        // Paddock's (ClickHouse Keeper's names): yield and request leadership.
        ("ydld", 0x79646c64),
        ("rqld", 0x72716c64),
    ];
    for (w, code) in codes {
        assert!(FOUR_LETTER_WORDS.contains(&w));
        assert_eq!(four_letter_word(&code.to_be_bytes()), Some(w));
    }
    assert_eq!(four_letter_word(b"ruok\n"), Some("ruok"));
    assert_eq!(four_letter_word(b"stmk\0\0\0\0\0\0\0\x01"), Some("stmk"));
    assert_eq!(four_letter_word(b"ruo"), None);
    assert_eq!(four_letter_word(b""), None);
    assert_eq!(four_letter_word(b"RUOK"), None);
    assert_eq!(four_letter_word(&[0xff, 0xf4, 0xff, 0xfd]), None); // telnet close
    assert_eq!(four_letter_word(&hex("0000002d 00000000")), None); // a ConnectRequest frame
}

proptest! {
    /// Frames concatenated and delivered in arbitrary pieces come out whole and in order.
    #[test]
    fn take_frame_reassembles(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        cuts in proptest::collection::vec(1usize..17, 1..64),
    ) {
        let wire: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        for n in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + n).min(wire.len());
            buf.extend_from_slice(&wire[at..end]);
            at = end;
            while let Some(f) = take_frame(&mut buf, 40).unwrap() {
                got.push(f.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert!(buf.is_empty());
    }
}

#[test]
fn permission_letters_as_zkcli_prints_them() {
    use paddock_proto::perms;
    assert_eq!(perms::letters(perms::ALL), "cdrwa");
    assert_eq!(perms::letters(perms::READ | perms::ADMIN), "ra");
    assert_eq!(perms::letters(0), "");
    for c in "cdrwa".chars() {
        assert_eq!(
            perms::letters(perms::from_letter(c).unwrap()),
            c.to_string()
        );
    }
    assert_eq!(perms::from_letter('x'), None);
}

/// A linearizable read wraps only a read of the tree, and never another wrapper: a chain of
/// them is refused before it is decoded (it must not recurse).
#[test]
fn a_linearizable_wrapper_takes_only_a_read() {
    let mut write = Vec::new();
    write.extend_from_slice(&op::DELETE.to_be_bytes());
    Request::Delete(DeleteRequest {
        path: "/a".into(),
        version: -1,
    })
    .encode_body(&mut write);
    assert!(Request::decode(op::LINEARIZABLE, &write).is_err());
    let nested: Vec<u8> = std::iter::repeat_n(op::LINEARIZABLE.to_be_bytes(), 100_000)
        .flatten()
        .collect();
    assert!(Request::decode(op::LINEARIZABLE, &nested).is_err());
}

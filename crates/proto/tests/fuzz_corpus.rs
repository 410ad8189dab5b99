//! Replays the fuzz corpus through `paddock_proto::fuzzing::decode_stream` (the fuzzer's own
//! code), checks the committed seeds against their generator, and fuzzes a little with proptest:
//! random bytes, random valid streams, and mutations of both.
//!
//! Regenerate the seed files after changing the generator below:
//! `PADDOCK_WRITE_CORPUS=1 cargo test -p paddock-proto --test fuzz_corpus seed_corpus`

mod common;

use common::{frame, request, request_payload};
use paddock_proto::fuzzing::{decode_stream, Summary};
use paddock_proto::*;
use proptest::prelude::*;
use proptest::sample::Index;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::OnceLock;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_decoder")
}

/// Every file of the corpus directory, sorted by name.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = corpus_dir();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    })
}

// ---------------------------------------------------------------------------------------------
// The seed generator

/// What a seed is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A handshake and `n` requests that all decode.
    Valid(usize),
    /// Something in it must be refused (a frame, the handshake or a request).
    Rejected,
}

fn connect(read_only: Option<bool>) -> Vec<u8> {
    frame(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only,
        }
        .to_bytes(),
    )
}

/// A handshake followed by the requests, with the xids clients use.
fn session(reqs: &[Request]) -> Vec<u8> {
    let mut v = connect(Some(false));
    for (i, r) in reqs.iter().enumerate() {
        let xid = match r {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            _ => i as i32 + 1,
        };
        v.extend(frame(&request_payload(xid, r)));
    }
    v
}

/// A handshake followed by one request frame with a raw body.
fn raw(opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut p = RequestHeader { xid: 1, op: opcode }.to_bytes();
    p.extend_from_slice(body);
    let mut v = connect(Some(false));
    v.extend(frame(&p));
    v
}

fn create(kind: CreateKind, path: &str, flags: i32, ttl: i64) -> Create {
    Create {
        kind,
        path: path.into(),
        data: Some(b"data".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl,
    }
}

fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

fn p(path: &str) -> PathRequest {
    PathRequest { path: path.into() }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn all_multi_ops() -> Vec<MultiOp> {
    vec![
        MultiOp::Create(create(CreateKind::Create, "/m", 0, -1)),
        MultiOp::Create(create(CreateKind::Create2, "/m/seq-", 2, -1)),
        MultiOp::Create(create(CreateKind::Container, "/m/c", 4, -1)),
        MultiOp::Create(create(CreateKind::Ttl, "/m/t", 5, 60_000)),
        MultiOp::SetData(SetDataRequest {
            path: "/m".into(),
            data: None,
            version: 0,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/m/c".into(),
            version: -1,
        }),
    ]
}

fn kitchen_sink() -> Vec<Request> {
    vec![
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(b"u:p".to_vec()),
        }),
        Request::Create(create(CreateKind::Create, "/a", 0, -1)),
        Request::Exists(pw("/a", true)),
        Request::GetData(pw("/a", true)),
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(vec![]),
            version: -1,
        }),
        Request::GetChildren2(pw("/", false)),
        Request::Multi(all_multi_ops()),
        Request::MultiRead(vec![
            ReadOp::GetData("/a".into()),
            ReadOp::GetChildren("/".into()),
        ]),
        Request::Ping,
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
        Request::CloseSession,
    ]
}

fn multi_body(entries: &[(i32, Vec<u8>)], terminate: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for (code, rec) in entries {
        v.extend(
            MultiHeader {
                op: *code,
                done: false,
                err: -1,
            }
            .to_bytes(),
        );
        v.extend(rec);
    }
    if terminate {
        v.extend(
            MultiHeader {
                op: -1,
                done: true,
                err: -1,
            }
            .to_bytes(),
        );
    }
    v
}

/// The seed corpus: (file name, bytes, expectation). Deterministic.
fn seeds() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let one = |r: Request| session(&[r]);
    let mut out = vec![
        ("valid-connect", connect(Some(false)), Valid(0)),
        ("valid-connect-old-client", connect(None), Valid(0)),
        ("valid-ping", one(Request::Ping), Valid(1)),
        (
            "valid-create",
            one(Request::Create(create(CreateKind::Create, "/a", 0, -1))),
            Valid(1),
        ),
        (
            "valid-create2-eph-seq",
            one(Request::Create(create(CreateKind::Create2, "/q-", 3, -1))),
            Valid(1),
        ),
        (
            "valid-create-container",
            one(Request::Create(create(CreateKind::Container, "/c", 4, -1))),
            Valid(1),
        ),
        (
            "valid-create-ttl",
            one(Request::Create(create(CreateKind::Ttl, "/t", 5, 1000))),
            Valid(1),
        ),
        (
            "valid-delete",
            one(Request::Delete(DeleteRequest {
                path: "/a".into(),
                version: 3,
            })),
            Valid(1),
        ),
        (
            "valid-exists-getdata",
            session(&[
                Request::Exists(pw("/a", true)),
                Request::GetData(pw("/a", false)),
            ]),
            Valid(2),
        ),
        (
            "valid-setdata-null",
            one(Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: None,
                version: -1,
            })),
            Valid(1),
        ),
        (
            "valid-acl",
            session(&[
                Request::GetAcl(p("/a")),
                Request::SetAcl(SetAclRequest {
                    path: "/a".into(),
                    acl: vec![
                        Acl::new(31, "digest", "u:hash="),
                        Acl::new(1, "world", "anyone"),
                    ],
                    version: 0,
                }),
            ]),
            Valid(2),
        ),
        (
            "valid-children",
            session(&[
                Request::GetChildren(pw("/", true)),
                Request::GetChildren2(pw("/a", false)),
            ]),
            Valid(2),
        ),
        ("valid-sync", one(Request::Sync(p("/"))), Valid(1)),
        (
            "valid-multi-all-ops",
            one(Request::Multi(all_multi_ops())),
            Valid(1),
        ),
        ("valid-multi-empty", one(Request::Multi(vec![])), Valid(1)),
        (
            "valid-multiread",
            one(Request::MultiRead(vec![
                ReadOp::GetChildren("/".into()),
                ReadOp::GetData("/a".into()),
            ])),
            Valid(1),
        ),
        (
            "valid-reconfig",
            one(Request::Reconfig(ReconfigRequest {
                joining_servers: "server.4=h:2888:3888;2181".into(),
                leaving_servers: "2".into(),
                new_members: String::new(),
                cur_config_id: -1,
            })),
            Valid(1),
        ),
        (
            "valid-check-remove-watches",
            session(&[
                Request::CheckWatches(WatchesRequest {
                    path: "/a".into(),
                    watcher_type: 3,
                }),
                Request::RemoveWatches(WatchesRequest {
                    path: "/a".into(),
                    watcher_type: 1,
                }),
            ]),
            Valid(2),
        ),
        (
            "valid-addwatch",
            one(Request::AddWatch(AddWatchRequest {
                path: "/a".into(),
                mode: 1,
            })),
            Valid(1),
        ),
        (
            "valid-setwatches",
            one(Request::SetWatches(SetWatches2 {
                relative_zxid: 42,
                data_watches: strs(&["/a"]),
                exist_watches: strs(&["/b", "/c"]),
                child_watches: strs(&["/"]),
                persistent_watches: vec![],
                persistent_recursive_watches: vec![],
            })),
            Valid(1),
        ),
        (
            "valid-setwatches2",
            one(Request::SetWatches2(SetWatches2 {
                relative_zxid: 42,
                data_watches: vec![],
                exist_watches: strs(&["/b"]),
                child_watches: vec![],
                persistent_watches: strs(&["/p"]),
                persistent_recursive_watches: strs(&["/r", "/r2"]),
            })),
            Valid(1),
        ),
        (
            "valid-auth-digest",
            one(Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: Some(b"user:pw".to_vec()),
            })),
            Valid(1),
        ),
        (
            "valid-sasl",
            one(Request::Sasl(SaslToken {
                token: Some(vec![0x60, 0x82, 0x01]),
            })),
            Valid(1),
        ),
        (
            "valid-ephemerals-count",
            session(&[
                Request::GetEphemerals(p("/")),
                Request::GetAllChildrenNumber(p("/a")),
            ]),
            Valid(2),
        ),
        (
            "valid-whoami-close",
            session(&[Request::WhoAmI, Request::CloseSession]),
            Valid(2),
        ),
        (
            "valid-pipelined-session",
            session(&kitchen_sink()),
            Valid(kitchen_sink().len()),
        ),
        (
            // kazoo: "" as -1 (an `auth` ACL id, an empty auth), None data as -1.
            "valid-kazoo-null-strings",
            {
                let mut v = raw(
                    op::CREATE,
                    &[
                        &[0, 0, 0, 2][..],
                        b"/k",
                        &[0xff; 4],
                        &[0, 0, 0, 1],
                        &[0, 0, 0, 31],
                        &[0, 0, 0, 4],
                        b"auth",
                        &[0xff; 4],
                        &[0, 0, 0, 0],
                    ]
                    .concat(),
                );
                let mut auth = RequestHeader {
                    xid: -4,
                    op: op::AUTH,
                }
                .to_bytes();
                auth.extend([0, 0, 0, 0, 0, 0, 0, 6]);
                auth.extend(b"digest");
                auth.extend([0xff; 4]);
                v.extend(frame(&auth));
                v
            },
            Valid(2),
        ),
        ("bad-four-letter-word", b"ruok\n".to_vec(), Rejected),
        (
            "bad-frame-negative-length",
            [&[0xff, 0xff, 0xff, 0xfe][..], &[0; 8]].concat(),
            Rejected,
        ),
        (
            "bad-frame-oversized-after-connect",
            [
                connect(Some(true)),
                vec![0x00, 0x10, 0x00, 0x00, 0, 0, 0, 1],
            ]
            .concat(),
            Rejected,
        ),
        (
            "bad-frame-truncated",
            [&[0, 0, 0, 100][..], &[1; 10]].concat(),
            Rejected,
        ),
        (
            "bad-connect-truncated",
            frame(&connect(Some(false))[4..24]),
            Rejected,
        ),
        (
            "bad-unknown-opcodes",
            {
                let mut v = connect(Some(false));
                for code in [
                    10,
                    op::CHECK,
                    op::DELETE_CONTAINER,
                    op::CREATE_SESSION,
                    0x7fffffff,
                ] {
                    v.extend(frame(&RequestHeader { xid: 1, op: code }.to_bytes()));
                }
                v
            },
            Rejected,
        ),
        (
            "bad-header-truncated",
            [connect(Some(false)), frame(&[0, 0, 0, 1, 0, 0])].concat(),
            Rejected,
        ),
        (
            "bad-multi-read-subop",
            raw(
                op::MULTI,
                &multi_body(&[(op::GET_DATA, pw("/a", false).to_bytes())], true),
            ),
            Rejected,
        ),
        (
            "bad-multi-create-flags",
            raw(
                op::MULTI,
                &multi_body(
                    &[(op::CREATE, {
                        let mut c = Vec::new();
                        Request::Create(create(CreateKind::Create, "/a", 7, -1))
                            .encode_body(&mut c);
                        c
                    })],
                    true,
                ),
            ),
            Rejected,
        ),
        (
            "bad-multiread-write-subop",
            raw(
                op::MULTI_READ,
                &multi_body(
                    &[(
                        op::DELETE,
                        DeleteRequest {
                            path: "/a".into(),
                            version: -1,
                        }
                        .to_bytes(),
                    )],
                    true,
                ),
            ),
            Rejected,
        ),
        (
            "bad-multi-unterminated",
            raw(
                op::MULTI,
                &multi_body(
                    &[(
                        op::CHECK,
                        CheckVersionRequest {
                            path: "/a".into(),
                            version: 0,
                        }
                        .to_bytes(),
                    )],
                    false,
                ),
            ),
            Rejected,
        ),
        (
            "bad-acl-count-huge",
            raw(
                op::CREATE,
                &[
                    &[0, 0, 0, 2][..],
                    b"/a",
                    &[0xff; 4],
                    &[0x7f, 0xff, 0xff, 0xff],
                    &[0; 4],
                ]
                .concat(),
            ),
            Rejected,
        ),
        (
            "bad-setwatches-count-huge",
            raw(
                op::SET_WATCHES,
                &[&[0; 8][..], &[0x40, 0, 0, 0], &[0; 8]].concat(),
            ),
            Rejected,
        ),
        (
            "bad-string-length-negative",
            raw(op::GET_DATA, &[0xff, 0xff, 0xff, 0xfe, 0]),
            Rejected,
        ),
        (
            "bad-string-past-end",
            raw(op::EXISTS, &[0, 0, 0, 9, b'/', b'a', 0]),
            Rejected,
        ),
        (
            "bad-string-utf8",
            raw(op::SYNC, &[0, 0, 0, 3, b'/', 0xc3, 0x28]),
            Rejected,
        ),
        (
            "bad-body-truncated",
            raw(op::SET_DATA, &[0, 0, 0, 2, b'/', b'a', 0, 0, 0, 1]),
            Rejected,
        ),
        (
            "bad-empty-frames",
            [connect(Some(false)), frame(&[]), frame(&[])].concat(),
            Rejected,
        ),
    ];
    out.sort_by_key(|(name, _, _)| *name);
    out
}

fn check_expectation(name: &str, s: &Summary, e: Expect) {
    let clean = s.connect_ok && s.requests_err == 0 && !s.frame_error && s.leftover == 0;
    match e {
        Expect::Valid(n) => {
            assert!(
                clean && s.requests_ok == n && s.frames == n + 1,
                "{name}: {s:?}"
            )
        }
        Expect::Rejected => assert!(!clean, "{name} was accepted: {s:?}"),
    }
}

/// The committed seeds are what the generator makes (PADDOCK_WRITE_CORPUS=1 rewrites them), and
/// each does what its name says.
#[test]
fn seed_corpus() {
    let dir = corpus_dir();
    let write = std::env::var_os("PADDOCK_WRITE_CORPUS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let seeds = seeds();
    assert!(seeds.len() >= 30);
    for (name, bytes, expect) in &seeds {
        check_expectation(name, &decode_stream(bytes), *expect);
        let path = dir.join(name);
        if write {
            std::fs::write(&path, bytes).unwrap();
        } else {
            let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (run with PADDOCK_WRITE_CORPUS=1 to write the seeds)",
                    path.display()
                )
            });
            assert_eq!(&on_disk, bytes, "{name} differs from its generator");
        }
    }
}

/// Every file in the corpus directory (seeds and any inputs added from fuzzing runs).
#[test]
fn replay_corpus() {
    let files = corpus();
    assert!(
        !files.is_empty(),
        "empty corpus at {}",
        corpus_dir().display()
    );
    let failed: Vec<&str> = files
        .iter()
        .filter(|(_, bytes)| catch_unwind(|| decode_stream(bytes)).is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(failed.is_empty(), "decode_stream panicked on {failed:?}");
}

// ---------------------------------------------------------------------------------------------
// Proptest fuzzing

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    SetByte(Index, u8),
    /// Overwrite four bytes with a value that tends to sit on a length or opcode boundary.
    SetI32(Index, i32),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    /// Append the tail of another corpus file.
    Splice(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let edgy = prop_oneof![
        Just(-1i32),
        Just(-2),
        Just(0),
        Just(1),
        Just(i32::MAX),
        Just(i32::MIN),
        Just(0xFFFFF),
        Just(0x100000),
        0..=23i32,
        100..=107i32,
        any::<i32>(),
    ];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<Index>(), edgy).prop_map(|(i, v)| Mutation::SetI32(i, v)),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(f, i)| Mutation::Splice(f, i)),
    ]
}

fn mutate(data: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::Flip(i, bit) if !data.is_empty() => {
            let k = at(i, data.len());
            data[k] ^= 1 << bit;
        }
        Mutation::SetByte(i, b) if !data.is_empty() => {
            let k = at(i, data.len());
            data[k] = *b;
        }
        Mutation::SetI32(i, v) if data.len() >= 4 => {
            let k = at(i, data.len() - 3);
            data[k..k + 4].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::Insert(i, bytes) => {
            let k = at(i, data.len() + 1);
            data.splice(k..k, bytes.iter().copied());
        }
        Mutation::Remove(i, n) if !data.is_empty() => {
            let k = at(i, data.len());
            let end = (k + n).min(data.len());
            data.drain(k..end);
        }
        Mutation::Truncate(i) => {
            let k = at(i, data.len() + 1);
            data.truncate(k);
        }
        Mutation::Splice(f, i) => {
            let files = corpus();
            let other = &files[f.index(files.len())].1;
            let k = at(i, other.len() + 1);
            data.extend_from_slice(&other[k..]);
        }
        _ => {}
    }
}

fn no_panic(data: &[u8]) -> Result<Summary, TestCaseError> {
    catch_unwind(AssertUnwindSafe(|| decode_stream(data)))
        .map_err(|_| TestCaseError::fail(format!("decode_stream panicked on {data:02x?}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        no_panic(&data)?;
    }

    /// A valid handshake, then random frames with plausible opcodes and random bodies.
    #[test]
    fn random_request_frames(
        frames in proptest::collection::vec(
            (prop_oneof![0..=23i32, 100..=107i32, Just(-11), any::<i32>()],
             proptest::collection::vec(any::<u8>(), 0..64)),
            0..8,
        ),
    ) {
        let mut data = connect(Some(false));
        for (code, body) in &frames {
            let mut p = RequestHeader { xid: 1, op: *code }.to_bytes();
            p.extend(body);
            data.extend(frame(&p));
        }
        let s = no_panic(&data)?;
        prop_assert_eq!(s.frames, frames.len() + 1);
    }

    #[test]
    fn mutated_corpus(file in any::<Index>(),
                      muts in proptest::collection::vec(mutation(), 1..8)) {
        let files = corpus();
        let mut data = files[file.index(files.len())].1.clone();
        for m in &muts {
            mutate(&mut data, m);
        }
        no_panic(&data)?;
    }

    /// Random valid sessions decode fully; mutated ones never panic.
    #[test]
    fn random_sessions(reqs in proptest::collection::vec(request(), 0..6),
                       muts in proptest::collection::vec(mutation(), 0..6)) {
        let mut data = session(&reqs);
        let s = no_panic(&data)?;
        prop_assert_eq!(
            (s.connect_ok, s.requests_ok, s.requests_err, s.frame_error, s.leftover),
            (true, reqs.len(), 0, false, 0)
        );
        for m in &muts {
            mutate(&mut data, m);
        }
        no_panic(&data)?;
    }
}

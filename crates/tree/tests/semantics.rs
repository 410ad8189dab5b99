//! The tree and write preparation against ZooKeeper's documented behaviour, including the
//! exactness of the in-flight set when writes are pipelined.

use paddock_proto::{
    perms, Acl, CheckVersionRequest, Create, CreateKind, DeleteRequest, ErrorCode, Id, MultiOp,
    Request, SetAclRequest, SetDataRequest,
};
use paddock_tree::{AuthInfo, DataTree, Outcome, Prep, PrepConfig, Stamp, Txn, TxnOp};
use proptest::prelude::*;

const S1: i64 = 0x0100_0000_0000_0001;
const S2: i64 = 0x0100_0000_0000_0002;

fn anon() -> AuthInfo {
    AuthInfo::for_ip("127.0.0.1")
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(create_op(path, flags))
}

fn create_op(path: &str, flags: i32) -> Create {
    Create {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    }
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set(path: &str, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(b"x".to_vec()),
        version,
    })
}

struct World {
    tree: DataTree,
    prep: Prep,
    time: i64,
    /// The last zxid stamped: the world plays the leader's counter.
    zxid: i64,
}

impl World {
    fn new() -> World {
        World::with(PrepConfig::default())
    }
    fn with(cfg: PrepConfig) -> World {
        let tree = DataTree::new();
        let prep = Prep::new(cfg);
        World {
            zxid: tree.last_zxid(),
            tree,
            prep,
            time: 1000,
        }
    }
    /// The next transaction's stamp.
    fn stamp(&mut self) -> Stamp {
        self.time += 1;
        self.zxid += 1;
        Stamp {
            zxid: self.zxid,
            time: self.time,
        }
    }
    fn prep(&mut self, session: i64, auth: &AuthInfo, req: &Request) -> Txn {
        let at = self.stamp();
        self.prep.prep(&self.tree, at, session, 1, auth, req)
    }
    fn apply(&mut self, txn: &Txn) -> Result<Outcome, ErrorCode> {
        let a = self.tree.apply(txn);
        self.prep.applied(txn.zxid);
        a.result
    }
    /// Prepares and applies at once.
    fn run(&mut self, session: i64, req: &Request) -> Result<Outcome, ErrorCode> {
        let t = self.prep(session, &anon(), req);
        self.apply(&t)
    }
    fn stat(&self, path: &str) -> paddock_proto::Stat {
        self.tree.stat(self.tree.lookup(path).expect(path))
    }
}

fn err_of(t: &Txn) -> Option<ErrorCode> {
    match &t.op {
        TxnOp::Error { err } => Some(*err),
        _ => None,
    }
}

#[test]
fn fresh_tree_matches_zookeeper() {
    let w = World::new();
    let root = w.stat("/");
    assert_eq!((root.cversion, root.num_children, root.pzxid), (-1, 1, 0));
    assert_eq!(w.stat("/zookeeper").cversion, -2);
    let cfg = w.tree.lookup("/zookeeper/config").unwrap();
    assert_eq!(w.tree.stat(cfg).aversion, -1);
    assert_eq!(w.tree.acl(cfg), Acl::read_unsafe().as_slice());
    assert_eq!(w.tree.node_count(), 4);
}

#[test]
fn stat_fields_and_sequential_suffixes() {
    let mut w = World::new();
    w.run(S1, &create("/a", 0)).unwrap();
    let a = w.stat("/a");
    assert_eq!(
        (
            a.czxid,
            a.mzxid,
            a.pzxid,
            a.version,
            a.cversion,
            a.data_length
        ),
        (1, 1, 1, 0, 0, 1)
    );
    let Outcome::Created { path, .. } = w.run(S1, &create("/a/s-", 2)).unwrap() else {
        panic!()
    };
    assert_eq!(path, "/a/s-0000000000");
    w.run(S1, &delete("/a/s-0000000000", -1)).unwrap();
    // Deletes do not free suffixes, and the visible cversion counts creates and deletes.
    let Outcome::Created { path, .. } = w.run(S1, &create("/a/s-", 2)).unwrap() else {
        panic!()
    };
    assert_eq!(path, "/a/s-0000000001");
    let a = w.stat("/a");
    assert_eq!((a.cversion, a.num_children), (3, 1));
    assert_eq!(a.pzxid, 4);
    // setData moves mzxid and version, never the parent's pzxid.
    w.run(S1, &set("/a/s-0000000001", 0)).unwrap();
    assert_eq!(w.stat("/a").pzxid, 4);
    assert_eq!(w.stat("/a/s-0000000001").version, 1);
    // A trailing slash is legal for sequential creates: the suffix makes the path valid.
    let Outcome::Created { path, .. } = w.run(S1, &create("/a/", 2)).unwrap() else {
        panic!()
    };
    assert_eq!(path, "/a/0000000002");
}

#[test]
fn error_codes_in_check_order() {
    let mut w = World::new();
    let e = |w: &mut World, r: &Request| w.run(S1, r).unwrap_err();
    assert_eq!(e(&mut w, &create("/a/b", 0)), ErrorCode::NoNode);
    assert_eq!(e(&mut w, &create("/a", 9)), ErrorCode::BadArguments);
    assert_eq!(e(&mut w, &create("/a", 5)), ErrorCode::Unimplemented);
    assert_eq!(e(&mut w, &create("a", 0)), ErrorCode::BadArguments);
    assert_eq!(e(&mut w, &create("/a/", 0)), ErrorCode::NoNode);
    assert_eq!(e(&mut w, &create("/", 0)), ErrorCode::NodeExists);
    w.run(S1, &create("/e", 1)).unwrap();
    assert_eq!(
        e(&mut w, &create("/e/c", 0)),
        ErrorCode::NoChildrenForEphemerals
    );
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(e(&mut w, &delete(p, -1)), ErrorCode::BadArguments, "{p}");
    }
    w.run(S1, &create("/p", 0)).unwrap();
    w.run(S1, &create("/p/c", 0)).unwrap();
    assert_eq!(e(&mut w, &delete("/p", 5)), ErrorCode::BadVersion);
    assert_eq!(e(&mut w, &delete("/p", -1)), ErrorCode::NotEmpty);
    assert_eq!(e(&mut w, &set("/p", 3)), ErrorCode::BadVersion);
    assert_eq!(e(&mut w, &set("/p/", 0)), ErrorCode::BadArguments);
    assert_eq!(e(&mut w, &set("/nope", 0)), ErrorCode::NoNode);
    let mut bad = create_op("/q", 0);
    bad.acl = vec![Acl::new(perms::ALL, "auth", "")];
    assert_eq!(
        w.run(S1, &Request::Create(bad)).unwrap_err(),
        ErrorCode::InvalidAcl
    );
}

#[test]
fn acls_are_per_node_and_checked_in_prep() {
    let mut w = World::new();
    let mut digest = anon();
    digest.add(Id::new("digest", "u:hash"));
    let mut c = create_op("/locked", 0);
    c.acl = vec![Acl::new(perms::READ | perms::CREATE, "digest", "u:hash")];
    let t = w.prep(S1, &digest, &Request::Create(c));
    w.apply(&t).unwrap();
    // Not inherited: a child created by the digest user with an open ACL is open.
    let t = w.prep(S1, &digest, &create("/locked/open", 0));
    w.apply(&t).unwrap();
    assert_eq!(
        err_of(&w.prep(S2, &anon(), &create("/locked/x", 0))),
        Some(ErrorCode::NoAuth)
    );
    assert_eq!(
        err_of(&w.prep(S2, &anon(), &set("/locked", -1))),
        Some(ErrorCode::NoAuth)
    );
    let t = w.prep(S2, &anon(), &set("/locked/open", -1));
    assert!(err_of(&t).is_none());
    w.apply(&t).unwrap();
    // A pending setACL is what the next write is checked against.
    let t = w.prep(S1, &anon(), &create("/b", 0));
    w.apply(&t).unwrap();
    let sa = Request::SetAcl(SetAclRequest {
        path: "/b".into(),
        acl: vec![Acl::new(perms::READ, "world", "anyone")],
        version: 0,
    });
    let t1 = w.prep(S1, &anon(), &sa);
    assert!(err_of(&t1).is_none());
    let t2 = w.prep(S1, &anon(), &set("/b", -1));
    assert_eq!(err_of(&t2), Some(ErrorCode::NoAuth));
    w.apply(&t1).unwrap();
    assert_eq!(w.stat("/b").aversion, 1);
}

#[test]
fn pending_changes_retire_by_zxid_not_by_path() {
    let mut w = World::new();
    let t1 = w.prep(S1, &anon(), &create("/x", 0));
    let t2 = w.prep(S1, &anon(), &delete("/x", -1));
    let t3 = w.prep(S1, &anon(), &create("/x", 0));
    assert!([&t1, &t2, &t3].iter().all(|t| err_of(t).is_none()));
    w.apply(&t1).unwrap();
    // /x's latest pending change (t3) must still be in force.
    assert_eq!(
        err_of(&w.prep(S1, &anon(), &create("/x", 0))),
        Some(ErrorCode::NodeExists)
    );
    w.apply(&t2).unwrap();
    w.apply(&t3).unwrap();
    assert_eq!(w.stat("/x").czxid, t3.zxid);
}

#[test]
fn failed_multi_stages_nothing_and_reports_per_op() {
    let mut w = World::new();
    let m = Request::Multi(vec![
        MultiOp::Create(create_op("/m", 0)),
        MultiOp::Create(create_op("/nope/child", 0)),
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 0,
        }),
    ]);
    let t = w.prep(S1, &anon(), &m);
    assert_eq!(w.prep.pending_paths(), 0);
    let TxnOp::Multi(ops) = &t.op else { panic!() };
    let codes: Vec<_> = ops
        .iter()
        .map(|o| match o {
            TxnOp::Error { err } => err.code(),
            _ => 99,
        })
        .collect();
    assert_eq!(codes, vec![0, -101, -2]);
    assert!(err_of(&w.prep(S1, &anon(), &create("/m", 0))).is_none());
    let Outcome::Multi(res) = w.apply(&t).unwrap() else {
        panic!()
    };
    assert_eq!(res, vec![Err(0), Err(-101), Err(-2)]);
    assert!(
        w.tree.lookup("/m").is_none(),
        "a failed multi applies nothing"
    );
    // Sub-ops see their predecessors, and sequential counters advance inside one multi.
    let m = Request::Multi(vec![
        MultiOp::Create(create_op("/n", 0)),
        MultiOp::Create(create_op("/n/s", 2)),
        MultiOp::Create(create_op("/n/s", 2)),
        MultiOp::SetData(SetDataRequest {
            path: "/n".into(),
            data: None,
            version: 0,
        }),
    ]);
    let Outcome::Multi(res) = w.run(S1, &m).unwrap() else {
        panic!()
    };
    let paths: Vec<_> = res
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::Created { path, .. }) => Some(path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, vec!["/n", "/n/s0000000000", "/n/s0000000001"]);
}

#[test]
fn reset_forgets_in_flight_changes() {
    let mut w = World::new();
    let t = w.prep(S1, &anon(), &create("/r", 0));
    assert!(err_of(&t).is_none());
    // The leader stepped down before `t` committed: nothing it prepared may be believed, and
    // the next leader numbers from what was committed.
    w.prep.reset();
    w.zxid = w.tree.last_zxid();
    assert_eq!(w.prep.pending_paths(), 0);
    let t2 = w.prep(S1, &anon(), &create("/r", 0));
    assert!(err_of(&t2).is_none());
    assert_eq!(t2.zxid, t.zxid);
}

#[test]
fn close_includes_in_flight_ephemerals_and_blocks_later_writes() {
    let mut w = World::new();
    let a = w.prep(S1, &anon(), &create("/e1", 1));
    w.apply(&a).unwrap();
    let b = w.prep(S1, &anon(), &create("/e2", 1));
    let at = w.stamp();
    let close = w.prep.close_session(&w.tree, at, S1, 5);
    let TxnOp::CloseSession { ephemerals } = &close.op else {
        panic!()
    };
    assert_eq!(ephemerals, &vec!["/e1".to_string(), "/e2".to_string()]);
    assert!(w.prep.is_closing(S1));
    assert_eq!(
        err_of(&w.prep(S1, &anon(), &create("/late", 0))),
        Some(ErrorCode::SessionExpired)
    );
    w.apply(&b).unwrap();
    w.apply(&close).unwrap();
    assert!(w.tree.lookup("/e1").is_none() && w.tree.lookup("/e2").is_none());
    assert_eq!(w.tree.ephemeral_count(), 0);
    assert_eq!(w.stat("/").num_children, 1);
}

#[test]
fn containers_and_ttl() {
    let mut w = World::with(PrepConfig {
        extended_types: true,
        ..Default::default()
    });
    let mut cont = create_op("/c", 4);
    cont.kind = CreateKind::Container;
    w.run(S1, &Request::Create(cont)).unwrap();
    // The opcode decides: create2 with the container flag makes a plain node.
    w.run(S1, &create("/not-a-container", 4)).unwrap();
    assert_eq!(w.stat("/c").ephemeral_owner, 0);
    let mut ttl = create_op("/t", 5);
    ttl.kind = CreateKind::Ttl;
    assert_eq!(
        w.run(S1, &Request::Create(ttl.clone())).unwrap_err(),
        ErrorCode::BadArguments
    );
    ttl.ttl = 100;
    w.run(S1, &Request::Create(ttl)).unwrap();
    assert_eq!(w.stat("/t").ephemeral_owner, 0);
    assert_eq!(
        w.tree.container_and_ttl_nodes().len(),
        2,
        "the container and the TTL node only"
    );
    w.run(S1, &create("/c/kid", 0)).unwrap();
    let at = w.stamp();
    let t = w.prep.delete_container(&w.tree, at, "/c");
    assert_eq!(err_of(&t), Some(ErrorCode::NotEmpty));
    w.apply(&t).unwrap_err();
    w.run(S1, &delete("/c/kid", -1)).unwrap();
    let at = w.stamp();
    let t = w.prep.delete_container(&w.tree, at, "/c");
    w.apply(&t).unwrap();
    assert!(w.tree.lookup("/c").is_none());
}

#[test]
fn quotas_are_tracked_and_enforced() {
    let mut w = World::with(PrepConfig {
        enforce_quota: true,
        ..Default::default()
    });
    w.run(S1, &create("/q", 0)).unwrap();
    w.run(S1, &create("/zookeeper/quota/q", 0)).unwrap();
    let mut lim = create_op("/zookeeper/quota/q/zookeeper_limits", 0);
    lim.data = Some(b"count=-1,bytes=-1=;countHardLimit=2".to_vec());
    w.run(S1, &Request::Create(lim)).unwrap();
    let mut st = create_op("/zookeeper/quota/q/zookeeper_stats", 0);
    st.data = Some(b"count=0,bytes=0".to_vec());
    w.run(S1, &Request::Create(st)).unwrap();
    w.run(S1, &create("/q/a", 0)).unwrap();
    assert_eq!(
        w.run(S1, &create("/q/b", 0)).unwrap_err(),
        ErrorCode::QuotaExceeded
    );
    let id = w.tree.lookup("/zookeeper/quota/q/zookeeper_stats").unwrap();
    assert_eq!(w.tree.data(id), Some(&b"count=2,bytes=2"[..]));
}

/// A small random operation on a small namespace, so collisions are frequent.
fn arb_req() -> impl Strategy<Value = Request> {
    let path = prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"]);
    prop_oneof![
        (path.clone(), 0..4i32).prop_map(|(p, f)| create(p, f)),
        (path.clone(), -1..2i32).prop_map(|(p, v)| delete(p, v)),
        (path.clone(), -1..3i32).prop_map(|(p, v)| set(p, v)),
        (path.clone(), path.clone(), -1..2i32).prop_map(|(p, q, v)| Request::Multi(vec![
            MultiOp::Create(create_op(p, 0)),
            MultiOp::SetData(SetDataRequest {
                path: q.into(),
                data: None,
                version: v
            }),
        ])),
    ]
}

proptest! {
    /// Pipelining must not change any outcome: preparing every write before applying any gives
    /// the same transactions as preparing each after its predecessors were applied.
    #[test]
    fn pipelined_prep_equals_sequential(reqs in prop::collection::vec(arb_req(), 1..40), split in 0usize..40) {
        let mut seq = World::new();
        let mut seq_txns = Vec::new();
        for r in &reqs {
            let t = seq.prep(S1, &anon(), r);
            seq.apply(&t).ok();
            seq_txns.push(t);
        }
        let mut pipe = World::new();
        let mut pipe_txns = Vec::new();
        let mut pending = std::collections::VecDeque::new();
        for (i, r) in reqs.iter().enumerate() {
            let t = pipe.prep(S1, &anon(), r);
            pending.push_back(t.clone());
            pipe_txns.push(t);
            // Apply some of the in-flight ones now and then, at a point chosen by the test.
            if i % (split % 5 + 1) == 0 {
                if let Some(t) = pending.pop_front() { pipe.apply(&t).ok(); }
            }
        }
        while let Some(t) = pending.pop_front() { pipe.apply(&t).ok(); }
        prop_assert_eq!(&seq_txns, &pipe_txns);
        prop_assert_eq!(pipe.prep.pending_paths(), 0);
        for p in ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/"] {
            let a = seq.tree.lookup(p).map(|id| seq.tree.stat(id));
            let b = pipe.tree.lookup(p).map(|id| pipe.tree.stat(id));
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn children_come_a_page_at_a_time_in_name_order() {
    let mut w = World::new();
    w.run(S1, &create("/p", 0)).unwrap();
    for i in (0..250).rev() {
        w.run(S1, &create(&format!("/p/n{i:03}"), 0)).unwrap();
    }
    w.run(S1, &create("/p/n005/deep", 0)).unwrap();
    let p = w.tree.lookup("/p").unwrap();
    let page = w.tree.children_page(p, 0, 100);
    assert_eq!(page.len(), 100);
    assert_eq!(page[0], ("n000".to_owned(), 0));
    assert_eq!(page[5], ("n005".to_owned(), 1));
    let last = w.tree.children_page(p, 200, 100);
    assert_eq!(last.len(), 50);
    assert_eq!(last[49].0, "n249");
    assert!(w.tree.children_page(p, 250, 100).is_empty());
}

#[test]
fn children_after_a_name_page_through_every_child_once_under_churn() {
    let mut w = World::new();
    w.run(S1, &create("/p", 0)).unwrap();
    for i in (0..250).rev() {
        w.run(S1, &create(&format!("/p/n{i:03}"), 0)).unwrap();
    }
    let p = w.tree.lookup("/p").unwrap();
    let (first, more) = w.tree.children_after(p, "", 100, usize::MAX);
    assert_eq!((first.len(), first[0].as_str(), more), (100, "n000", true));
    // The cursor need not exist any more: pages continue from where its name sorts.
    w.run(S1, &delete("/p/n099", -1)).unwrap();
    w.run(S1, &create("/p/n0995", 0)).unwrap(); // sorts after the cursor: listed
    w.run(S1, &create("/p/a", 0)).unwrap(); // before it: not
    let (second, _) = w.tree.children_after(p, "n099", 100, usize::MAX);
    assert_eq!(second[0], "n0995");
    assert_eq!(second[1], "n100");
    let (last, more) = w.tree.children_after(p, "n199", 1000, usize::MAX);
    assert_eq!((last.len(), more), (50, false));
    // A byte budget ends a page early, but never before its first name.
    let (small, more) = w.tree.children_after(p, "", 1000, 8);
    assert_eq!(
        (small, more),
        (vec!["a".to_owned(), "n000".to_owned()], true)
    );
    let (one, _) = w.tree.children_after(p, "", 1000, 0);
    assert_eq!(one, vec!["a".to_owned()]);
    let (none, more) = w.tree.children_after(p, "n249", 10, 100);
    assert!(none.is_empty() && !more);
    // ACLs and missing nodes are answered as getChildren answers them.
    assert_eq!(
        w.tree
            .get_children_page("/nope", "", 10, 100, &anon(), false)
            .unwrap_err(),
        ErrorCode::NoNode
    );
    let (names, stat, more) = w
        .tree
        .get_children_page("/p", "n248", 10, 100, &anon(), false)
        .unwrap();
    assert_eq!(
        (names, stat.num_children, more),
        (vec!["n249".to_owned()], 251, false)
    );
}

#[test]
fn a_transaction_too_large_to_log_is_refused_and_stages_nothing() {
    let mut w = World::with(PrepConfig {
        max_txn_bytes: Some(4096),
        ..Default::default()
    });
    w.run(S1, &create("/p", 0)).unwrap();
    let mut big = create_op("/p/big", 0);
    big.data = Some(vec![7; 5000]);
    let t = w.prep(S1, &anon(), &Request::Create(big.clone()));
    assert_eq!(err_of(&t), Some(ErrorCode::BadArguments));
    // Nothing was staged: the same path can be created next, pipelined before the apply.
    let small = w.prep(S1, &anon(), &create("/p/big", 0));
    assert_eq!(err_of(&small), None);
    w.apply(&t).unwrap_err();
    w.apply(&small).unwrap();
    // A multi whose ops are each small but whose whole is too large: refused as a whole.
    let mut half = create_op("/p/m1", 0);
    half.data = Some(vec![1; 2500]);
    let mut other = half.clone();
    other.path = "/p/m2".into();
    let multi = Request::Multi(vec![MultiOp::Create(half), MultiOp::Create(other)]);
    assert_eq!(w.run(S1, &multi).unwrap_err(), ErrorCode::BadArguments);
    assert!(w.tree.lookup("/p/m1").is_none());
    // An ACL that expands to every identity of the session grows the transaction too.
    let mut auth = anon();
    for i in 0..200 {
        auth.add(Id::new("digest", format!("user{i}:hash-of-a-password-{i}")));
    }
    let mut mine = create_op("/p/mine", 0);
    mine.acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("auth", ""),
    }];
    let t = w.prep(S1, &auth, &Request::Create(mine));
    assert_eq!(err_of(&t), Some(ErrorCode::BadArguments));
}

#[test]
fn a_close_with_more_ephemerals_than_a_transaction_lists_deletes_them_all() {
    let mut w = World::new();
    w.run(S1, &create("/e", 0)).unwrap();
    let long = "x".repeat(200);
    let n = 6000; // over 1 MiB of paths
    for i in 0..n {
        w.run(S1, &create(&format!("/e/{long}{i:05}"), 1)).unwrap();
    }
    w.run(S2, &create("/e/other", 1)).unwrap();
    let at = w.stamp();
    let close = w.prep.close_session(&w.tree, at, S1, 1);
    match &close.op {
        TxnOp::CloseSession { ephemerals } => assert!(ephemerals.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(paddock_tree::codec::encoded_len(&close.op) < 1024);
    let applied = w.tree.apply(&close);
    w.prep.applied(close.zxid);
    let deleted = applied
        .changes
        .iter()
        .filter(|c| c.event_type == paddock_proto::event::NODE_DELETED)
        .count();
    assert_eq!(deleted, n);
    assert_eq!(
        w.stat("/e").num_children,
        1,
        "the other session's node stays"
    );
}

#[test]
fn a_local_session_creates_anything_but_an_ephemeral() {
    let mut w = World::new();
    let local = |w: &mut World, req: &Request| {
        let at = w.stamp();
        w.prep.prep_local(&w.tree, at, S1, 1, &anon(), req)
    };
    // Persistent, sequential and container nodes are fine; the check comes after the mode
    // and TTL checks, before the path's, as ZooKeeper's validateCreateRequest.
    let t = local(&mut w, &create("/p", 0));
    assert!(err_of(&t).is_none());
    w.apply(&t).unwrap();
    for flags in [1, 3] {
        let t = local(&mut w, &create("/p", flags));
        assert_eq!(err_of(&t), Some(ErrorCode::EphemeralOnLocalSession));
        let t = local(&mut w, &create("/nope/e", flags));
        assert_eq!(err_of(&t), Some(ErrorCode::EphemeralOnLocalSession));
    }
    let t = local(&mut w, &create("/p", 99));
    assert_eq!(err_of(&t), Some(ErrorCode::BadArguments));
    let mut container = create_op("/c", 1);
    container.kind = CreateKind::Container;
    let t = local(&mut w, &Request::Create(container));
    assert!(err_of(&t).is_none(), "createContainer makes no ephemeral");
    // In a multi the ephemeral's op fails and the multi with it.
    let m = Request::Multi(vec![
        MultiOp::Create(create_op("/m", 0)),
        MultiOp::Create(create_op("/m/e", 1)),
    ]);
    let TxnOp::Multi(ops) = local(&mut w, &m).op else {
        panic!()
    };
    assert!(matches!(ops[1], TxnOp::Error { err } if err == ErrorCode::EphemeralOnLocalSession));
    // The same session prepared as a global one may; the flag lasts one call.
    let t = w.prep(S1, &anon(), &create("/e", 1));
    assert!(err_of(&t).is_none());
    assert!(m.creates_ephemeral() && !create("/x", 2).creates_ephemeral());
}

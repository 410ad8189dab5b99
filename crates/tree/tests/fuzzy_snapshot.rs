//! Snapshots are fuzzy: the tree keeps changing while one is walked. What makes that safe is
//! that every transaction carries absolute results, so replaying the log from the zxid at which
//! the walk began over whatever the walk captured gives the same tree. This checks it on random
//! histories with the walk interleaved with writes at random points, comparing tree digests.

use paddock_proto::{
    Acl, Create, CreateKind, DeleteRequest, MultiOp, Request, SetAclRequest, SetDataRequest,
};
use paddock_tree::snapshot::SnapshotLoader;
use paddock_tree::{AuthInfo, DataTree, Prep, PrepConfig, SnapNode, SnapshotCursor, Stamp, Txn};
use proptest::prelude::*;

const SESSIONS: [i64; 2] = [0x0100_0000_0000_0001, 0x0100_0000_0000_0002];

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    Request(usize, Request),
    OpenSession(usize),
    CloseSession(usize),
}

fn create(path: &str, flags: i32, data: &[u8]) -> Create {
    Create {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    }
}

fn arb_step() -> impl Strategy<Value = Step> {
    let path = prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/a/s-"]);
    let who = 0..SESSIONS.len();
    let data = prop::collection::vec(any::<u8>(), 0..6);
    prop_oneof![
        4 => (who.clone(), path.clone(), 0..4i32, data.clone())
            .prop_map(|(w, p, f, d)| Step::Request(w, Request::Create(create(p, f, &d)))),
        3 => (who.clone(), path.clone(), -1..2i32).prop_map(|(w, p, v)| Step::Request(
            w,
            Request::Delete(DeleteRequest { path: p.into(), version: v })
        )),
        3 => (who.clone(), path.clone(), -1..3i32, data.clone()).prop_map(|(w, p, v, d)| Step::Request(
            w,
            Request::SetData(SetDataRequest { path: p.into(), data: Some(d), version: v })
        )),
        1 => (who.clone(), path.clone()).prop_map(|(w, p)| Step::Request(
            w,
            Request::SetAcl(SetAclRequest {
                path: p.into(),
                acl: vec![Acl::new(31, "world", "anyone"), Acl::new(1, "ip", "10.0.0.1")],
                version: -1,
            })
        )),
        1 => (who.clone(), path.clone(), path.clone(), data).prop_map(|(w, p, q, d)| Step::Request(
            w,
            Request::Multi(vec![
                MultiOp::Create(create(p, 0, &d)),
                MultiOp::Delete(DeleteRequest { path: q.into(), version: -1 }),
            ])
        )),
        // A quota on /a: its stats node is rewritten in place by later writes under /a.
        1 => who.clone().prop_map(|w| Step::Request(w, Request::Multi(vec![
            MultiOp::Create(create("/zookeeper/quota/a", 0, b"")),
            MultiOp::Create(create("/zookeeper/quota/a/zookeeper_limits", 0, b"count=4,bytes=-1")),
            MultiOp::Create(create("/zookeeper/quota/a/zookeeper_stats", 0, b"count=0,bytes=0")),
        ]))),
        1 => who.clone().prop_map(Step::OpenSession),
        1 => who.prop_map(Step::CloseSession),
    ]
}

/// Prepares a history, applying each transaction before preparing the next.
fn history(steps: &[Step]) -> Vec<Txn> {
    let mut tree = DataTree::new();
    let mut prep = Prep::new(PrepConfig::default());
    let auth = AuthInfo::for_ip("127.0.0.1");
    let mut txns = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let at = Stamp {
            zxid: i as i64 + 1,
            time: 1000 + i as i64,
        };
        let t = match s {
            Step::Request(w, r) => prep.prep(&tree, at, SESSIONS[*w], i as i32, &auth, r),
            Step::OpenSession(w) => {
                prep.create_session(at, SESSIONS[*w], 30_000, Some([*w as u8; 16]))
            }
            Step::CloseSession(w) => prep.close_session(&tree, at, SESSIONS[*w], i as i32),
        };
        tree.apply(&t);
        prep.applied(t.zxid);
        txns.push(t);
    }
    txns
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Begin a snapshot after `start` transactions; between any two nodes written, apply the
    /// next transactions as the schedule says; then load what was written and replay every
    /// transaction after `start`. The result must equal the tree that never stopped.
    #[test]
    fn replay_over_a_fuzzy_snapshot_gives_the_same_tree(
        steps in prop::collection::vec(arb_step(), 1..60),
        start_frac in 0.0f64..1.0,
        schedule in prop::collection::vec(0usize..4, 0..80),
        leave_out_new in any::<bool>(),
    ) {
        // Sessions first, so ephemeral creates have owners that exist.
        let mut all = vec![Step::OpenSession(0), Step::OpenSession(1)];
        all.extend(steps);
        let txns = history(&all);
        let start = ((txns.len() as f64) * start_frac) as usize;

        let mut live = DataTree::new();
        for t in &txns[..start] {
            live.apply(t);
        }
        let snap_zxid = live.last_zxid();
        let mut sessions: Vec<(i64, i32)> =
            live.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort_unstable();

        // The walk, in chunks of random size, with writes applied between chunks.
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut next = start;
        // The server's walks leave out nodes created after they began; a whole walk of the
        // changing tree must give the same tree after replay too.
        let mut cursor = if leave_out_new {
            SnapshotCursor::taken_at(snap_zxid)
        } else {
            SnapshotCursor::whole()
        };
        let mut sched = schedule.iter().copied().cycle();
        loop {
            let mut chunk = Vec::new();
            let more = live.snapshot_chunk(&mut cursor, 1 + sched.next().unwrap_or(0), &mut chunk);
            for n in &chunk {
                let mut b = Vec::new();
                n.encode(&mut b);
                written.push(b);
            }
            if !more {
                break;
            }
            for _ in 0..sched.next().unwrap_or(0) {
                if let Some(t) = txns.get(next) {
                    live.apply(t);
                    next += 1;
                }
            }
        }
        for t in &txns[next..] {
            live.apply(t);
        }

        // Load and replay.
        let mut loader = SnapshotLoader::new();
        for (id, to) in &sessions {
            loader.session(*id, *to);
        }
        for b in &written {
            let n = SnapNode::decode(b).expect("a node just encoded decodes");
            loader.node(&n).expect("parents come before children");
        }
        let mut restored = loader.finish(snap_zxid);
        for t in &txns[start..] {
            restored.apply(t);
        }
        prop_assert_eq!(dump(&restored), dump(&live), "start {} walk applied up to {}\n{:#?}", start, next, txns);
        prop_assert_eq!(restored.digest(), live.digest());
        // ZooKeeper's digest, kept up to date on every change, equals the sum taken afresh.
        prop_assert_eq!(live.zk_digest(), live.zk_digest_from_scratch());
        prop_assert_eq!(restored.zk_digest(), live.zk_digest());
        prop_assert_eq!(restored.node_count(), live.node_count());
        prop_assert_eq!(restored.ephemeral_count(), live.ephemeral_count());
    }
}

/// Every node as text, to show where two trees differ.
fn dump(t: &DataTree) -> Vec<String> {
    let mut out = vec![format!("zxid {:#x} sessions {:?}", t.last_zxid(), {
        let mut s: Vec<_> = t.sessions().iter().collect();
        s.sort();
        s
    })];
    let mut cur: Option<String> = None;
    while let Some(p) = t.snapshot_successor(cur.as_deref()) {
        if let Some(n) = t.snap_node(&p) {
            out.push(format!("{n:?}"));
        }
        cur = Some(p);
    }
    out
}

/// The digest must notice a difference, or the property above proves nothing.
#[test]
fn digest_tells_trees_apart() {
    let txns = history(&[
        Step::OpenSession(0),
        Step::Request(0, Request::Create(create("/a", 0, b"1"))),
    ]);
    let mut a = DataTree::new();
    let mut b = DataTree::new();
    for t in &txns {
        a.apply(t);
        b.apply(t);
    }
    assert_eq!(a.digest(), b.digest());
    let mut t = history(&[
        Step::OpenSession(0),
        Step::Request(0, Request::Create(create("/a", 0, b"1"))),
        Step::Request(
            0,
            Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: Some(b"1".to_vec()),
                version: -1,
            }),
        ),
    ]);
    // Same data, but the version moved: the digest must differ.
    let set = t.pop().unwrap();
    b.apply(&set);
    assert_ne!(a.digest(), b.digest());
}

/// The chunked walk visits exactly what the path-by-path walk does, whatever the chunk size.
#[test]
fn chunked_walk_equals_the_successor_walk() {
    let mut steps = vec![Step::OpenSession(0)];
    for i in 0..40 {
        let p = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/a/s-"][i % 7];
        steps.push(Step::Request(
            0,
            Request::Create(create(p, (i % 3) as i32, b"v")),
        ));
    }
    let mut tree = DataTree::new();
    for t in history(&steps) {
        tree.apply(&t);
    }
    let mut by_path = Vec::new();
    let mut cur: Option<String> = None;
    while let Some(p) = tree.snapshot_successor(cur.as_deref()) {
        by_path.push(p.clone());
        cur = Some(p);
    }
    for size in [1, 2, 3, 7, 64, 1000] {
        let mut cursor = SnapshotCursor::whole();
        let mut got = Vec::new();
        loop {
            let mut out = Vec::new();
            let more = tree.snapshot_chunk(&mut cursor, size, &mut out);
            got.extend(out.into_iter().map(|n| n.path));
            if !more {
                break;
            }
        }
        assert_eq!(got, by_path, "chunk size {size}");
        // The encoded walk holds the same nodes, as a snapshot file stores them.
        let mut cursor = SnapshotCursor::whole();
        let mut encoded = Vec::new();
        let mut count = 0;
        loop {
            let (more, n) = tree.snapshot_chunk_encoded(&mut cursor, size, &mut encoded);
            count += n;
            if !more {
                break;
            }
        }
        let mut want = Vec::new();
        for p in &by_path {
            let mut b = Vec::new();
            tree.snap_node(p).unwrap().encode(&mut b);
            want.extend_from_slice(&(b.len() as u32).to_be_bytes());
            want.extend_from_slice(&b);
        }
        assert_eq!(count, by_path.len(), "chunk size {size}");
        assert_eq!(encoded, want, "chunk size {size}");
    }
}

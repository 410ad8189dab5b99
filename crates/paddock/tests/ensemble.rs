//! The ensemble over real processes and sockets: three voters (and an observer) configured from
//! zoo.cfg `server.N` lines and `dataDir/myid`, as ZooKeeper's are, driven through
//! paddock-client (which fails over between hosts).
//!
//! Every check is about behaviour (what was acknowledged is there, on every server, with the
//! same Stat; who serves and who does not), never about how fast: deadlines are generous.
//! `PADDOCK_KEEP_ENSEMBLE=1` keeps the servers' files and logs; a failure always keeps them
//! and prints the tail of every log.

#[path = "common/ensemble.rs"]
mod cluster;

use cluster::{four_letter, serial, Ensemble, Mode, Srvr};
use paddock_client::{open_acl, Client, CreateMode, ErrorCode, SessionState, Stat};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// How long anything may take: an election, a reconnect, an answer.
const T: Duration = Duration::from_secs(20);
/// Requested session timeout (zoo.cfg allows up to 10 s).
const SESSION: Duration = Duration::from_secs(8);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `f`, or a panic naming `what` if it takes longer than `T`.
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {T:?}"),
    }
}

/// A session on one of `hosts` (a connect string).
async fn connect(hosts: &str) -> Client {
    let zk = Client::builder()
        .session_timeout(SESSION)
        .start(hosts)
        .unwrap();
    if let Err(e) = zk.wait_connected(T).await {
        panic!("no session on {hosts} within {T:?}: {e}");
    }
    zk
}

async fn close(zk: Client) {
    let _ = timeout(Duration::from_secs(5), zk.close()).await;
}

/// Creates `path` (data `data`), retrying after a connection loss; NODEEXISTS after a loss
/// means an earlier attempt made it.
async fn create_retrying(zk: &Client, path: &str, data: &[u8], mode: CreateMode) {
    let mut lost = false;
    loop {
        let r = within(
            &format!("create {path}"),
            zk.create(path, data, open_acl(), mode),
        )
        .await;
        match r {
            Ok(_) => return,
            Err(e) if e.code() == Some(ErrorCode::NodeExists) && lost => return,
            Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => lost = true,
            Err(e) => panic!("create {path}: {e}"),
        }
    }
}

/// Creates every path at once (pipelined), each with `data`; every create must succeed.
async fn create_all(zk: &Client, paths: Vec<String>, data: Vec<u8>) {
    let mut set = JoinSet::new();
    for p in paths {
        let zk = zk.clone();
        let data = data.clone();
        set.spawn(async move {
            if let Err(e) = zk
                .create(&p, &data, open_acl(), CreateMode::Persistent)
                .await
            {
                panic!("create {p}: {e}");
            }
        });
    }
    while let Some(r) = within("creates", set.join_next()).await {
        r.expect("a create task panicked");
    }
}

/// Every node (data and Stat) but the `/zookeeper` subtree, as one server sees it.
type Digest = BTreeMap<String, (Vec<u8>, Stat)>;

async fn digest(zk: &Client) -> Digest {
    let mut out = Digest::new();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for chunk in level.chunks(256) {
            let mut set = JoinSet::new();
            for p in chunk {
                let (zk, p) = (zk.clone(), p.clone());
                set.spawn(async move {
                    let (data, stat) = match zk.get_data(&p).await {
                        Ok(x) => x,
                        Err(e) => panic!("getData {p}: {e}"),
                    };
                    let children = if stat.num_children > 0 {
                        match zk.get_children(&p).await {
                            Ok(c) => c,
                            Err(e) => panic!("getChildren {p}: {e}"),
                        }
                    } else {
                        Vec::new()
                    };
                    (p, data, stat, children)
                });
            }
            while let Some(r) = within("reading the tree", set.join_next()).await {
                let (p, data, stat, children) = r.expect("a read task panicked");
                for c in children {
                    let cp = if p == "/" {
                        format!("/{c}")
                    } else {
                        format!("{p}/{c}")
                    };
                    if cp != "/zookeeper" {
                        next.push(cp);
                    }
                }
                out.insert(p, (data, stat));
            }
        }
        level = next;
    }
    out
}

/// Server `addr`'s tree after a sync there (so it has caught up with the leader).
async fn server_digest(addr: &str) -> Digest {
    let zk = connect(addr).await;
    if let Err(e) = within(&format!("sync at {addr}"), zk.sync("/")).await {
        panic!("sync at {addr}: {e}");
    }
    let d = digest(&zk).await;
    close(zk).await;
    d
}

/// The trees of these servers, each read after a sync.
async fn digests(ens: &Ensemble, ids: &[u64]) -> Vec<(u64, Digest)> {
    let mut out = Vec::new();
    for &id in ids {
        out.push((id, server_digest(&ens.addr(id)).await));
    }
    out
}

/// What differs between two trees (at most 10 lines).
fn differences(a: &Digest, b: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(_), None) => out.push(format!("{k} only on the first")),
            (None, Some(_)) => out.push(format!("{k} only on the second")),
            (Some(x), Some(y)) if x.1 != y.1 => {
                out.push(format!("{k}: stat {:?} vs {:?}", x.1, y.1))
            }
            (Some(x), Some(y)) if x.0 != y.0 => out.push(format!(
                "{k}: data {:?} vs {:?}",
                String::from_utf8_lossy(&x.0),
                String::from_utf8_lossy(&y.0)
            )),
            _ => {}
        }
        if out.len() >= 10 {
            break;
        }
    }
    out
}

/// Every tree equals the first.
fn assert_converged(ds: &[(u64, Digest)]) {
    let (first, d0) = &ds[0];
    for (id, d) in &ds[1..] {
        let diff = differences(d0, d);
        assert!(
            diff.is_empty(),
            "server {id} ({} nodes) differs from server {first} ({} nodes) after sync:\n{}",
            d.len(),
            d0.len(),
            diff.join("\n")
        );
    }
}

/// Polls `cond` every 50 ms until it holds; false after `within`.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

fn count(modes: &BTreeMap<u64, Mode>, m: Mode) -> usize {
    modes.values().filter(|x| **x == m).count()
}

#[test]
fn write_anywhere_read_everywhere() {
    let _serial = serial();
    let mut ens = Ensemble::new("anywhere", 3, 1, &[]);
    ens.start_all();
    let modes = ens.wait_serving(T);
    assert_eq!(
        (
            count(&modes, Mode::Leader),
            count(&modes, Mode::Follower),
            count(&modes, Mode::Observer)
        ),
        (1, 2, 1),
        "one leader, two followers, one observer: {modes:?}"
    );
    assert_eq!(
        modes[&4],
        Mode::Observer,
        "server 4 is the configured observer"
    );
    let leader = Ensemble::leader_of(&modes);
    let rt = runtime();
    rt.block_on(async {
        let setup = connect(&ens.connect_string(&ens.ids())).await;
        create_retrying(&setup, "/rw", b"", CreateMode::Persistent).await;
        close(setup).await;

        // Every server shows the ensemble's configuration in /zookeeper/config, in
        // ZooKeeper's format (version 0: zoo.cfg's, never reconfigured), readable by all.
        let mut want = String::new();
        for id in ens.ids() {
            let m = ens.member(id);
            let role = if m.observer {
                "observer"
            } else {
                "participant"
            };
            want += &format!(
                "server.{id}={}:{}:{}:{role}\n",
                m.host, m.quorum_port, m.election_port
            );
        }
        want += "version=0";
        for id in [leader, 4] {
            let zk = connect(&ens.addr(id)).await;
            let (data, st) = within("get /zookeeper/config", zk.get_data("/zookeeper/config"))
                .await
                .expect("/zookeeper/config");
            assert_eq!(String::from_utf8_lossy(&data), want, "at server {id}");
            assert_eq!((st.version, st.aversion, st.mzxid), (-1, -1, 0));
            close(zk).await;
        }

        // A watch set at the observer fires for a write made at the leader.
        let at_observer = connect(&ens.addr(4)).await;
        let (none, watch) = within("exists", at_observer.exists_w("/rw/watched"))
            .await
            .expect("exists at the observer");
        assert!(none.is_none());

        // A write at every server, each read back at once by its own session (no sync).
        let mut written: Vec<(String, Stat)> = Vec::new();
        for id in ens.ids() {
            let zk = connect(&ens.addr(id)).await;
            let mode = modes[&id];
            let p = format!("/rw/at-{id}");
            let data = format!("written at server {id}, a {mode:?}");
            let (_, st) = within(
                &format!("create at server {id}"),
                zk.create(&p, data.as_bytes(), open_acl(), CreateMode::Persistent),
            )
            .await
            .unwrap_or_else(|e| panic!("create at server {id} ({mode:?}): {e}"));
            let (got, st2) = within("getData", zk.get_data(&p))
                .await
                .unwrap_or_else(|e| {
                    panic!("server {id} ({mode:?}) does not show its session's own write: {e}")
                });
            assert_eq!(got, data.as_bytes());
            assert_eq!(st2, st, "the Stat read back at server {id}");
            let st3 = within("setData", zk.set_data(&p, b"changed", 0))
                .await
                .unwrap_or_else(|e| panic!("setData at server {id} ({mode:?}): {e}"));
            assert_eq!(st3.version, 1);
            written.push((p, st3));
            close(zk).await;
        }

        let at_leader = connect(&ens.addr(leader)).await;
        within(
            "create",
            at_leader.create("/rw/watched", b"", open_acl(), CreateMode::Persistent),
        )
        .await
        .expect("create at the leader");
        let ev = within("the observer's watch", watch.changed())
            .await
            .expect("the watch fires");
        assert_eq!(ev.path, "/rw/watched");
        assert_eq!(ev.type_name(), "NodeCreated");
        close(at_leader).await;
        close(at_observer).await;

        // After a sync, every server has every node with the same Stat.
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
        let tree = &ds[0].1;
        let mut last_mzxid = 0;
        for (p, st) in &written {
            let (data, got) = tree
                .get(p)
                .unwrap_or_else(|| panic!("{p} is missing everywhere"));
            assert_eq!(data, b"changed");
            assert_eq!(
                (got.czxid, got.mzxid, got.version),
                (st.czxid, st.mzxid, st.version),
                "{p}: the acknowledged Stat"
            );
            assert!(
                got.mzxid > last_mzxid,
                "writes acknowledged one after another have growing zxids"
            );
            last_mzxid = got.mzxid;
        }

        // The leader's proposals carry its tree digest at every 128th zxid, and every learner
        // compares it with its own (ZooKeeper's digest check). A mark goes out with the
        // first proposal prepared after the leader applied its zxid, so 400 more writes, in
        // rounds, give each learner several to compare; none may differ.
        let zk = connect(&ens.addr(leader)).await;
        for round in 0..8 {
            create_all(
                &zk,
                (0..50).map(|i| format!("/rw/n{round}-{i}")).collect(),
                b"x".to_vec(),
            )
            .await;
        }
        close(zk).await;
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
    });
    for id in ens.ids() {
        let mntr = four_letter(ens.member(id).addr(), "mntr").expect("mntr");
        let value = |k: &str| {
            paddock_testkit::fourlw::mntr_value(&mntr, k)
                .unwrap_or_else(|| panic!("server {id}'s mntr has no {k}:\n{mntr}"))
        };
        assert_eq!(value("zk_digest_mismatches_count"), 0, "server {id}");
        if id != leader {
            assert!(
                value("zk_digest_checks_count") >= 2,
                "learner {id} compared the leader's digests: {mntr}"
            );
        }
    }
}

/// Shared state of the load sessions.
struct Load {
    stop: AtomicBool,
    failed_over: AtomicBool,
    acks: Vec<AtomicUsize>,
    acks_after: Vec<AtomicUsize>,
}

impl Load {
    fn total(&self) -> usize {
        self.acks.iter().map(|a| a.load(SeqCst)).sum()
    }
    fn after(&self) -> Vec<usize> {
        self.acks_after.iter().map(|a| a.load(SeqCst)).collect()
    }
}

/// One load session and what it was told succeeded.
struct Worker {
    zk: Client,
    session: i64,
    ephemeral: String,
    counter: String,
    /// Highest acknowledged version of `counter`.
    version: i32,
    created: Vec<String>,
    losses: usize,
    /// The server it got its session from.
    first_server: Option<String>,
}

/// Writes each load session keeps in flight (pipelined on its connection).
const DEPTH: usize = 8;

/// What one write was told.
enum Ack {
    Created(String),
    Version(i32),
}

/// Write number `n` of session `i`: a create of a fresh node, or a setData of its counter.
async fn one_write(zk: Client, i: usize, n: u64) -> Result<Ack, paddock_client::Error> {
    match n % 2 {
        0 => {
            let p = format!("/load/w{i}-{n:07}");
            zk.create(&p, b"x", open_acl(), CreateMode::Persistent)
                .await
                .map(|_| Ack::Created(p))
        }
        _ => zk
            .set_data(&format!("/load/c{i}"), n.to_string().as_bytes(), -1)
            .await
            .map(|st| Ack::Version(st.version)),
    }
}

/// Creates nodes and sets its counter, `DEPTH` writes in flight, until told to stop. A write
/// that fails with CONNECTIONLOSS has an unknown outcome and is not counted; any other failure
/// (session expired included) fails the test. `hosts` is tried in the order given.
async fn load_worker(i: usize, hosts: String, load: Arc<Load>) -> Worker {
    let zk = Client::builder()
        .session_timeout(SESSION)
        .shuffle(false)
        .start(&hosts)
        .unwrap();
    if let Err(e) = zk.wait_connected(T).await {
        panic!("worker {i}: no session on {hosts}: {e}");
    }
    let session = zk.session_id();
    let zk_server = zk.current_server();
    let counter = format!("/load/c{i}");
    create_retrying(&zk, &counter, b"0", CreateMode::Persistent).await;
    let ephemeral = format!("/eph-{i}");
    create_retrying(&zk, &ephemeral, b"", CreateMode::Ephemeral).await;
    let mut w = Worker {
        zk,
        session,
        ephemeral,
        counter,
        version: 0,
        created: Vec::new(),
        losses: 0,
        first_server: zk_server,
    };
    let what = format!("worker {i} (session 0x{session:x})");
    let mut inflight = JoinSet::new();
    let mut n = 0u64;
    loop {
        while inflight.len() < DEPTH && !load.stop.load(SeqCst) {
            n += 1;
            let after = load.failed_over.load(SeqCst);
            let zk = w.zk.clone();
            inflight.spawn(async move { (after, one_write(zk, i, n).await) });
        }
        let Some(done) = within(&what, inflight.join_next()).await else {
            break;
        };
        let (after, r) = done.expect("a write task panicked");
        match r {
            Ok(ack) => {
                match ack {
                    Ack::Created(p) => w.created.push(p),
                    Ack::Version(v) => w.version = w.version.max(v),
                }
                load.acks[i].fetch_add(1, SeqCst);
                if after {
                    load.acks_after[i].fetch_add(1, SeqCst);
                }
            }
            Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => w.losses += 1,
            Err(e) => panic!("{what}: a write failed: {e} (state {:?})", w.zk.state()),
        }
    }
    w
}

/// Every acknowledged write of `workers` is in `tree`, and every worker's ephemeral is there,
/// owned by its session.
fn assert_has_acknowledged(id: u64, tree: &Digest, workers: &[Worker]) {
    let mut missing = Vec::new();
    let mut n = 0;
    for w in workers {
        for p in &w.created {
            n += 1;
            if !tree.contains_key(p) {
                missing.push(p.clone());
            }
        }
        match tree.get(&w.counter) {
            Some((_, st)) if st.version >= w.version => {}
            other => missing.push(format!(
                "{} at version {} (found {:?})",
                w.counter,
                w.version,
                other.map(|(_, st)| st.version)
            )),
        }
        match tree.get(&w.ephemeral) {
            Some((_, st)) if st.ephemeral_owner == w.session => {}
            other => missing.push(format!(
                "ephemeral {} of session 0x{:x} (found owner {:?})",
                w.ephemeral,
                w.session,
                other.map(|(_, st)| format!("0x{:x}", st.ephemeral_owner))
            )),
        }
    }
    assert!(
        missing.is_empty(),
        "server {id} lacks {} of {n} acknowledged writes: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn leader_sigkill_under_load() {
    let _serial = serial();
    let mut ens = Ensemble::new("failover", 3, 1, &[]);
    ens.start_all();
    let old = Ensemble::leader_of(&ens.wait_serving(T));
    let rt = runtime();
    rt.block_on(async {
        let hosts = ens.connect_string(&ens.ids());
        let setup = connect(&hosts).await;
        create_retrying(&setup, "/load", b"", CreateMode::Persistent).await;
        close(setup).await;

        let n = 4;
        let load = Arc::new(Load {
            stop: AtomicBool::new(false),
            failed_over: AtomicBool::new(false),
            acks: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            acks_after: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        });
        // Session i tries the servers in turn from the i-th of this list, which starts with
        // the leader: session 0 is on the leader when it is killed, so it must move.
        let mut order = vec![old];
        order.extend(ens.ids().into_iter().filter(|&id| id != old));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let mut o = order.clone();
                o.rotate_left(i % order.len());
                tokio::spawn(load_worker(i, ens.connect_string(&o), load.clone()))
            })
            .collect();
        // Some load with the first leader, then SIGKILL it mid-load.
        eventually(Duration::from_secs(3), || load.total() >= 400).await;
        assert!(
            load.total() >= 20,
            "hardly any write was acknowledged before the kill: {}",
            load.total()
        );
        let before = load.total();
        ens.kill(old);
        let modes = ens.wait_serving(T);
        let new = Ensemble::leader_of(&modes);
        assert_ne!(new, old, "the killed server cannot lead");
        assert!(ens.voters().contains(&new), "an observer cannot lead");
        load.failed_over.store(true, SeqCst);
        // Every session goes on writing under the new leader.
        let ok = eventually(Duration::from_secs(30), || {
            load.after().iter().all(|&a| a >= 20)
        })
        .await;
        assert!(
            ok,
            "not every session went on writing after the failover: acknowledged per session \
             after it {:?}",
            load.after()
        );
        load.stop.store(true, SeqCst);
        let mut workers = Vec::new();
        for h in handles {
            workers.push(
                within("stopping the load", h)
                    .await
                    .expect("a load session panicked"),
            );
        }
        let created: usize = workers.iter().map(|w| w.created.len()).sum();
        let losses: usize = workers.iter().map(|w| w.losses).sum();
        eprintln!(
            "leader {old} killed after {before} acknowledged writes; new leader {new}; \
             {} writes acknowledged in all ({created} creates), {losses} lost connections",
            load.total()
        );
        assert_eq!(
            workers[0].first_server,
            Some(ens.addr(old)),
            "session 0 starts on the leader"
        );
        assert_ne!(
            workers[0].zk.current_server(),
            Some(ens.addr(old)),
            "session 0 was on the killed leader and must have moved"
        );
        for (i, w) in workers.iter().enumerate() {
            assert_eq!(
                w.zk.session_id(),
                w.session,
                "session {i} was replaced by a new one"
            );
            assert!(
                w.zk.state().is_connected(),
                "session {i} is {:?}",
                w.zk.state()
            );
        }

        // Every acknowledged write is at every live server, and they agree.
        let live = ens.running();
        let ds = digests(&ens, &live).await;
        for (id, d) in &ds {
            assert_has_acknowledged(*id, d, &workers);
        }
        assert_converged(&ds);

        // The old leader comes back as a follower of the new one and catches up.
        ens.start(old);
        let modes = ens.wait_serving(T);
        assert_eq!(
            modes[&old],
            Mode::Follower,
            "the old leader rejoins as a follower: {modes:?}"
        );
        assert_eq!(
            Ensemble::leader_of(&modes),
            new,
            "a returning server does not depose the leader: {modes:?}"
        );
        let ds = digests(&ens, &ens.ids()).await;
        assert_has_acknowledged(
            old,
            &ds.iter().find(|(id, _)| *id == old).unwrap().1,
            &workers,
        );
        assert_converged(&ds);
        for w in workers {
            close(w.zk).await;
        }
    });
}

#[test]
fn rejoin_by_snapshot() {
    let _serial = serial();
    // As in ZooKeeper: the leader keeps 100 committed transactions in memory (commitLogCount),
    // never syncs a learner from its on-disk log (snapshotSizeFactor < 0), and snapshots every
    // ~100 transactions; a follower that lost its disk is 600 transactions behind, so only a
    // SNAP can bring it up to date.
    let mut ens = Ensemble::new(
        "snap",
        3,
        0,
        &[
            "snapCount=100",
            "commitLogCount=100",
            "snapshotSizeFactor=-1",
        ],
    );
    ens.start_all();
    ens.wait_serving(T);
    let rt = runtime();
    let victim = rt.block_on(async {
        let all = ens.connect_string(&ens.ids());
        let zk = connect(&all).await;
        for p in ["/snap", "/snap/a", "/snap/b"] {
            create_retrying(&zk, p, b"", CreateMode::Persistent).await;
        }
        let first: Vec<String> = (0..400).map(|i| format!("/snap/a/n{i:04}")).collect();
        create_all(&zk, first.clone(), vec![b'a'; 200]).await;
        // A session that lives through everything below, with an ephemeral.
        let keeper = connect(&all).await;
        create_retrying(&keeper, "/snap/keeper", b"", CreateMode::Ephemeral).await;
        close(zk).await;
        // Every server has a snapshot past the start (snapCount=100), so after the restart the
        // history each one recovers starts there, not at zxid 0.
        let snapshotted = eventually(T, || {
            ens.ids()
                .iter()
                .all(|&id| ens.newest_snapshot(id).is_some_and(|z| z > 0))
        })
        .await;
        assert!(
            snapshotted,
            "not every server took a snapshot after 400 writes with snapCount=100: {:?}",
            ens.ids()
                .iter()
                .map(|&id| (id, ens.newest_snapshot(id)))
                .collect::<Vec<_>>()
        );

        // The whole ensemble restarts (SIGKILL, all at once): data and session survive.
        for id in ens.ids() {
            ens.kill(id);
        }
        ens.start_all();
        let modes = ens.wait_serving(T);
        let leader = Ensemble::leader_of(&modes);
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
        for p in &first {
            assert!(ds[0].1.contains_key(p), "{p} was lost by the restart");
        }
        let zk = connect(&all).await;
        within("exists", zk.exists("/snap/keeper"))
            .await
            .expect("exists")
            .expect("the keeper's ephemeral survives a restart of the ensemble");

        // A follower loses its disk; the others go on meanwhile.
        let victim = *modes
            .iter()
            .find(|(_, m)| **m == Mode::Follower)
            .expect("a follower")
            .0;
        ens.kill(victim);
        ens.wipe(victim);
        let second: Vec<String> = (0..200).map(|i| format!("/snap/b/n{i:04}")).collect();
        create_all(&zk, second.clone(), vec![b'b'; 300]).await;
        for p in first.iter().take(50) {
            within("delete", zk.delete(p, -1))
                .await
                .unwrap_or_else(|e| panic!("delete {p}: {e}"));
        }
        for p in first.iter().skip(50).take(50) {
            within("setData", zk.set_data(p, b"updated", -1))
                .await
                .unwrap_or_else(|e| panic!("setData {p}: {e}"));
        }
        close(zk).await;

        // It comes back empty and converges.
        ens.start(victim);
        let modes = ens.wait_serving(T);
        assert_eq!(
            modes[&victim],
            Mode::Follower,
            "the wiped server rejoins as a follower: {modes:?}"
        );
        assert_eq!(Ensemble::leader_of(&modes), leader, "the leader stays");
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
        let tree = &ds.iter().find(|(id, _)| *id == victim).unwrap().1;
        for p in first.iter().take(50) {
            assert!(!tree.contains_key(p), "{p} was deleted");
        }
        for p in first.iter().skip(50).take(50) {
            assert_eq!(tree[p].0, b"updated", "{p}");
        }
        for p in first.iter().skip(100).chain(&second) {
            assert!(tree.contains_key(p), "server {victim} lacks {p}");
        }
        assert_eq!(
            tree["/snap/keeper"].1.ephemeral_owner,
            keeper.session_id(),
            "the keeper's ephemeral, with its owner"
        );

        // It serves: a write through it alone, seen at the leader.
        let at_victim = connect(&ens.addr(victim)).await;
        within(
            "create",
            at_victim.create("/snap/after", b"", open_acl(), CreateMode::Persistent),
        )
        .await
        .unwrap_or_else(|e| panic!("create at the rejoined server {victim}: {e}"));
        close(at_victim).await;
        let at_leader = connect(&ens.addr(leader)).await;
        within("sync", at_leader.sync("/")).await.expect("sync");
        assert!(within("exists", at_leader.exists("/snap/after"))
            .await
            .expect("exists")
            .is_some());
        close(at_leader).await;
        // Alive, not necessarily connected at this instant: if it was on the victim it may be
        // between two attempts (a wiped server turns away a client that has seen more than it
        // until it has caught up), so it is given time to reattach.
        if let Err(e) = keeper.wait_connected(T).await {
            panic!(
                "the keeper session did not survive ({:?}): {e}",
                keeper.state()
            );
        }
        close(keeper).await;
        victim
    });
    // Not an assertion (log wording is not an interface): what the logs say about how the
    // wiped server was brought up to date, to see whether this run took the SNAP path.
    let lines: Vec<String> = ens
        .ids()
        .into_iter()
        .flat_map(|id| {
            let log = ens.log(id);
            let since = log
                .rsplit("===== ensemble test: start")
                .next()
                .unwrap_or("")
                .to_string();
            since
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    (l.contains("snap")
                        && !l.contains("snapshot started")
                        && !l.contains("snapshot written"))
                        || l.contains("learner")
                })
                .take(5)
                .map(|l| format!("[s{id}] {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    eprintln!(
        "rejoin_by_snapshot: server {victim} was wiped; log lines about syncing it:\n{}",
        lines.join("\n")
    );
}

/// With `autopurge.purgeInterval` set (as ZooKeeper's admin guide recommends), the leader
/// deletes old log segments after its snapshots. A follower that was down meanwhile must be
/// brought back by a SNAP: the leader's memory window and on-disk log no longer reach its point,
/// and a DIFF from the log would have a hole.
#[test]
fn rejoin_after_the_leader_purged_its_log() {
    let _serial = serial();
    let mut ens = Ensemble::new(
        "purge",
        3,
        0,
        &[
            "snapCount=200",
            "commitLogCount=100",
            "autopurge.purgeInterval=1",
        ],
    );
    ens.start_all();
    let modes = ens.wait_serving(T);
    let leader = Ensemble::leader_of(&modes);
    let victim = *modes
        .iter()
        .find(|(_, m)| **m == Mode::Follower)
        .expect("a follower")
        .0;
    let others: Vec<u64> = ens.ids().into_iter().filter(|&id| id != victim).collect();
    let rt = runtime();
    rt.block_on(async {
        let zk = connect(&ens.connect_string(&ens.ids())).await;
        create_retrying(&zk, "/purge", b"", CreateMode::Persistent).await;
        let early: Vec<String> = (0..100).map(|i| format!("/purge/early{i:03}")).collect();
        create_all(&zk, early, vec![b'e'; 100]).await;
        close(zk).await;
    });
    let Srvr::Serving(_, victim_zxid) = ens.srvr(victim) else {
        panic!("server {victim} does not serve");
    };
    ens.kill(victim);
    // 30 MB through the other two: many snapshots, each rolling the log and purging what the
    // three newest do not need.
    rt.block_on(async {
        let zk = connect(&ens.connect_string(&others)).await;
        for batch in 0..10 {
            let paths: Vec<String> = (0..300)
                .map(|i| format!("/purge/n{batch:02}-{i:03}"))
                .collect();
            create_all(&zk, paths, vec![b'p'; 10_000]).await;
        }
        close(zk).await;
        let purged = eventually(T, || {
            ens.oldest_segment(leader)
                .is_some_and(|z| z > victim_zxid + 1)
        })
        .await;
        assert!(
            purged,
            "the leader never purged its log past the victim's zxid 0x{victim_zxid:x}: oldest \
             segment {:?}",
            ens.oldest_segment(leader).map(|z| format!("0x{z:x}"))
        );
    });
    let Srvr::Serving(_, leader_zxid) = ens.srvr(leader) else {
        panic!("the leader {leader} does not serve");
    };
    eprintln!(
        "rejoin_after_the_leader_purged_its_log: server {victim} stopped at 0x{victim_zxid:x}; \
         the leader {leader} is at 0x{leader_zxid:x}, its log starts at {:?}",
        ens.oldest_segment(leader).map(|z| format!("0x{z:x}"))
    );
    ens.start(victim);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        ens.check_alive();
        let at = ens.srvr(victim);
        if at == Srvr::Serving(Mode::Follower, leader_zxid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server {victim} is not a follower at the leader's zxid 0x{leader_zxid:x} within 10 \
             s of its restart: {at:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    rt.block_on(async {
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
        assert!(
            ds.iter().all(|(_, d)| d.contains_key("/purge/n09-299")),
            "the last write is everywhere"
        );
    });
}

/// The disk-failure policy in an ensemble (docs/storage.md): one member's log disk fills up.
/// Whatever its role, the other two go on committing every write (a full disk is a slow disk);
/// the member stalls, nothing fails, and once space returns it catches up to the same zxid
/// and tree.
#[test]
fn a_member_with_a_full_disk_stalls_while_the_others_commit() {
    let _serial = serial();
    let mut ens = Ensemble::new("fulldisk", 3, 0, &["snapCount=1000000"]);
    let full = 3;
    let mnt = ens.root.join("s3-log-tmpfs");
    let _tmpfs = paddock_testkit::tmpfs::Tmpfs::mount(&mnt, "8m").expect("an 8 MiB tmpfs");
    let text = format!("{}dataLogDir={}\n", ens.cfg_text(full), mnt.display());
    ens.set_cfg(full, &text);
    ens.start_all();
    ens.wait_serving(T);
    // Leave the member's log disk about 1 MiB.
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![1u8; 7 * 1024 * 1024 - 512 * 1024]).unwrap();
    let rt = runtime();
    let all = ens.connect_string(&ens.ids());
    rt.block_on(async {
        let zk = connect(&all).await;
        create_retrying(&zk, "/full", b"", CreateMode::Persistent).await;
        // 6 MB: far more than the member's disk holds now.
        for batch in 0..4 {
            let paths: Vec<String> = (0..50).map(|i| format!("/full/n{batch}-{i:02}")).collect();
            create_all(&zk, paths, vec![b'f'; 30_000]).await;
        }
        close(zk).await;
    });
    let stalled = ens.log(full).contains("disk full: writes wait");
    assert!(
        stalled,
        "server {full}'s log disk never filled: {}",
        ens.log(full)
    );
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + T;
    let leader_zxid = loop {
        let modes = ens.wait_serving(T);
        let leader = Ensemble::leader_of(&modes);
        let want = ens.srvr(leader);
        let at = ens.srvr(full);
        if let (Srvr::Serving(_, z), Srvr::Serving(_, w)) = (&at, &want) {
            if z == w {
                break *w;
            }
        }
        assert!(
            Instant::now() < deadline,
            "server {full} did not catch up once space returned: {at:?}, leader {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(leader_zxid > 0);
    rt.block_on(async {
        let ds = digests(&ens, &ens.ids()).await;
        assert_converged(&ds);
        assert!(ds.iter().all(|(_, d)| d.contains_key("/full/n3-49")));
    });
}

#[test]
fn minority_stops_serving() {
    let _serial = serial();
    let mut ens = Ensemble::new("minority", 3, 0, &[]);
    ens.start_all();
    let modes = ens.wait_serving(T);
    let leader = Ensemble::leader_of(&modes);
    let followers: Vec<u64> = ens.ids().into_iter().filter(|&id| id != leader).collect();
    let rt = runtime();
    rt.block_on(async {
        let zk = connect(&ens.connect_string(&ens.ids())).await;
        create_retrying(&zk, "/min", b"", CreateMode::Persistent).await;
        let nodes: Vec<String> = (0..50).map(|i| format!("/min/n{i:02}")).collect();
        create_all(&zk, nodes.clone(), b"kept".to_vec()).await;
        close(zk).await;

        // A session on the leader alone, then both followers die.
        let at_leader = Client::builder()
            .session_timeout(SESSION)
            .start(&ens.addr(leader))
            .unwrap();
        at_leader.wait_connected(T).await.expect("connect");
        for &f in &followers {
            ens.kill(f);
        }
        // Nothing can be committed without a quorum.
        let doomed = timeout(
            Duration::from_secs(4),
            at_leader.create("/min/doomed", b"", open_acl(), CreateMode::Persistent),
        )
        .await;
        assert!(
            !matches!(doomed, Ok(Ok(_))),
            "a write was acknowledged by a leader without a quorum"
        );
        close(at_leader).await;

        // The leader steps down and serves no one.
        let said = ens.wait_not_serving(leader, T);
        if let Srvr::NotServing(text) = &said {
            assert!(
                text.contains("not currently serving"),
                "srvr of a server without quorum: {text:?}"
            );
        }
        let refused = Client::builder()
            .session_timeout(SESSION)
            .start(&ens.addr(leader))
            .unwrap();
        let r = refused.wait_connected(Duration::from_secs(3)).await;
        assert!(
            r.is_err(),
            "a server without quorum accepted a session (state {:?})",
            refused.state()
        );
        close(refused).await;

        // A follower comes back: service resumes, with the data written before.
        ens.start(followers[0]);
        let modes = ens.wait_serving(T);
        assert_eq!(count(&modes, Mode::Leader), 1, "{modes:?}");
        let running = ens.running();
        let zk = connect(&ens.connect_string(&running)).await;
        within(
            "create",
            zk.create("/min/after", b"", open_acl(), CreateMode::Persistent),
        )
        .await
        .unwrap_or_else(|e| panic!("write after the quorum came back: {e}"));
        close(zk).await;
        let ds = digests(&ens, &running).await;
        assert_converged(&ds);
        for p in nodes
            .iter()
            .chain(std::iter::once(&"/min/after".to_string()))
        {
            match ds[0].1.get(p) {
                Some((data, _)) if p == "/min/after" || data == b"kept" => {}
                other => panic!("{p} after the quorum came back: {other:?}"),
            }
        }
    });
}

#[test]
fn config_errors() {
    let ens = Ensemble::new("config", 3, 0, &[]);
    let quick = Duration::from_secs(15);
    let refused = |what: &str, must_mention: &[&str]| {
        let (status, out) = ens.run_expecting_exit(1, quick);
        assert!(
            !status.success(),
            "{what}: the server must exit with an error, exited {status}; output:\n{out}"
        );
        let lower = out.to_ascii_lowercase();
        for m in must_mention {
            assert!(
                m.split('|')
                    .any(|alt| lower.contains(&alt.to_ascii_lowercase())),
                "{what}: the message should mention {m:?}; output:\n{out}"
            );
        }
    };

    // myid names a server that is not in the server.N lines.
    ens.set_myid(1, Some("7"));
    refused("myid not in the server list", &["myid|my id"]);

    // No myid file in dataDir.
    ens.set_myid(1, None);
    refused("missing myid", &["myid"]);
    ens.set_myid(1, Some("1"));

    // Two servers with the same quorum port on the same host.
    let m1 = ens.member(1);
    let m2 = ens.member(2);
    let dup = ens.cfg_text(1).replace(
        &format!("server.2={}:{}:", m2.host, m2.quorum_port),
        &format!("server.2={}:{}:", m1.host, m1.quorum_port),
    );
    assert_ne!(dup, ens.cfg_text(1));
    ens.set_cfg(1, &dup);
    let p = m1.quorum_port;
    refused(
        "two servers with one quorum port",
        &[&format!(":{p}| {p}|={p}")],
    );

    // The client port is this server's own election port.
    let clash = ens.cfg_text(1).replace(
        &format!("clientPort={}", m1.client_port),
        &format!("clientPort={}", m1.election_port),
    );
    ens.set_cfg(1, &clash);
    let p = m1.election_port;
    refused("client port = election port", &[&format!(":{p}| {p}|={p}")]);
}

/// A session resumed at another server has moved: a write from the connection it left gets
/// SESSIONMOVED, as in ZooKeeper, while the new connection goes on.
#[test]
fn session_moved() {
    let _serial = serial();
    let mut ens = Ensemble::new("moved", 3, 0, &[]);
    ens.start_all();
    let modes = ens.wait_serving(T);
    let leader = Ensemble::leader_of(&modes);
    let followers: Vec<u64> = ens.ids().into_iter().filter(|&i| i != leader).collect();
    let rt = runtime();
    rt.block_on(async {
        let old = connect(&ens.addr(followers[0])).await;
        create_retrying(&old, "/moved", b"0", CreateMode::Persistent).await;
        let new = Client::builder()
            .session_timeout(SESSION)
            .session(old.session_id(), old.session_passwd())
            .start(&ens.addr(followers[1]))
            .unwrap();
        new.wait_connected(T)
            .await
            .expect("the session resumes at another server");
        assert_eq!(new.session_id(), old.session_id());
        // A write through the new server first: it reaches the leader after the news of the
        // move, on the same ordered connection.
        within("set at the new server", new.set_data("/moved", b"1", -1))
            .await
            .expect("the new connection writes");
        let e = within("set at the old server", old.set_data("/moved", b"2", -1))
            .await
            .expect_err("the connection the session left may not write");
        assert_eq!(e, paddock_client::Error::Code(ErrorCode::SessionMoved));
        let (data, _) = within("read", new.get_data("/moved")).await.unwrap();
        assert_eq!(data, b"1");
        close(new).await;
    });
}

/// A read-only client on a server cut off from its ensemble keeps looking for a read-write
/// server (`isro` probes, as ZooKeeper's client) and moves there once one serves, with a new
/// session: the read-only one existed on the cut-off server alone.
#[test]
fn read_only_client_finds_a_read_write_server() {
    let _serial = serial();
    let mut ens = Ensemble::new("rofind", 3, 0, &["readonlymode.enabled=true"]);
    // Server 1 is cut off: its zoo.cfg gives the others' peer ports as ports nobody listens
    // on, so it can never reach them (peers write only on the connections they dial).
    let mut cfg = ens.cfg_text(1);
    for id in [2, 3] {
        let m = ens.member(id);
        let (q, e) = (m.quorum_port + 1, m.election_port + 1);
        assert!(
            q != m.election_port
                && e != m.quorum_port
                && std::net::TcpListener::bind((m.host, q)).is_ok()
                && std::net::TcpListener::bind((m.host, e)).is_ok(),
            "ports next to server {id}'s are taken"
        );
        cfg = cfg.replace(
            &format!("{}:{}:{}", m.host, m.quorum_port, m.election_port),
            &format!("{}:{q}:{e}", m.host),
        );
    }
    ens.set_cfg(1, &cfg);
    ens.start(1);
    let addr1 = ens.member(1).addr();
    let deadline = std::time::Instant::now() + T;
    while four_letter(addr1, "isro").unwrap_or_default() != "ro" {
        assert!(
            std::time::Instant::now() < deadline,
            "server 1 never went read-only"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A read-only session whose client vanishes expires on the cut-off server as well: it
    // exists there alone, so nobody else would expire it.
    let (sid, passwd) = read_only_handshake(addr1, 0, vec![0; 16]).expect("a read-only session");
    assert_ne!(sid, 0);
    std::thread::sleep(Duration::from_millis(
        2 * 2 * cluster::TICK_MS + 3 * cluster::TICK_MS,
    ));
    assert_eq!(
        read_only_handshake(addr1, sid, passwd).map(|(id, _)| id),
        Some(0),
        "an abandoned read-only session must expire"
    );
    let rt = runtime();
    rt.block_on(async {
        let zk = Client::builder()
            .session_timeout(SESSION)
            .read_only(true)
            .shuffle(false)
            .start(&ens.connect_string(&[1, 2, 3]))
            .unwrap();
        within("a read-only session", zk.wait_connected(T))
            .await
            .unwrap();
        assert_eq!(zk.state(), SessionState::ConnectedReadOnly);
        let ro_session = zk.session_id();
        assert_eq!(
            zk.create("/ro", b"", open_acl(), CreateMode::Persistent)
                .await
                .unwrap_err()
                .code(),
            Some(ErrorCode::NotReadOnly)
        );
        let mut states = zk.state_watcher();
        // Servers 2 and 3 make a quorum of their own; the client must find them by itself.
        ens.start(2);
        ens.start(3);
        within("a read-write session", async {
            while *states.borrow_and_update() != SessionState::Connected {
                states.changed().await.unwrap();
            }
        })
        .await;
        let server = zk.current_server().unwrap();
        assert_ne!(server, addr1.to_string(), "still on the read-only server");
        assert_ne!(
            zk.session_id(),
            ro_session,
            "a read-write server needs a session of its own"
        );
        create_retrying(&zk, "/rw", b"", CreateMode::Persistent).await;
        close(zk).await;
    });
}

/// A bare read-only handshake with the shortest session timeout (two ticks); returns the
/// session id (0: expired) and password, and drops the connection without closing the session.
fn read_only_handshake(
    addr: std::net::SocketAddr,
    session: i64,
    passwd: Vec<u8>,
) -> Option<(i64, Vec<u8>)> {
    use paddock_proto::{ConnectRequest, ConnectResponse, Reader, Record};
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 1,
        session_id: session,
        passwd,
        read_only: Some(true),
    }
    .to_bytes();
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    sock.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    sock.read_exact(&mut body).ok()?;
    let resp = ConnectResponse::decode(&mut Reader::new(&body)).ok()?;
    Some((resp.session_id, resp.passwd))
}

/// Watches outlive a failover: a client on the leader sets a data, a child, an exists and a
/// persistent recursive watch; the leader is SIGKILLed; changes made by another client after
/// the new leader is elected (possibly before the first client has reconnected) reach every
/// watch, through setWatches2 on whichever server the client moved to.
#[test]
fn watches_survive_a_leader_failover() {
    use paddock_proto::event;
    let _serial = serial();
    let mut ens = Ensemble::new("watchfail", 3, 0, &[]);
    ens.start_all();
    let old = Ensemble::leader_of(&ens.wait_serving(T));
    let rt = runtime();
    rt.block_on(async {
        let mut order = vec![old];
        order.extend(ens.ids().into_iter().filter(|&id| id != old));
        let zk = Client::builder()
            .session_timeout(SESSION)
            .shuffle(false)
            .start(&ens.connect_string(&order))
            .unwrap();
        within("a session", zk.wait_connected(T)).await.unwrap();
        assert_eq!(
            zk.current_server(),
            Some(ens.addr(old)),
            "starts on the leader"
        );
        let session = zk.session_id();
        create_retrying(&zk, "/w", b"", CreateMode::Persistent).await;
        create_retrying(&zk, "/w/data", b"0", CreateMode::Persistent).await;
        let (_, _, data_w) = zk.get_data_w("/w/data").await.unwrap();
        let (_, _, child_w) = zk.get_children_w("/w").await.unwrap();
        let (none, exists_w) = zk.exists_w("/w/new").await.unwrap();
        assert!(none.is_none());
        let mut rec = zk.add_watch("/w", true).await.unwrap();

        ens.kill(old);
        let modes = ens.wait_serving(T);
        let survivors: Vec<u64> = modes.keys().copied().collect();
        let other = connect(&ens.connect_string(&survivors)).await;
        within("setData", async {
            loop {
                match other.set_data("/w/data", b"1", -1).await {
                    Ok(_) => return,
                    Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => {}
                    Err(e) => panic!("setData: {e}"),
                }
            }
        })
        .await;
        create_retrying(&other, "/w/new", b"", CreateMode::Persistent).await;

        let ev = within("the data watch", data_w.changed()).await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (event::NODE_DATA_CHANGED, "/w/data")
        );
        let ev = within("the child watch", child_w.changed()).await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (event::NODE_CHILDREN_CHANGED, "/w")
        );
        let ev = within("the exists watch", exists_w.changed())
            .await
            .unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (event::NODE_CREATED, "/w/new")
        );
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let ev = within("the recursive watch", rec.next()).await.unwrap();
            seen.push((ev.event_type, ev.path));
        }
        assert_eq!(
            seen,
            vec![
                (event::NODE_DATA_CHANGED, "/w/data".to_string()),
                (event::NODE_CREATED, "/w/new".to_string())
            ]
        );
        assert_eq!(
            zk.session_id(),
            session,
            "the session survives the failover"
        );
        assert_ne!(zk.current_server(), Some(ens.addr(old)));
        close(other).await;
        close(zk).await;
    });
}

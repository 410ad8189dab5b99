//! Apache ZooKeeper 3.8 (Debian's package) writes a data directory under a workload; Paddock
//! reads it. Its first snapshot and its log, replayed transaction by transaction, give after
//! each one the digest ZooKeeper logged with it; the snapshot it takes at its next start loads
//! into a tree with the digest ZooKeeper wrote beside it. The digest covers every node's path,
//! data and stored Stat, so equal digests mean every node came across exactly; a few nodes are
//! checked by hand too.

use paddock_client::{open_acl, Acl, Client, CreateMode, Op};
use paddock_server::storage::{zk_log, zk_snapshot};
use paddock_tree::snapshot::SnapshotLoader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts ZooKeeper with scripts/start-zookeeper.sh; its pid.
fn start(port: u16, dir: &Path) -> u32 {
    let out = Command::new("bash")
        .arg(repo().join("scripts/start-zookeeper.sh"))
        .arg(port.to_string())
        .arg(dir)
        .output()
        .expect("scripts/start-zookeeper.sh runs");
    assert!(
        out.status.success(),
        "ZooKeeper did not start (scripts/install-deps.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a pid")
}

fn stop(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let gone = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn zookeepers_own_snapshot_loads_with_its_digest() {
    let dir = std::env::temp_dir().join(format!("paddock-zk-snapshot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let pid = start(port, &dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let session = rt.block_on(async {
        let zk = Client::builder()
            .connect(&format!("127.0.0.1:{port}"))
            .await
            .expect("connects to ZooKeeper");
        zk.create("/app", b"the app", open_acl(), CreateMode::Persistent)
            .await
            .unwrap();
        for i in 0..5 {
            zk.create(
                "/app/job-",
                format!("job {i}").as_bytes(),
                open_acl(),
                CreateMode::PersistentSequential,
            )
            .await
            .unwrap();
        }
        zk.delete("/app/job-0000000001", -1).await.unwrap();
        zk.create(
            "/app/big",
            &vec![7u8; 50_000],
            open_acl(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        zk.set_data("/app/big", b"smaller", -1).await.unwrap();
        zk.create("/app/eph", b"", open_acl(), CreateMode::Ephemeral)
            .await
            .unwrap();
        zk.create("/app/none", b"", open_acl(), CreateMode::Persistent)
            .await
            .unwrap();
        let secure = vec![Acl::new(31, "digest", "ops:6Dd4lR6L8sKyuzBHVs2gmKVmf8g=")];
        zk.create("/app/secure", b"s", secure, CreateMode::Persistent)
            .await
            .unwrap();
        zk.set_acl("/app", vec![Acl::new(31, "world", "anyone")], -1)
            .await
            .unwrap();
        zk.create("/app/box", b"", open_acl(), CreateMode::Container)
            .await
            .unwrap();
        zk.create("/app/box/item", b"i", open_acl(), CreateMode::Persistent)
            .await
            .unwrap();
        let create = |p: &str| Op::Create {
            path: p.into(),
            data: b"m".to_vec(),
            acl: open_acl(),
            mode: CreateMode::Persistent,
            ttl: -1,
        };
        zk.multi(vec![
            create("/app/m1"),
            Op::SetData {
                path: "/app/m1".into(),
                data: b"m1".to_vec(),
                version: 0,
            },
            Op::Check {
                path: "/app".into(),
                version: 0,
            },
        ])
        .await
        .unwrap();
        // A failed multi is logged too (with error sub-transactions), and changes nothing.
        assert!(zk
            .multi(vec![create("/app/m2"), create("/app/m1")])
            .await
            .is_err());
        // A session that closes with an ephemeral: closeSession lists it.
        let other = Client::builder()
            .connect(&format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        other
            .create("/app/gone", b"", open_acl(), CreateMode::Ephemeral)
            .await
            .unwrap();
        other.close().await;
        // The session stays open: ZooKeeper keeps it, and its ephemeral, in the snapshot.
        let id = zk.session_id();
        std::mem::forget(zk);
        id
    });
    stop(pid);
    let snaps = dir.join("version-2");
    replay_the_log(&snaps);
    // ZooKeeper takes a snapshot as it starts: with nothing running, not fuzzy. (It answers
    // ruok before that, so wait for the file.)
    let pid = start(port, &dir);
    let written = Instant::now() + Duration::from_secs(60);
    while !has_snapshot_after_0(&snaps) {
        assert!(Instant::now() < written, "no snapshot at ZooKeeper's start");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(pid);
    let newest = std::fs::read_dir(&snaps)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let z = zk_snapshot::name_zxid(p.file_name()?.to_str()?)?;
            Some((z, p))
        })
        .max()
        .expect("ZooKeeper wrote a snapshot")
        .1;
    let snap = zk_snapshot::read(&newest).unwrap_or_else(|e| panic!("{e}"));
    let trailer = snap.trailer.expect("ZooKeeper 3.8 writes the digest");
    assert_eq!(
        trailer.zxid, snap.zxid,
        "a snapshot taken at start is whole"
    );
    assert!(
        snap.sessions.iter().any(|(id, _)| *id == session),
        "the open session 0x{session:x} is in the snapshot: {:x?}",
        snap.sessions
    );
    let mut loader = SnapshotLoader::new();
    for (id, timeout) in &snap.sessions {
        loader.session(*id, *timeout);
    }
    for n in &snap.nodes {
        loader
            .node(n)
            .unwrap_or_else(|e| panic!("{}: {e:?}", n.path));
    }
    let tree = loader.finish(snap.zxid);
    assert_eq!(
        tree.zk_digest_from_scratch(),
        trailer.digest,
        "the tree read from ZooKeeper's snapshot has ZooKeeper's digest"
    );
    assert_eq!(tree.zk_digest(), trailer.digest);
    let get = |p: &str| tree.lookup(p).unwrap_or_else(|| panic!("{p} is missing"));
    assert_eq!(tree.data(get("/app/big")), Some(&b"smaller"[..]));
    assert_eq!(tree.stat(get("/app/eph")).ephemeral_owner, session);
    assert_eq!(tree.acl(get("/app/secure"))[0].id.scheme, "digest");
    assert!(tree.lookup("/app/job-0000000001").is_none());
    assert_eq!(
        tree.stat(get("/app")).cversion,
        2 * 12 - 10,
        "12 creates (the failed multi's is none), 10 children left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first snapshot (the empty tree ZooKeeper wrote at its first start) and then every
/// transaction of the log: after each, the tree has the digest ZooKeeper logged with it.
fn replay_the_log(dir: &Path) {
    let mut files: Vec<(i64, PathBuf, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            if let Some(z) = zk_snapshot::name_zxid(&name) {
                return Some((z, p, true));
            }
            zk_log::name_zxid(&name).map(|z| (z, p, false))
        })
        .collect();
    files.sort();
    let (z, first, _) = files.iter().find(|f| f.2).expect("a snapshot").clone();
    let snap = zk_snapshot::read(&first).unwrap_or_else(|e| panic!("{e}"));
    let mut loader = SnapshotLoader::new();
    for n in &snap.nodes {
        loader.node(n).unwrap();
    }
    let mut tree = loader.finish(z);
    let mut checked = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (_, path, _) in files.iter().filter(|f| !f.2) {
        let log = zk_log::read(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!log.torn, "{} was closed cleanly", path.display());
        for t in &log.txns {
            kinds.insert(
                format!("{:?}", t.txn.op)
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_owned(),
            );
            tree.apply(&t.txn);
            if let Some(d) = t.digest {
                assert_eq!(
                    tree.zk_digest(),
                    d,
                    "after 0x{:x} {:?}",
                    t.txn.zxid,
                    t.txn.op
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked} digests checked");
    for k in [
        "CreateSession",
        "CloseSession",
        "Create",
        "Delete",
        "SetData",
        "SetAcl",
        "Multi",
    ] {
        assert!(kinds.contains(k), "no {k} in the log: {kinds:?}");
    }
}

/// Whether a whole snapshot past the empty one is there: one that reads, seals and all (it
/// may still be being written when it first appears).
fn has_snapshot_after_0(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(zk_snapshot::name_zxid)
                    .is_some_and(|z| z > 0)
            })
            .any(|p| zk_snapshot::read(&p).is_ok())
    })
}

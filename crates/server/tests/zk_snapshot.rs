//! Apache ZooKeeper 3.8 (Debian's package) writes a data directory under a workload; Paddock
//! reads its snapshot, and the tree it builds from it has the digest ZooKeeper wrote beside it.
//! The digest covers every node's path, data and stored Stat, so equal digests mean every node
//! came across exactly; a few nodes are checked by hand too.

use paddock_client::{open_acl, Acl, Client, CreateMode};
use paddock_server::storage::zk_snapshot;
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
        // The session stays open: ZooKeeper keeps it, and its ephemeral, in the snapshot.
        let id = zk.session_id();
        std::mem::forget(zk);
        id
    });
    stop(pid);
    // ZooKeeper takes a snapshot as it starts: with nothing running, not fuzzy.
    let pid = start(port, &dir);
    stop(pid);
    let snaps = dir.join("version-2");
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
        "the open session is in the snapshot"
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
        2 * 9 - 8,
        "9 creates, 8 children left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

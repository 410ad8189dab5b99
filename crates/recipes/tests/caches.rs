//! Config watch (node cache) and tree cache against a real server.

mod support;

use paddock_client::{open_acl, Client, CreateMode};
use paddock_recipes::tree_cache::TreeEvents;
use paddock_recipes::{ConfigWatch, TreeCache, TreeEvent};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{eventually, Proxy, Target};

const WITHIN: Duration = Duration::from_secs(5);

async fn create(c: &Client, path: &str, data: &[u8]) {
    c.create(path, data, open_acl(), CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

fn data_of(w: &ConfigWatch) -> Option<Vec<u8>> {
    w.current().map(|(d, _)| d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_watch_follows_set_delete_and_recreate() {
    let t = Target::start("config").await;
    let c = t.client().await;
    support::mkdirs(&c, &t.root).await;
    let path = t.path("settings");
    let w = ConfigWatch::start(&c, &path).await.unwrap();
    assert_eq!(w.current(), None, "a missing node reads as None");
    let mut rx = w.subscribe();

    let writer = t.client().await;
    create(&writer, &path, b"v1").await;
    tokio::time::timeout(WITHIN, rx.wait_for(|v| v.is_some()))
        .await
        .expect("creation seen")
        .unwrap();
    assert_eq!(data_of(&w), Some(b"v1".to_vec()));
    writer.set_data(&path, b"v2", -1).await.unwrap();
    eventually(WITHIN, "v2", || async {
        data_of(&w) == Some(b"v2".to_vec())
    })
    .await;
    assert_eq!(w.current().unwrap().1.version, 1);
    writer.delete(&path, -1).await.unwrap();
    eventually(WITHIN, "deletion", || async { w.current().is_none() }).await;
    create(&writer, &path, b"v3").await;
    eventually(WITHIN, "re-creation", || async {
        data_of(&w) == Some(b"v3".to_vec())
    })
    .await;
    assert!(w.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_watch_catches_up_after_a_disconnection() {
    let t = Target::start("config-cut").await;
    let writer = t.client().await;
    support::mkdirs(&writer, &t.root).await;
    let path = t.path("settings");
    create(&writer, &path, b"before").await;
    let proxy = Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, Duration::from_secs(10)).await;
    let w = ConfigWatch::start(&c, &path).await.unwrap();
    assert_eq!(data_of(&w), Some(b"before".to_vec()));
    proxy.cut();
    writer.set_data(&path, b"during", -1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(data_of(&w), Some(b"before".to_vec()), "stale while cut off");
    proxy.restore();
    eventually(WITHIN, "change made while disconnected", || async {
        data_of(&w) == Some(b"during".to_vec())
    })
    .await;
    writer.set_data(&path, b"after", -1).await.unwrap();
    eventually(WITHIN, "change after reconnect", || async {
        data_of(&w) == Some(b"after".to_vec())
    })
    .await;
}

/// The subtree at `root` read afresh: path -> data.
async fn fresh_read(c: &Client, root: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        let Ok((data, _)) = c.get_data(&p).await else {
            continue;
        };
        for k in c.get_children(&p).await.unwrap_or_default() {
            todo.push(format!("{p}/{k}"));
        }
        out.insert(p, data);
    }
    out
}

fn cached(cache: &TreeCache) -> BTreeMap<String, Vec<u8>> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, n)| (p, n.data))
        .collect()
}

async fn mirrors(cache: &TreeCache, c: &Client, root: &str) {
    let mut last = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while tokio::time::Instant::now() < deadline {
        let want = fresh_read(c, root).await;
        last = cached(cache);
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "cache {last:?} does not mirror the server {:?}",
        fresh_read(c, root).await
    );
}

/// Drains the events received so far.
fn drain(events: &mut TreeEvents) -> Vec<TreeEvent> {
    let mut v = Vec::new();
    while let Ok(e) = events.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_mirrors_a_changing_subtree() {
    let t = Target::start("tree").await;
    let c = t.client().await;
    let root = t.path("tree");
    support::mkdirs(&c, &root).await;
    create(&c, &format!("{root}/a"), b"A").await;
    create(&c, &format!("{root}/a/x"), b"AX").await;
    create(&c, &format!("{root}/b"), b"B").await;

    let watcher = t.client().await;
    let (cache, mut events) = TreeCache::start(&watcher, &root).await.unwrap();
    let initial = drain(&mut events);
    assert_eq!(initial.last(), Some(&TreeEvent::Initialized));
    let added = initial
        .iter()
        .filter(|e| matches!(e, TreeEvent::Added { .. }))
        .count();
    assert_eq!(
        added, 4,
        "one Added per node of the initial load: {initial:?}"
    );
    assert_eq!(cache.children(&root).unwrap(), ["a", "b"]);
    assert_eq!(cache.get(&format!("{root}/a/x")).unwrap().data, b"AX");

    create(&c, &format!("{root}/b/y"), b"BY").await;
    create(&c, &format!("{root}/b/y/z"), b"BYZ").await;
    c.set_data(&format!("{root}/a"), b"A2", -1).await.unwrap();
    c.set_data(&format!("{root}/a"), b"A3", -1).await.unwrap();
    c.delete(&format!("{root}/a/x"), -1).await.unwrap();
    c.delete(&format!("{root}/a"), -1).await.unwrap();
    create(&c, &format!("{root}/a"), b"A-again").await;
    c.set_data(&root, b"root-data", -1).await.unwrap();
    mirrors(&cache, &c, &root).await;
    assert_eq!(cache.children(&root).unwrap(), ["a", "b"]);
    assert_eq!(
        cache.children(&format!("{root}/a")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(cache.children(&format!("{root}/b")).unwrap(), ["y"]);
    assert_eq!(cache.get(&format!("{root}/a/x")), None);

    let later = drain(&mut events);
    let removed_x = TreeEvent::Removed {
        path: format!("{root}/a/x"),
    };
    assert!(later.contains(&removed_x), "events: {later:?}");
    assert!(later.iter().any(|e| matches!(e,
        TreeEvent::Added { path, node } if *path == format!("{root}/b/y/z") && node.data == b"BYZ")));
    assert!(later.iter().any(|e| matches!(e,
        TreeEvent::Updated { path, node } if *path == root && node.data == b"root-data")));
    assert!(cache.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_resyncs_after_a_disconnection() {
    let t = Target::start("tree-cut").await;
    let c = t.client().await;
    let root = t.path("tree");
    support::mkdirs(&c, &root).await;
    for n in ["keep", "change", "drop"] {
        create(&c, &format!("{root}/{n}"), n.as_bytes()).await;
    }
    create(&c, &format!("{root}/drop/child"), b"dc").await;
    let proxy = Proxy::start(&t.addr).await;
    let watcher = support::connect(&proxy.addr, Duration::from_secs(10)).await;
    let (cache, mut events) = TreeCache::start(&watcher, &root).await.unwrap();
    mirrors(&cache, &c, &root).await;
    drain(&mut events);

    proxy.cut();
    c.set_data(&format!("{root}/change"), b"changed", -1)
        .await
        .unwrap();
    c.delete(&format!("{root}/drop/child"), -1).await.unwrap();
    c.delete(&format!("{root}/drop"), -1).await.unwrap();
    create(&c, &format!("{root}/new"), b"new").await;
    create(&c, &format!("{root}/new/kid"), b"kid").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cache.get(&format!("{root}/change")).unwrap().data,
        b"change",
        "cut off, the cache cannot have seen the change"
    );
    proxy.restore();
    mirrors(&cache, &c, &root).await;
    let later = drain(&mut events);
    assert!(later.contains(&TreeEvent::Removed {
        path: format!("{root}/drop/child")
    }));
    assert!(later.iter().any(|e| matches!(e,
        TreeEvent::Added { path, .. } if *path == format!("{root}/new/kid"))));

    // And it keeps following after the resync.
    c.set_data(&format!("{root}/keep"), b"kept", -1)
        .await
        .unwrap();
    mirrors(&cache, &c, &root).await;
}

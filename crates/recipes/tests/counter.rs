//! The version-checked counter against a real server.

mod support;

use paddock_recipes::Counter;
use std::collections::BTreeSet;
use support::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_sum_exactly() {
    const WORKERS: usize = 4;
    const EACH: usize = 25;
    let t = Target::start("counter-race").await;
    let path = t.path("hits");
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let c = t.client().await;
        let counter = Counter::new(&c, &path);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..EACH {
                seen.push(counter.increment().await.unwrap());
            }
            seen
        }));
    }
    let mut values = BTreeSet::new();
    for task in tasks {
        for v in task.await.unwrap() {
            assert!(values.insert(v), "two increments returned {v}");
        }
    }
    let total = (WORKERS * EACH) as i64;
    assert_eq!(
        values,
        (1..=total).collect(),
        "every increment got its own value"
    );
    let c = t.client().await;
    assert_eq!(Counter::new(&c, &path).get().await.unwrap(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_compare_and_set() {
    let t = Target::start("counter-cas").await;
    let c = t.client().await;
    let counter = Counter::new(&c, &t.path("deep/n"));
    let missing = counter.get_versioned().await.unwrap();
    assert_eq!((missing.value, missing.version), (0, -1));
    assert!(
        counter.try_set(5, &missing).await.unwrap(),
        "creates the missing node"
    );
    assert!(
        !counter.try_set(6, &missing).await.unwrap(),
        "stale version refused"
    );
    let v = counter.get_versioned().await.unwrap();
    assert_eq!(v.value, 5);
    assert!(counter.try_set(6, &v).await.unwrap());
    assert!(!counter.try_set(7, &v).await.unwrap());
    assert!(!counter.compare_and_set(5, 9).await.unwrap());
    assert!(counter.compare_and_set(6, 9).await.unwrap());
    counter.set(10).await.unwrap();
    assert_eq!(counter.add(-3).await.unwrap(), 7);
    assert_eq!(counter.decrement().await.unwrap(), 6);
    // The node reads as a plain number for other tools.
    let (data, _) = c.get_data(&t.path("deep/n")).await.unwrap();
    assert!(String::from_utf8(data).unwrap().starts_with("6\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_write_reply_is_applied_exactly_once() {
    let t = Target::start("counter-lost-reply").await;
    let path = t.path("n");
    let observer = t.client().await;
    let watched = Counter::new(&observer, &path);
    let proxy = support::Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, std::time::Duration::from_secs(10)).await;
    let counter = Counter::new(&c, &path);
    assert_eq!(counter.add(10).await.unwrap(), 10);
    let read = counter.get_versioned().await.unwrap();
    // The write reaches the server, its reply never comes back, the connection drops.
    proxy.mute();
    let adding = tokio::spawn(async move { counter.try_set(read.value + 5, &read).await });
    support::eventually(
        std::time::Duration::from_secs(5),
        "the add applied",
        || async { watched.get().await.unwrap() == 15 },
    )
    .await;
    proxy.cut();
    proxy.restore();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), adding)
        .await
        .expect("add resolves after the reconnect")
        .unwrap()
        .unwrap();
    assert!(got, "the lost reply is recognised as applied");
    assert_eq!(watched.get().await.unwrap(), 15, "and not applied twice");
}

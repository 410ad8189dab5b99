//! The version-checked counter against a real server.

mod support;

use paddock_recipes::counter::Versioned;
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
    assert_eq!(
        counter.get_versioned().await.unwrap(),
        Versioned {
            value: 0,
            version: -1
        }
    );
    assert!(
        counter.try_set(5, -1).await.unwrap(),
        "creates the missing node"
    );
    assert!(
        !counter.try_set(6, -1).await.unwrap(),
        "stale version refused"
    );
    let v = counter.get_versioned().await.unwrap();
    assert_eq!(v.value, 5);
    assert!(counter.try_set(6, v.version).await.unwrap());
    assert!(!counter.try_set(7, v.version).await.unwrap());
    assert!(!counter.compare_and_set(5, 9).await.unwrap());
    assert!(counter.compare_and_set(6, 9).await.unwrap());
    counter.set(10).await.unwrap();
    assert_eq!(counter.add(-3).await.unwrap(), 7);
    assert_eq!(counter.decrement().await.unwrap(), 6);
    // The node reads as a plain number for other tools.
    let (data, _) = c.get_data(&t.path("deep/n")).await.unwrap();
    assert!(String::from_utf8(data).unwrap().starts_with("6\n"));
}

//! FIFO and priority queues against a real server.

mod support;

use paddock_recipes::{DistributedQueue, PriorityQueue, RecipeError};
use std::collections::BTreeSet;
use std::time::Duration;
use support::Target;

fn item(i: usize) -> Vec<u8> {
    format!("item-{i:04}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_peek_poll_and_blocking_take() {
    let t = Target::start("queue-fifo").await;
    let c = t.client().await;
    let q = DistributedQueue::new(&c, &t.path("q"));
    assert_eq!(q.poll().await.unwrap(), None);
    assert_eq!(q.peek().await.unwrap(), None);
    assert!(q.is_empty().await.unwrap());
    for i in 0..5 {
        q.offer(&item(i)).await.unwrap();
    }
    assert_eq!(q.len().await.unwrap(), 5);
    assert_eq!(q.peek().await.unwrap(), Some(item(0)), "peek sees the head");
    assert_eq!(
        q.peek().await.unwrap(),
        Some(item(0)),
        "peek does not remove"
    );
    assert_eq!(q.poll().await.unwrap(), Some(item(0)));
    for i in 1..5 {
        assert_eq!(q.take().await.unwrap(), item(i), "FIFO order");
    }
    assert_eq!(
        q.take_within(Duration::from_millis(200)).await,
        Err(RecipeError::Timeout)
    );

    // take blocks until an item is offered (by another session).
    let consumer = t.client().await;
    let cq = DistributedQueue::new(&consumer, &t.path("q"));
    let task = tokio::spawn(async move { cq.take().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "take returned from an empty queue");
    q.offer(b"late").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("take wakes on offer")
        .unwrap()
        .unwrap();
    assert_eq!(got, b"late");
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consumers_get_every_item_once() {
    const ITEMS: usize = 60;
    const CONSUMERS: usize = 4;
    let t = Target::start("queue-race").await;
    let dir = t.path("q");
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let c = t.client().await;
        let q = DistributedQueue::new(&c, &dir);
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            // Stop once the queue stayed empty for a while (the producer is done by then).
            loop {
                match q.take_within(Duration::from_millis(1500)).await {
                    Ok(data) => got.push(String::from_utf8(data).unwrap()),
                    Err(RecipeError::Timeout) => return got,
                    Err(e) => panic!("take: {e}"),
                }
            }
        }));
    }
    let producer = t.client().await;
    let q = DistributedQueue::new(&producer, &dir);
    for i in 0..ITEMS {
        q.offer(&item(i)).await.unwrap();
    }
    let mut all = Vec::new();
    for task in consumers {
        let got = task.await.unwrap();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "one consumer saw items out of FIFO order");
        all.extend(got);
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "an item was delivered twice");
    assert_eq!(all.len(), ITEMS, "an item was lost");
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_queue_orders_by_priority_then_fifo() {
    let t = Target::start("queue-priority").await;
    let c = t.client().await;
    let q = PriorityQueue::new(&c, &t.path("pq"));
    let offers: [(i32, &str); 7] = [
        (5, "e1"),
        (1, "b1"),
        (3, "c1"),
        (1, "b2"),
        (-2, "a1"),
        (5, "e2"),
        (i32::MAX, "z1"),
    ];
    for (p, name) in offers {
        q.offer(p, name.as_bytes()).await.unwrap();
    }
    assert_eq!(q.peek().await.unwrap(), Some(b"a1".to_vec()));
    let mut out = Vec::new();
    while let Some(d) = q.poll().await.unwrap() {
        out.push(String::from_utf8(d).unwrap());
    }
    assert_eq!(out, ["a1", "b1", "b2", "c1", "e1", "e2", "z1"]);

    // A blocked take gets the item offered later, whatever its priority.
    let other = t.client().await;
    let oq = PriorityQueue::new(&other, &t.path("pq"));
    let task = tokio::spawn(async move { oq.take().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished());
    q.offer(7, b"x").await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        b"x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_offer_reply_adds_one_item() {
    let t = Target::start("queue-lost-reply").await;
    let dir = t.path("q");
    let observer = t.client().await;
    support::mkdirs(&observer, &dir).await;
    let proxy = support::Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, Duration::from_secs(10)).await;
    let q = DistributedQueue::new(&c, &dir);
    proxy.mute();
    let offering = tokio::spawn(async move { q.offer(b"once").await });
    support::eventually(Duration::from_secs(5), "the item created", || async {
        observer.get_children(&dir).await.unwrap().len() == 1
    })
    .await;
    proxy.cut();
    proxy.restore();
    let path = tokio::time::timeout(Duration::from_secs(10), offering)
        .await
        .expect("offer resolves after the reconnect")
        .unwrap()
        .unwrap();
    let kids = observer.get_children(&dir).await.unwrap();
    assert_eq!(kids.len(), 1, "offered twice: {kids:?}");
    assert!(path.ends_with(&kids[0]));
    let oq = DistributedQueue::new(&observer, &dir);
    assert_eq!(oq.poll().await.unwrap(), Some(b"once".to_vec()));
}

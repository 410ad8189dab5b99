//! Barrier and double barrier against a real server.

mod support;

use paddock_recipes::{Barrier, DoubleBarrier, RecipeError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{Proxy, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_blocks_until_removed() {
    let t = Target::start("barrier").await;
    let setter = t.client().await;
    let path = t.path("gate");
    let barrier = Barrier::new(&setter, &path);
    assert!(barrier.set().await.unwrap());
    assert!(!barrier.set().await.unwrap(), "second set finds it set");
    assert!(barrier.is_set().await.unwrap());

    let waiter_client = t.client().await;
    let waiter = Barrier::new(&waiter_client, &path);
    assert_eq!(
        waiter.wait_within(Duration::from_millis(300)).await,
        Err(RecipeError::Timeout)
    );
    let task = tokio::spawn(async move { waiter.wait().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "waiter passed a set barrier");
    barrier.remove().await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("waiter released")
        .unwrap()
        .unwrap();
    // An unset barrier does not block.
    Barrier::new(&waiter_client, &path)
        .wait_within(Duration::from_millis(100))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_removed_while_waiter_is_disconnected() {
    let t = Target::start("barrier-cut").await;
    let setter = t.client().await;
    let path = t.path("gate");
    Barrier::new(&setter, &path).set().await.unwrap();

    let proxy = Proxy::start(&t.addr).await;
    let waiter_client = support::connect(&proxy.addr, Duration::from_secs(10)).await;
    let waiter = Barrier::new(&waiter_client, &path);
    let task = tokio::spawn(async move { waiter.wait().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    Barrier::new(&setter, &path).remove().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "waiter cannot know while cut off");
    proxy.restore();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the restored watch fires for the removal made while disconnected")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_enter_and_leave_together() {
    const N: usize = 4;
    let t = Target::start("double-barrier").await;
    let path = t.path("db");
    let arrived = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicUsize::new(0));
    let passed_enter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..N {
        let client = t.client().await;
        let b = DoubleBarrier::new(&client, &path, N).unwrap();
        let (arrived, leaving, passed_enter) =
            (arrived.clone(), leaving.clone(), passed_enter.clone());
        tasks.push(tokio::spawn(async move {
            // Arrive one after the other, leave in the opposite order.
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            arrived.fetch_add(1, Ordering::SeqCst);
            b.enter().await.unwrap();
            assert_eq!(
                arrived.load(Ordering::SeqCst),
                N,
                "member {i} passed enter before everyone arrived"
            );
            passed_enter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150 * (N - i) as u64)).await;
            leaving.fetch_add(1, Ordering::SeqCst);
            b.leave().await.unwrap();
            assert_eq!(
                leaving.load(Ordering::SeqCst),
                N,
                "member {i} passed leave before everyone left"
            );
            drop(client);
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("double barrier round finishes")
            .unwrap();
    }
    assert_eq!(passed_enter.load(Ordering::SeqCst), N);
    // Everyone is gone, and the barrier is reset for a next round.
    let c = t.client().await;
    assert!(c.get_children(&path).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_enter_waits_for_the_last_member() {
    let t = Target::start("double-barrier-short").await;
    let path = t.path("db");
    let a = t.client().await;
    let b = t.client().await;
    let first = DoubleBarrier::new(&a, &path, 3).unwrap();
    let second = DoubleBarrier::new(&b, &path, 3).unwrap();
    let task = tokio::spawn(async move { second.enter().await });
    assert_eq!(
        first.enter_within(Duration::from_millis(500)).await,
        Err(RecipeError::Timeout)
    );
    assert!(!task.is_finished(), "two of three members passed enter");
    // The timed-out member withdrew; two more make three with the waiting one.
    let c = t.client().await;
    let d = t.client().await;
    let third = DoubleBarrier::new(&c, &path, 3).unwrap();
    let fourth = DoubleBarrier::new(&d, &path, 3).unwrap();
    let (r3, r4) = tokio::join!(third.enter(), fourth.enter());
    r3.unwrap();
    r4.unwrap();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .expect("waiting member passes")
        .unwrap()
        .unwrap();
    assert!(DoubleBarrier::new(&a, &path, 0).is_err());
}

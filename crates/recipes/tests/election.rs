//! Elections against a real server: the leader selector and the leader latch.

mod support;

use paddock_client::Client;
use paddock_recipes::{
    LatchEvent, LatchLoss, LatchOptions, LatchState, LeaderLatch, LeaderSelector, LockLost,
    RecipeError, TermEnd,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{eventually, expire_behind, Proxy, Target, SHORT_SESSION};
use tokio::sync::broadcast;

const WITHIN: Duration = Duration::from_secs(10);

/// A short-session client behind a proxy, so that the test can cut or expire it.
async fn doomed(t: &Target) -> (Proxy, Client) {
    let proxy = Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, SHORT_SESSION).await;
    (proxy, c)
}

async fn next_event(rx: &mut broadcast::Receiver<LatchEvent>) -> LatchEvent {
    tokio::time::timeout(WITHIN, rx.recv())
        .await
        .expect("a leadership event")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_one_leader_at_a_time() {
    let t = Target::start("selector_one").await;
    let dir = t.path("election");
    let leading = Arc::new(AtomicBool::new(false));
    let terms = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let sel = LeaderSelector::new(t.client().await, &dir, &format!("p{i}"));
        let (leading, terms) = (leading.clone(), terms.clone());
        tasks.push(tokio::spawn(async move {
            let me = sel.id().to_string();
            let end = sel
                .run(|l| {
                    let (leading, terms, sel) = (leading.clone(), terms.clone(), sel.clone());
                    let me = me.clone();
                    async move {
                        assert!(!leading.swap(true, Ordering::SeqCst), "two leaders");
                        // Everyone sees this participant as the leader.
                        assert_eq!(sel.leader().await.unwrap().as_deref(), Some(&*me));
                        terms.lock().unwrap().push(l.token());
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        leading.store(false, Ordering::SeqCst);
                    }
                })
                .await
                .unwrap();
            assert_eq!(end, TermEnd::Done);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let terms = terms.lock().unwrap().clone();
    assert_eq!(terms.len(), 3);
    assert!(terms.windows(2).all(|w| w[0] < w[1]), "{terms:?}");
    let sel = LeaderSelector::new(t.client().await, &dir, "observer");
    assert_eq!(sel.leader().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_requeues_and_takes_turns() {
    let t = Target::start("selector_requeue").await;
    let dir = t.path("election");
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for name in ["a", "b"] {
        let sel = LeaderSelector::new(t.client().await, &dir, name).requeue(true);
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            sel.run(|_| {
                let order = order.clone();
                async move {
                    order.lock().unwrap().push(name);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
        }));
    }
    // Five terms from b's first on.
    let since_b = |o: &[&str]| o.iter().position(|n| *n == "b").map(|i| o.len() - i);
    eventually(WITHIN, "five terms since b joined", || async {
        since_b(&order.lock().unwrap()).is_some_and(|n| n >= 5)
    })
    .await;
    for task in &tasks {
        task.abort();
    }
    let order = order.lock().unwrap().clone();
    let from = order.iter().position(|n| *n == "b").unwrap();
    // A participant that requeues goes to the back: the two alternate.
    assert!(
        order[from..from + 5].windows(2).all(|w| w[0] != w[1]),
        "terms did not alternate: {order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_leadership_passes_on_expiry() {
    let t = Target::start("selector_expiry").await;
    let dir = t.path("election");
    let (proxy, c) = doomed(&t).await;
    let first = LeaderSelector::new(c.clone(), &dir, "first").cancel_on_suspended(false);
    let (led_tx, led_rx) = tokio::sync::oneshot::channel();
    let first_run = tokio::spawn(async move {
        let mut led_tx = Some(led_tx);
        first
            .run(|l| {
                let tx = led_tx.take();
                async move {
                    let _ = tx.map(|tx| tx.send(l.token()));
                    std::future::pending::<()>().await
                }
            })
            .await
    });
    let first_token = tokio::time::timeout(WITHIN, led_rx).await.unwrap().unwrap();
    let second = LeaderSelector::new(t.client().await, &dir, "second");
    let second_run = tokio::spawn(async move {
        second
            .lead(|l| async move {
                assert!(l.token() > first_token);
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second_run.is_finished());
    expire_behind(&proxy, &t.addr, &c).await;
    let r = tokio::time::timeout(WITHIN, first_run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, Err(RecipeError::SessionLost));
    let end = tokio::time::timeout(WITHIN, second_run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, Ok(TermEnd::Done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_stops_work_when_suspended_or_node_deleted() {
    let t = Target::start("selector_suspended").await;
    let dir = t.path("election");
    let (proxy, c) = doomed(&t).await;
    let sel = LeaderSelector::new(c.clone(), &dir, "s");
    // The work holds the sender: it is dropped with the work.
    let (work_alive, work_dropped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let sel = sel.clone();
        async move {
            sel.lead(|_| async move {
                let _alive = work_alive;
                std::future::pending::<()>().await
            })
            .await
        }
    });
    let observer = t.client().await;
    eventually(WITHIN, "leader", || async {
        sel.leader().await.unwrap().as_deref() == Some("s")
    })
    .await;
    proxy.cut();
    // Stopped well before the session could expire; relinquished once reconnected.
    tokio::time::timeout(Duration::from_millis(900), work_dropped)
        .await
        .expect("work stopped on suspension")
        .unwrap_err();
    proxy.restore();
    let end = tokio::time::timeout(WITHIN, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, Ok(TermEnd::Suspended));
    assert!(observer.get_children(&dir).await.unwrap().is_empty());

    // A deleted node ends the term too. Deleted only once the term has begun: a node deleted
    // while its owner still queues is a different case (the acquire fails with NotHeld).
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let sel = sel.clone();
        async move {
            sel.lead(|_| async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await
            })
            .await
        }
    });
    tokio::time::timeout(WITHIN, started)
        .await
        .expect("a second term")
        .unwrap();
    let kids = observer.get_children(&dir).await.unwrap();
    assert_eq!(kids.len(), 1, "{kids:?}");
    let node = format!("{dir}/{}", kids[0]);
    observer.delete(&node, -1).await.unwrap();
    let end = tokio::time::timeout(WITHIN, running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, Ok(TermEnd::Lost(LockLost::NodeDeleted)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_one_leader_and_handover_on_close() {
    let t = Target::start("latch_handover").await;
    let dir = t.path("latch");
    let a = LeaderLatch::start(t.client().await, &dir, "a")
        .await
        .unwrap();
    let mut a_events = a.subscribe();
    let b = LeaderLatch::start(t.client().await, &dir, "b")
        .await
        .unwrap();
    let mut b_events = b.subscribe();
    let c = LeaderLatch::start(t.client().await, &dir, "c")
        .await
        .unwrap();
    let ta = a.await_leadership().await.unwrap();
    eventually(WITHIN, "followers settled", || async {
        b.state() == LatchState::Follower && c.state() == LatchState::Follower
    })
    .await;
    assert_eq!(
        b.await_leadership_for(Duration::from_millis(200)).await,
        Ok(None)
    );
    assert!(!b.has_leadership() && !c.has_leadership());
    assert_eq!(next_event(&mut a_events).await, LatchEvent::Gained(ta));
    a.close().await.unwrap();
    assert_eq!(
        next_event(&mut a_events).await,
        LatchEvent::Lost {
            token: ta,
            why: LatchLoss::Closed
        }
    );
    let tb = match next_event(&mut b_events).await {
        LatchEvent::Gained(t) => t,
        other => panic!("b: {other:?}"),
    };
    assert!(tb > ta);
    assert_eq!(b.token(), Some(tb));
    assert!(!c.has_leadership());
    b.close().await.unwrap();
    let tc = c.await_leadership().await.unwrap();
    assert!(tc > tb);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_reports_suspension_and_session_loss() {
    let t = Target::start("latch_loss").await;
    let dir = t.path("latch");
    let (proxy, c) = doomed(&t).await;
    let a = LeaderLatch::start(c.clone(), &dir, "a").await.unwrap();
    let mut events = a.subscribe();
    let token = a.await_leadership().await.unwrap();
    assert_eq!(next_event(&mut events).await, LatchEvent::Gained(token));
    let b = LeaderLatch::start(t.client().await, &dir, "b")
        .await
        .unwrap();

    // Suspended: lost at once; back with the session alive: gained again, same node.
    proxy.cut();
    assert_eq!(
        next_event(&mut events).await,
        LatchEvent::Lost {
            token,
            why: LatchLoss::Suspended
        }
    );
    assert!(!a.has_leadership());
    proxy.restore();
    assert_eq!(next_event(&mut events).await, LatchEvent::Gained(token));
    assert!(!b.has_leadership());

    // Expired: lost for good, and the other participant takes over.
    expire_behind(&proxy, &t.addr, &c).await;
    let mut saw_session = false;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
        match ev {
            LatchEvent::Lost { why, .. } => saw_session |= why == LatchLoss::Session,
            LatchEvent::Gained(_) => panic!("regained after expiry"),
        }
        if saw_session || a.state() == LatchState::SessionLost {
            break;
        }
    }
    eventually(WITHIN, "latch a ends", || async {
        a.state() == LatchState::SessionLost
    })
    .await;
    assert_eq!(a.await_leadership().await, Err(RecipeError::SessionLost));
    let tb = b.await_leadership().await.unwrap();
    assert!(tb > token);
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_can_keep_leadership_through_suspension() {
    let t = Target::start("latch_keep").await;
    let dir = t.path("latch");
    let (proxy, c) = doomed(&t).await;
    let a = LeaderLatch::start_with(c, &dir, LatchOptions::new("a").lose_on_suspended(false))
        .await
        .unwrap();
    let token = a.await_leadership().await.unwrap();
    let mut events = a.subscribe();
    let lost = Arc::new(AtomicUsize::new(0));
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.has_leadership(), "kept through a short suspension");
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, LatchEvent::Lost { .. }) {
            lost.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert_eq!(lost.load(Ordering::SeqCst), 0);
    assert_eq!(a.token(), Some(token));
    // Cut for longer than the session timeout: presumed lost, leadership reported lost.
    proxy.cut();
    let ev = next_event(&mut events).await;
    assert_eq!(
        ev,
        LatchEvent::Lost {
            token,
            why: LatchLoss::Session
        }
    );
    assert_eq!(a.state(), LatchState::SessionLost);
}

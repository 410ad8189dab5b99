//! Locks against a real server: the mutex, the read/write lock and the semaphore.

mod support;

use paddock_client::Client;
use paddock_recipes::nodes::create_protected;
use paddock_recipes::{FencingToken, LockLost, Mutex, RecipeError, RwLock, Semaphore};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{eventually, expire_behind, Proxy, Target, SHORT_SESSION};
use tokio::sync::mpsc;

const WITHIN: Duration = Duration::from_secs(10);

async fn children(c: &Client, dir: &str) -> Vec<String> {
    c.get_children(dir).await.unwrap_or_default()
}

/// A short-session client behind a proxy, so that the test can expire it.
async fn doomed(t: &Target) -> (Proxy, Client) {
    let proxy = Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, SHORT_SESSION).await;
    (proxy, c)
}

/// Waits until `dir` has `n` children.
async fn wait_children(c: &Client, dir: &str, n: usize) {
    eventually(WITHIN, &format!("{n} children in {dir}"), || async {
        children(c, dir).await.len() == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_excludes_and_tokens_grow() {
    let t = Target::start("mutex_excludes").await;
    let dir = t.path("lock");
    let clients = [t.client().await, t.client().await];
    let inside = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::<FencingToken>::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        // Two handles per client: handles on one session exclude each other too.
        let m = Mutex::new(clients[i % 2].clone(), &dir);
        let (inside, counter, tokens) = (inside.clone(), counter.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let token = m.acquire().await.unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                tokens.lock().unwrap().push(token);
                let seen = counter.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                counter.store(seen + 1, Ordering::SeqCst);
                assert_eq!(m.token(), Some(token));
                inside.store(false, Ordering::SeqCst);
                m.release().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 20);
    let tokens = tokens.lock().unwrap().clone();
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens not strictly increasing: {tokens:?}"
    );
    assert!(children(&clients[0], &dir).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_serves_waiters_in_order() {
    let t = Target::start("mutex_fifo").await;
    let dir = t.path("lock");
    let c = t.client().await;
    let first = Mutex::new(c.clone(), &dir);
    first.acquire().await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 1..=4 {
        let m = Mutex::new(t.client().await, &dir);
        let tx = tx.clone();
        tokio::spawn(async move {
            m.acquire().await.unwrap();
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            m.release().await.unwrap();
        });
        // The next waiter queues only once this one's node is there.
        wait_children(&c, &dir, i + 1).await;
    }
    first.release().await.unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(
            tokio::time::timeout(WITHIN, rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(order, vec![1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentrant_counts_and_non_reentrant_waits() {
    let t = Target::start("mutex_reentrancy").await;
    let dir = t.path("lock");
    let c = t.client().await;
    let m = Mutex::new(c.clone(), &dir);
    let other = Mutex::new(c.clone(), &dir);
    let token = m.acquire().await.unwrap();
    assert_eq!(m.acquire().await.unwrap(), token);
    assert_eq!(
        m.try_acquire(Duration::from_millis(50)).await.unwrap(),
        Some(token)
    );
    assert_eq!(children(&c, &dir).await.len(), 1, "reentry made no node");
    m.release().await.unwrap();
    m.release().await.unwrap();
    assert_eq!(
        other.try_acquire(Duration::from_millis(200)).await.unwrap(),
        None
    );
    m.release().await.unwrap();
    assert!(matches!(m.release().await, Err(RecipeError::NotHeld(_))));
    let next = other.try_acquire(WITHIN).await.unwrap().expect("free now");
    assert!(next > token);
    other.release().await.unwrap();

    let nr = Arc::new(Mutex::non_reentrant(c.clone(), &dir));
    let token = nr.acquire().await.unwrap();
    assert_eq!(
        nr.try_acquire(Duration::from_millis(200)).await.unwrap(),
        None
    );
    assert_eq!(
        children(&c, &dir).await.len(),
        1,
        "the waiting acquire made no node"
    );
    let waiter = {
        let nr = nr.clone();
        tokio::spawn(async move { nr.acquire().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "second acquire on a holding handle must wait"
    );
    nr.release().await.unwrap();
    let second = tokio::time::timeout(WITHIN, waiter).await.unwrap().unwrap();
    assert!(second > token);
    assert_eq!(nr.token(), Some(second));
    nr.release().await.unwrap();
    assert!(children(&c, &dir).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_acquire_timeout_removes_its_node() {
    let t = Target::start("mutex_try").await;
    let dir = t.path("lock");
    let c = t.client().await;
    let holder = Mutex::new(c.clone(), &dir);
    holder.acquire().await.unwrap();
    let node = holder.node().unwrap();
    let m = Mutex::new(t.client().await, &dir);
    let started = std::time::Instant::now();
    assert_eq!(
        m.try_acquire(Duration::from_millis(300)).await.unwrap(),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(m.token(), None);
    let left = children(&c, &dir).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(node.ends_with(&left[0]));
    holder.release().await.unwrap();
    assert!(m.try_acquire(WITHIN).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_lost_on_session_expiry() {
    let t = Target::start("mutex_expiry").await;
    let dir = t.path("lock");
    let (proxy, doomed) = doomed(&t).await;
    let m = Mutex::new(doomed.clone(), &dir);
    let token = m.acquire().await.unwrap();
    let next = Mutex::new(t.client().await, &dir);
    let waiting = tokio::spawn(async move {
        let token = next.acquire().await.unwrap();
        (next, token)
    });
    expire_behind(&proxy, &t.addr, &doomed).await;
    let why = tokio::time::timeout(WITHIN, m.lost()).await.unwrap();
    assert_eq!(why, LockLost::Session);
    assert!(!m.is_held());
    let (next, next_token) = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(next_token > token);
    // No reentry into a lost lock.
    assert_eq!(m.acquire().await, Err(RecipeError::SessionLost));
    // The deposed handle can still be released; it holds nothing afterwards.
    m.release().await.unwrap();
    assert_eq!(m.lost().await, LockLost::NotHeld);
    next.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_acquire_fails_when_session_expires() {
    let t = Target::start("mutex_wait_expiry").await;
    let dir = t.path("lock");
    let c = t.client().await;
    let holder = Mutex::new(c.clone(), &dir);
    holder.acquire().await.unwrap();
    let (proxy, doomed) = doomed(&t).await;
    let m = Mutex::new(doomed.clone(), &dir);
    let waiting = tokio::spawn(async move { m.acquire().await });
    wait_children(&c, &dir, 2).await;
    expire_behind(&proxy, &t.addr, &doomed).await;
    let r = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, Err(RecipeError::SessionLost));
    // The server removed the waiter's node with its session.
    wait_children(&c, &dir, 1).await;
    assert!(holder.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_node_is_reported_and_next_takes_over() {
    let t = Target::start("mutex_deleted").await;
    let dir = t.path("lock");
    let c = t.client().await;
    let m = Mutex::new(c.clone(), &dir);
    m.acquire().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(200), m.lost())
        .await
        .is_err());
    let next = Mutex::new(t.client().await, &dir);
    let waiting = tokio::spawn(async move { next.acquire().await.map(|tk| (next, tk)) });
    wait_children(&c, &dir, 2).await;
    let admin = t.client().await;
    admin.delete(&m.node().unwrap(), -1).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WITHIN, m.lost()).await.unwrap(),
        LockLost::NodeDeleted
    );
    let (next, _) = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // Releasing after the loss is harmless and leaves the new holder alone.
    m.release().await.unwrap();
    assert!(next.is_held());
    assert_eq!(children(&c, &dir).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_reply_does_not_queue_a_second_node() {
    let t = Target::start("mutex_lost_reply").await;
    let dir = t.path("lock");
    let observer = t.client().await;
    support::mkdirs(&observer, &dir).await;
    let proxy = Proxy::start(&t.addr).await;
    let c = support::connect(&proxy.addr, Duration::from_secs(10)).await;

    // The plain helper first: the create is applied, its reply vanishes, the connection drops.
    proxy.mute();
    let create = {
        let c = c.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            create_protected(
                &c,
                &dir,
                "n-",
                b"",
                paddock_client::CreateMode::EphemeralSequential,
            )
            .await
        })
    };
    wait_children(&observer, &dir, 1).await;
    proxy.cut();
    proxy.restore();
    let (path, _) = tokio::time::timeout(WITHIN, create)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let kids = children(&observer, &dir).await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    assert!(path.ends_with(&kids[0]));
    observer.delete(&path, -1).await.unwrap();

    // The same through the mutex: it must not wait behind its own first node.
    let m = Arc::new(Mutex::new(c.clone(), &dir));
    proxy.mute();
    let acquiring = {
        let m = m.clone();
        tokio::spawn(async move { m.acquire().await })
    };
    wait_children(&observer, &dir, 1).await;
    proxy.cut();
    proxy.restore();
    tokio::time::timeout(WITHIN, acquiring)
        .await
        .expect("the lock was free: acquire must not wait on itself")
        .unwrap()
        .unwrap();
    assert_eq!(children(&observer, &dir).await.len(), 1);
    m.release().await.unwrap();
    assert!(children(&observer, &dir).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwlock_readers_share_writers_exclude() {
    let t = Target::start("rwlock").await;
    let dir = t.path("rw");
    let c = t.client().await;
    let rw = RwLock::new(c.clone(), &dir);
    let (r1, r2) = (
        rw.read_lock(),
        RwLock::new(t.client().await, &dir).read_lock(),
    );
    let t1 = r1.acquire().await.unwrap();
    // Readers share.
    let t2 = r2
        .try_acquire(WITHIN)
        .await
        .unwrap()
        .expect("second reader");
    assert_ne!(t1, t2);
    // A writer waits for both readers.
    let w = Arc::new(rw.write_lock());
    let writer = {
        let w = w.clone();
        tokio::spawn(async move { w.acquire().await.unwrap() })
    };
    wait_children(&c, &dir, 3).await;
    // A reader behind a waiting writer waits too (no writer starvation).
    let r3 = rw.read_lock();
    assert_eq!(
        r3.try_acquire(Duration::from_millis(200)).await.unwrap(),
        None
    );
    r1.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!writer.is_finished(), "writer got in beside a reader");
    r2.release().await.unwrap();
    let wt = tokio::time::timeout(WITHIN, writer).await.unwrap().unwrap();
    assert!(wt > t1 && wt > t2);
    // While the writer holds it, neither readers nor writers get in.
    assert_eq!(
        r3.try_acquire(Duration::from_millis(200)).await.unwrap(),
        None
    );
    let w2 = RwLock::new(t.client().await, &dir).write_lock();
    assert_eq!(
        w2.try_acquire(Duration::from_millis(200)).await.unwrap(),
        None
    );
    w.release().await.unwrap();
    let rt = r3
        .try_acquire(WITHIN)
        .await
        .unwrap()
        .expect("reader after writer");
    assert!(rt > wt);
    r3.release().await.unwrap();
    assert!(children(&c, &dir).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwlock_under_load_never_mixes() {
    let t = Target::start("rwlock_load").await;
    let dir = t.path("rw");
    // Readers inside (low bits) and a writer flag (high bit).
    let inside = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    const WRITER: usize = 1 << 20;
    let mut tasks = Vec::new();
    for i in 0..5 {
        let rw = RwLock::new(t.client().await, &dir);
        let (inside, max_readers) = (inside.clone(), max_readers.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                if i < 2 {
                    let w = rw.write_lock();
                    w.acquire().await.unwrap();
                    let before = inside.fetch_add(WRITER, Ordering::SeqCst);
                    assert_eq!(before, 0, "writer entered beside someone");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    inside.fetch_sub(WRITER, Ordering::SeqCst);
                    w.release().await.unwrap();
                } else {
                    let r = rw.read_lock();
                    r.acquire().await.unwrap();
                    let before = inside.fetch_add(1, Ordering::SeqCst);
                    assert!(before < WRITER, "reader entered beside a writer");
                    max_readers.fetch_max(before + 1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    r.release().await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(inside.load(Ordering::SeqCst), 0);
    tracing::debug!(max = max_readers.load(Ordering::SeqCst), "readers at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_never_exceeds_its_leases() {
    let t = Target::start("semaphore").await;
    let dir = t.path("sem");
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let sem = Semaphore::new(t.client().await, &dir, 3);
        let (inside, most) = (inside.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                // Some take two leases at once.
                let k = if i == 0 { 2 } else { 1 };
                let leases = sem.acquire(k).await.unwrap();
                assert_eq!(leases.len(), k as usize);
                let now = inside.fetch_add(k as usize, Ordering::SeqCst) + k as usize;
                assert!(now <= 3, "{now} leases out of 3 in use");
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                inside.fetch_sub(k as usize, Ordering::SeqCst);
                for l in leases {
                    l.release().await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(most.load(Ordering::SeqCst) >= 2, "leases were never shared");
    let sem = Semaphore::new(t.client().await, &dir, 3);
    assert_eq!(sem.held().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_timeout_returns_partial_leases() {
    let t = Target::start("semaphore_timeout").await;
    let dir = t.path("sem");
    let c = t.client().await;
    let a = Semaphore::new(c.clone(), &dir, 3);
    assert!(matches!(a.acquire(0).await, Err(RecipeError::Invalid(_))));
    assert!(matches!(a.acquire(4).await, Err(RecipeError::Invalid(_))));
    let held = a.acquire(2).await.unwrap();
    assert!(held[0].token() < held[1].token());
    let b = Semaphore::new(t.client().await, &dir, 3);
    // One lease is free, two are asked for: none may stay taken after the timeout.
    assert!(b
        .try_acquire(2, Duration::from_millis(300))
        .await
        .unwrap()
        .is_none());
    assert_eq!(b.held().await.unwrap(), 2);
    assert!(children(&c, &format!("{dir}/locks")).await.is_empty());
    // A waiter gets in as soon as a lease comes back, without polling.
    let waiter = tokio::spawn(async move { b.acquire(2).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    let mut held = held.into_iter();
    held.next().unwrap().release().await.unwrap();
    let got = tokio::time::timeout(WITHIN, waiter).await.unwrap().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(a.held().await.unwrap(), 3);
    // Dropping a lease returns it too.
    drop(got);
    eventually(WITHIN, "dropped leases returned", || async {
        a.held().await.unwrap() == 1
    })
    .await;
}

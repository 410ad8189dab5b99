//! A fair distributed mutex (ZooKeeper's lock recipe, the shape of Curator's
//! `InterProcessMutex`), with a fencing token.
//!
//! # How it works
//!
//! Each acquire creates a protected ephemeral sequential node `<dir>/..lock-<seq>`. The
//! contender with the lowest sequence number holds the lock; every other one watches only the
//! node just before its own, so a release wakes one waiter (no herd) and waiters are served in
//! the order they arrived (FIFO).
//!
//! # Guarantees
//!
//! - **Mutual exclusion in ZooKeeper's order**: at any zxid at most one live node is first.
//! - **Fencing token**: [`Mutex::acquire`] returns the czxid of the holder's node. Holders
//!   follow node creation order, so each holder's token is larger than every earlier holder's.
//!   Give it to the protected resource and let it refuse lower tokens: that is what protects
//!   against a holder paused long enough to lose its session without noticing.
//! - **Lost replies**: a create whose reply is lost to CONNECTIONLOSS is found again by its
//!   protection tag instead of being repeated (see [`crate::nodes::create_protected`]), so a
//!   contender never queues behind its own forgotten node.
//!
//! # Suspended and lost
//!
//! - **Suspended** (connection dropped, session possibly alive): the lock is still held as far
//!   as ZooKeeper knows, but the holder cannot know whether it will be. Watch
//!   [`Mutex::monitor`] and pause work that needs the lock until it reports `Connected`.
//! - **Lost** (expired, closed, or no server for a whole session timeout): the node is gone or
//!   about to be, and another process may already hold the lock. [`Mutex::lost`] resolves with
//!   [`LockLost::Session`]; stop at once. An acquire still waiting fails with
//!   [`RecipeError::SessionLost`] and deletes nothing (the server removes the session's nodes;
//!   should the session come back after all, a background task deletes the abandoned node).
//! - If someone else deletes the holder's node (an operator breaking the lock), the next
//!   contender takes over and [`Mutex::lost`] resolves with [`LockLost::NodeDeleted`].
//!
//! # Handles and reentrancy
//!
//! A [`Mutex`] value is one locker. Two handles exclude each other even on clones of one
//! [`Client`] (one session). A handle may be shared between tasks (e.g. in an `Arc`):
//!
//! - [`Mutex::new`] is **reentrant**: acquiring a handle that already holds the lock counts
//!   up and returns the same token; the node goes when `release` has been called as often.
//!   Reentering a lock that was lost fails (`SessionLost`, or `NotHeld` for a deleted node):
//!   release it first.
//! - [`Mutex::non_reentrant`] **waits**: a second acquire on a handle that holds the lock waits
//!   (locally, creating no node) until the handle is released, like a `tokio::sync::Mutex`.
//!   Calling it from the task that holds the lock therefore deadlocks; `try_acquire` returns
//!   `None` after its wait instead.
//!
//! # Example
//!
//! Take the lock, work with its fencing token, stop if the lock is lost, pause while the
//! connection is suspended:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{Connection, FencingToken, Mutex};
//! # async fn write_ledger(_token: FencingToken) {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let lock = Mutex::new(client.clone(), "/app/locks/ledger");
//! let mut monitor = lock.monitor();
//! let token = lock.acquire().await?;
//! // The ledger must refuse writes carrying a token lower than the highest it has seen.
//! let work = write_ledger(token);
//! tokio::pin!(work);
//! loop {
//!     tokio::select! {
//!         _ = &mut work => break,
//!         why = lock.lost() => {
//!             // Lost session or deleted node: someone else may hold the lock already.
//!             return Err(format!("lock lost ({why:?}), work abandoned").into());
//!         }
//!         c = monitor.changed() => {
//!             if c == Connection::Suspended && !monitor.reconnected().await {
//!                 return Err("session lost while suspended".into());
//!             }
//!         }
//!     }
//! }
//! lock.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! A bounded wait instead: `lock.try_acquire(Duration::from_secs(5))` returns `Ok(None)` when the
//! lock did not come in time, and leaves no node behind.

use crate::connection::SessionMonitor;
use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{is_connection_loss, wait_reconnected, FencingToken};
use crate::sequential::{self, delete_in_background, Entered, Kind, LOCK_PREFIX};
use paddock_client::Client;
use std::time::Duration;
use tokio::sync::{watch, Mutex as LocalMutex, Semaphore as LocalGate};
use tokio::time::Instant;

/// Why a held lock is no longer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockLost {
    /// The session is lost (expired, closed, or presumed lost): the node is gone or going,
    /// someone else may hold the lock already.
    Session,
    /// The node was deleted by someone else while the session lived on.
    NodeDeleted,
    /// The handle does not hold the lock (never acquired, or released).
    NotHeld,
}

/// What a handle holds.
#[derive(Debug, Clone)]
struct Holding {
    node: String,
    token: FencingToken,
    /// Acquires not yet matched by a release (always 1 for a non-reentrant handle).
    count: u32,
    /// Set once by the holding's watcher task when the lock is lost.
    lost: watch::Receiver<Option<LockLost>>,
}

/// A fair distributed lock; see the [module documentation](self).
#[derive(Debug)]
pub struct Mutex {
    client: Client,
    dir: String,
    kind: Kind,
    reentrant: bool,
    data: Vec<u8>,
    state: watch::Sender<Option<Holding>>,
    /// Reentrant handles: one acquire at a time talks to ZooKeeper, the others then count up.
    acquiring: LocalMutex<()>,
    /// Non-reentrant handles: the one permit is out while the handle holds the lock.
    gate: LocalGate,
}

impl Mutex {
    /// A reentrant lock whose contenders queue under the node `path`.
    pub fn new(client: Client, path: &str) -> Mutex {
        Mutex::with_kind(client, path, Kind::Exclusive(LOCK_PREFIX), true)
    }

    /// A non-reentrant lock under `path`: a second acquire on a holding handle waits for it to
    /// be released.
    pub fn non_reentrant(client: Client, path: &str) -> Mutex {
        Mutex::with_kind(client, path, Kind::Exclusive(LOCK_PREFIX), false)
    }

    pub(crate) fn with_kind(client: Client, path: &str, kind: Kind, reentrant: bool) -> Mutex {
        Mutex {
            client,
            dir: path.to_string(),
            kind,
            reentrant,
            data: Vec::new(),
            state: watch::Sender::new(None),
            acquiring: LocalMutex::new(()),
            gate: LocalGate::new(1),
        }
    }

    /// Data written into this handle's nodes (an election's participant id).
    pub(crate) fn set_data(&mut self, data: Vec<u8>) {
        self.data = data;
    }

    /// The lock's directory node.
    pub fn path(&self) -> &str {
        &self.dir
    }

    /// Waits until the lock is held; returns its fencing token.
    pub async fn acquire(&self) -> Result<FencingToken> {
        match self.acquire_by(None).await? {
            Some(t) => Ok(t),
            None => unreachable!("no deadline, no timeout"),
        }
    }

    /// Waits at most `wait` for the lock; `None` when it did not come (the node this attempt
    /// created is deleted before returning).
    pub async fn try_acquire(&self, wait: Duration) -> Result<Option<FencingToken>> {
        self.acquire_by(Some(Instant::now() + wait)).await
    }

    async fn acquire_by(&self, deadline: Option<Instant>) -> Result<Option<FencingToken>> {
        if self.reentrant {
            let Some(_one) = until(deadline, self.acquiring.lock()).await else {
                return Ok(None);
            };
            let mut recount = None;
            self.state.send_if_modified(|s| match s {
                Some(h) => {
                    // Reentering a lost lock would hand out a token somebody else may
                    // have superseded already.
                    recount = Some(match *h.lost.borrow() {
                        Some(LockLost::Session) => Err(RecipeError::SessionLost),
                        Some(_) => Err(RecipeError::NotHeld("the lock node was deleted")),
                        None => Ok(h.token),
                    });
                    if recount.as_ref().is_some_and(|r| r.is_ok()) {
                        h.count += 1;
                    }
                    true
                }
                None => false,
            });
            if let Some(r) = recount {
                return r.map(Some);
            }
            self.enter(deadline).await
        } else {
            let Some(permit) = until(deadline, self.gate.acquire()).await else {
                return Ok(None);
            };
            let permit = permit.map_err(|_| RecipeError::NotHeld("lock handle closed"))?;
            let got = self.enter(deadline).await?;
            if got.is_some() {
                // Given back by release().
                permit.forget();
            }
            Ok(got)
        }
    }

    /// Queues a node and waits for the turn; records the holding and starts its watcher.
    async fn enter(&self, deadline: Option<Instant>) -> Result<Option<FencingToken>> {
        let monitor = SessionMonitor::new(&self.client);
        let Some(Entered { path, token }) =
            sequential::enter(&self.client, &self.dir, self.kind, &self.data, deadline).await?
        else {
            return Ok(None);
        };
        tracing::debug!(node = %path, %token, "lock acquired");
        let (lost_tx, lost_rx) = watch::channel(None);
        self.state.send_replace(Some(Holding {
            node: path.clone(),
            token,
            count: 1,
            lost: lost_rx,
        }));
        let released = self.state.subscribe();
        tokio::spawn(watch_holding(
            self.client.clone(),
            path,
            monitor,
            released,
            lost_tx,
        ));
        Ok(Some(token))
    }

    /// Releases one acquire; the node is deleted when none is left. `NotHeld` if the handle
    /// holds nothing. Releasing a lock whose session is lost succeeds: the node is gone with
    /// the session (or is deleted in the background should the session come back).
    pub async fn release(&self) -> Result<()> {
        let mut outcome = Err(RecipeError::NotHeld(
            "release of a lock this handle does not hold",
        ));
        let mut last = None;
        self.state.send_if_modified(|s| match s {
            Some(h) if h.count > 1 => {
                h.count -= 1;
                outcome = Ok(());
                true
            }
            Some(_) => {
                last = s.take();
                outcome = Ok(());
                true
            }
            None => false,
        });
        outcome?;
        let Some(h) = last else {
            return Ok(());
        };
        let lost = *h.lost.borrow();
        let result = if lost == Some(LockLost::Session) {
            delete_in_background(&self.client, h.node.clone());
            Ok(())
        } else {
            match crate::nodes::delete_quietly(&self.client, &h.node).await {
                Err(RecipeError::SessionLost) => Ok(()),
                other => other,
            }
        };
        tracing::debug!(node = %h.node, "lock released");
        if !self.reentrant {
            self.gate.add_permits(1);
        }
        result
    }

    /// The fencing token of the current holding, if the handle holds the lock.
    pub fn token(&self) -> Option<FencingToken> {
        self.state.borrow().as_ref().map(|h| h.token)
    }

    /// The full path of the holder's node, if the handle holds the lock.
    pub fn node(&self) -> Option<String> {
        self.state.borrow().as_ref().map(|h| h.node.clone())
    }

    /// Whether the handle holds the lock and has not seen it lost.
    pub fn is_held(&self) -> bool {
        self.state
            .borrow()
            .as_ref()
            .is_some_and(|h| h.lost.borrow().is_none())
    }

    /// Resolves when the held lock is lost: [`LockLost::Session`] or
    /// [`LockLost::NodeDeleted`]; [`LockLost::NotHeld`] at once if nothing is held, or when the
    /// handle releases it meanwhile. Suspensions are not losses: see [`Mutex::monitor`].
    pub async fn lost(&self) -> LockLost {
        let Some(mut rx) = self.state.borrow().as_ref().map(|h| h.lost.clone()) else {
            return LockLost::NotHeld;
        };
        let seen = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(LockLost::NotHeld),
            // The watcher ended without a loss: released.
            Err(_) => LockLost::NotHeld,
        };
        seen
    }

    /// A monitor of this lock's session, to see `Suspended` (pause work that needs the lock)
    /// and `Connected` again (resume) as well as `Lost`.
    pub fn monitor(&self) -> SessionMonitor {
        SessionMonitor::new(&self.client)
    }
}

impl Drop for Mutex {
    /// A handle dropped while holding the lock gives it up, in the background.
    fn drop(&mut self) {
        if let Some(h) = self.state.send_replace(None) {
            delete_in_background(&self.client, h.node);
        }
    }
}

/// `fut`'s output, or `None` if `deadline` passes first.
async fn until<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// Follows one holding until it is released (or the handle dropped) and reports its loss.
async fn watch_holding(
    client: Client,
    node: String,
    mut monitor: SessionMonitor,
    mut state: watch::Receiver<Option<Holding>>,
    lost: watch::Sender<Option<LockLost>>,
) {
    let released = state.wait_for(|s| s.as_ref().is_none_or(|h| h.node != node));
    let why = tokio::select! {
        _ = released => return,
        _ = monitor.lost() => LockLost::Session,
        why = node_gone(&client, &node) => why,
    };
    tracing::warn!(%node, ?why, "lock lost");
    lost.send_replace(Some(why));
    // Keep the sender (and so the report) until the holding ends.
    let _ = state
        .wait_for(|s| s.as_ref().is_none_or(|h| h.node != node))
        .await;
}

/// Resolves when `node` is deleted, or with `Session` when the session ends first.
async fn node_gone(client: &Client, node: &str) -> LockLost {
    loop {
        match client.exists_w(node).await {
            Ok((None, _)) => return LockLost::NodeDeleted,
            Ok((Some(_), w)) => match w.changed().await {
                Some(ev) if ev.type_name() == "NodeDeleted" => return LockLost::NodeDeleted,
                // Data changed: the node is still there, watch again.
                Some(_) => {}
                None => return LockLost::Session,
            },
            Err(e) if is_connection_loss(&e) => {
                if wait_reconnected(client).await.is_err() {
                    return LockLost::Session;
                }
            }
            Err(e) => match from_client(e) {
                RecipeError::SessionLost => return LockLost::Session,
                other => {
                    // Nothing left to watch the node with; the session monitor still runs.
                    tracing::warn!(%node, error = %other, "cannot watch lock node");
                    std::future::pending::<()>().await;
                }
            },
        }
    }
}

//! A counting semaphore with leases (the shape of Curator's `InterProcessSemaphoreV2`).
//!
//! Under the semaphore's node `<dir>`:
//!
//! - `<dir>/leases` holds one protected ephemeral sequential node per lease handed out;
//! - `<dir>/locks` is a [`Mutex`] that acquirers queue on, so waiting is fair (first come,
//!   first served) and only the one acquirer at the head watches the leases: a returned lease
//!   wakes one waiter, not all of them.
//!
//! The acquirer at the head creates its lease node, then waits (with a child watch, no
//! polling) until at most `max_leases` lease nodes exist, its own included. With `k > 1` it
//! takes the leases one after the other while keeping its place at the head.
//!
//! # Guarantees
//!
//! - At most `max_leases` leases are held at any zxid, provided every participant uses the
//!   same `max_leases` (it is not stored in ZooKeeper).
//! - Each [`Lease`] carries the czxid of its node as a [`FencingToken`].
//! - A timed-out acquire returns `None` and deletes every lease node it had created.
//!
//! # Suspended and lost
//!
//! Leases are ephemeral nodes: **suspended**, a lease is still counted by everybody but its
//! holder should pause; **lost**, the leases are gone or going and others may take them, so
//! stop using them. Follow both with [`Semaphore::monitor`]. An acquire in progress fails with
//! [`RecipeError::SessionLost`] when the session is lost.
//!
//! # Example
//!
//! At most three processes query the database at once:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{FencingToken, Semaphore};
//! # async fn query_database(_token: FencingToken) {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! // Every participant must use the same number of leases: it is not stored in ZooKeeper.
//! let db_slots = Semaphore::new(client.clone(), "/app/semaphores/db", 3);
//! let mut monitor = db_slots.monitor();
//! let Some(mut leases) = db_slots.try_acquire(1, Duration::from_secs(30)).await? else {
//!     return Err("no database slot within 30 s".into());
//! };
//! let lease = leases.remove(0);
//! tokio::select! {
//!     _ = query_database(lease.token()) => {}
//!     // The lease node is gone with the session: another process may use the slot now.
//!     _ = monitor.lost() => return Err("session lost: lease gone".into()),
//! }
//! lease.release().await?;
//! # Ok(())
//! # }
//! ```

use crate::connection::SessionMonitor;
use crate::error::{from_client, RecipeError, Result};
use crate::mutex::Mutex;
use crate::nodes::{create_protected, join, retry_raw, strip_protection, FencingToken};
use crate::sequential::NodeGuard;
use paddock_client::{Client, CreateMode, Error as ClientError, ErrorCode};
use std::time::Duration;
use tokio::time::Instant;

const LEASE_PREFIX: &str = "lease-";

/// A counting semaphore; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    leases_dir: String,
    locks_dir: String,
    max_leases: u32,
}

/// One lease of a [`Semaphore`]. Give it back with [`Lease::release`]; dropping it returns it
/// in the background.
#[derive(Debug)]
pub struct Lease {
    guard: NodeGuard,
    token: FencingToken,
}

impl Lease {
    /// The full path of the lease's node.
    pub fn node(&self) -> &str {
        self.guard.path()
    }

    /// The czxid of the lease's node.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// Returns the lease (deletes its node; a node already gone with its session is fine).
    pub async fn release(self) -> Result<()> {
        match self.guard.delete().await {
            Err(RecipeError::SessionLost) => Ok(()),
            other => other,
        }
    }
}

impl Semaphore {
    /// A semaphore of `max_leases` leases under `path`.
    pub fn new(client: Client, path: &str, max_leases: u32) -> Semaphore {
        Semaphore {
            leases_dir: join(path, "leases"),
            locks_dir: join(path, "locks"),
            client,
            max_leases,
        }
    }

    /// The number of leases.
    pub fn max_leases(&self) -> u32 {
        self.max_leases
    }

    /// Waits until `n` leases are held.
    pub async fn acquire(&self, n: u32) -> Result<Vec<Lease>> {
        match self.acquire_by(n, None).await? {
            Some(v) => Ok(v),
            None => unreachable!("no deadline, no timeout"),
        }
    }

    /// Waits at most `wait` for `n` leases; `None` if they did not all come (any taken
    /// meanwhile are returned first).
    pub async fn try_acquire(&self, n: u32, wait: Duration) -> Result<Option<Vec<Lease>>> {
        self.acquire_by(n, Some(Instant::now() + wait)).await
    }

    /// The number of leases currently held, by anybody.
    pub async fn held(&self) -> Result<usize> {
        match retry_raw(&self.client, || self.client.list_children(&self.leases_dir)).await? {
            Ok(kids) => Ok(count_leases(&kids)),
            Err(ClientError::Code(ErrorCode::NoNode)) => Ok(0),
            Err(e) => Err(from_client(e)),
        }
    }

    /// A monitor of the session the leases live in.
    pub fn monitor(&self) -> SessionMonitor {
        SessionMonitor::new(&self.client)
    }

    async fn acquire_by(&self, n: u32, deadline: Option<Instant>) -> Result<Option<Vec<Lease>>> {
        if n == 0 || n > self.max_leases {
            return Err(RecipeError::Invalid(format!(
                "cannot take {n} of {} leases",
                self.max_leases
            )));
        }
        // A fresh locker per call: concurrent acquires on one handle queue like any others.
        let head = Mutex::non_reentrant(self.client.clone(), &self.locks_dir);
        let at_head = match deadline {
            Some(d) => {
                head.try_acquire(d.saturating_duration_since(Instant::now()))
                    .await?
            }
            None => Some(head.acquire().await?),
        };
        if at_head.is_none() {
            return Ok(None);
        }
        let mut leases = Vec::with_capacity(n as usize);
        let mut outcome = Ok(());
        while leases.len() < n as usize {
            match self.one_lease(deadline).await {
                Ok(Some(l)) => leases.push(l),
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let released = head.release().await;
        let complete = leases.len() == n as usize;
        if outcome.is_err() || !complete {
            for l in leases.drain(..) {
                l.release().await?;
            }
        }
        outcome?;
        released?;
        Ok(complete.then_some(leases))
    }

    /// Creates a lease node and waits until it fits under the limit; `None` (node deleted)
    /// when `deadline` passes first.
    async fn one_lease(&self, deadline: Option<Instant>) -> Result<Option<Lease>> {
        let client = &self.client;
        let mut monitor = SessionMonitor::new(client);
        let (path, stat) = create_protected(
            client,
            &self.leases_dir,
            LEASE_PREFIX,
            b"",
            CreateMode::EphemeralSequential,
        )
        .await?;
        let guard = NodeGuard::new(client, path);
        let name = guard
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let fits = async {
            loop {
                let (kids, _, watch) =
                    match retry_raw(client, || client.list_children_w(&self.leases_dir)).await? {
                        Ok(r) => r,
                        Err(e) => return Err(from_client(e)),
                    };
                if !kids.contains(&name) {
                    if monitor.is_lost() {
                        return Err(RecipeError::SessionLost);
                    }
                    return Err(RecipeError::NotHeld("the lease node was deleted"));
                }
                if count_leases(&kids) <= self.max_leases as usize {
                    return Ok(());
                }
                tokio::select! {
                    _ = watch.changed() => {}
                    _ = monitor.lost() => return Err(RecipeError::SessionLost),
                }
            }
        };
        let fitted = match deadline {
            Some(d) => match tokio::time::timeout_at(d, fits).await {
                Ok(r) => r,
                Err(_) => {
                    guard.delete().await?;
                    return Ok(None);
                }
            },
            None => fits.await,
        };
        // On an error the guard deletes the node in the background.
        fitted?;
        Ok(Some(Lease {
            guard,
            token: FencingToken(stat.czxid),
        }))
    }
}

fn count_leases(kids: &[String]) -> usize {
    kids.iter()
        .filter(|k| strip_protection(k).starts_with(LEASE_PREFIX))
        .count()
}

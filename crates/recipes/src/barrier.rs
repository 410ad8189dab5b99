//! A barrier: a node whose existence holds everyone waiting on it (Curator's
//! `DistributedBarrier`).
//!
//! One process [`Barrier::set`]s the barrier (creates the node), any number [`Barrier::wait`]
//! until it is [`Barrier::remove`]d. The node is persistent: it stays set whatever happens to
//! the session that set it.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: `set`, `remove` and the reads of `wait` are retried once reconnected. The
//!   watch of a waiter is restored by the client on reconnect, and the server fires it at once
//!   if the node went away meanwhile, so a removal during the disconnection is not missed.
//! - **Lost**: the waiter's watch is gone with its session; `wait` returns
//!   [`RecipeError::SessionLost`]. The barrier itself is
//!   unaffected; wait again on a new session.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{Barrier, RecipeError};
//! # async fn load_data() {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let gate = Barrier::new(&client, "/app/barriers/load");
//! gate.set().await?;
//!
//! // A worker (usually another process) waits for the barrier to go.
//! let worker = Barrier::new(&client, "/app/barriers/load");
//! let waiting = tokio::spawn(async move { worker.wait_within(Duration::from_secs(60)).await });
//!
//! load_data().await;
//! gate.remove().await?; // releases every waiter at once
//! match waiting.await? {
//!     Ok(()) => println!("released"),
//!     Err(RecipeError::Timeout) => println!("still set after a minute"),
//!     // The barrier is unaffected; wait again on a new session.
//!     Err(RecipeError::SessionLost) => println!("session lost while waiting"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```

use crate::error::Result;
use crate::nodes::{create_if_missing, delete_quietly, ensure_path, parent, retry};
use crate::watching::{await_watch, deadline};
use crate::RecipeError;
use paddock_client::{Client, CreateMode};
use std::time::Duration;

/// A barrier at one path.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// The barrier at `path` (nothing is created yet).
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    /// Sets the barrier (creates its node and missing parents). True if this call set it,
    /// false if it was already set.
    pub async fn set(&self) -> Result<bool> {
        if let Some(p) = parent(&self.path) {
            ensure_path(&self.client, p).await?;
        }
        create_if_missing(&self.client, &self.path, &[], CreateMode::Persistent).await
    }

    /// Removes the barrier, releasing every waiter. Removing an unset barrier is fine.
    pub async fn remove(&self) -> Result<()> {
        delete_quietly(&self.client, &self.path).await
    }

    /// Whether the barrier is set now.
    pub async fn is_set(&self) -> Result<bool> {
        Ok(retry(&self.client, || self.client.exists(&self.path))
            .await?
            .is_some())
    }

    /// Waits until the barrier is not set (returns at once if it is not).
    pub async fn wait(&self) -> Result<()> {
        self.wait_inner(None).await
    }

    /// Like [`Barrier::wait`], giving up with [`RecipeError::Timeout`] after `within`.
    pub async fn wait_within(&self, within: Duration) -> Result<()> {
        self.wait_inner(deadline(Some(within))).await
    }

    async fn wait_inner(&self, until: Option<tokio::time::Instant>) -> Result<()> {
        loop {
            let (stat, watch) = retry(&self.client, || self.client.exists_w(&self.path)).await?;
            if stat.is_none() {
                return Ok(());
            }
            // Any event (deleted, or a data change) means: look again.
            if await_watch(watch, until).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
    }
}

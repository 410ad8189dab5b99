//! A fair distributed read/write lock (ZooKeeper's shared-lock recipe, the shape of Curator's
//! `InterProcessReadWriteLock`).
//!
//! Readers create `..read-<seq>` nodes, writers `..write-<seq>` nodes in one directory, one
//! queue ordered by sequence number:
//!
//! - a **reader** holds the lock when no writer is ahead of it, and otherwise watches only the
//!   nearest writer ahead (readers share; a reader behind a waiting writer waits too, so a
//!   stream of readers cannot starve writers);
//! - a **writer** holds the lock when it is first, and otherwise watches only the node just
//!   ahead of it, reader or writer.
//!
//! Every contender is a [`Mutex`] handle with that rule, so everything the mutex documents
//! holds here too: fencing tokens (the czxid of the contender's node; a writer's token is
//! larger than every earlier holder's, readers' tokens are larger than the last writer's),
//! `try_acquire` cleaning up, the `lost()` report, and the suspended/lost policy.
//!
//! A read handle and a write handle are independent lockers even in one task: taking the read
//! lock while holding the write lock waits for yourself (no upgrade or downgrade).
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::RwLock;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let catalog = RwLock::new(client.clone(), "/app/locks/catalog");
//!
//! // Readers share the lock with each other.
//! let reader = catalog.read_lock();
//! let token = reader.acquire().await?;
//! println!("reading under token {token}");
//! reader.release().await?;
//!
//! // A writer waits for every reader and writer queued before it.
//! let writer = catalog.write_lock();
//! match writer.try_acquire(Duration::from_secs(5)).await? {
//!     Some(token) => {
//!         // As with a Mutex: tokio::select! on `writer.lost()` to stop when the lock is lost,
//!         // and follow `writer.monitor()` to pause while suspended.
//!         println!("writing under token {token}");
//!         writer.release().await?;
//!     }
//!     None => println!("catalog busy, try later"),
//! }
//! # Ok(())
//! # }
//! ```

use crate::mutex::Mutex;
use crate::sequential::Kind;
use paddock_client::Client;

/// A read/write lock under one directory node; hands out reader and writer handles.
#[derive(Debug, Clone)]
pub struct RwLock {
    client: Client,
    dir: String,
}

impl RwLock {
    /// The lock whose contenders queue under `path`.
    pub fn new(client: Client, path: &str) -> RwLock {
        RwLock {
            client,
            dir: path.to_string(),
        }
    }

    /// A new reader: a reentrant handle that shares the lock with other readers.
    pub fn read_lock(&self) -> Mutex {
        Mutex::with_kind(self.client.clone(), &self.dir, Kind::Read, true)
    }

    /// A new writer: a reentrant handle that excludes readers and other writers.
    pub fn write_lock(&self) -> Mutex {
        Mutex::with_kind(self.client.clone(), &self.dir, Kind::Write, true)
    }
}

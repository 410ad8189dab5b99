//! A configuration watch: one node's data kept current in memory (Curator's `NodeCache`).
//!
//! [`ConfigWatch::start`] reads the node (or notes that it is missing) before returning, then
//! a task follows it with one-shot watches: a data watch while the node exists, an exists watch
//! while it does not, so deletion and re-creation are followed too. The value is published on
//! a tokio watch channel of `Option<(data, Stat)>` (`None`: no node); every change is one
//! send, though changes that follow each other quickly may be seen only as the last one.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: the last value stays visible (it may be stale); the watch is restored by the
//!   client on reconnect, and the node is read again after every reconnect anyway, so a change
//!   made during the disconnection shows up.
//! - **Lost**: the task stops and [`ConfigWatch::is_running`] turns false; the last value
//!   stays. Start a new watch on a new session.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::ConfigWatch;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let config = ConfigWatch::start(&client, "/app/config").await?;
//! let mut values = config.subscribe();
//! loop {
//!     match &*values.borrow_and_update() {
//!         Some((data, stat)) => {
//!             println!("config v{}: {}", stat.version, String::from_utf8_lossy(data))
//!         }
//!         None => println!("no config node: using defaults"),
//!     }
//!     if values.changed().await.is_err() {
//!         // The session is lost: the last value stays, but nothing follows the node any more.
//!         break;
//!     }
//! }
//! assert!(!config.is_running());
//! # Ok(())
//! # }
//! ```

use crate::error::{from_client, Result};
use crate::nodes::retry_raw;
use crate::watching::{Reconnect, Reconnects};
use crate::RecipeError;
use paddock_client::{Client, Error as ClientError, ErrorCode, OneshotWatch, Stat};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The node's data and Stat, `None` while it does not exist.
pub type NodeValue = Option<(Vec<u8>, Stat)>;

/// A node's data, kept current (see the module docs).
#[derive(Debug)]
pub struct ConfigWatch {
    rx: watch::Receiver<NodeValue>,
    task: JoinHandle<()>,
}

impl ConfigWatch {
    /// Reads `path` and follows it from now on.
    pub async fn start(client: &Client, path: &str) -> Result<ConfigWatch> {
        // Follow reconnects from before the first read, so none between the two is missed.
        let reconnects = Reconnects::new(client);
        let (value, watch) = read(client, path).await?;
        let (tx, rx) = watch::channel(value);
        let task = tokio::spawn(follow(
            client.clone(),
            path.to_string(),
            tx,
            watch,
            reconnects,
        ));
        Ok(ConfigWatch { rx, task })
    }

    /// The value now.
    pub fn current(&self) -> NodeValue {
        self.rx.borrow().clone()
    }

    /// A receiver of the value as it changes.
    pub fn subscribe(&self) -> watch::Receiver<NodeValue> {
        self.rx.clone()
    }

    /// Whether the node is still followed (false once the session is lost).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the node with a watch that fires on its next change, creation or deletion.
async fn read(c: &Client, path: &str) -> Result<(NodeValue, OneshotWatch)> {
    loop {
        match retry_raw(c, || c.get_data_w(path)).await? {
            Ok((data, stat, w)) => return Ok((Some((data, stat)), w)),
            Err(ClientError::Code(ErrorCode::NoNode)) => {}
            Err(e) => return Err(from_client(e)),
        }
        match retry_raw(c, || c.exists_w(path)).await? {
            Ok((None, w)) => return Ok((None, w)),
            // Created between the two reads: read its data.
            Ok((Some(_), _)) => continue,
            Err(e) => return Err(from_client(e)),
        }
    }
}

async fn follow(
    c: Client,
    path: String,
    tx: watch::Sender<NodeValue>,
    mut watch: OneshotWatch,
    mut reconnects: Reconnects,
) {
    loop {
        tokio::select! {
            ev = watch.changed() => {
                if ev.is_none() {
                    tracing::debug!(path, "session ended; config watch stops");
                    return;
                }
            }
            r = reconnects.next() => {
                if r == Reconnect::Lost {
                    return;
                }
                // The watch future was consumed by select: register a fresh one below. The old
                // registration fires once more at most, into a dropped receiver.
                tracing::debug!(path, "reconnected; reading the node again");
            }
        }
        let Some((value, w)) = read_until_ok(&c, &path).await else {
            return;
        };
        watch = w;
        tx.send_if_modified(|old| {
            let changed = *old != value;
            *old = value;
            changed
        });
    }
}

/// [`read`], retried after errors other than the end of the session (`None` then).
async fn read_until_ok(c: &Client, path: &str) -> Option<(NodeValue, OneshotWatch)> {
    loop {
        match read(c, path).await {
            Ok(r) => return Some(r),
            Err(RecipeError::SessionLost) => return None,
            Err(e) => {
                tracing::warn!(path, error = %e, "config watch read failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

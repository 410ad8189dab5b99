//! Distributed queues: a FIFO [`DistributedQueue`] and a [`PriorityQueue`] (ZooKeeper's queue
//! recipe, Curator's `SimpleDistributedQueue`).
//!
//! Every item is a persistent sequential node under the queue's directory, its data the
//! payload. Producers create items; consumers list the children, order them, and **claim** the
//! first one by deleting it: of several consumers racing for an item exactly one delete succeeds
//! (the others get NONODE and try the next), so no item is delivered twice.
//!
//! - FIFO: items are ordered by the sequence number the server appended, i.e. in the order
//!   their creates were applied.
//! - Priority: the priority is written in the node name before the sequence number, so the
//!   order is (priority, sequence): a lower number comes out first, FIFO within a priority.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: reads are retried after the reconnect, and a `take` waiting for items
//!   keeps its child watch (restored by the client, fired if items came meanwhile). An `offer`
//!   whose reply is lost does not add a second item: the item name carries a protection tag
//!   ([`create_protected`]) and is looked up after the reconnect. (If a consumer took the item
//!   before the producer could look, the producer cannot tell and offers it again: delivery is
//!   at-least-once in that one case.) A claiming delete whose reply is lost is resolved the
//!   other way: if the item is gone after the reconnect it may have been this consumer or a
//!   rival, and it is counted as the rival's, so that case is at-most-once.
//! - **Lost**: the queue (persistent nodes) is unaffected; calls on the dead session fail with
//!   [`RecipeError::SessionLost`]. A consumer that had deleted an item but not yet returned it
//!   loses that item with the session.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{DistributedQueue, PriorityQueue};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let jobs = DistributedQueue::new(&client, "/app/jobs");
//! jobs.offer(b"resize img-1").await?;
//! jobs.offer(b"resize img-2").await?;
//! // Waits while empty; each item goes to exactly one of the competing consumers.
//! let job = jobs.take_within(Duration::from_secs(30)).await?;
//! assert_eq!(job, b"resize img-1");
//!
//! let alerts = PriorityQueue::new(&client, "/app/alerts");
//! alerts.offer(5, b"send digest").await?;
//! alerts.offer(0, b"page on-call").await?;
//! assert_eq!(alerts.poll().await?.as_deref(), Some(&b"page on-call"[..]));
//! # Ok(())
//! # }
//! ```

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{
    create_protected, ensure_path, join, retry, retry_raw, sequence_of, strip_protection,
};
use crate::watching::{await_watch, deadline};
use paddock_client::{Client, CreateMode, Error as ClientError, ErrorCode};
use std::time::Duration;
use tokio::time::Instant;

const FIFO_PREFIX: &str = "q-";
const PRIORITY_PREFIX: &str = "pq-";

/// The machinery both queues share; they differ only in how names sort.
#[derive(Debug, Clone)]
struct Core {
    client: Client,
    dir: String,
    /// The sort key of a child name, `None` for names that are not items of this queue.
    key: fn(&str) -> Option<(i64, u64)>,
}

impl Core {
    async fn offer(&self, prefix: &str, data: &[u8]) -> Result<String> {
        let (path, _) = create_protected(
            &self.client,
            &self.dir,
            prefix,
            data,
            CreateMode::PersistentSequential,
        )
        .await?;
        Ok(path)
    }

    /// The items in queue order, with a watch on the directory if asked for.
    async fn items(
        &self,
        watch: bool,
    ) -> Result<(Vec<String>, Option<paddock_client::OneshotWatch>)> {
        let c = &self.client;
        let (mut kids, w) = if watch {
            match retry_raw(c, || c.list_children_w(&self.dir)).await? {
                Ok((k, _, w)) => (k, Some(w)),
                Err(ClientError::Code(ErrorCode::NoNode)) => {
                    // Nothing was ever offered: create the directory so there is a node to watch.
                    ensure_path(c, &self.dir).await?;
                    return Box::pin(self.items(watch)).await;
                }
                Err(e) => return Err(from_client(e)),
            }
        } else {
            match retry_raw(c, || c.list_children(&self.dir)).await? {
                Ok(k) => (k, None),
                Err(ClientError::Code(ErrorCode::NoNode)) => (Vec::new(), None),
                Err(e) => return Err(from_client(e)),
            }
        };
        let key = self.key;
        kids.retain(|k| key(k).is_some());
        kids.sort_by_key(|k| key(k));
        Ok((kids, w))
    }

    /// Claims the first item still there among `items`: reads it, deletes it at the version
    /// read. `None` when rivals took them all.
    async fn claim_first(&self, items: &[String]) -> Result<Option<Vec<u8>>> {
        let c = &self.client;
        for name in items {
            let path = join(&self.dir, name);
            let (data, stat) = match retry_raw(c, || c.get_data(&path)).await? {
                Ok(r) => r,
                Err(ClientError::Code(ErrorCode::NoNode)) => continue,
                Err(e) => return Err(from_client(e)),
            };
            match c.delete(&path, stat.version).await {
                Ok(()) => return Ok(Some(data)),
                Err(ClientError::Code(ErrorCode::NoNode)) => continue,
                Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => {
                    // Did our delete go through? If the item is still there it did not: retry
                    // it; if it is gone, a rival may have it, so it is not ours (at-most-once).
                    let still = retry(c, || c.exists(&path)).await?;
                    if still.is_some() {
                        return Box::pin(self.claim_first(std::slice::from_ref(name))).await;
                    }
                }
                Err(e) => return Err(from_client(e)),
            }
        }
        Ok(None)
    }

    async fn poll(&self) -> Result<Option<Vec<u8>>> {
        let (items, _) = self.items(false).await?;
        self.claim_first(&items).await
    }

    async fn take(&self, until: Option<Instant>) -> Result<Vec<u8>> {
        loop {
            let (items, watch) = self.items(true).await?;
            if let Some(data) = self.claim_first(&items).await? {
                return Ok(data);
            }
            let watch = watch.expect("asked for a watch");
            if await_watch(watch, until).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
    }

    async fn peek(&self) -> Result<Option<Vec<u8>>> {
        let c = &self.client;
        for name in self.items(false).await?.0 {
            let path = join(&self.dir, &name);
            match retry_raw(c, || c.get_data(&path)).await? {
                Ok((data, _)) => return Ok(Some(data)),
                Err(ClientError::Code(ErrorCode::NoNode)) => continue,
                Err(e) => return Err(from_client(e)),
            }
        }
        Ok(None)
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.items(false).await?.0.len())
    }
}

fn fifo_key(name: &str) -> Option<(i64, u64)> {
    let bare = strip_protection(name);
    if !bare.starts_with(FIFO_PREFIX) {
        return None;
    }
    sequence_of(bare).map(|s| (0, s))
}

/// Priorities are stored shifted to non-negative, zero-padded to ten digits, so that names of
/// the same length sort by priority even for tools that sort them as strings.
fn encode_priority(p: i32) -> String {
    format!("{:010}", i64::from(p) - i64::from(i32::MIN))
}

fn priority_key(name: &str) -> Option<(i64, u64)> {
    let rest = strip_protection(name).strip_prefix(PRIORITY_PREFIX)?;
    let (prio, seq) = rest.split_once('-')?;
    if prio.len() != 10 {
        return None;
    }
    let shifted: i64 = prio.parse().ok()?;
    Some((shifted + i64::from(i32::MIN), sequence_of(seq)?))
}

/// A FIFO queue in a directory node.
#[derive(Debug, Clone)]
pub struct DistributedQueue {
    core: Core,
}

impl DistributedQueue {
    /// The queue whose items live under `dir` (created on the first offer).
    pub fn new(client: &Client, dir: &str) -> DistributedQueue {
        DistributedQueue {
            core: Core {
                client: client.clone(),
                dir: dir.to_string(),
                key: fifo_key,
            },
        }
    }

    /// Adds an item at the tail; returns its node path.
    pub async fn offer(&self, data: &[u8]) -> Result<String> {
        self.core.offer(FIFO_PREFIX, data).await
    }

    /// Removes and returns the head, waiting for an item while the queue is empty.
    pub async fn take(&self) -> Result<Vec<u8>> {
        self.core.take(None).await
    }

    /// Like [`DistributedQueue::take`], giving up with [`RecipeError::Timeout`] after `within`.
    pub async fn take_within(&self, within: Duration) -> Result<Vec<u8>> {
        self.core.take(deadline(Some(within))).await
    }

    /// Removes and returns the head, `None` if the queue is empty (does not wait).
    pub async fn poll(&self) -> Result<Option<Vec<u8>>> {
        self.core.poll().await
    }

    /// The head without removing it, `None` if the queue is empty.
    pub async fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.core.peek().await
    }

    /// The number of items now.
    pub async fn len(&self) -> Result<usize> {
        self.core.len().await
    }

    /// Whether the queue is empty now.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

/// A priority queue in a directory node: a lower priority number comes out first, FIFO
/// among items of the same priority.
#[derive(Debug, Clone)]
pub struct PriorityQueue {
    core: Core,
}

impl PriorityQueue {
    /// The queue whose items live under `dir` (created on the first offer).
    pub fn new(client: &Client, dir: &str) -> PriorityQueue {
        PriorityQueue {
            core: Core {
                client: client.clone(),
                dir: dir.to_string(),
                key: priority_key,
            },
        }
    }

    /// Adds an item with `priority` (lower = earlier); returns its node path.
    pub async fn offer(&self, priority: i32, data: &[u8]) -> Result<String> {
        let prefix = format!("{PRIORITY_PREFIX}{}-", encode_priority(priority));
        self.core.offer(&prefix, data).await
    }

    /// Removes and returns the first item, waiting while the queue is empty.
    pub async fn take(&self) -> Result<Vec<u8>> {
        self.core.take(None).await
    }

    /// Like [`PriorityQueue::take`], giving up with [`RecipeError::Timeout`] after `within`.
    pub async fn take_within(&self, within: Duration) -> Result<Vec<u8>> {
        self.core.take(deadline(Some(within))).await
    }

    /// Removes and returns the first item, `None` if the queue is empty.
    pub async fn poll(&self) -> Result<Option<Vec<u8>>> {
        self.core.poll().await
    }

    /// The first item without removing it.
    pub async fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.core.peek().await
    }

    /// The number of items now.
    pub async fn len(&self) -> Result<usize> {
        self.core.len().await
    }

    /// Whether the queue is empty now.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_items() {
        assert_eq!(fifo_key("q-0000000007"), Some((0, 7)));
        assert_eq!(
            fifo_key("_p_0000000000000001-0000000000000002-q-0000000003"),
            Some((0, 3))
        );
        assert_eq!(fifo_key("pq-0000000001-0000000003"), None);
        for p in [i32::MIN, -5, 0, 3, i32::MAX] {
            let name = format!("pq-{}-0000000009", encode_priority(p));
            assert_eq!(priority_key(&name), Some((i64::from(p), 9)));
        }
        assert!(encode_priority(-1) < encode_priority(0));
        assert_eq!(priority_key("q-0000000001"), None);
    }
}

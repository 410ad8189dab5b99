//! A tree cache: a subtree mirrored in memory (Curator's `CuratorCache`), on one persistent
//! recursive watch (`addWatch(root, PERSISTENT_RECURSIVE)`, ZooKeeper 3.6+).
//!
//! [`TreeCache::start`] adds the watch *first*, then reads the whole subtree, so no change
//! between the two is lost; it returns once that initial load is in the cache, together with a
//! stream of [`TreeEvent`]s that starts with one `Added` per node and then `Initialized`. After
//! that each NodeCreated / NodeDataChanged event re-reads the node's data (`Added` or
//! `Updated`), each NodeDeleted drops the node and what was below it (`Removed`).
//!
//! What it guarantees: the cache converges to the server's subtree; every node the server
//! changes is re-read after the change. Two quick changes may be seen as one (the re-read sees
//! the later data), and a node created and deleted quickly may never be seen.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: the cache keeps its last contents (possibly stale). The client restores the
//!   recursive watch on reconnect, but events of the disconnection are not replayed for
//!   persistent watches, so after every reconnect the cache re-reads the whole subtree and
//!   reports the differences as events.
//! - **Lost**: the watch is gone with the session; the cache stops following
//!   ([`TreeCache::is_running`] turns false) and keeps its last contents.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{TreeCache, TreeEvent};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let (cache, mut events) = TreeCache::start(&client, "/app/routes").await?;
//! println!("routes: {:?}", cache.children("/app/routes"));
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TreeEvent::Added { path, node } | TreeEvent::Updated { path, node } => {
//!             println!("{path} = {}", String::from_utf8_lossy(&node.data))
//!         }
//!         TreeEvent::Removed { path } => println!("{path} removed"),
//!         TreeEvent::Initialized => println!("{} nodes loaded", cache.snapshot().len()),
//!     }
//! }
//! // The stream ends when the session is lost; the cache keeps its last contents.
//! assert!(!cache.is_running());
//! # Ok(())
//! # }
//! ```

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{join, retry, retry_raw};
use crate::watching::{event, Reconnect, Reconnects};
use paddock_client::{
    Client, Error as ClientError, ErrorCode, PersistentWatch, Stat, WatchedEvent,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A cached node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// Its data.
    pub data: Vec<u8>,
    /// Its Stat when read.
    pub stat: Stat,
}

/// A change of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// A node appeared in the cache.
    Added {
        /// Its path.
        path: String,
        /// Its data and Stat.
        node: NodeData,
    },
    /// A cached node's data or Stat changed.
    Updated {
        /// Its path.
        path: String,
        /// The new data and Stat.
        node: NodeData,
    },
    /// A node left the cache.
    Removed {
        /// Its path.
        path: String,
    },
    /// The initial load is complete.
    Initialized,
}

/// A receiver of the cache's events (unbounded: drop it if you do not read it).
pub type TreeEvents = mpsc::UnboundedReceiver<TreeEvent>;

type Nodes = BTreeMap<String, NodeData>;

/// A subtree kept current (see the module docs).
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    nodes: Arc<Mutex<Nodes>>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Starts mirroring the subtree at `root` (which need not exist yet); returns once the
    /// initial load is done.
    pub async fn start(client: &Client, root: &str) -> Result<(TreeCache, TreeEvents)> {
        let reconnects = Reconnects::new(client);
        let watch = retry(client, || client.add_watch(root, true)).await?;
        let nodes = Arc::new(Mutex::new(Nodes::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let mirror = Mirror {
            client: client.clone(),
            root: root.to_string(),
            nodes: nodes.clone(),
            tx,
        };
        let task = tokio::spawn(mirror.run(watch, reconnects, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(RecipeError::SessionLost),
        }
        Ok((
            TreeCache {
                root: root.to_string(),
                nodes,
                task,
            },
            rx,
        ))
    }

    /// The root of the mirrored subtree.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A node's cached data and Stat.
    pub fn get(&self, path: &str) -> Option<NodeData> {
        self.nodes.lock().expect("cache lock").get(path).cloned()
    }

    /// The names of a cached node's children, sorted; `None` if the node is not cached.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let nodes = self.nodes.lock().expect("cache lock");
        nodes.get(path)?;
        let prefix = join(path, "");
        Some(
            nodes
                .range(prefix.clone()..)
                .take_while(|(p, _)| p.starts_with(&prefix))
                .filter_map(|(p, _)| {
                    let name = &p[prefix.len()..];
                    (!name.contains('/')).then(|| name.to_string())
                })
                .collect(),
        )
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> BTreeMap<String, NodeData> {
        self.nodes.lock().expect("cache lock").clone()
    }

    /// Whether the cache still follows the server (false once the session is lost).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The task's side of the cache.
struct Mirror {
    client: Client,
    root: String,
    nodes: Arc<Mutex<Nodes>>,
    tx: mpsc::UnboundedSender<TreeEvent>,
}

impl Mirror {
    async fn run(
        self,
        mut watch: PersistentWatch,
        mut reconnects: Reconnects,
        ready: oneshot::Sender<Result<()>>,
    ) {
        match self.resync().await {
            Ok(()) => {
                let _ = self.tx.send(TreeEvent::Initialized);
                let _ = ready.send(Ok(()));
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
        loop {
            let outcome = tokio::select! {
                ev = watch.next() => match ev {
                    Some(ev) => self.apply(ev).await,
                    None => Err(RecipeError::SessionLost),
                },
                r = reconnects.next() => match r {
                    Reconnect::Reconnected => {
                        tracing::debug!(root = self.root, "reconnected; resyncing the tree cache");
                        self.resync().await
                    }
                    Reconnect::Lost => Err(RecipeError::SessionLost),
                },
            };
            match outcome {
                Ok(()) => {}
                Err(RecipeError::SessionLost) => {
                    tracing::debug!(root = self.root, "session ended; tree cache stops");
                    return;
                }
                // Not fatal (an ACL on one node, ...): the next resync repairs the cache.
                Err(e) => tracing::warn!(root = self.root, error = %e, "tree cache update failed"),
            }
        }
    }

    /// Applies one event of the recursive watch.
    async fn apply(&self, ev: WatchedEvent) -> Result<()> {
        match ev.event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => match self.read(&ev.path).await? {
                Some(node) => self.upsert(&ev.path, node),
                None => self.remove_subtree(&ev.path),
            },
            event::NODE_DELETED => self.remove_subtree(&ev.path),
            _ => {}
        }
        Ok(())
    }

    /// A node's data and Stat, `None` if it is gone.
    async fn read(&self, path: &str) -> Result<Option<NodeData>> {
        let c = &self.client;
        match retry_raw(c, || c.get_data(path)).await? {
            Ok((data, stat)) => Ok(Some(NodeData { data, stat })),
            Err(ClientError::Code(ErrorCode::NoNode)) => Ok(None),
            Err(e) => Err(from_client(e)),
        }
    }

    fn upsert(&self, path: &str, node: NodeData) {
        let mut nodes = self.nodes.lock().expect("cache lock");
        let event = match nodes.get(path) {
            None => TreeEvent::Added {
                path: path.to_string(),
                node: node.clone(),
            },
            Some(old) if *old == node => return,
            // A late reply must not roll the node back.
            Some(old) if old.stat.mzxid > node.stat.mzxid => return,
            Some(_) => TreeEvent::Updated {
                path: path.to_string(),
                node: node.clone(),
            },
        };
        nodes.insert(path.to_string(), node);
        let _ = self.tx.send(event);
    }

    fn remove_subtree(&self, path: &str) {
        let mut nodes = self.nodes.lock().expect("cache lock");
        let prefix = join(path, "");
        let mut gone: Vec<String> = nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        gone.push(path.to_string());
        // Deepest first, as the server deletes them.
        gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in gone {
            if nodes.remove(&p).is_some() {
                let _ = self.tx.send(TreeEvent::Removed { path: p });
            }
        }
    }

    /// Reads the whole subtree and reports how it differs from the cache.
    async fn resync(&self) -> Result<()> {
        let c = &self.client;
        let mut fresh = Nodes::new();
        let mut todo = vec![self.root.clone()];
        while let Some(path) = todo.pop() {
            let Some(node) = self.read(&path).await? else {
                continue;
            };
            match retry_raw(c, || c.list_children(&path)).await? {
                Ok(kids) => todo.extend(kids.iter().map(|k| join(&path, k))),
                Err(ClientError::Code(ErrorCode::NoNode)) => continue,
                Err(e) => return Err(from_client(e)),
            }
            fresh.insert(path, node);
        }
        let stale: Vec<String> = {
            let nodes = self.nodes.lock().expect("cache lock");
            nodes
                .keys()
                .filter(|p| !fresh.contains_key(*p))
                .cloned()
                .collect()
        };
        for p in stale {
            self.remove_subtree(&p);
        }
        for (p, node) in fresh {
            self.upsert(&p, node);
        }
        Ok(())
    }
}

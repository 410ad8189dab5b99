//! Watches held by the client: one-shot watches per path and kind, persistent and persistent
//! recursive watches per path. The registry decides which watchers an event reaches, following
//! ZooKeeper's client (ZKWatchManager), and lists every watch for setWatches2 after a reconnect.

use paddock_proto::{event, watcher_type};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// A watch event delivered to the application. Paths are relative to the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// One of `paddock_proto::event::*` (NodeCreated, NodeDeleted, ...).
    pub event_type: i32,
    /// The keeper state at delivery (`paddock_proto::state::*`), SyncConnected for node events.
    pub state: i32,
    /// The znode the event is about.
    pub path: String,
    /// The zxid of the transaction that fired the event, as Paddock and ZooKeeper 3.9 send it
    /// (ZOOKEEPER-4655); -1 when the server does not say (ZooKeeper 3.8, events raised on
    /// reconnection for changes made while away, events the client raises itself).
    pub zxid: i64,
}

impl WatchedEvent {
    /// The Java name of the event type, as zkCli prints it.
    pub fn type_name(&self) -> &'static str {
        event_name(self.event_type)
    }
}

/// Java's name for an event type number.
pub fn event_name(t: i32) -> &'static str {
    match t {
        event::NONE => "None",
        event::NODE_CREATED => "NodeCreated",
        event::NODE_DELETED => "NodeDeleted",
        event::NODE_DATA_CHANGED => "NodeDataChanged",
        event::NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
        event::DATA_WATCH_REMOVED => "DataWatchRemoved",
        event::CHILD_WATCH_REMOVED => "ChildWatchRemoved",
        event::PERSISTENT_WATCH_REMOVED => "PersistentWatchRemoved",
        _ => "Unknown",
    }
}

/// A one-shot watch: resolves with the first event on its path, then is gone.
#[derive(Debug)]
pub struct OneshotWatch {
    pub(crate) rx: oneshot::Receiver<WatchedEvent>,
}

impl OneshotWatch {
    /// Waits for the event. `None` if the session ended (expired or closed) first.
    pub async fn changed(self) -> Option<WatchedEvent> {
        self.rx.await.ok()
    }

    /// Calls `f` with the event when it comes (on a tokio task), for callback-style code.
    /// Not called if the session ends first.
    pub fn on_event<F: FnOnce(WatchedEvent) + Send + 'static>(self, f: F) {
        tokio::spawn(async move {
            if let Ok(ev) = self.rx.await {
                f(ev);
            }
        });
    }
}

/// A persistent or persistent-recursive watch: a stream of every event it matches.
#[derive(Debug)]
pub struct PersistentWatch {
    pub(crate) rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl PersistentWatch {
    /// The next event; `None` once the watch is removed or the session ended.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

/// Which one-shot table a watch lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// getData: fires on change or delete.
    Data,
    /// exists: fires on create, change or delete.
    Exist,
    /// getChildren: fires on child change or delete.
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

/// A watch waiting for its request's reply before it is registered (ZooKeeper registers a
/// watch only once the server accepted the request).
#[derive(Debug)]
pub(crate) enum PendingWatch {
    Oneshot(WatchKind, oneshot::Sender<WatchedEvent>),
    Persistent(WatchKind, mpsc::UnboundedSender<WatchedEvent>),
    /// Not a watch: a removeWatches of this watcher type whose local watches are dropped
    /// (with a *WatchRemoved event) once the server agreed. Carries the client path.
    Remove(i32, String),
}

/// Every watch the session holds, keyed by server path (chroot included).
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    exist: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    child: HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    persistent: HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>,
    recursive: HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>,
}

fn fire(
    map: &mut HashMap<String, Vec<oneshot::Sender<WatchedEvent>>>,
    path: &str,
    ev: &WatchedEvent,
) {
    if let Some(v) = map.remove(path) {
        for tx in v {
            let _ = tx.send(ev.clone());
        }
    }
}

impl WatchRegistry {
    /// Registers a watch after its request succeeded. An exists on a missing node registers
    /// an exist watch; the caller passes `exists_ok = false` then.
    pub(crate) fn register(&mut self, path: &str, w: PendingWatch, node_exists: bool) {
        match w {
            PendingWatch::Oneshot(kind, tx) => {
                let map = match (kind, node_exists) {
                    (WatchKind::Exist, true) | (WatchKind::Data, _) => &mut self.data,
                    (WatchKind::Exist, false) => &mut self.exist,
                    _ => &mut self.child,
                };
                map.entry(path.to_string()).or_default().push(tx);
            }
            PendingWatch::Remove(..) => {}
            PendingWatch::Persistent(kind, tx) => {
                let map = if kind == WatchKind::PersistentRecursive {
                    &mut self.recursive
                } else {
                    &mut self.persistent
                };
                map.entry(path.to_string()).or_default().push(tx);
            }
        }
    }

    /// Delivers a server notification (`ev.path` already without chroot; `server_path` with).
    pub(crate) fn dispatch(&mut self, server_path: &str, ev: WatchedEvent) {
        match ev.event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                fire(&mut self.data, server_path, &ev);
                fire(&mut self.exist, server_path, &ev);
            }
            event::NODE_DELETED => {
                fire(&mut self.data, server_path, &ev);
                fire(&mut self.exist, server_path, &ev);
                fire(&mut self.child, server_path, &ev);
            }
            event::NODE_CHILDREN_CHANGED => fire(&mut self.child, server_path, &ev),
            _ => {}
        }
        if let Some(v) = self.persistent.get_mut(server_path) {
            v.retain(|tx| tx.send(ev.clone()).is_ok());
        }
        // Recursive watches never see NodeChildrenChanged (the server does not send it for
        // them), but a plain persistent watch on the same path may have caused this one.
        if ev.event_type != event::NODE_CHILDREN_CHANGED {
            let mut p = server_path;
            loop {
                if let Some(v) = self.recursive.get_mut(p) {
                    v.retain(|tx| tx.send(ev.clone()).is_ok());
                }
                if p == "/" {
                    break;
                }
                p = paddock_proto::path::parent(p);
            }
        }
        self.persistent.retain(|_, v| !v.is_empty());
        self.recursive.retain(|_, v| !v.is_empty());
    }

    /// Drops the local watches of `watcher_type` on `path`, telling each watcher it was removed.
    /// Returns whether any existed.
    pub(crate) fn remove(&mut self, server_path: &str, client_path: &str, wtype: i32) -> bool {
        let mut found = false;
        let mk = |t| WatchedEvent {
            event_type: t,
            state: paddock_proto::state::SYNC_CONNECTED,
            path: client_path.to_string(),
            zxid: -1,
        };
        if wtype == watcher_type::DATA || wtype == watcher_type::ANY {
            for map in [&mut self.data, &mut self.exist] {
                if let Some(v) = map.remove(server_path) {
                    found = true;
                    for tx in v {
                        let _ = tx.send(mk(event::DATA_WATCH_REMOVED));
                    }
                }
            }
        }
        if wtype == watcher_type::CHILDREN || wtype == watcher_type::ANY {
            if let Some(v) = self.child.remove(server_path) {
                found = true;
                for tx in v {
                    let _ = tx.send(mk(event::CHILD_WATCH_REMOVED));
                }
            }
        }
        let persistent_types = [
            (watcher_type::PERSISTENT, &mut self.persistent),
            (watcher_type::PERSISTENT_RECURSIVE, &mut self.recursive),
        ];
        for (t, map) in persistent_types {
            if wtype == t || wtype == watcher_type::ANY {
                if let Some(v) = map.remove(server_path) {
                    found = true;
                    for tx in v {
                        let _ = tx.send(mk(event::PERSISTENT_WATCH_REMOVED));
                    }
                }
            }
        }
        found
    }

    /// Whether a watch of this type is held on the path (removeWatches checks locally first).
    #[allow(dead_code)]
    pub(crate) fn has(&self, server_path: &str, wtype: i32) -> bool {
        let d = self.data.contains_key(server_path) || self.exist.contains_key(server_path);
        let c = self.child.contains_key(server_path);
        let p = self.persistent.contains_key(server_path);
        let r = self.recursive.contains_key(server_path);
        match wtype {
            watcher_type::DATA => d,
            watcher_type::CHILDREN => c,
            watcher_type::PERSISTENT => p,
            watcher_type::PERSISTENT_RECURSIVE => r,
            _ => d || c || p || r,
        }
    }

    /// The watches to restore with setWatches2, in its field order.
    pub(crate) fn lists(&self) -> [Vec<String>; 5] {
        let keys = |m: &HashMap<String, Vec<_>>| m.keys().cloned().collect::<Vec<_>>();
        let pkeys = |m: &HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>| {
            m.keys().cloned().collect::<Vec<_>>()
        };
        [
            keys(&self.data),
            keys(&self.exist),
            keys(&self.child),
            pkeys(&self.persistent),
            pkeys(&self.recursive),
        ]
    }

    /// Whether no watch is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.lists().iter().all(|l| l.is_empty())
    }

    /// The session ended: every watcher is dropped so its future or stream ends.
    pub(crate) fn clear(&mut self) {
        *self = WatchRegistry::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i32, p: &str) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            state: 3,
            path: p.into(),
            zxid: -1,
        }
    }

    #[test]
    fn oneshot_fires_once_and_recursive_sees_descendants() {
        let mut reg = WatchRegistry::default();
        let (tx, mut rx) = oneshot::channel();
        reg.register("/a", PendingWatch::Oneshot(WatchKind::Data, tx), true);
        let (ptx, mut prx) = mpsc::unbounded_channel();
        reg.register(
            "/",
            PendingWatch::Persistent(WatchKind::PersistentRecursive, ptx),
            true,
        );
        reg.dispatch("/a", ev(event::NODE_DATA_CHANGED, "/a"));
        assert_eq!(rx.try_recv().unwrap().event_type, event::NODE_DATA_CHANGED);
        assert_eq!(prx.try_recv().unwrap().path, "/a");
        assert!(reg.lists()[0].is_empty());
        reg.dispatch("/a/b", ev(event::NODE_CHILDREN_CHANGED, "/a/b"));
        assert!(prx.try_recv().is_err());
        assert_eq!(reg.lists()[4], vec!["/".to_string()]);
    }

    #[test]
    fn exists_on_missing_node_is_an_exist_watch() {
        let mut reg = WatchRegistry::default();
        let (tx, mut rx) = oneshot::channel();
        reg.register("/x", PendingWatch::Oneshot(WatchKind::Exist, tx), false);
        assert_eq!(reg.lists()[1], vec!["/x".to_string()]);
        reg.dispatch("/x", ev(event::NODE_CHILDREN_CHANGED, "/x"));
        assert!(rx.try_recv().is_err());
        reg.dispatch("/x", ev(event::NODE_CREATED, "/x"));
        assert_eq!(rx.try_recv().unwrap().event_type, event::NODE_CREATED);
    }
}

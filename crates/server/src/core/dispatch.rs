//! Watch dispatch: after a transaction is applied, each change it made fires the watches set
//! on it, and every watcher that may read the node hears of it (ZooKeeper's fix for
//! CVE-2024-23944). Notifications are queued on the connections before the write's reply, so
//! a client always sees the event before any later reply.

use super::conns::Conns;
use super::frames::notification;
use crate::metrics::events::Events;
use paddock_proto::{perms, Acl};
use paddock_tree::{Applied, DataTree, WatchRegistry};

/// Fires the watches of an applied transaction's changes; each notification carries the
/// transaction's `zxid`.
pub(crate) fn dispatch(
    zxid: i64,
    applied: &Applied,
    watches: &mut WatchRegistry,
    tree: &DataTree,
    conns: &Conns,
    skip_acl: bool,
    events: &mut Events,
) {
    for ch in &applied.changes {
        let watchers = watches.trigger(ch.event_type, &ch.path);
        if watchers.is_empty() {
            continue;
        }
        events.watchers_fired(ch.event_type, watchers.len());
        // Checked against the node (the parent, for a children change); a deleted node's ACL
        // comes with the change. One-shot watches are used up either way.
        let live_acl;
        let acl: Option<&[Acl]> = match &ch.acl {
            Some(a) => Some(a),
            None => {
                live_acl = tree.lookup(&ch.path).map(|id| tree.acl(id));
                live_acl
            }
        };
        let f = notification(zxid, ch.event_type, &ch.path);
        for w in watchers {
            if let Some(c) = conns.get(w) {
                let readable =
                    acl.is_none_or(|a| paddock_tree::acl::check(a, perms::READ, &c.auth, skip_acl));
                if readable {
                    events.notified(f.len());
                    c.out.send(f.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_shared::{ConnShared, OutMsg, Outbound};
    use paddock_proto::{event, Create, CreateKind, Id, Request, SetDataRequest};
    use paddock_tree::{AuthInfo, Prep, PrepConfig, Stamp, Txn, WatchKind};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    struct World {
        tree: DataTree,
        prep: Prep,
        watches: WatchRegistry,
        conns: Conns,
        zxid: i64,
    }

    impl World {
        fn new() -> World {
            World {
                tree: DataTree::new(),
                prep: Prep::new(PrepConfig::default()),
                watches: WatchRegistry::default(),
                conns: Conns::default(),
                zxid: 0,
            }
        }
        fn conn(&mut self, id: u64) -> mpsc::UnboundedReceiver<OutMsg> {
            let (tx, rx) = mpsc::unbounded_channel();
            let out = Outbound {
                tx,
                shared: Arc::new(ConnShared::default()),
                large: None,
            };
            self.conns.open(id, "127.0.0.1:1".parse().unwrap(), out);
            rx
        }
        fn write(&mut self, req: Request) {
            self.zxid += 1;
            let at = Stamp {
                zxid: self.zxid,
                time: 1,
            };
            let auth = AuthInfo::for_ip("127.0.0.1");
            let t: Txn = self.prep.prep(&self.tree, at, 1, 1, &auth, &req);
            let applied = self.tree.apply(&t);
            self.prep.applied(t.zxid);
            dispatch(
                t.zxid,
                &applied,
                &mut self.watches,
                &self.tree,
                &self.conns,
                false,
                &mut Events::default(),
            );
        }
    }

    fn create(path: &str, acl: Vec<Acl>) -> Request {
        Request::Create(Create {
            path: path.into(),
            data: Some(Vec::new()),
            acl,
            flags: 0,
            ttl: -1,
            kind: CreateKind::Create,
        })
    }

    fn set(path: &str) -> Request {
        Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(b"x".to_vec()),
            version: -1,
        })
    }

    fn events(rx: &mut mpsc::UnboundedReceiver<OutMsg>) -> Vec<i32> {
        events_with_zxids(rx).into_iter().map(|(t, _)| t).collect()
    }

    /// (event type, zxid of the notification's header).
    fn events_with_zxids(rx: &mut mpsc::UnboundedReceiver<OutMsg>) -> Vec<(i32, i64)> {
        let mut v = Vec::new();
        while let Ok(OutMsg::Frame(f)) = rx.try_recv() {
            let zxid = i64::from_be_bytes(f[8..16].try_into().unwrap());
            v.push((i32::from_be_bytes(f[20..24].try_into().unwrap()), zxid));
        }
        v
    }

    fn open() -> Vec<Acl> {
        vec![Acl {
            perms: paddock_proto::perms::ALL,
            id: Id::new("world", "anyone"),
        }]
    }

    #[test]
    fn a_data_watch_fires_once_and_a_persistent_one_every_time() {
        let mut w = World::new();
        let mut one = w.conn(1);
        let mut many = w.conn(2);
        w.write(create("/a", open()));
        w.watches.add(1, WatchKind::Data, "/a");
        w.watches.add(2, WatchKind::Persistent, "/a");
        w.write(set("/a"));
        w.write(set("/a"));
        assert_eq!(events(&mut one), vec![event::NODE_DATA_CHANGED]);
        assert_eq!(
            events(&mut many),
            vec![event::NODE_DATA_CHANGED, event::NODE_DATA_CHANGED]
        );
    }

    #[test]
    fn a_notification_carries_the_zxid_of_the_transaction_that_fired_it() {
        let mut w = World::new();
        let mut rx = w.conn(1);
        w.write(create("/a", open()));
        w.watches.add(1, WatchKind::Data, "/a");
        w.watches.add(1, WatchKind::Child, "/");
        w.write(create("/b", open()));
        let created_b = w.zxid;
        w.write(set("/a"));
        assert_eq!(
            events_with_zxids(&mut rx),
            vec![
                (event::NODE_CHILDREN_CHANGED, created_b),
                (event::NODE_DATA_CHANGED, created_b + 1)
            ]
        );
    }

    #[test]
    fn a_watcher_that_may_not_read_the_node_hears_nothing() {
        let mut w = World::new();
        let mut rx = w.conn(1);
        let only_someone = vec![Acl {
            perms: paddock_proto::perms::ALL,
            id: Id::new("digest", "someone:x"),
        }];
        w.watches.add(1, WatchKind::Data, "/secret");
        w.watches.add(1, WatchKind::Data, "/public");
        w.write(create("/secret", only_someone));
        w.write(create("/public", open()));
        assert_eq!(events(&mut rx), vec![event::NODE_CREATED]);
        assert_eq!(
            w.watches.count(),
            0,
            "the denied one-shot watch is used up too"
        );
    }

    #[test]
    fn a_watcher_whose_connection_is_gone_is_skipped() {
        let mut w = World::new();
        w.watches.add(9, WatchKind::Data, "/a");
        w.write(create("/a", open()));
        assert_eq!(w.watches.count(), 0);
    }
}

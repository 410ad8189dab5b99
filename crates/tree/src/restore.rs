//! Online restore: a whole tree, from a backup, put in place by one transaction, so that every
//! server of an ensemble replaces its tree at the same zxid and the log replays it like any
//! other write (the AdminServer's `restore`, ZooKeeper 3.9's, which ZooKeeper applies to one
//! server's memory only).
//!
//! What a restore keeps of the tree it replaces: the sessions (their clients are connected and
//! go on; the ephemerals they own now are gone unless the backup has them) and the ensemble's
//! configuration in `/zookeeper/config`. Everything else is the backup's, Stats included; the
//! tree's zxid moves on to the restore's own, so zxids never go backwards.

use crate::snapshot::{SnapNode, SnapshotLoader};
use crate::tree::{Change, DataTree, CONFIG_NODE};
use crate::watch::{WatchKind, WatchRegistry};
use paddock_proto::{event, ErrorCode};
use std::collections::BTreeSet;

/// A whole tree as a restore carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreImage {
    /// The zxid the backup was taken at.
    pub zxid: i64,
    /// Sessions: id, timeout, and the random password if the session has one.
    pub sessions: Vec<(i64, i32, Option<[u8; 16]>)>,
    /// Every node, parents before children (a snapshot's pre-order by name).
    pub nodes: Vec<SnapNode>,
}

impl RestoreImage {
    /// The image of a whole tree (walked in one go: a tree loaded from a backup, which nothing
    /// else uses).
    pub fn of_tree(t: &DataTree) -> RestoreImage {
        let mut sessions: Vec<(i64, i32, Option<[u8; 16]>)> = t
            .sessions()
            .iter()
            .map(|(&id, &timeout)| (id, timeout, t.session_password(id)))
            .collect();
        sessions.sort_unstable_by_key(|s| s.0);
        let mut nodes = Vec::with_capacity(t.node_count());
        let mut cursor = crate::SnapshotCursor::whole();
        while t.snapshot_chunk(&mut cursor, 4096, &mut nodes) {}
        RestoreImage {
            zxid: t.last_zxid(),
            sessions,
            nodes,
        }
    }

    /// The tree the image holds, on its own.
    fn build(&self) -> Result<DataTree, ErrorCode> {
        let mut loader = SnapshotLoader::new();
        for &(id, timeout, password) in &self.sessions {
            loader.session(id, timeout);
            if let Some(p) = password {
                loader.session_password(id, p);
            }
        }
        for n in &self.nodes {
            loader.node(n)?;
        }
        Ok(loader.finish(self.zxid))
    }
}

impl DataTree {
    /// The tree a restore of `image` makes of this one: the image's nodes and sessions, plus
    /// this tree's sessions and configuration. Its zxid is still the image's: the caller
    /// moves it on to the restore's own. Fails, changing nothing, if the image is not a tree
    /// (a node without its parent).
    pub fn restored(&self, image: &RestoreImage) -> Result<DataTree, ErrorCode> {
        let mut t = image.build()?;
        for (&id, &timeout) in self.sessions() {
            if !t.sessions().contains_key(&id) {
                t.load_session(id, timeout);
                if let Some(p) = self.session_password(id) {
                    t.load_session_password(id, p);
                }
            }
        }
        if let Some(id) = self.lookup(CONFIG_NODE) {
            let st = self.node_stat(id);
            let data = self.data(id).unwrap_or_default().to_vec();
            t.set_config(&data, st.mzxid, st.mtime);
        }
        Ok(t)
    }

    /// Ends a restore applied as the transaction at `zxid`, on the tree `restored` made (or,
    /// when the image was not a tree, on the unchanged one): the tree's zxid moves on to it,
    /// as any applied transaction's does.
    pub fn finish_restore(&mut self, zxid: i64) {
        self.set_last_zxid(zxid);
        self.digests.applied(zxid);
    }

    /// What watchers of this (old) tree must hear once `new` replaced it, as the changes one
    /// transaction reports: only watched paths are compared (and, under a persistent recursive
    /// watch, the watched subtree), never the whole tree. A node whose creation and last change
    /// are the same zxids is the same version of the same node; one whose creation and child
    /// zxid (pzxid) are the same has the same children.
    pub fn restore_changes(&self, new: &DataTree, watches: &WatchRegistry) -> Vec<Change> {
        let state = |t: &DataTree, p: &str| {
            t.lookup(p).map(|id| {
                let s = t.node_stat(id);
                (s.czxid, s.mzxid, s.pzxid)
            })
        };
        let mut out: BTreeSet<(String, i32)> = BTreeSet::new();
        let data_events = |p: &str, out: &mut BTreeSet<(String, i32)>| {
            match (state(self, p), state(new, p)) {
                (None, Some(_)) => out.insert((p.to_owned(), event::NODE_CREATED)),
                (Some(_), None) => out.insert((p.to_owned(), event::NODE_DELETED)),
                (Some(a), Some(b)) if (a.0, a.1) != (b.0, b.1) => {
                    out.insert((p.to_owned(), event::NODE_DATA_CHANGED))
                }
                _ => false,
            };
        };
        for p in watches.paths(WatchKind::Data) {
            data_events(p, &mut out);
        }
        for p in watches.paths(WatchKind::Persistent) {
            data_events(p, &mut out);
        }
        for p in watches
            .paths(WatchKind::Child)
            .chain(watches.paths(WatchKind::Persistent))
        {
            match (state(self, p), state(new, p)) {
                (Some(_), None) => {
                    out.insert((p.to_owned(), event::NODE_DELETED));
                }
                (Some(a), Some(b)) if (a.0, a.2) != (b.0, b.2) => {
                    out.insert((p.to_owned(), event::NODE_CHILDREN_CHANGED));
                }
                _ => {}
            }
        }
        for root in watches.paths(WatchKind::Recursive) {
            let mut paths = BTreeSet::new();
            for t in [self, new] {
                t.subtree_paths(root, &mut paths);
            }
            for p in &paths {
                data_events(p, &mut out);
            }
        }
        out.into_iter()
            .map(|(path, event_type)| {
                // A deleted node's notification is checked against the ACL it had.
                let acl = (event_type == event::NODE_DELETED)
                    .then(|| self.lookup(&path).map(|id| self.acl(id).to_vec()))
                    .flatten();
                Change {
                    event_type,
                    path,
                    acl,
                }
            })
            .collect()
    }

    /// Every path at or under `root` that this tree holds.
    fn subtree_paths(&self, root: &str, out: &mut BTreeSet<String>) {
        let Some(id) = self.lookup(root) else {
            return;
        };
        let mut stack = vec![(id, root.to_owned())];
        while let Some((id, path)) = stack.pop() {
            for name in self.children(id) {
                let child = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                if let Some(c) = self.lookup(&child) {
                    stack.push((c, child));
                }
            }
            out.insert(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Txn, TxnOp};

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn {
            session_id: 5,
            cxid: 1,
            zxid,
            time: 1_000 + zxid,
            op,
        }
    }

    fn create(zxid: i64, path: &str, data: &[u8], owner: i64) -> Txn {
        txn(
            zxid,
            TxnOp::Create {
                path: path.into(),
                data: Some(data.to_vec()),
                acl: Vec::new(),
                owner,
                parent_cversion: 1,
            },
        )
    }

    fn set(zxid: i64, path: &str, data: &[u8], version: i32) -> Txn {
        txn(
            zxid,
            TxnOp::SetData {
                path: path.into(),
                data: Some(data.to_vec()),
                version,
            },
        )
    }

    /// A backup at zxid 4: /a (version 0), /a/x, /b; session 9 with an ephemeral.
    fn backup() -> DataTree {
        let mut t = DataTree::new();
        t.apply(&txn(
            1,
            TxnOp::CreateSession {
                timeout: 4_000,
                password: Some([7; 16]),
            },
        ));
        for (z, p) in [(2, "/a"), (3, "/a/x"), (4, "/b")] {
            t.apply(&create(z, p, b"old", 0));
        }
        let mut e = create(5, "/eph", b"", 5);
        e.session_id = 5;
        t.apply(&e);
        t
    }

    #[test]
    fn a_restore_puts_the_backup_in_place_and_keeps_the_live_sessions() {
        let old_backup = backup();
        let image = RestoreImage::of_tree(&old_backup);
        assert_eq!(image.zxid, 5);
        // The tree moved on after the backup: /a changed, /b deleted, /c created, a new session.
        let moved_on = || {
            let mut live = backup();
            live.apply(&set(6, "/a", b"new", 1));
            live.apply(&txn(7, TxnOp::Delete { path: "/b".into() }));
            live.apply(&create(8, "/c", b"", 0));
            let mut s = txn(
                9,
                TxnOp::CreateSession {
                    timeout: 6_000,
                    password: None,
                },
            );
            s.session_id = 77;
            live.apply(&s);
            live
        };
        let mut live = moved_on();
        let before = moved_on();

        let restored = live.restored(&image).expect("a tree");
        assert_eq!(
            restored.zk_digest(),
            old_backup.zk_digest(),
            "the backup's nodes"
        );
        assert!(restored.lookup("/b").is_some() && restored.lookup("/c").is_none());
        assert_eq!(
            restored.sessions().get(&77),
            Some(&6_000),
            "a live session stays"
        );
        assert_eq!(restored.session_password(5), Some([7; 16]));
        assert_eq!(restored.ephemerals_of(5), vec!["/eph".to_owned()]);

        // Through the log, as a replay applies it: the same tree, at the restore's zxid.
        live.apply(&txn(10, TxnOp::Restore(Box::new(image.clone()))));
        assert_eq!(live.zk_digest(), old_backup.zk_digest());
        assert_eq!(live.last_zxid(), 10);
        assert_eq!(live.sessions(), restored.sessions());

        // Watchers of the tree before hear what differs, and only that.
        let mut w = WatchRegistry::default();
        w.add(1, WatchKind::Data, "/a"); // changed back: data changed
        w.add(1, WatchKind::Data, "/b"); // comes back: created
        w.add(1, WatchKind::Data, "/a/x"); // unchanged: nothing
        w.add(2, WatchKind::Child, "/"); // /b back, /c gone: children changed
        w.add(2, WatchKind::Child, "/c"); // gone: deleted
        w.add(3, WatchKind::Recursive, "/a"); // /a changed
        let mut got: Vec<(String, i32)> = before
            .restore_changes(&restored, &w)
            .into_iter()
            .map(|c| (c.path, c.event_type))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("/".to_owned(), event::NODE_CHILDREN_CHANGED),
                ("/a".to_owned(), event::NODE_DATA_CHANGED),
                ("/b".to_owned(), event::NODE_CREATED),
                ("/c".to_owned(), event::NODE_DELETED),
            ]
        );
    }

    #[test]
    fn an_image_that_is_not_a_tree_changes_nothing() {
        let mut image = RestoreImage::of_tree(&backup());
        image.nodes.retain(|n| n.path != "/a");
        let mut live = backup();
        live.apply(&set(6, "/a", b"new", 1));
        let before = live.zk_digest();
        assert!(live.restored(&image).is_err());
        let applied = live.apply(&txn(7, TxnOp::Restore(Box::new(image))));
        assert!(applied.result.is_err());
        assert_eq!(live.zk_digest(), before);
    }
}

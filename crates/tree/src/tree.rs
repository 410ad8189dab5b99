//! The data tree: znodes with ZooKeeper's exact Stat semantics, the ephemeral index, the session
//! table, and deterministic application of transactions.

use crate::acl::{self, AclCache, AuthInfo};
use crate::quota::Quotas;
use crate::store::{NodeId, NodeStat, Store, ROOT};
use crate::txn::{Owner, Txn, TxnOp};
use hashbrown::{HashMap, HashSet};
use paddock_proto::{event, perms, Acl, ErrorCode, Stat};

/// The reserved nodes that can never be deleted.
pub const RESERVED: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];
/// The node holding the ensemble's configuration.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// A change that fires watches: an event type and the path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_type: i32,
    pub path: String,
    /// The ACL of a deleted node, which notifications are checked against (the node is gone by
    /// the time they are sent). Other events check the live node's or parent's ACL.
    pub acl: Option<Vec<Acl>>,
}

/// The result of one applied (sub-)operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report (delete, check, sessions, error-free no-ops).
    Done,
    Created {
        path: String,
        stat: Stat,
    },
    Stat(Stat),
    /// One entry per sub-op: its outcome, or its error code (0 = rolled back, -2 = not tried).
    Multi(Vec<Result<Outcome, i32>>),
}

/// What applying a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: Result<Outcome, ErrorCode>,
    /// Watch triggers, in the order ZooKeeper fires them.
    pub changes: Vec<Change>,
}

/// The replicated state machine.
pub struct DataTree {
    store: Store,
    acls: AclCache,
    /// Raw owners of ephemeral, container and TTL nodes only.
    owners: HashMap<NodeId, i64>,
    ephemerals: HashMap<i64, HashSet<NodeId>>,
    sessions: HashMap<i64, i32>,
    /// Random session passwords; a session without one has the derived password.
    passwords: HashMap<i64, [u8; 16]>,
    last_zxid: i64,
    /// The newest czxid of a node restored from a snapshot or image. Snapshots are fuzzy, so
    /// one may hold nodes newer than its zxid until the log after it is replayed; a walk must
    /// not take those for nodes created after it began (`DataTree::snapshot_cursor`).
    pub(crate) restored_czxid: i64,
    quotas: Quotas,
    /// ZooKeeper's tree digest and its history (digest.rs).
    pub(crate) digests: crate::digest::Digests,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree with `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut acls = AclCache::default();
        let open = acls.intern(&Acl::open_unsafe());
        let mut store = Store::with_root(open);
        // The built-ins are added without counting child creates, so, as in ZooKeeper, a
        // fresh "/" shows cversion -1 and "/zookeeper" shows -2.
        let zk = store.insert(
            ROOT,
            "zookeeper",
            Some(&[]),
            acls.intern(&Acl::open_unsafe()),
            NodeStat::default(),
        );
        let zk = zk.expect("fresh tree");
        store.insert(
            zk,
            "quota",
            Some(&[]),
            acls.intern(&Acl::open_unsafe()),
            NodeStat::default(),
        );
        let cfg_acl = acls.intern(&Acl::read_unsafe());
        let cfg = store
            .insert(
                zk,
                "config",
                Some(&[]),
                cfg_acl,
                NodeStat {
                    aversion: -1,
                    ..Default::default()
                },
            )
            .expect("fresh tree");
        let _ = cfg;
        let mut t = DataTree {
            store,
            acls,
            owners: HashMap::new(),
            ephemerals: HashMap::new(),
            sessions: HashMap::new(),
            passwords: HashMap::new(),
            last_zxid: 0,
            restored_czxid: 0,
            quotas: Quotas::default(),
            digests: Default::default(),
        };
        t.recompute_digest();
        t
    }

    /// Sets `/zookeeper/config` to this server's view of its ensemble's configuration, as
    /// ZooKeeper keeps it: every server writes its own, outside the transactions (the node is
    /// outside the digest, and readable by all, writable by nobody but the super user); the
    /// Stat shows version -1 and the configuration's version as mzxid.
    pub fn set_config(&mut self, data: &[u8], version: i64, time: i64) {
        let Some(id) = self.store.lookup(CONFIG_NODE) else {
            return;
        };
        self.store.set_data(id, Some(data));
        self.store.update_stat(id, |s| {
            s.version = -1;
            s.mzxid = version;
            s.mtime = time;
        });
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Number of znodes, root included (ZooKeeper's node count).
    pub fn node_count(&self) -> usize {
        self.store.len()
    }

    /// Sum of path lengths and data sizes is what ZooKeeper reports; we report data bytes.
    pub fn approximate_data_size(&self) -> u64 {
        self.store.data_bytes()
    }

    /// Number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Sessions recorded by createSession transactions and not yet closed: id to timeout.
    pub fn sessions(&self) -> &HashMap<i64, i32> {
        &self.sessions
    }

    /// A session's random password; None if it has none (its password is derived from its
    /// id) or is unknown.
    pub fn session_password(&self, id: i64) -> Option<[u8; 16]> {
        self.passwords.get(&id).copied()
    }

    /// Every random session password, by session id, ascending (for snapshots).
    pub fn session_passwords(&self) -> Vec<(i64, [u8; 16])> {
        let mut v: Vec<(i64, [u8; 16])> = self.passwords.iter().map(|(&k, &v)| (k, v)).collect();
        v.sort_unstable_by_key(|p| p.0);
        v
    }

    /// The node at `path`.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        self.store.lookup(path)
    }

    /// The raw owner of a node (0 for plain persistent nodes).
    pub fn owner(&self, id: NodeId) -> i64 {
        self.owners.get(&id).copied().unwrap_or(0)
    }

    /// The stored stat of a node.
    pub fn node_stat(&self, id: NodeId) -> NodeStat {
        self.store.stat(id)
    }

    /// Number of children of a node.
    pub fn num_children(&self, id: NodeId) -> usize {
        self.store.num_children(id)
    }

    /// The ACL of a node.
    pub fn acl(&self, id: NodeId) -> &[Acl] {
        self.acls.get(self.store.acl(id))
    }

    /// The data of a node.
    pub fn data(&self, id: NodeId) -> Option<&[u8]> {
        self.store.data(id)
    }

    /// The node's path.
    pub fn path(&self, id: NodeId) -> String {
        self.store.path(id)
    }

    /// The Stat a client sees.
    pub fn stat(&self, id: NodeId) -> Stat {
        let s = self.store.stat(id);
        let n = self.store.num_children(id) as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: s.aversion,
            ephemeral_owner: Owner::visible(self.owner(id)),
            data_length: self.store.data_len(id) as i32,
            num_children: n,
            pzxid: s.pzxid,
        }
    }

    /// The children's ids, in name order.
    pub(crate) fn child_ids(&self, id: NodeId) -> &[NodeId] {
        self.store.children(id)
    }

    /// A node's name as bytes (no UTF-8 check: names are written from `&str` only).
    pub(crate) fn name_bytes(&self, id: NodeId) -> &[u8] {
        self.store.name_bytes(id)
    }

    /// Children names, in name order.
    pub fn children(&self, id: NodeId) -> Vec<String> {
        self.store
            .children(id)
            .iter()
            .map(|&c| self.store.name(c).to_owned())
            .collect()
    }

    /// A page of children, in name order: `limit` names from the `offset`th, each with its
    /// own number of children. Costs the page, not the list (a console pages through a
    /// million children without copying them).
    pub fn children_page(&self, id: NodeId, offset: usize, limit: usize) -> Vec<(String, usize)> {
        let kids = self.store.children(id);
        kids.iter()
            .skip(offset)
            .take(limit)
            .map(|&c| (self.store.name(c).to_owned(), self.store.num_children(c)))
            .collect()
    }

    /// Names of the children after `after` in name order: at most `max` of them and no more
    /// than about `max_bytes` of names (at least one, whatever its length), and whether more
    /// follow. Costs the page, not the list.
    pub fn children_after(
        &self,
        id: NodeId,
        after: &str,
        max: usize,
        max_bytes: usize,
    ) -> (Vec<String>, bool) {
        let rest = self.store.children_after(id, after);
        let mut names = Vec::new();
        let mut bytes = 0;
        for &c in rest {
            let name = self.store.name(c);
            if names.len() == max.max(1) || (!names.is_empty() && bytes + name.len() > max_bytes) {
                break;
            }
            bytes += name.len();
            names.push(name.to_owned());
        }
        let more = names.len() < rest.len();
        (names, more)
    }

    /// Number of descendants (not counting the node).
    pub fn descendants(&self, id: NodeId) -> usize {
        self.store.descendants(id)
    }

    /// Paths of a session's ephemerals, sorted.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .ephemerals
            .get(&session)
            .map(|s| s.iter().map(|&id| self.store.path(id)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// All sessions that own ephemerals, with their paths (for `dump`).
    pub fn all_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        let mut v: Vec<_> = self
            .ephemerals
            .keys()
            .map(|&s| (s, self.ephemerals_of(s)))
            .collect();
        v.sort();
        v
    }

    /// Container and TTL nodes, with their raw owners (for the expiry task).
    pub fn container_and_ttl_nodes(&self) -> Vec<(String, i64)> {
        let mut v: Vec<_> = self
            .owners
            .iter()
            .filter(|(_, &o)| matches!(Owner::of(o), Owner::Container | Owner::Ttl(_)))
            .map(|(&id, &o)| (self.store.path(id), o))
            .collect();
        v.sort();
        v
    }

    /// Whether `auth` may perform `perm` on node `id`.
    pub fn allowed(&self, id: NodeId, perm: i32, auth: &AuthInfo, skip_acl: bool) -> bool {
        acl::check(self.acl(id), perm, auth, skip_acl)
    }

    /// Quota limits and usage of the subtree whose quota covers `path`, if any.
    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// Applies one transaction. Never panics on a transaction that does not fit the tree (a
    /// replayed or fuzzy case): it reports the error instead.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        let mut changes = Vec::new();
        let result = match &txn.op {
            TxnOp::Multi(ops) => {
                if ops.iter().any(|o| matches!(o, TxnOp::Error { .. })) {
                    // A failed multi applies nothing: report each sub-op's code.
                    Ok(Outcome::Multi(
                        ops.iter()
                            .map(|o| match o {
                                TxnOp::Error { err } => Err(err.code()),
                                _ => Err(0),
                            })
                            .collect(),
                    ))
                } else {
                    let mut out = Vec::with_capacity(ops.len());
                    for o in ops {
                        out.push(self.apply_op(txn, o, &mut changes).map_err(|e| e.code()));
                    }
                    Ok(Outcome::Multi(out))
                }
            }
            op => self.apply_op(txn, op, &mut changes),
        };
        if txn.zxid > self.last_zxid {
            self.last_zxid = txn.zxid;
        }
        self.digests.applied(txn.zxid);
        Applied { result, changes }
    }

    fn apply_op(
        &mut self,
        txn: &Txn,
        op: &TxnOp,
        changes: &mut Vec<Change>,
    ) -> Result<Outcome, ErrorCode> {
        match op {
            TxnOp::CreateSession { timeout, password } => {
                self.sessions.insert(txn.session_id, *timeout);
                match password {
                    Some(p) => self.passwords.insert(txn.session_id, *p),
                    None => self.passwords.remove(&txn.session_id),
                };
                Ok(Outcome::Done)
            }
            TxnOp::CloseSession { ephemerals } => {
                for p in ephemerals {
                    let _ = self.delete(p, txn.zxid, changes);
                }
                // Anything the list missed (it cannot, but a replay must not leak) goes too.
                for p in self.ephemerals_of(txn.session_id) {
                    let _ = self.delete(&p, txn.zxid, changes);
                }
                self.ephemerals.remove(&txn.session_id);
                self.sessions.remove(&txn.session_id);
                self.passwords.remove(&txn.session_id);
                Ok(Outcome::Done)
            }
            TxnOp::Create {
                path,
                data,
                acl,
                owner,
                parent_cversion,
            } => self.create(
                path,
                data.as_deref(),
                acl,
                *owner,
                *parent_cversion,
                txn,
                changes,
            ),
            TxnOp::Delete { path } => self.delete(path, txn.zxid, changes).map(|_| Outcome::Done),
            TxnOp::SetData {
                path,
                data,
                version,
            } => {
                let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
                let old_len = self.store.data_len(id) as i64;
                let d = self.digest_begin(id, true);
                self.store.set_data(id, data.as_deref());
                self.store.update_stat(id, |s| {
                    s.version = *version;
                    s.mzxid = txn.zxid;
                    s.mtime = txn.time;
                });
                self.digest_end(d);
                let new_len = data.as_ref().map_or(0, |d| d.len()) as i64;
                self.quotas.on_change(path, 0, new_len - old_len);
                self.quota_limits_changed(path);
                self.refresh_quota_stats(path);
                changes.push(Change {
                    event_type: event::NODE_DATA_CHANGED,
                    path: path.clone(),
                    acl: None,
                });
                Ok(Outcome::Stat(self.stat(id)))
            }
            TxnOp::SetAcl { path, acl, version } => {
                let id = self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
                let new = self.acls.intern(acl);
                self.acls.release(self.store.acl(id));
                self.store.set_acl(id, new);
                let d = self.digest_begin(id, false);
                self.store.update_stat(id, |s| s.aversion = *version);
                self.digest_end(d);
                Ok(Outcome::Stat(self.stat(id)))
            }
            TxnOp::Check { path, .. } => {
                self.store.lookup(path).ok_or(ErrorCode::NoNode)?;
                Ok(Outcome::Done)
            }
            TxnOp::Reconfig { config } => {
                // As ZooKeeper: the node's version stays -1 and its mzxid is the new
                // configuration's version; its data watchers hear of the change.
                self.set_config(config, txn.zxid, txn.time);
                let id = self.store.lookup(CONFIG_NODE).ok_or(ErrorCode::NoNode)?;
                changes.push(Change {
                    event_type: event::NODE_DATA_CHANGED,
                    path: CONFIG_NODE.to_owned(),
                    acl: None,
                });
                Ok(Outcome::Stat(self.stat(id)))
            }
            TxnOp::Restore(image) => {
                // Replayed from the log (the server's core replaces its tree itself, so that
                // walks of the old one stop and its watchers hear what changed).
                *self = self.restored(image)?;
                Ok(Outcome::Done)
            }
            TxnOp::Error { err } => Err(*err),
            TxnOp::Multi(_) => Err(ErrorCode::MarshallingError),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        txn: &Txn,
        changes: &mut Vec<Change>,
    ) -> Result<Outcome, ErrorCode> {
        let (parent_path, name) = split(path).ok_or(ErrorCode::BadArguments)?;
        let parent = self.store.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let stat = NodeStat {
            czxid: txn.zxid,
            mzxid: txn.zxid,
            pzxid: txn.zxid,
            ctime: txn.time,
            mtime: txn.time,
            version: 0,
            cversion: 0,
            aversion: 0,
        };
        let bump_parent = |store: &mut Store| {
            store.update_stat(parent, |ps| {
                if parent_cversion > ps.cversion {
                    ps.cversion = parent_cversion;
                    ps.pzxid = txn.zxid;
                }
            })
        };
        let d = self.digest_begin(parent, false);
        if self.store.child(parent, name).is_some() {
            // Replaying over a fuzzy snapshot may meet the node already there; the parent's
            // counters still move forward as ZooKeeper's replay does. (Checked before the ACL
            // is interned: a long replay meets this case for most creates.)
            bump_parent(&mut self.store);
            self.digest_end(d);
            return Err(ErrorCode::NodeExists);
        }
        let aref = self.acls.intern(acl);
        let Some(id) = self.store.insert(parent, name, data, aref, stat) else {
            self.acls.release(aref);
            bump_parent(&mut self.store);
            self.digest_end(d);
            return Err(ErrorCode::NodeExists);
        };
        bump_parent(&mut self.store);
        self.record_owner(id, owner);
        self.digest_child(&d, id);
        self.digest_end(d);
        self.quotas
            .on_change(path, 1, data.map_or(0, |d| d.len()) as i64);
        self.quota_limits_changed(path);
        self.refresh_quota_stats(path);
        changes.push(Change {
            event_type: event::NODE_CREATED,
            path: path.to_owned(),
            acl: None,
        });
        changes.push(Change {
            event_type: event::NODE_CHILDREN_CHANGED,
            path: parent_path.to_owned(),
            acl: None,
        });
        Ok(Outcome::Created {
            path: path.to_owned(),
            stat: self.stat(id),
        })
    }

    fn delete(
        &mut self,
        path: &str,
        zxid: i64,
        changes: &mut Vec<Change>,
    ) -> Result<(), ErrorCode> {
        let Some(id) = self.store.lookup(path) else {
            // Only a replay over a fuzzy snapshot meets a logged delete whose node is gone: the
            // walk passed the parent before this delete and reached the child's place after it.
            // The parent's pzxid must still move, as it did when the delete first applied.
            if let Some(parent) = split(path).and_then(|(p, _)| self.store.lookup(p)) {
                let d = self.digest_begin(parent, false);
                self.store.update_stat(parent, |ps| {
                    if zxid > ps.pzxid {
                        ps.pzxid = zxid;
                    }
                });
                self.digest_end(d);
            }
            return Err(ErrorCode::NoNode);
        };
        if id == ROOT {
            return Err(ErrorCode::BadArguments);
        }
        if self.store.num_children(id) > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let parent = self.store.parent(id);
        let d = self.digest_remove(id);
        let len = self.store.data_len(id) as i64;
        let acl = self.acls.get(self.store.acl(id)).to_vec();
        self.acls.release(self.store.acl(id));
        if let Some(o) = self.owners.remove(&id) {
            if let Owner::Session(s) = Owner::of(o) {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
        }
        self.store.remove(id);
        self.store.update_stat(parent, |ps| {
            if zxid > ps.pzxid {
                ps.pzxid = zxid;
            }
        });
        self.digest_end(d);
        self.quotas.on_change(path, -1, -len);
        self.quota_limits_changed(path);
        self.refresh_quota_stats(path);
        let parent_path = split(path).map(|(p, _)| p).unwrap_or("/");
        changes.push(Change {
            event_type: event::NODE_DELETED,
            path: path.to_owned(),
            acl: Some(acl),
        });
        changes.push(Change {
            event_type: event::NODE_CHILDREN_CHANGED,
            path: parent_path.to_owned(),
            acl: None,
        });
        Ok(())
    }

    /// Keeps the quota index in step when a `zookeeper_limits` node is written or removed.
    fn quota_limits_changed(&mut self, path: &str) {
        if let Some(target) = crate::quota::limits_target(path) {
            let limits_path = format!("{}{}/zookeeper_limits", crate::quota::QUOTA_ROOT, target);
            let limits = self
                .store
                .lookup(&limits_path)
                .and_then(|id| self.store.data(id))
                .map(|d| String::from_utf8_lossy(d).into_owned());
            match limits {
                Some(text) => {
                    let (count, bytes) = self.subtree_usage(&target);
                    self.quotas.set_limits(&target, &text, count, bytes);
                }
                None if path.ends_with("zookeeper_limits") => self.quotas.remove(&target),
                None => {}
            }
            self.refresh_quota_stats(&target);
        }
    }

    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let Some(id) = self.store.lookup(path) else {
            return (0, 0);
        };
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            count += 1;
            bytes += self.store.data_len(x) as i64;
            stack.extend_from_slice(self.store.children(x));
        }
        (count, bytes)
    }

    /// Writes the usage of the quota covering `path` into its `zookeeper_stats` node, in place
    /// (as ZooKeeper does: no transaction, no version change).
    fn refresh_quota_stats(&mut self, path: &str) {
        if path.starts_with("/zookeeper/quota") {
            return;
        }
        let Some((root, text)) = self.quotas.stats_text(path) else {
            return;
        };
        let stats_path = format!("{}{}/zookeeper_stats", crate::quota::QUOTA_ROOT, root);
        if let Some(id) = self.store.lookup(&stats_path) {
            self.store.set_data(id, Some(text.as_bytes()));
        }
    }

    /// Whether a write that adds `count` nodes and `bytes` bytes under `path` would break a hard
    /// quota.
    pub fn quota_exceeded(&self, path: &str, count: i64, bytes: i64) -> bool {
        self.quotas.exceeded(path, count, bytes)
    }

    /// The name of `parent`'s first child whose name sorts after `name`.
    pub(crate) fn child_after(&self, parent: NodeId, name: &str) -> Option<String> {
        let kids = self.store.children(parent);
        let i = kids.partition_point(|&c| self.store.name(c) <= name);
        kids.get(i).map(|&c| self.store.name(c).to_owned())
    }

    /// Puts a node back as it was stored (snapshot load): overwrites an existing one, or adds it
    /// under its parent, which must exist.
    pub(crate) fn restore_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        stat: NodeStat,
        owner: i64,
    ) -> Result<(), ErrorCode> {
        let aref = self.acls.intern(acl);
        let id = match self.store.lookup(path) {
            Some(id) => {
                self.acls.release(self.store.acl(id));
                self.store.set_acl(id, aref);
                self.store.set_data(id, data);
                id
            }
            None => {
                let (parent_path, name) = split(path).ok_or(ErrorCode::BadArguments)?;
                let parent = self.store.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
                match self.store.insert(parent, name, data, aref, stat) {
                    Some(id) => id,
                    None => {
                        self.acls.release(aref);
                        return Err(ErrorCode::NodeExists);
                    }
                }
            }
        };
        self.store.update_stat(id, |s| *s = stat);
        self.restored_czxid = self.restored_czxid.max(stat.czxid);
        self.record_owner(id, owner);
        Ok(())
    }

    /// Restores a node read from a snapshot as a new child of `parent` (the loader knows the
    /// parent, so no path is resolved). `acl_hint` is the previous node's list, reused without
    /// hashing when equal (most nodes share one). NodeExists for the built-in nodes, which the
    /// caller overwrites through `restore_node`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore_child(
        &mut self,
        parent: NodeId,
        name: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        stat: NodeStat,
        owner: i64,
        acl_hint: &mut Option<acl::AclRef>,
    ) -> Result<NodeId, ErrorCode> {
        let aref = match *acl_hint {
            Some(r) if self.acls.get(r) == acl => {
                self.acls.retain(r);
                r
            }
            _ => self.acls.intern(acl),
        };
        let Some(id) = self.store.insert(parent, name, data, aref, stat) else {
            self.acls.release(aref);
            return Err(ErrorCode::NodeExists);
        };
        *acl_hint = Some(aref);
        self.restored_czxid = self.restored_czxid.max(stat.czxid);
        self.record_owner(id, owner);
        Ok(id)
    }

    /// Indexes a new node's raw owner (ephemeral, container or TTL marker; 0 is none).
    fn record_owner(&mut self, id: NodeId, owner: i64) {
        if owner != 0 {
            self.owners.insert(id, owner);
            if let Owner::Session(s) = Owner::of(owner) {
                self.ephemerals.entry(s).or_default().insert(id);
            }
        }
    }

    /// The node store, for walks by id.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn restore_session(&mut self, id: i64, timeout: i32) {
        self.sessions.insert(id, timeout);
    }

    pub(crate) fn restore_password(&mut self, id: i64, password: [u8; 16]) {
        self.passwords.insert(id, password);
    }

    pub(crate) fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    /// Re-reads every quota's limits and usage (after a snapshot load).
    pub(crate) fn rebuild_quotas(&mut self) {
        let mut limits = Vec::new();
        if let Some(q) = self.store.lookup(crate::quota::QUOTA_ROOT) {
            let mut stack = vec![q];
            while let Some(x) = stack.pop() {
                if self.store.name(x) == "zookeeper_limits" {
                    limits.push(self.store.path(x));
                }
                stack.extend_from_slice(self.store.children(x));
            }
        }
        for p in limits {
            self.quota_limits_changed(&p);
        }
    }

    /// Whether the caller may read node `id`; a convenience for the read handlers.
    pub fn can_read(&self, id: NodeId, auth: &AuthInfo, skip_acl: bool) -> bool {
        self.allowed(id, perms::READ, auth, skip_acl)
    }
}

/// Splits a path into parent path and last component ("/a" -> ("/", "a")).
pub fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

//! Write preparation: checks a client write against the tree plus every change already prepared
//! but not yet applied, in ZooKeeper's check order, and turns it into a transaction with its own
//! zxid (a failed check becomes an error transaction).
//!
//! The in-flight set is exact: a pending change is retired only when the transaction with its own
//! zxid is applied, a failed multi stages nothing, and a failure after prep resets the whole set.

use crate::acl::{self, AuthInfo};
use crate::codec;
use crate::store::NodeStat;
use crate::tree::{split, DataTree, RESERVED};
use crate::txn::{Owner, Txn, TxnOp, CONTAINER_OWNER, MAX_TTL, TTL_MARK};
use hashbrown::{HashMap, HashSet};
use paddock_proto::path::validate;
use paddock_proto::{
    perms, Acl, CheckVersionRequest, Create, CreateKind, CreateMode, DeleteRequest, ErrorCode,
    MultiOp, Request, SetAclRequest, SetDataRequest,
};
use std::collections::VecDeque;

/// The longest close of a session that lists its ephemerals (see `Prep::close_session`).
const CLOSE_LIST_MAX_BYTES: usize = 1 << 20;

/// Server settings that change what prep accepts.
#[derive(Debug, Clone, Default)]
pub struct PrepConfig {
    /// TTL nodes (`extendedTypesEnabled`).
    pub extended_types: bool,
    /// Hard quotas (`enforceQuota`).
    pub enforce_quota: bool,
    /// `skipACL=yes`.
    pub skip_acl: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `sasl` ACLs are valid (an `authProvider.N` names ZooKeeper's SASL provider).
    pub sasl_acls: bool,
    /// `x509` ACLs are valid (an `authProvider.N` names ZooKeeper's X509 provider).
    pub x509_acls: bool,
    /// The largest transaction accepted; `None` is `codec::MAX_TXN_BYTES` (tests set less).
    pub max_txn_bytes: Option<usize>,
}

impl PrepConfig {
    fn schemes(&self) -> acl::Schemes {
        acl::Schemes {
            sasl: self.sasl_acls,
            x509: self.x509_acls,
        }
    }
}

/// A node as prep sees it: the tree's state with pending changes laid over it.
#[derive(Debug, Clone)]
struct View {
    stat: NodeStat,
    num_children: i32,
    acl: Vec<Acl>,
    owner: i64,
    data_len: i64,
}

#[derive(Debug)]
struct Pending {
    zxid: i64,
    view: Option<View>,
}

/// Changes staged by one transaction before it is known to succeed.
#[derive(Default)]
struct Stage {
    nodes: HashMap<String, Option<View>>,
}

/// What the replication core gives a transaction before it is prepared: its zxid (the
/// leader's one counter: prep never numbers transactions itself) and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub zxid: i64,
    pub time: i64,
}

/// The preparation stage and its in-flight set.
pub struct Prep {
    cfg: PrepConfig,
    changes: HashMap<String, Pending>,
    by_zxid: VecDeque<(i64, Vec<String>)>,
    closing: HashMap<i64, i64>,
    /// The write being prepared is a local session's (`prep_local`): it may not create an
    /// ephemeral node.
    local: bool,
}

impl Prep {
    /// A preparer with nothing in flight.
    pub fn new(cfg: PrepConfig) -> Prep {
        Prep {
            cfg,
            changes: HashMap::new(),
            by_zxid: VecDeque::new(),
            closing: HashMap::new(),
            local: false,
        }
    }

    /// Number of paths with a pending change (for tests and metrics).
    pub fn pending_paths(&self) -> usize {
        self.changes.len()
    }

    /// Whether a close of this session has been prepared.
    pub fn is_closing(&self, session: i64) -> bool {
        self.closing.contains_key(&session)
    }

    /// Checks a stamp: zxids only grow while changes are in flight (a stamp at or below the
    /// last staged one means a prepared transaction was never proposed: a driver bug).
    fn take(&self, at: Stamp) -> i64 {
        debug_assert!(
            self.by_zxid.back().is_none_or(|(z, _)| *z < at.zxid),
            "stamp 0x{:x} does not follow the last prepared transaction",
            at.zxid
        );
        at.zxid
    }

    /// Retires the changes of the transaction with this zxid, once the tree has applied it.
    pub fn applied(&mut self, zxid: i64) {
        while let Some((z, _)) = self.by_zxid.front() {
            if *z > zxid {
                break;
            }
            let (z, paths) = self.by_zxid.pop_front().expect("front exists");
            for p in paths {
                if self.changes.get(&p).is_some_and(|c| c.zxid == z) {
                    self.changes.remove(&p);
                }
            }
        }
        self.closing.retain(|_, z| *z > zxid);
    }

    /// Forgets every in-flight change: the server stopped leading (what it prepared may never
    /// commit), or its tree was replaced. Prep starts again from the tree alone.
    pub fn reset(&mut self) {
        self.changes.clear();
        self.by_zxid.clear();
        self.closing.clear();
    }

    fn view(&self, stage: &Stage, tree: &DataTree, path: &str) -> Option<View> {
        if let Some(v) = stage.nodes.get(path) {
            return v.clone();
        }
        if let Some(p) = self.changes.get(path) {
            return p.view.clone();
        }
        let id = tree.lookup(path)?;
        Some(View {
            stat: tree.node_stat(id),
            num_children: tree.num_children(id) as i32,
            acl: tree.acl(id).to_vec(),
            owner: tree.owner(id),
            data_len: tree.data(id).map_or(0, |d| d.len()) as i64,
        })
    }

    fn commit(&mut self, zxid: i64, stage: Stage) {
        if stage.nodes.is_empty() {
            return;
        }
        let mut paths = Vec::with_capacity(stage.nodes.len());
        for (p, v) in stage.nodes {
            paths.push(p.clone());
            self.changes.insert(p, Pending { zxid, view: v });
        }
        self.by_zxid.push_back((zxid, paths));
    }

    /// An error transaction for a write that could not even be decoded.
    pub fn error_txn(&mut self, at: Stamp, session: i64, cxid: i32, err: ErrorCode) -> Txn {
        let (zxid, time) = (self.take(at), at.time);
        Txn {
            session_id: session,
            cxid,
            zxid,
            time,
            op: TxnOp::Error { err },
        }
    }

    /// A reconfiguration's transaction: the new configuration, checked by the caller (the
    /// server knows the ensemble; the tree does not).
    pub fn reconfig(&mut self, at: Stamp, session: i64, cxid: i32, config: Vec<u8>) -> Txn {
        let (zxid, time) = (self.take(at), at.time);
        Txn {
            session_id: session,
            cxid,
            zxid,
            time,
            op: TxnOp::Reconfig { config },
        }
    }

    /// A createSession transaction.
    pub fn create_session(
        &mut self,
        at: Stamp,
        session: i64,
        timeout: i32,
        password: Option<[u8; 16]>,
    ) -> Txn {
        let (zxid, time) = (self.take(at), at.time);
        Txn {
            session_id: session,
            cxid: 0,
            zxid,
            time,
            op: TxnOp::CreateSession { timeout, password },
        }
    }

    /// A closeSession transaction deleting the session's ephemerals, in-flight ones included.
    pub fn close_session(&mut self, tree: &DataTree, at: Stamp, session: i64, cxid: i32) -> Txn {
        let (zxid, time) = (self.take(at), at.time);
        let mut eph: HashSet<String> = tree.ephemerals_of(session).into_iter().collect();
        for (p, c) in &self.changes {
            match &c.view {
                Some(v) if Owner::of(v.owner) == Owner::Session(session) => {
                    eph.insert(p.clone());
                }
                None => {
                    eph.remove(p);
                }
                _ => {}
            }
        }
        let mut eph: Vec<String> = eph.into_iter().collect();
        eph.sort();
        let mut stage = Stage::default();
        for p in &eph {
            self.stage_delete(&mut stage, tree, p, zxid);
        }
        self.commit(zxid, stage);
        self.closing.insert(session, zxid);
        // A session may own more ephemerals than one transaction can list. Every server
        // deletes, after the listed ones, whatever the session still owns when it applies the
        // close, in the same sorted order; so a long list is left out rather than refused (a
        // close must always go through).
        let mut op = TxnOp::CloseSession { ephemerals: eph };
        if codec::encoded_len(&op) > CLOSE_LIST_MAX_BYTES {
            op = TxnOp::CloseSession {
                ephemerals: Vec::new(),
            };
        }
        Txn {
            session_id: session,
            cxid,
            zxid,
            time,
            op,
        }
    }

    /// Deletion of an emptied container or expired TTL node by the server itself; an error
    /// transaction if the node changed since it was found.
    pub fn delete_container(&mut self, tree: &DataTree, at: Stamp, path: &str) -> Txn {
        let (zxid, time) = (self.take(at), at.time);
        let mut stage = Stage::default();
        let op = match self.view(&stage, tree, path) {
            None => TxnOp::Error {
                err: ErrorCode::NoNode,
            },
            Some(v) if v.num_children > 0 => TxnOp::Error {
                err: ErrorCode::NotEmpty,
            },
            Some(v) if !matches!(Owner::of(v.owner), Owner::Container | Owner::Ttl(_)) => {
                TxnOp::Error {
                    err: ErrorCode::BadArguments,
                }
            }
            Some(_) => {
                self.stage_delete(&mut stage, tree, path, zxid);
                TxnOp::Delete {
                    path: path.to_owned(),
                }
            }
        };
        self.commit(zxid, stage);
        Txn {
            session_id: 0,
            cxid: 0,
            zxid,
            time,
            op,
        }
    }

    /// Prepares a write of a local session (`localSessionsEnabled`), known to its server alone:
    /// as `prep`, except that an ephemeral create fails with EPHEMERALONLOCALSESSION (in a
    /// multi, that op fails and the multi with it), checked where ZooKeeper checks it, after
    /// the create mode and TTL.
    pub fn prep_local(
        &mut self,
        tree: &DataTree,
        at: Stamp,
        session: i64,
        cxid: i32,
        auth: &AuthInfo,
        req: &Request,
    ) -> Txn {
        self.local = true;
        let txn = self.prep(tree, at, session, cxid, auth, req);
        self.local = false;
        txn
    }

    /// Prepares a client write. Reads must not come here.
    pub fn prep(
        &mut self,
        tree: &DataTree,
        at: Stamp,
        session: i64,
        cxid: i32,
        auth: &AuthInfo,
        req: &Request,
    ) -> Txn {
        if let Request::CloseSession = req {
            return self.close_session(tree, at, session, cxid);
        }
        let (zxid, time) = (self.take(at), at.time);
        let mut stage = Stage::default();
        let op = match req {
            Request::Multi(ops) => {
                let mut txns = Vec::with_capacity(ops.len());
                let mut failed = None;
                for (i, op) in ops.iter().enumerate() {
                    match self.multi_op(&mut stage, tree, session, auth, zxid, time, op) {
                        Ok(t) => txns.push(t),
                        Err(e) => {
                            failed = Some((i, e));
                            break;
                        }
                    }
                }
                match failed {
                    None => TxnOp::Multi(txns),
                    Some((k, e)) => {
                        stage = Stage::default();
                        TxnOp::Multi(
                            (0..ops.len())
                                .map(|j| TxnOp::Error {
                                    err: match j.cmp(&k) {
                                        std::cmp::Ordering::Less => ErrorCode::Ok,
                                        std::cmp::Ordering::Equal => e,
                                        std::cmp::Ordering::Greater => {
                                            ErrorCode::RuntimeInconsistency
                                        }
                                    },
                                })
                                .collect(),
                        )
                    }
                }
            }
            other => {
                let r = match other {
                    Request::Create(c) => self.create(&mut stage, tree, session, auth, zxid, c),
                    Request::Delete(d) => self.delete(&mut stage, tree, session, auth, zxid, d),
                    Request::SetData(s) => self.set_data(&mut stage, tree, session, auth, s),
                    Request::SetAcl(s) => self.set_acl(&mut stage, tree, session, auth, s),
                    Request::Reconfig(_) if !self.cfg.reconfig_enabled => {
                        Err(ErrorCode::ReconfigDisabled)
                    }
                    _ => Err(ErrorCode::Unimplemented),
                };
                r.unwrap_or_else(|err| {
                    stage = Stage::default();
                    TxnOp::Error { err }
                })
            }
        };
        // A transaction too large for the log or a follower is refused before it is staged:
        // its client gets an error, and replication never sees it.
        let limit = self.cfg.max_txn_bytes.unwrap_or(codec::MAX_TXN_BYTES);
        let op = if codec::encoded_len(&op) > limit {
            stage = Stage::default();
            TxnOp::Error {
                err: ErrorCode::BadArguments,
            }
        } else {
            op
        };
        self.commit(zxid, stage);
        Txn {
            session_id: session,
            cxid,
            zxid,
            time,
            op,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn multi_op(
        &mut self,
        stage: &mut Stage,
        tree: &DataTree,
        session: i64,
        auth: &AuthInfo,
        zxid: i64,
        _time: i64,
        op: &MultiOp,
    ) -> Result<TxnOp, ErrorCode> {
        match op {
            MultiOp::Create(c) => self.create(stage, tree, session, auth, zxid, c),
            MultiOp::Delete(d) => self.delete(stage, tree, session, auth, zxid, d),
            MultiOp::SetData(s) => self.set_data(stage, tree, session, auth, s),
            MultiOp::Check(c) => self.check(stage, tree, auth, c),
        }
    }

    fn session_check(&self, session: i64) -> Result<(), ErrorCode> {
        if self.closing.contains_key(&session) {
            return Err(ErrorCode::SessionExpired);
        }
        Ok(())
    }

    fn allowed(&self, v: &View, perm: i32, auth: &AuthInfo) -> bool {
        acl::check(&v.acl, perm, auth, self.cfg.skip_acl)
    }

    fn create(
        &mut self,
        stage: &mut Stage,
        tree: &DataTree,
        session: i64,
        auth: &AuthInfo,
        zxid: i64,
        c: &Create,
    ) -> Result<TxnOp, ErrorCode> {
        let mode = CreateMode::from_flags(c.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.cfg.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_ok = if mode.is_ttl() {
            c.ttl > 0 && c.ttl <= MAX_TTL
        } else {
            c.ttl < 0
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        if self.local && c.is_ephemeral() {
            return Err(ErrorCode::EphemeralOnLocalSession);
        }
        self.session_check(session)?;
        if !c.path.contains('/') || c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup(&c.acl, auth, self.cfg.schemes())?;
        let (parent_path, _) = split(&c.path).ok_or(ErrorCode::BadArguments)?;
        let parent_path = parent_path.to_owned();
        let mut parent = self
            .view(stage, tree, &parent_path)
            .ok_or(ErrorCode::NoNode)?;
        if !self.allowed(&parent, perms::CREATE, auth) {
            return Err(ErrorCode::NoAuth);
        }
        let path = if mode.is_sequential() {
            format!("{}{:010}", c.path, parent.stat.cversion)
        } else {
            c.path.clone()
        };
        validate(&path).map_err(|_| ErrorCode::BadArguments)?;
        if self.view(stage, tree, &path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if let Owner::Session(_) = Owner::of(parent.owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let data_len = c.data.as_ref().map_or(0, |d| d.len()) as i64;
        if self.cfg.enforce_quota && tree.quota_exceeded(&path, 1, data_len) {
            return Err(ErrorCode::QuotaExceeded);
        }
        // As in ZooKeeper, the opcode decides a container: createContainer makes one whatever
        // its flags say, and create/create2 with the container flag make a plain node.
        let owner = match mode {
            _ if c.kind == CreateKind::Container => CONTAINER_OWNER,
            _ if mode.is_ephemeral() => session,
            CreateMode::Container => 0,
            _ if mode.is_ttl() => TTL_MARK | c.ttl,
            _ => 0,
        };
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.pzxid = zxid;
        parent.num_children += 1;
        let parent_cversion = parent.stat.cversion;
        stage.nodes.insert(parent_path, Some(parent));
        let stat = NodeStat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ..Default::default()
        };
        stage.nodes.insert(
            path.clone(),
            Some(View {
                stat,
                num_children: 0,
                acl: acl.clone(),
                owner,
                data_len,
            }),
        );
        Ok(TxnOp::Create {
            path,
            data: c.data.clone(),
            acl,
            owner,
            parent_cversion,
        })
    }

    fn stage_delete(&self, stage: &mut Stage, tree: &DataTree, path: &str, zxid: i64) {
        if let Some((pp, _)) = split(path) {
            if let Some(mut parent) = self.view(stage, tree, pp) {
                parent.num_children -= 1;
                parent.stat.pzxid = zxid;
                stage.nodes.insert(pp.to_owned(), Some(parent));
            }
        }
        stage.nodes.insert(path.to_owned(), None);
    }

    fn delete(
        &mut self,
        stage: &mut Stage,
        tree: &DataTree,
        session: i64,
        auth: &AuthInfo,
        zxid: i64,
        d: &DeleteRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.session_check(session)?;
        if !d.path.contains('/') || d.path.contains('\0') || RESERVED.contains(&d.path.as_str()) {
            return Err(ErrorCode::BadArguments);
        }
        let (pp, _) = split(&d.path).ok_or(ErrorCode::BadArguments)?;
        let parent = self.view(stage, tree, pp).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(&parent, perms::DELETE, auth) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.view(stage, tree, &d.path).ok_or(ErrorCode::NoNode)?;
        if d.version != -1 && d.version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.stage_delete(stage, tree, &d.path, zxid);
        Ok(TxnOp::Delete {
            path: d.path.clone(),
        })
    }

    fn set_data(
        &mut self,
        stage: &mut Stage,
        tree: &DataTree,
        session: i64,
        auth: &AuthInfo,
        s: &SetDataRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.session_check(session)?;
        validate(&s.path).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.view(stage, tree, &s.path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(&node, perms::WRITE, auth) {
            return Err(ErrorCode::NoAuth);
        }
        let new_len = s.data.as_ref().map_or(0, |d| d.len()) as i64;
        if self.cfg.enforce_quota && tree.quota_exceeded(&s.path, 0, new_len - node.data_len) {
            return Err(ErrorCode::QuotaExceeded);
        }
        if s.version != -1 && s.version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        node.stat.version = node.stat.version.wrapping_add(1);
        node.data_len = new_len;
        let version = node.stat.version;
        stage.nodes.insert(s.path.clone(), Some(node));
        Ok(TxnOp::SetData {
            path: s.path.clone(),
            data: s.data.clone(),
            version,
        })
    }

    fn set_acl(
        &mut self,
        stage: &mut Stage,
        tree: &DataTree,
        session: i64,
        auth: &AuthInfo,
        s: &SetAclRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.session_check(session)?;
        validate(&s.path).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fixup(&s.acl, auth, self.cfg.schemes())?;
        let mut node = self.view(stage, tree, &s.path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(&node, perms::ADMIN, auth) {
            return Err(ErrorCode::NoAuth);
        }
        if s.version != -1 && s.version != node.stat.aversion {
            return Err(ErrorCode::BadVersion);
        }
        node.stat.aversion = node.stat.aversion.wrapping_add(1);
        node.acl = acl.clone();
        let version = node.stat.aversion;
        stage.nodes.insert(s.path.clone(), Some(node));
        Ok(TxnOp::SetAcl {
            path: s.path.clone(),
            acl,
            version,
        })
    }

    fn check(
        &self,
        stage: &mut Stage,
        tree: &DataTree,
        auth: &AuthInfo,
        c: &CheckVersionRequest,
    ) -> Result<TxnOp, ErrorCode> {
        validate(&c.path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.view(stage, tree, &c.path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(&node, perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        if c.version != -1 && c.version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        Ok(TxnOp::Check {
            path: c.path.clone(),
            version: c.version,
        })
    }
}

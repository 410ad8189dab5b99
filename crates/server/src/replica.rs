//! The core as a member of an ensemble: it drives the replication core (`paddock_zab::Node`)
//! and carries out its actions — peer messages through `peer`, disk orders through the log
//! thread, committed transactions applied to the tree.
//!
//! Writes: the leader prepares every write (its own clients' and those its learners forward)
//! under the zxid the replication core will stamp on its proposal (`stamp`: the one counter). A follower or observer forwards its clients' writes as requests
//! (`forward::Forward`) and answers them when their transaction is applied, found by session
//! and xid. Each session's replies keep their order through the session's queue.

use crate::core::{Core, Origin};
use crate::forward::Forward;
use crate::log::DiskOp;
use crate::peer::Peers;
use bytes::Bytes;
use paddock_proto::{ErrorCode, PathRequest, Record, Request};
use paddock_tree::{AuthInfo, Stamp, Txn, TxnOp};
use paddock_zab::{Action, Event, LearnerMsg, Message, Node, RoleKind, Zxid};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, warn};

/// Milliseconds per tick of the replication core's clock: election re-sends, heartbeats and
/// the init/sync limits count in these, finer than tickTime so that a failover takes tens of
/// milliseconds, not seconds.
pub const ZAB_TICK_MS: u64 = 20;

/// The key of a session's createSession in the follower's wait list (its cxid is 0, which a
/// client's own request may also use).
const CREATE_SESSION_XID: i32 = i32::MIN;

/// Ensemble state of the core.
pub struct Replica {
    pub node: Node,
    pub peers: Peers,
    /// Whether clients are being served (the node is an established leader or an up-to-date
    /// learner).
    pub serving: bool,
    pub role: RoleKind,
    /// Disk orders for the log thread, sent with the next flush.
    pub disk: Vec<DiskOp>,
    /// Forwarded writes waiting for their transaction: (session, xid) to origin keys.
    pub remote: std::collections::HashMap<(i64, i32), VecDeque<i64>>,
    /// Keys for origins that have no zxid yet (forwarded writes, syncs): negative, so they
    /// never meet a zxid.
    pub next_key: i64,
    /// Sessions of this server's clients touched since the last tick (reported to the leader).
    pub touched: std::collections::HashSet<i64>,
    /// On the leader: which server each session was last created or resumed at.
    pub owners: std::collections::HashMap<i64, u64>,
    /// When this server last stopped serving (read-only mode starts a while after).
    pub not_serving_since: Instant,
    /// A server with no `server.N` lines: a one-voter ensemble with no peer ports, which the
    /// four-letter words call standalone.
    pub standalone: bool,
    /// Transactions this server holds decoded (its recovered log, its own proposals), in
    /// zxid order: applied from here rather than decoded again from their payload.
    decoded: VecDeque<Txn>,
    /// Learners' writes handed over by the replication core, prepared once its current
    /// action loop is done.
    forwarded: VecDeque<(u64, u64, Bytes)>,
    /// Set while the actions of a step are carried out.
    stepping: bool,
    /// The buffer a step's actions are taken into (kept, so steps allocate none).
    actions: Vec<Action>,
}

impl Replica {
    pub fn new(node: Node, peers: Peers, standalone: bool) -> Replica {
        Replica {
            standalone,
            decoded: VecDeque::new(),
            forwarded: VecDeque::new(),
            stepping: false,
            actions: Vec::new(),
            node,
            peers,
            serving: false,
            role: RoleKind::Looking,
            disk: Vec::new(),
            remote: Default::default(),
            next_key: 0,
            touched: Default::default(),
            owners: Default::default(),
            not_serving_since: Instant::now(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == RoleKind::Leading
    }

    /// Keeps a decoded transaction for when it is applied (zxids only grow here: anything
    /// at or above it is stale, a history that was replaced).
    pub fn remember(&mut self, txn: Txn) {
        while self.decoded.back().is_some_and(|t| t.zxid >= txn.zxid) {
            self.decoded.pop_back();
        }
        self.decoded.push_back(txn);
    }

    /// The decoded transaction with this zxid, if kept; drops the ones before it (never to be
    /// applied now). A zxid names one transaction (one leader per epoch), so a kept one is
    /// the one the replication core commits.
    fn recall(&mut self, zxid: i64) -> Option<Txn> {
        while self.decoded.front().is_some_and(|t| t.zxid < zxid) {
            self.decoded.pop_front();
        }
        if self.decoded.front().is_some_and(|t| t.zxid == zxid) {
            return self.decoded.pop_front();
        }
        None
    }

    /// Forgets every kept transaction (a snapshot from the leader replaced the history).
    fn forget_decoded(&mut self) {
        self.decoded.clear();
    }
}

/// Encodes a transaction as the replication core carries it: exactly its log record.
pub fn txn_payload(txn: &Txn) -> Bytes {
    // Room for a small write's record (a create with 100 bytes of data is about 200).
    let mut rec = Vec::with_capacity(320);
    crate::storage::txn_log::encode_records(std::slice::from_ref(txn), &mut rec);
    Bytes::from(rec)
}

fn decode_payload(payload: &[u8]) -> Option<Txn> {
    payload
        .get(8..)
        .and_then(|b| paddock_tree::codec::decode_txn(b).ok())
}

impl Core {
    /// Whether this server takes requests from clients now.
    pub(crate) fn serving(&self) -> bool {
        self.replica.serving
    }

    /// Whether writes are prepared here (the ensemble's leader; a standalone server leads its
    /// one-voter ensemble).
    pub(crate) fn prepares(&self) -> bool {
        self.replica.is_leader()
    }

    /// The stamp of the next write prepared here: the zxid the replication core will give
    /// its proposal (the one counter) and the time. None if this server cannot propose now.
    /// Every write prepared under a stamp is proposed in the same step, so the two agree.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        let next = self.replica.node.next_zxid()?;
        Some(Stamp {
            zxid: next.0 as i64,
            time: crate::core::now_ms(),
        })
    }

    /// Hands a transaction prepared on the leader to the replication core. The transaction
    /// itself is kept, so applying it needs no decoding of what was just encoded.
    pub(crate) fn propose(&mut self, txn: Txn) {
        let payload = txn_payload(&txn);
        let request_id = txn.zxid as u64;
        self.replica.remember(txn);
        self.zab_step(Event::ClientWrite {
            request_id,
            payload,
        });
    }

    fn new_key(&mut self) -> i64 {
        let r = &mut self.replica;
        r.next_key -= 1;
        r.next_key
    }

    /// A follower's client write: forwarded to the leader, answered when it is applied here.
    pub(crate) fn forward(&mut self, sid: i64, xid: i32, fwd: Forward, origin: Origin) {
        let key = self.new_key();
        self.await_reply(key, origin, Some(sid));
        let wait_xid = if matches!(fwd, Forward::CreateSession { .. }) {
            CREATE_SESSION_XID
        } else {
            xid
        };
        self.replica
            .remote
            .entry((sid, wait_xid))
            .or_default()
            .push_back(key);
        self.zab_step(Event::ClientWrite {
            request_id: key as u64,
            payload: fwd.encode(),
        });
    }

    /// A client's sync(): answered once this server has everything the leader had committed
    /// when the sync reached it.
    pub(crate) fn start_sync(
        &mut self,
        sid: i64,
        conn: crate::conn_shared::ConnId,
        xid: i32,
        path: String,
        arrived: Instant,
    ) {
        let key = self.new_key();
        let origin = Origin::Sync {
            conn,
            session: sid,
            xid,
            path,
            arrived,
        };
        self.await_reply(key, origin, Some(sid));
        self.zab_step(Event::ClientSync {
            request_id: key as u64,
        });
    }

    /// Which origin waits for an applied transaction: by zxid where it was prepared here, by
    /// session and xid where it was forwarded.
    pub(crate) fn origin_key(&mut self, txn: &Txn) -> i64 {
        let r = &mut self.replica;
        if r.is_leader() {
            return txn.zxid;
        }
        let xid = if matches!(txn.op, TxnOp::CreateSession { .. }) {
            CREATE_SESSION_XID
        } else {
            txn.cxid
        };
        let Some(q) = r.remote.get_mut(&(txn.session_id, xid)) else {
            return txn.zxid;
        };
        let key = q.pop_front().unwrap_or(txn.zxid);
        if q.is_empty() {
            r.remote.remove(&(txn.session_id, xid));
        }
        key
    }

    /// Feeds the replication core one event and carries out what it asks, in order.
    ///
    /// No step runs inside another's action loop: a learner's forwarded writes, whose
    /// preparation proposes (a step), wait until the loop is done. Otherwise the inner step's
    /// actions would run before the rest of the outer step's, out of the order the replication
    /// core gave them.
    pub(crate) fn zab_step(&mut self, ev: Event) {
        debug_assert!(
            !self.replica.stepping,
            "a replication step inside another's action loop"
        );
        self.replica.node.step(ev);
        self.carry_out_actions();
    }

    /// Carries out the actions the replication core has ready, in order, then prepares the
    /// learners' writes they handed over.
    fn carry_out_actions(&mut self) {
        let r = &mut self.replica;
        let mut actions = std::mem::take(&mut r.actions);
        r.node.take_actions_into(&mut actions);
        r.stepping = true;
        for a in actions.drain(..) {
            self.zab_action(a);
        }
        self.replica.actions = actions;
        self.replica.stepping = false;
        self.check_serving();
        while let Some((from, request_id, payload)) = self.replica.forwarded.pop_front() {
            self.prepare_forwarded(from, request_id, &payload);
        }
    }

    fn zab_action(&mut self, a: Action) {
        match a {
            Action::Send { to, msg } => self.replica.peers.send(to, msg),
            Action::AppendLog { seq, txns } => {
                let r = &mut self.replica;
                let first_zxid = txns.first().map_or(0, |t| t.zxid.0 as i64);
                let bytes: usize = txns.iter().map(|t| t.payload.len()).sum();
                self.logged_since_snapshot += bytes as u64;
                // Consecutive appends share one write.
                if let Some(DiskOp::Append {
                    seq: last_seq,
                    records,
                    ..
                }) = r.disk.last_mut()
                {
                    for t in &txns {
                        records.extend_from_slice(&t.payload);
                    }
                    *last_seq = seq;
                } else {
                    let mut records = Vec::with_capacity(bytes);
                    for t in &txns {
                        records.extend_from_slice(&t.payload);
                    }
                    r.disk.push(DiskOp::Append {
                        seq,
                        records,
                        first_zxid,
                    });
                }
            }
            Action::TruncateLog { seq, after } => {
                info!(after = %after, "truncating the log to the leader's history");
                self.replica.disk.push(DiskOp::Truncate {
                    seq,
                    after: after.0 as i64,
                });
            }
            Action::PersistEpochs {
                seq,
                accepted,
                current,
            } => self.replica.disk.push(DiskOp::Epochs {
                seq,
                accepted,
                current,
            }),
            Action::InstallSnapshot { seq, zxid, data } => self.install_snapshot(seq, zxid, &data),
            Action::SendSnapshot { to, conn, zxid } => {
                if self.tree.last_zxid() != zxid.0 as i64 {
                    error!(want = %zxid, have = format_args!("0x{:x}", self.tree.last_zxid()), "snapshot for a learner is not at the point asked");
                }
                let image = crate::storage::snapshot::image(&self.tree, self.dbid);
                info!(learner = to, %zxid, bytes = image.len(), "sending a snapshot to a learner");
                self.replica.peers.send(
                    to,
                    Message::Learner {
                        conn,
                        msg: LearnerMsg::Snap {
                            zxid,
                            data: Bytes::from(image),
                        },
                    },
                );
            }
            Action::SendLogRange {
                to,
                conn,
                after,
                through,
            } => self.send_log_range(to, conn, after, through),
            Action::Apply { txn } => match self
                .replica
                .recall(txn.zxid.0 as i64)
                .or_else(|| decode_payload(&txn.payload))
            {
                Some(t) if t.zxid == txn.zxid.0 as i64 => self.apply(t),
                _ => {
                    // Every replica would stop here: better than diverging.
                    error!(zxid = %txn.zxid, "a committed transaction does not decode; stopping");
                    std::process::exit(70);
                }
            },
            Action::RoleChanged { role, leader } => {
                info!(?role, leader, "ensemble role changed");
                self.replica.role = role;
                // A server that changes role stops serving until it is in step again.
                self.check_serving();
            }
            Action::WriteRejected { request_id, reason } => {
                let key = request_id as i64;
                warn!(?reason, "write not taken by the ensemble");
                self.fail_origin(key);
            }
            Action::SyncDone { request_id } => {
                let key = request_id as i64;
                if let Some(Origin::Sync {
                    conn,
                    session,
                    xid,
                    path,
                    arrived,
                }) = self.origins.remove(&key)
                {
                    let f = crate::core::frame(xid, self.tree.last_zxid(), 0, |b| {
                        PathRequest { path }.encode(b)
                    });
                    let done = crate::core::Done {
                        conn,
                        frame: f,
                        arrived,
                        is_reply: true,
                        close_after: false,
                    };
                    self.complete_write(session, key, done, false);
                }
            }
            Action::SyncFailed { request_id } => self.fail_origin(request_id as i64),
            Action::SessionOwner { session_id, server } => {
                self.replica.owners.insert(session_id as i64, server);
            }
            Action::SessionsTouched { sessions, .. } => {
                for s in sessions {
                    self.sessions.touch(s as i64);
                }
            }
            Action::Forwarded {
                from,
                request_id,
                payload,
            } => self
                .replica
                .forwarded
                .push_back((from, request_id, payload)),
        }
    }

    /// A write that will never be answered: the client loses its connection and learns the
    /// outcome by reading, as with any connection loss.
    fn fail_origin(&mut self, key: i64) {
        let conn = match self.origins.remove(&key) {
            Some(Origin::Client { conn, .. })
            | Some(Origin::Connect { conn, .. })
            | Some(Origin::Sync { conn, .. }) => conn,
            _ => return,
        };
        self.close_conn(conn);
    }

    /// The leader prepares a learner's forwarded write and proposes it at once.
    fn prepare_forwarded(&mut self, from: u64, request_id: u64, payload: &[u8]) {
        let fwd = match Forward::decode(payload) {
            Ok(f) => f,
            Err(e) => match Forward::write_header(payload) {
                // Its follower waits on this session and xid: answer with an error
                // transaction, as for a client frame that does not decode.
                Some((session, xid)) => {
                    warn!(from, session = format_args!("0x{session:x}"), xid, error = %e,
                        "a forwarded write does not decode; refusing it with MARSHALLINGERROR");
                    Forward::Undecodable { session, xid }
                }
                None => {
                    error!(from, request_id, error = %e, bytes = payload.len(),
                        "a forwarded message does not decode and names no session; nothing can answer it");
                    return;
                }
            },
        };
        let Some(at) = self.stamp() else {
            // No longer leading: the learner's write is lost with the leadership, and its
            // client learns so from its connection.
            return;
        };
        let txn = match fwd {
            Forward::CreateSession { session, timeout } => {
                self.replica.owners.insert(session, from);
                self.prep.create_session(at, session, timeout)
            }
            Forward::Undecodable { session, xid } => {
                self.prep
                    .error_txn(at, session, xid, ErrorCode::MarshallingError)
            }
            Forward::Write {
                session,
                xid,
                auth,
                request,
            } => {
                let closing = self.prep.is_closing(session);
                let known = self.tree.sessions().contains_key(&session);
                if closing || !known {
                    // Its follower still waits on this xid: answer with a transaction that
                    // changes nothing.
                    self.prep
                        .error_txn(at, session, xid, ErrorCode::SessionExpired)
                } else if self.session_moved(session, Some(from)) {
                    self.prep
                        .error_txn(at, session, xid, ErrorCode::SessionMoved)
                } else {
                    let auth: Arc<AuthInfo> = Arc::new(auth);
                    self.prep
                        .prep(&self.tree, at, session, xid, &auth, &request)
                }
            }
        };
        let payload = txn_payload(&txn);
        self.zab_step(Event::ClientWrite {
            request_id: 0,
            payload,
        });
    }

    fn install_snapshot(&mut self, seq: u64, zxid: Zxid, data: &[u8]) {
        let (tree, _) = match crate::storage::snapshot::parse(
            data,
            std::path::Path::new("<snapshot from the leader>"),
        ) {
            Ok(t) => t,
            Err(e) => {
                error!(error = %e, "the leader's snapshot does not load; stopping");
                std::process::exit(70);
            }
        };
        info!(%zxid, nodes = tree.node_count(), "installing the leader's snapshot");
        self.replica.forget_decoded();
        self.abort_snapshot();
        self.tree = tree;
        self.prep.reset();
        self.watches = Default::default();
        self.rebuild_sessions();
        let image = crate::storage::snapshot::image(&self.tree, self.dbid);
        self.since_snapshot = 0;
        self.logged_since_snapshot = 0;
        self.replica.disk.push(DiskOp::Snapshot {
            seq,
            zxid: zxid.0 as i64,
            image,
        });
    }

    /// The session table holds every session of the tree (any server may be asked to resume
    /// one, and the leader expires them all), each with a fresh deadline.
    pub(crate) fn rebuild_sessions(&mut self) {
        self.forget_untracked_sessions();
        let known: Vec<(i64, i32)> = self.tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        for (id, timeout) in known {
            if self.sessions.get(id).is_some() {
                self.sessions.touch(id);
            } else {
                self.sessions.restore(id, timeout);
            }
        }
    }

    /// A DIFF's older part, from the on-disk log: read on a blocking thread (never on the core
    /// task) and streamed into the learner's connection, where everything the core sends it
    /// afterwards (the newer part, NEWLEADER, proposals) waits behind it.
    fn send_log_range(&mut self, to: u64, conn: u64, after: Zxid, through: Zxid) {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        self.replica.peers.send_stream(to, rx);
        let dir = crate::storage::log_dir(&self.cfg.data_log_dir);
        let fs = self.fs.clone();
        tokio::task::spawn_blocking(move || {
            let sent = read_log_range(&fs, &dir, after, through, |txn| {
                tx.blocking_send(Message::Learner {
                    conn,
                    msg: LearnerMsg::Proposal { txn },
                })
                .is_ok()
            });
            match sent {
                Ok(sent) => {
                    info!(learner = to, %after, %through, sent, "sent a DIFF from the on-disk log")
                }
                // The learner finds the hole and leaves; by then the replication core knows
                // what the log holds and sends a SNAP.
                Err(e) => error!(learner = to, %after, %through, error = %e,
                    "cannot read the log for a learner's DIFF"),
            }
        });
    }

    /// Starts or stops serving clients as the node comes into or falls out of step.
    fn check_serving(&mut self) {
        let r = &mut self.replica;
        let now = r.node.is_serving();
        if now == r.serving {
            return;
        }
        r.serving = now;
        let leader = r.is_leader();
        let role = r.role;
        if !now {
            r.not_serving_since = Instant::now();
        }
        if now {
            if let Some(tx) = self.first_serving.take() {
                let _ = tx.send(());
            }
            // Read-only clients go (they reconnect and find a read-write server), and so do
            // their sessions, which were this server's alone.
            self.close_all_conns();
            info!(
                ?role,
                zxid = format_args!("0x{:x}", self.tree.last_zxid()),
                "serving clients"
            );
            if leader {
                // A new leader gives every session a full timeout from now: no mass expiry
                // because the old leader's view of liveness is gone.
                self.rebuild_sessions();
            } else {
                self.forget_untracked_sessions();
            }
        } else {
            info!("not serving clients until the ensemble is in step again");
            self.drop_clients();
        }
    }

    /// Closes every client connection and forgets what waited on this server: the clients
    /// reconnect (to this or another server) and keep their sessions.
    fn drop_clients(&mut self) {
        self.close_all_conns();
        self.queues.clear();
        self.origins.clear();
        self.prep.reset();
        self.replica.remote.clear();
        self.replica.touched.clear();
        // Sessions never applied (their createSession was lost with the leader) are gone.
        self.sessions.retain(|_, s| s.live);
    }

    fn close_all_conns(&mut self) {
        let conns: Vec<_> = self.conns.keys().copied().collect();
        for c in conns {
            self.close_conn(c);
        }
    }

    /// Drops the sessions the tree does not hold (read-only ones, or ones never applied).
    fn forget_untracked_sessions(&mut self) {
        let tree = self.tree.sessions();
        self.sessions.retain(|id, _| tree.contains_key(&id));
    }

    /// On the leader: whether a write for `session` from server `from` (None: this server)
    /// comes from a server the session has moved away from. A session with no known owner
    /// (a new leader has not seen it resumed yet) takes its first writer as owner.
    pub(crate) fn session_moved(&mut self, session: i64, from: Option<u64>) -> bool {
        let r = &mut self.replica;
        let from = from.unwrap_or_else(|| r.node.id());
        *r.owners.entry(session).or_insert(from) != from
    }

    /// A client resumed a session here: the leader learns this server owns it now
    /// (`Action::SessionOwner`, on the leader itself or from a learner's message).
    pub(crate) fn session_resumed(&mut self, session: i64) {
        self.zab_step(Event::SessionResumed {
            session_id: session as u64,
        });
    }

    /// The replication core's clock, and the touches of this server's sessions.
    pub(crate) fn zab_tick(&mut self) {
        let r = &mut self.replica;
        let touched: Vec<i64> = if r.is_leader() {
            Vec::new()
        } else {
            r.touched.drain().collect()
        };
        for s in touched {
            self.zab_step(Event::SessionTouched {
                session_id: s as u64,
            });
        }
        self.zab_step(Event::Tick);
    }

    /// Whether this server serves read-only clients now: `readonlymode.enabled`, out of step
    /// with its ensemble for a while (as ZooKeeper, max(2 s, tickTime): a quick failover
    /// does not hand out stale reads).
    pub(crate) fn read_only_active(&self) -> bool {
        let r = &self.replica;
        let wait = std::time::Duration::from_millis((self.cfg.tick_time as u64).max(2000));
        self.cfg.read_only_mode && !r.serving && r.not_serving_since.elapsed() >= wait
    }

    /// A request of a read-only session: reads as usual, writes and sync refused with
    /// NOTREADONLY, closeSession ends the (local) session.
    pub(crate) fn read_only_request(
        &mut self,
        sid: i64,
        conn: crate::conn_shared::ConnId,
        xid: i32,
        req: Result<Request, ErrorCode>,
        auth: Arc<AuthInfo>,
        arrived: Instant,
    ) {
        let req = match req {
            Ok(Request::CloseSession) => {
                let f = crate::core::frame(xid, self.tree.last_zxid(), 0, |_| {});
                if let Some(c) = self.conns.get(&conn) {
                    c.out.reply(f);
                }
                self.close_conn(conn);
                self.end_session(sid);
                return;
            }
            Ok(r) if crate::core::is_write(&r) || matches!(r, Request::Sync(_)) => {
                Err(ErrorCode::NotReadOnly)
            }
            Err(ErrorCode::MarshallingError) => Err(ErrorCode::NotReadOnly),
            other => other,
        };
        self.enqueue_read(sid, conn, xid, req, auth, arrived);
    }

    /// The role as four-letter words name it.
    pub(crate) fn mode_name(&self) -> &'static str {
        if self.read_only_active() {
            return "read-only";
        }
        match self.replica.role {
            RoleKind::Leading if self.replica.standalone => "standalone",
            RoleKind::Leading => "leader",
            RoleKind::Following => "follower",
            RoleKind::Observing => "observer",
            RoleKind::Looking => "looking",
        }
    }
}

impl Core {
    /// The requests that go through the replication core rather than the read path: sync()
    /// everywhere, and every write on a follower or observer. True if handled here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ensemble_request(
        &mut self,
        sid: i64,
        conn: crate::conn_shared::ConnId,
        xid: i32,
        opcode: i32,
        req: &Result<Request, ErrorCode>,
        auth: &Arc<AuthInfo>,
        arrived: Instant,
    ) -> bool {
        match req {
            Ok(Request::Sync(p)) => {
                self.start_sync(sid, conn, xid, p.path.clone(), arrived);
                true
            }
            _ if self.prepares() => false,
            Ok(r) if crate::core::is_write(r) => {
                let fwd = Forward::Write {
                    session: sid,
                    xid,
                    auth: (**auth).clone(),
                    request: r.clone(),
                };
                let origin = Origin::Client {
                    conn,
                    xid,
                    req: r.clone(),
                    arrived,
                };
                self.forward(sid, xid, fwd, origin);
                true
            }
            Err(ErrorCode::MarshallingError) if paddock_proto::op::is_write(opcode) => {
                let origin = Origin::Client {
                    conn,
                    xid,
                    req: Request::Ping,
                    arrived,
                };
                self.forward(sid, xid, Forward::Undecodable { session: sid, xid }, origin);
                true
            }
            _ => false,
        }
    }
}

impl Core {
    /// Carries out the replication core's first actions (its election notifications).
    pub fn start_replica(&mut self) {
        self.carry_out_actions();
    }
}

/// Reads the logged transactions in `(after, through]` from the on-disk log, in order, handing
/// each to `send` (which returns false to stop: the connection is gone). Returns how many were
/// sent.
fn read_log_range(
    fs: &crate::storage::fs::Fs,
    dir: &std::path::Path,
    after: Zxid,
    through: Zxid,
    mut send: impl FnMut(paddock_zab::Txn) -> bool,
) -> Result<u64, crate::storage::StorageError> {
    let segs = crate::storage::list_by_zxid(fs, dir, "log.")?;
    let mut sent = 0u64;
    for (i, (first, path)) in segs.iter().enumerate() {
        if let Some((next_first, _)) = segs.get(i + 1) {
            if *next_first <= after.0 as i64 {
                continue;
            }
        }
        if *first > through.0 as i64 {
            break;
        }
        let r = crate::storage::txn_log::read_segment(fs, path, i + 1 == segs.len())?;
        for t in r.txns {
            if t.zxid > after.0 as i64 && t.zxid <= through.0 as i64 {
                let txn = paddock_zab::Txn {
                    zxid: Zxid(t.zxid as u64),
                    payload: txn_payload(&t),
                };
                if !send(txn) {
                    return Ok(sent);
                }
                sent += 1;
            }
        }
    }
    Ok(sent)
}

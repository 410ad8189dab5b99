//! The core as a member of its ensemble: what it does with the replication driver's output
//! (applying committed transactions, answering forwarded writes and syncs, installing a
//! leader's snapshot), forwarding a learner's writes, preparing the learners' writes on the
//! leader, and starting or stopping service as the node comes into or falls out of step.

use super::frames;
use super::order::{Done, Origin};
use super::Core;
use crate::forward::Forward;
use crate::log::DiskOp;
use crate::replica::{read_log_range, txn_payload, Effect};
use bytes::Bytes;
use paddock_proto::{op, ErrorCode, PathRequest, Record, Request};
use paddock_tree::{AuthInfo, Stamp, Txn};
use paddock_zab::{Action, Event, LearnerMsg, Message, RoleKind, Zxid};
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, warn};

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

    /// Whether new sessions are local (`localSessionsEnabled`). As in ZooKeeper, only in an
    /// ensemble: a standalone server's sessions are all its own anyway.
    pub(crate) fn local_sessions(&self) -> bool {
        self.cfg.local_sessions && !self.replica.standalone
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
        let mark = self.tree.zk_digest_latest();
        self.replica.propose(txn, mark);
        self.carry_out_actions();
    }

    /// A follower's client write: forwarded to the leader, answered when it is applied here.
    pub(crate) fn forward(&mut self, sid: i64, xid: i32, fwd: Forward, origin: Origin) {
        self.forward_in(sid, xid, fwd, origin, Some(sid));
    }

    /// As `forward`, taking its place in `ordered_in`'s reply order, or in none.
    fn forward_in(
        &mut self,
        sid: i64,
        xid: i32,
        fwd: Forward,
        origin: Origin,
        ordered_in: Option<i64>,
    ) {
        let key = self.replica.new_key();
        self.await_reply(key, origin, ordered_in);
        let create = matches!(fwd, Forward::CreateSession { .. });
        let payload = fwd.encode();
        self.replica
            .wait_for_remote(sid, xid, create, key, payload.clone());
        self.zab_step(Event::ClientWrite {
            request_id: key as u64,
            payload,
        });
    }

    /// A local session about to create an ephemeral node becomes a global one first
    /// (`localSessionsUpgradingEnabled`), as in ZooKeeper: its createSession, with the timeout
    /// and password it has, goes to the leader ahead of the write, on the same ordered road,
    /// so the leader knows the session when it prepares the write. Until that transaction is
    /// applied here the session is `Upgrading`: later writes go as a global session's, and no
    /// second upgrade is sent. Nobody waits for the createSession's own reply.
    pub(crate) fn upgrade_session(&mut self, sid: i64) {
        let Some(s) = self.sessions.get(sid) else {
            return;
        };
        let (timeout, password) = (s.timeout, s.password);
        self.sessions
            .set_scope(sid, crate::session::Scope::Upgrading);
        info!(
            session = format_args!("0x{sid:x}"),
            "upgrading a local session to a global one"
        );
        if !self.prepares() {
            let fwd = Forward::CreateSession {
                session: sid,
                timeout,
                password,
            };
            self.forward_in(sid, 0, fwd, Origin::Internal, None);
            return;
        }
        // The leader notes itself as the session's owner before the stamp, as for a new
        // session: a stamp is good only until the next step.
        self.session_resumed(sid);
        let Some(at) = self.stamp() else {
            // Not leading after all: the write that follows fails the same way.
            return;
        };
        let txn = self.prep.create_session(at, sid, timeout, password);
        self.submit(txn, Origin::Internal, None);
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
        let origin = Origin::Sync {
            conn,
            session: sid,
            xid,
            path,
            arrived,
        };
        self.sync_then(sid, origin);
    }

    /// A linearizable read (`linearizableReads`): a sync first, the read when it is done. The
    /// sync completes once this server has everything the leader had committed when the sync
    /// reached it, and the leader has confirmed with a quorum that it still led then, so the
    /// read sees every write acknowledged before it arrived. It keeps its place in its
    /// session's order as a sync does.
    pub(crate) fn start_linearizable_read(
        &mut self,
        sid: i64,
        conn: crate::conn_shared::ConnId,
        xid: i32,
        req: Request,
        auth: Arc<AuthInfo>,
        arrived: Instant,
    ) {
        let origin = Origin::Read {
            conn,
            session: sid,
            xid,
            req,
            auth,
            arrived,
        };
        self.sync_then(sid, origin);
    }

    /// Asks the replication core for a sync; `origin` takes its place in the session's reply
    /// order and is answered when the sync is done (`Effect::SyncDone`).
    fn sync_then(&mut self, sid: i64, origin: Origin) {
        let key = self.replica.new_key();
        self.await_reply(key, origin, Some(sid));
        // Batched: one sync in flight per server (`barrier`).
        let replica = &mut self.replica;
        if let Some(b) = self.barrier.join(key, || replica.new_key()) {
            self.zab_step(Event::ClientSync {
                request_id: b as u64,
            });
        }
    }

    /// A sync that `key` waited for is done: a client's sync is answered, a linearizable read
    /// runs.
    fn sync_done(&mut self, key: i64) {
        match self.order.take_origin(key) {
            Some(Origin::Sync {
                conn,
                session,
                xid,
                path,
                arrived,
            }) => {
                let f = frames::frame(xid, self.tree.last_zxid(), 0, |b| {
                    PathRequest { path }.encode(b)
                });
                let done = Done {
                    conn,
                    frame: f,
                    arrived,
                    is_reply: true,
                    op: op::SYNC,
                    close_after: false,
                };
                self.complete_write(session, key, done, false);
            }
            Some(Origin::Read {
                conn,
                session,
                xid,
                req,
                auth,
                arrived,
            }) => {
                let done = self.read(session, conn, xid, Ok(req), &auth, arrived);
                self.complete_write(session, key, done, false);
            }
            _ => {}
        }
    }

    /// Feeds the replication core one event and carries out what it asks, in order.
    ///
    /// No step runs inside another's action loop: a learner's forwarded writes, whose
    /// preparation proposes (a step), wait until the loop is done. Otherwise the inner step's
    /// actions would run before the rest of the outer step's, out of the order the replication
    /// core gave them.
    pub(crate) fn zab_step(&mut self, ev: Event) {
        debug_assert!(
            !self.replica.stepping(),
            "a replication step inside another's action loop"
        );
        self.replica.node.step(ev);
        self.carry_out_actions();
    }

    /// Carries out the actions the replication core has ready, in order (the driver's own,
    /// and the effects it hands back), then prepares the learners' writes they handed over.
    pub(crate) fn carry_out_actions(&mut self) {
        let mut actions = self.replica.begin_actions();
        for a in actions.drain(..) {
            self.count_action(&a);
            if let Some(e) = self.replica.carry_out(a) {
                self.effect(e);
            }
        }
        self.replica.end_actions(actions);
        self.snapshots
            .schedule
            .logged(self.replica.take_logged_bytes());
        self.check_serving();
        while let Some((from, request_id, payload)) = self.replica.next_forwarded() {
            self.prepare_forwarded(from, request_id, &payload);
        }
        // A configuration applied in this step: the node and the peers take it now.
        self.take_membership();
        // The next batched sync, for what arrived while the last one was in flight.
        let replica = &mut self.replica;
        if let Some(b) = self.barrier.take_start(|| replica.new_key()) {
            self.zab_step(Event::ClientSync {
                request_id: b as u64,
            });
        }
        // After the learners' writes: a new leader proposes those its predecessor held
        // before its own clients' waiting requests.
        self.check_hold();
    }

    /// ZooKeeper's figures about the replication traffic and the roles, from the actions as
    /// they go by.
    fn count_action(&mut self, a: &Action) {
        let ev = &mut self.events;
        match a {
            Action::AppendLog { txns, .. } if self.replica.is_leader() => {
                ev.proposals += txns.len() as u64;
                for t in txns {
                    ev.proposal_size.record(t.payload.len());
                }
            }
            Action::Send {
                msg:
                    Message::Learner {
                        msg: LearnerMsg::Sync { .. },
                        ..
                    },
                ..
            } => ev.diff_syncs += 1,
            Action::SendSnapshot { .. } => ev.snap_syncs += 1,
            Action::RoleChanged { role, .. } => {
                let now = Instant::now();
                let was = self.replica.role;
                if *role == RoleKind::Looking {
                    ev.lookings += 1;
                } else if was == RoleKind::Looking && !self.replica.standalone {
                    // ZooKeeper's election_time: the time spent looking.
                    let took = now.duration_since(self.role_since).as_millis() as u64;
                    self.metrics.election_time.lock().record(took);
                }
                self.role_since = now;
                if *role != RoleKind::Leading {
                    self.restore.lost();
                }
            }
            _ => {}
        }
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Apply(txn, mark) => {
                self.apply(txn);
                if let Some(mark) = mark {
                    self.check_digest(mark);
                }
            }
            Effect::InstallSnapshot { seq, zxid, data } => self.install_snapshot(seq, zxid, data),
            Effect::SendSnapshot { to, conn, zxid } => self.send_snapshot(to, conn, zxid),
            Effect::SendLogRange {
                to,
                conn,
                after,
                through,
            } => self.send_log_range(to, conn, after, through),
            Effect::Failed { key } => self.fail_origin(key),
            Effect::Handover { taken_through } => self.handover_began(taken_through),
            Effect::ConfigActivated(payload) => self.config_activated(&payload),
            Effect::SyncDone { key } => {
                match self.barrier.finish(key) {
                    Some(riders) => {
                        for r in riders {
                            self.sync_done(r);
                        }
                    }
                    // Asked again under its own key after a handover (`Core::ask_again`).
                    None => self.sync_done(key),
                }
            }
            Effect::SessionsTouched(sessions) => {
                for s in sessions {
                    self.sessions.touch(s as i64);
                }
            }
        }
    }

    /// Sends a learner the tree as a snapshot image, built on a blocking thread that walks
    /// the shared tree between the core's rounds (the image is fuzzy from `zxid` on, as every
    /// snapshot; the learner replays what follows it) and streamed into the learner's
    /// connection, where what the core sends it afterwards waits behind it.
    fn send_snapshot(&mut self, to: u64, conn: u64, zxid: Zxid) {
        let have = self.tree.last_zxid();
        if have != zxid.0 as i64 {
            error!(want = %zxid, have = format_args!("0x{have:x}"), "snapshot for a learner is not at the point asked");
        }
        let sessions = crate::storage::snapshot::SessionTable::of(&self.tree);
        let (shared, nodes, dbid) = (self.tree.shared(), self.tree.node_count(), self.dbid);
        // Taken here, on the core: the walk is of this tree as of `have`.
        let (generation, mut cursor) = (shared.generation(), self.tree.snapshot_cursor());
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        self.replica.peers.send_stream(to, rx);
        tokio::task::spawn_blocking(move || {
            let image = crate::storage::snapshot::image_with(have, dbid, &sessions, nodes, |out| {
                shared.read_chunk(generation, |t| {
                    t.snapshot_chunk_encoded(&mut cursor, super::snapshots::WALK_CHUNK, out)
                })
            });
            let Some(image) = image else {
                // This server's tree was replaced (it is a learner now): the learner it was
                // for is gone with the leadership.
                warn!(
                    learner = to,
                    "snapshot for a learner abandoned: the tree was replaced"
                );
                return;
            };
            info!(learner = to, %zxid, bytes = image.len(), "sending a snapshot to a learner");
            let msg = Message::Learner {
                conn,
                msg: LearnerMsg::Snap {
                    zxid,
                    data: Bytes::from(image),
                },
            };
            let _ = tx.blocking_send(msg);
        });
    }

    /// A write that will never be answered: the client loses its connection and learns the
    /// outcome by reading, as with any connection loss.
    fn fail_origin(&mut self, key: i64) {
        if self.retry_when_serving(key) {
            // A planned handover: asked again of the new leader, under the same key.
            return;
        }
        if let Some(riders) = self.barrier.finish(key) {
            for r in riders {
                self.fail_origin(r);
            }
            return;
        }
        self.replica.forwarded_failed(key);
        let conn = match self.order.take_origin(key) {
            Some(Origin::Client { conn, .. })
            | Some(Origin::Connect { conn, .. })
            | Some(Origin::Sync { conn, .. })
            | Some(Origin::Read { conn, .. }) => conn,
            _ => return,
        };
        self.close_conn(conn);
    }

    /// The leader prepares a learner's forwarded write and proposes it at once.
    pub(crate) fn prepare_forwarded(&mut self, from: u64, request_id: u64, payload: &[u8]) {
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
            Forward::CreateSession {
                session,
                timeout,
                password,
            } => {
                self.replica.owners.insert(session, from);
                self.prep.create_session(at, session, timeout, password)
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
                local: true,
            } => {
                // A local session of the learner's: unknown here, never resumed elsewhere.
                self.prep_write(at, session, xid, &auth, &request, true)
            }
            Forward::Write {
                session,
                xid,
                auth,
                request,
                local: false,
            } => {
                let closing = self.prep.is_closing(session);
                // Known once applied, or once its createSession is prepared (a local session
                // upgrading sends its createSession right before the write that needs it).
                let known = self.tree.sessions().contains_key(&session)
                    || self.replica.owners.contains_key(&session);
                if closing || !known {
                    // Its follower still waits on this xid: answer with a transaction that
                    // changes nothing.
                    self.prep
                        .error_txn(at, session, xid, ErrorCode::SessionExpired)
                } else if self.session_moved(session, Some(from)) {
                    self.prep
                        .error_txn(at, session, xid, ErrorCode::SessionMoved)
                } else {
                    self.prep_write(at, session, xid, &auth, &request, false)
                }
            }
        };
        let payload = txn_payload(&txn);
        self.zab_step(Event::ClientWrite {
            request_id: 0,
            payload,
        });
    }

    /// Compares the leader's digest at an earlier zxid with this tree's at the same zxid
    /// (ZooKeeper compares one carried by every proposal). A difference means the trees
    /// diverged at or before that zxid: reported loudly, and serving goes on, as in
    /// ZooKeeper. A zxid this tree no longer remembers (it came by a snapshot) is not checked.
    fn check_digest(&mut self, mark: paddock_tree::ZxidDigest) {
        let Some(ours) = self.tree.zk_digest_at(mark.zxid) else {
            return;
        };
        self.events.digest_checks += 1;
        if ours != mark.digest {
            self.events.digest_mismatches += 1;
            error!(
                zxid = format_args!("0x{:x}", mark.zxid),
                ours,
                leader = mark.digest,
                mismatches = self.events.digest_mismatches,
                "this server's tree digest differs from the leader's at the same zxid: the trees \
                 diverged; compare `hash` on every server and replace this one's data \
                 (docs/operations.md)"
            );
        }
    }

    fn install_snapshot(&mut self, seq: u64, zxid: Zxid, data: Bytes) {
        if self.hold.is_some() {
            // Writes applied through a snapshot answer nobody, and watches go with the old
            // tree: the waiting clients reconnect as after any failover.
            info!("a snapshot from the new leader: dropping the clients that waited");
            self.drop_clients();
        }
        // Parsed by the transport as it arrived (peer.rs); parsing here is only a fallback
        // should that be missing.
        let parsed = match self.parsed_snapshot.take() {
            Some(p) if p.zxid == zxid => p.tree.map(|t| *t),
            _ => crate::storage::snapshot::parse(
                &data,
                std::path::Path::new("<snapshot from the leader>"),
            )
            .map(|(t, _)| t)
            .map_err(|e| e.to_string()),
        };
        let tree = match parsed {
            Ok(t) => t,
            Err(e) => {
                error!(error = %e, "the leader's snapshot does not load; stopping");
                std::process::exit(70);
            }
        };
        info!(%zxid, nodes = tree.node_count(), "installing the leader's snapshot");
        // Every walk of the old tree (a snapshot being written) stops.
        let old = self.tree.replace(tree);
        // Freeing a large tree walks all of it: not on the core task.
        tokio::task::spawn_blocking(move || drop(old));
        self.prep.reset();
        *self.watches.lock() = Default::default();
        self.publish_config();
        self.rebuild_sessions();
        self.snapshots.schedule.restart();
        // The leader's image is a snapshot file's contents already: logged as it came.
        self.replica.disk.push(DiskOp::Snapshot {
            seq,
            zxid: zxid.0 as i64,
            image: data,
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
                // A local session whose upgrade the leader's data holds: global now.
                self.sessions.set_scope(id, crate::session::Scope::Global);
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
            // From losing the ensemble to serving again (a one-voter ensemble elects itself
            // at start, which is no outage); and a learner's sync, from following to serving.
            if !r.standalone {
                let ev = &mut self.events;
                let took = r.not_serving_since.elapsed().as_millis() as u64;
                ev.unavailable_time.record(took);
                if leader {
                    ev.leader_unavailable_time.record(took);
                }
                let synced = self.role_since.elapsed().as_millis() as u64;
                match role {
                    RoleKind::Following => ev.follower_sync_time.record(synced),
                    RoleKind::Observing => ev.observer_sync_time.record(synced),
                    _ => {}
                }
            }
            if let Some(tx) = self.first_serving.take() {
                let _ = tx.send(());
            }
            // Read-only clients go (they reconnect and find a read-write server), and so do
            // their sessions, which were this server's alone. Not after a planned handover:
            // this server served read-write until it began, and its clients stay.
            let kept = self.hold.is_some();
            if !kept {
                self.close_all_conns();
            }
            info!(
                ?role,
                zxid = format_args!("0x{:x}", self.tree.last_zxid()),
                "serving clients"
            );
            if leader {
                // A new leader gives every session a full timeout from now: no mass expiry
                // because the old leader's view of liveness is gone.
                self.rebuild_sessions();
            } else if !kept {
                self.forget_untracked_sessions();
            }
        } else if self.replica.node.in_handover() {
            info!("not serving clients until the new leader is in step; they wait");
        } else {
            info!("not serving clients until the ensemble is in step again");
            self.drop_clients();
        }
    }

    /// Closes every client connection and forgets what waited on this server: the clients
    /// reconnect (to this or another server) and keep their sessions.
    pub(crate) fn drop_clients(&mut self) {
        self.hold = None;
        self.close_all_conns();
        self.order.clear();
        self.barrier.clear();
        self.prep.reset();
        self.replica.forget_waits();
        // Sessions never applied (their createSession was lost with the leader) are gone.
        self.sessions.retain(|_, s| s.live);
        // An upgrade that waited was lost with the leader too, unless it was applied.
        self.revert_lost_upgrades();
    }

    /// Local sessions whose upgrade has not been applied are local again: the createSession
    /// went with what waited on the old leader (if it was committed after all, applying it
    /// makes the session global).
    fn revert_lost_upgrades(&mut self) {
        use crate::session::Scope;
        let tree = self.tree.sessions();
        let lost: Vec<i64> = self
            .sessions
            .all()
            .into_iter()
            .filter(|(id, s, _)| s.scope == Scope::Upgrading && !tree.contains_key(id))
            .map(|(id, _, _)| id)
            .collect();
        for id in lost {
            self.sessions.set_scope(id, Scope::Local);
        }
    }

    fn close_all_conns(&mut self) {
        for c in self.conns.ids() {
            self.close_conn(c);
        }
    }

    /// Drops the sessions the tree does not hold (read-only ones, or ones never applied).
    /// Not while clients wait out a handover: their sessions' creation may still be on its
    /// way through the new leader.
    fn forget_untracked_sessions(&mut self) {
        if self.hold.is_some() {
            return;
        }
        let tree = self.tree.sessions();
        // Local sessions stay: they are this server's, whatever the leader's data says.
        self.sessions
            .retain(|id, s| tree.contains_key(&id) || s.scope != crate::session::Scope::Global);
    }

    /// On the leader: whether a write for `session` from server `from` (None: this server)
    /// comes from a server the session has moved away from. A session with no known owner
    /// (a new leader has not seen it resumed yet) takes its first writer as owner.
    pub(crate) fn session_moved(&mut self, session: i64, from: Option<u64>) -> bool {
        self.replica.session_moved(session, from)
    }

    /// A client resumed a session here: the leader learns this server owns it now
    /// (`Action::SessionOwner`, on the leader itself or from a learner's message).
    pub(crate) fn session_resumed(&mut self, session: i64) {
        self.zab_step(Event::SessionResumed {
            session_id: session as u64,
        });
    }

    /// Asks the replication core for a planned leadership transfer (`ydld`, `rqld`, the
    /// AdminServer's `transfer_leadership`, SIGTERM on a leader): what it said.
    pub(crate) fn transfer_leadership(
        &mut self,
        to: Option<u64>,
    ) -> Result<paddock_zab::TransferOutcome, String> {
        if self.replica.standalone {
            return Err("a standalone server has no one to hand leadership to".into());
        }
        self.replica.transfer = None;
        self.zab_step(Event::TransferLeadership { to });
        self.replica
            .transfer
            .take()
            .ok_or_else(|| "the replication core did not answer".into())
    }

    /// Whom a transfer asked of this server without a target goes to: from a leader, the best
    /// voter (`None`); from a follower, itself.
    pub(crate) fn default_transfer_target(&self) -> Option<u64> {
        (!self.replica.is_leader()).then(|| self.replica.node.id())
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
                if let Some(c) = self.conns.get(conn) {
                    c.out.reply(f);
                }
                self.close_conn(conn);
                self.end_session(sid);
                return;
            }
            // A read-only server cannot sync with a leader: no linearizable read either.
            Ok(r)
                if crate::core::is_write(&r)
                    || matches!(r, Request::Sync(_) | Request::Linearizable(_)) =>
            {
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
            Ok(Request::Linearizable(read)) => {
                let read = (**read).clone();
                self.start_linearizable_read(sid, conn, xid, read, auth.clone(), arrived);
                true
            }
            Ok(r) if self.cfg.linearizable_reads && r.reads_tree() => {
                self.start_linearizable_read(sid, conn, xid, r.clone(), auth.clone(), arrived);
                true
            }
            _ if self.prepares() => false,
            Ok(r) if crate::core::is_write(r) => {
                let fwd = Forward::Write {
                    session: sid,
                    xid,
                    auth: (**auth).clone(),
                    request: r.clone(),
                    local: self.sessions.scope(sid) == Some(crate::session::Scope::Local),
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

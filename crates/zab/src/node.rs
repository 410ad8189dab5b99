//! The node: one state machine for leader, follower and observer.

use crate::action::{Action, RoleKind};
use crate::config::Config;
use crate::election::Election;
use crate::event::Event;
use crate::leader::Leader;
use crate::learner::Learner;
use crate::log::Log;
use crate::message::Message;
use crate::zxid::{DiskSeq, Epoch, ServerId, Txn, Zxid};

/// Bits of the incarnation that go into connection ids and heartbeat rounds (40: the server
/// passes milliseconds since 2024, good until 2058).
pub const INCARNATION_MASK: u64 = 0xff_ffff_ffff;

/// What a node's disk gave back at startup. Built by the driver (the server from its data
/// directory, the simulator from its `SimDisk`) and handed to [`Node::recover`], the one
/// recovery path both use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// acceptedEpoch file.
    pub accepted_epoch: Epoch,
    /// currentEpoch file.
    pub current_epoch: Epoch,
    /// Last zxid of the snapshot the state machine was loaded from (0 if none).
    pub snapshot_zxid: Zxid,
    /// Logged transactions, ascending. Entries at or below the snapshot are skipped.
    pub log: Vec<Txn>,
}

/// Why a node refuses to start from what its disk holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The log skips a transaction: starting would let a node with a hole vote as if it had a
    /// complete history (ZOOKEEPER-4925).
    #[error("log has a hole: {next} cannot follow {after}")]
    Hole {
        /// Last zxid before the hole.
        after: Zxid,
        /// First zxid after it.
        next: Zxid,
    },
    /// currentEpoch is ahead of acceptedEpoch, which the protocol never writes.
    #[error("currentEpoch {current} is ahead of acceptedEpoch {accepted}")]
    EpochsOutOfOrder {
        /// acceptedEpoch.
        accepted: Epoch,
        /// currentEpoch.
        current: Epoch,
    },
}

/// A learner as its leader sees it ([`Node::learner_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerStatus {
    /// Its server id.
    pub id: ServerId,
    /// Whether it is an observer.
    pub observer: bool,
    /// Synced and in the broadcast.
    pub synced: bool,
    /// Highest proposal it acknowledged as durable (observers acknowledge none).
    pub acked: Zxid,
    /// Ticks since the leader last heard from it.
    pub silent_ticks: u64,
}

/// The role-specific state.
#[derive(Debug)]
pub(crate) enum Role {
    Looking(Election),
    Leading(Box<Leader>),
    Learning(Box<Learner>),
    /// Placeholder while a role's handler runs with its state taken out.
    Busy,
}

/// A ZAB server as a state machine: feed it [`Event`]s with [`Node::step`], then carry out the
/// [`Action`]s from [`Node::take_actions`] in order.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: Config,
    pub(crate) incarnation: u64,
    /// Ticks seen since start.
    pub(crate) now: u64,
    /// Election logical clock.
    pub(crate) round: u64,
    /// Epochs as last ordered written (durable once `persisted >= epochs_seq`).
    pub(crate) accepted_epoch: Epoch,
    /// Who we accepted `accepted_epoch` from, as far as this incarnation knows (not kept
    /// across restarts: after one, an equal epoch is never counted as a promise).
    pub(crate) accepted_from: Option<ServerId>,
    pub(crate) current_epoch: Epoch,
    pub(crate) epochs_seq: DiskSeq,
    pub(crate) log: Log,
    /// Highest zxid known committed.
    pub(crate) commit: Zxid,
    /// Highest zxid applied (ordered applied).
    pub(crate) applied: Zxid,
    /// Last disk order issued, and highest known durable.
    pub(crate) disk_seq: DiskSeq,
    pub(crate) persisted: DiskSeq,
    pub(crate) conn_counter: u64,
    /// Highest acceptedEpoch a learner reported to us: a leader we become picks above it.
    pub(crate) epoch_floor: Epoch,
    /// Per learner, the highest connection id we closed (as a leader): never taken back.
    pub(crate) closed_conns: std::collections::BTreeMap<ServerId, crate::message::ConnId>,
    /// Heartbeat round, monotonic across leader terms.
    pub(crate) ping_round: u64,
    pub(crate) role: Role,
    pub(crate) out: Vec<Action>,
    /// The current role began with a planned handover (cleared by an election).
    pub(crate) handover: bool,
    /// Writes the old leader held and handed to this node with the leadership: proposed
    /// first once this node's leadership is established.
    pub(crate) inherited: Vec<crate::message::HeldRequest>,
    /// Reconfigurations logged above the committed configuration (`cfg.quorum`,
    /// `cfg.observers`, made at `cfg.config_zxid`) and not known committed, in zxid order.
    pub(crate) pending: Vec<crate::membership::PendingConfig>,
    /// The committed configuration changed during this step (`config_took_effect`).
    pub(crate) config_changed: bool,
}

impl Node {
    /// A node with an empty disk.
    pub fn new(cfg: Config, incarnation: u64) -> Node {
        Node::recover(cfg, Recovered::default(), incarnation).expect("an empty disk is valid")
    }

    /// A node built from what its disk gave back. `incarnation` must differ between restarts of
    /// the same server (it keeps connection ids apart). The node starts looking; its first
    /// actions (election notifications) are ready in [`Node::take_actions`].
    pub fn recover(cfg: Config, rec: Recovered, incarnation: u64) -> Result<Node, RecoveryError> {
        if rec.current_epoch > rec.accepted_epoch {
            return Err(RecoveryError::EpochsOutOfOrder {
                accepted: rec.accepted_epoch,
                current: rec.current_epoch,
            });
        }
        let mut log = Log::new(rec.snapshot_zxid);
        let mut pending = Vec::new();
        for txn in rec.log.into_iter().filter(|t| t.zxid > rec.snapshot_zxid) {
            let after = log.last();
            let next = txn.zxid;
            pending.extend(crate::membership::PendingConfig::of_logged(
                &cfg,
                next,
                &txn.payload,
            ));
            // Everything recovered is durable: disk order 0.
            if !log.append(txn, 0) {
                return Err(RecoveryError::Hole { after, next });
            }
        }
        let mut node = Node {
            cfg,
            incarnation,
            now: 0,
            round: 0,
            accepted_epoch: rec.accepted_epoch,
            accepted_from: None,
            current_epoch: rec.current_epoch,
            epochs_seq: 0,
            log,
            commit: rec.snapshot_zxid,
            applied: rec.snapshot_zxid,
            disk_seq: 0,
            persisted: 0,
            conn_counter: 0,
            epoch_floor: 0,
            closed_conns: Default::default(),
            // start above every round an earlier incarnation of ours can have used
            ping_round: (incarnation & INCARNATION_MASK) << 24,
            role: Role::Busy,
            out: Vec::new(),
            handover: false,
            inherited: Vec::new(),
            pending,
            config_changed: false,
        };
        node.become_looking();
        Ok(node)
    }

    /// Feeds one event. Actions accumulate until [`Node::take_actions`].
    pub fn step(&mut self, ev: Event) {
        match ev {
            Event::Tick => {
                self.now += 1;
                match self.role {
                    Role::Looking(_) => self.election_tick(),
                    Role::Leading(_) => self.with_leader(|n, l| n.leader_tick(l)),
                    Role::Learning(_) => self.with_learner(|n, l| n.learner_tick(l)),
                    Role::Busy => unreachable!("role taken out"),
                }
            }
            Event::Peer { from, msg } => match msg {
                Message::Notification {
                    round,
                    state,
                    vote,
                    config,
                } => self.on_notification(from, round, state, vote, config),
                Message::Learner { conn, msg } => match self.role {
                    Role::Leading(_) => {
                        self.with_leader(|n, l| n.leader_on_msg(l, from, conn, msg))
                    }
                    Role::Learning(_) => {
                        self.with_learner(|n, l| n.learner_on_msg(l, from, conn, msg))
                    }
                    // A learner message while looking belongs to a connection that is gone.
                    _ => {}
                },
            },
            Event::Persisted { through } => {
                self.persisted = self.persisted.max(through.min(self.disk_seq));
                match self.role {
                    Role::Leading(_) => self.with_leader(|n, l| n.leader_on_persisted(l)),
                    Role::Learning(_) => self.with_learner(|n, l| n.learner_progress(l)),
                    _ => {}
                }
            }
            Event::ClientWrite {
                request_id,
                payload,
            } => match self.role {
                Role::Leading(_) => self.with_leader(|n, l| {
                    n.leader_propose(l, Some(request_id), payload);
                }),
                Role::Learning(_) => {
                    self.with_learner(|n, l| n.learner_client_write(l, request_id, payload))
                }
                _ => self.out.push(Action::WriteRejected {
                    request_id,
                    reason: crate::action::RejectReason::NotServing,
                }),
            },
            Event::ClientSync { request_id } => match self.role {
                Role::Leading(_) => self.with_leader(|n, l| n.leader_client_sync(l, request_id)),
                Role::Learning(_) => self.with_learner(|n, l| n.learner_client_sync(l, request_id)),
                _ => self.out.push(Action::SyncFailed { request_id }),
            },
            Event::LogPurged { through } => self.log.purge(through),
            Event::PeerLost { peer } => match &self.role {
                Role::Leading(l) if l.peers.contains_key(&peer) => self.with_leader(|n, l| {
                    if let Some(p) = l.peers.remove(&peer) {
                        n.close_conn(peer, p.conn);
                    }
                }),
                Role::Learning(l) if l.leader == peer => {
                    self.with_learner(|n, l| n.learner_leave(l))
                }
                _ => {}
            },
            Event::SessionResumed { session_id } => match &self.role {
                Role::Leading(_) => self.out.push(Action::SessionOwner {
                    session_id,
                    server: self.cfg.id,
                }),
                Role::Learning(_) => {
                    self.with_learner(|n, l| n.learner_session_resumed(l, session_id))
                }
                // Nobody to tell: a new leader takes the first writer of a session as its owner.
                Role::Looking(_) | Role::Busy => {}
            },
            Event::TransferLeadership { to } => self.transfer_requested(to),
            Event::SessionTouched { session_id } => match &mut self.role {
                Role::Leading(_) => self.out.push(Action::SessionsTouched {
                    from: self.cfg.id,
                    sessions: vec![session_id],
                }),
                Role::Learning(l) => l.touches.push(session_id),
                _ => {}
            },
        }
        self.config_took_effect();
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// The actions produced since the last call, in the order they must be carried out.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// As [`Node::take_actions`], into `into` (which must be empty): a driver that keeps one
    /// buffer for every step allocates none per step.
    pub fn take_actions_into(&mut self, into: &mut Vec<Action>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.out, into);
    }

    #[cfg(debug_assertions)]
    fn check_invariants(&self) {
        assert!(self.log.base() <= self.applied, "base above applied");
        assert!(self.applied <= self.commit, "applied above commit");
        assert!(
            self.accepted_epoch >= self.current_epoch,
            "current above accepted"
        );
        assert!(self.persisted <= self.disk_seq);
    }

    // ----- role plumbing -----

    /// Runs `f` with the leader state taken out; puts it back unless `f` changed the role.
    pub(crate) fn with_leader(&mut self, f: impl FnOnce(&mut Node, &mut Leader)) {
        let Role::Leading(mut l) = std::mem::replace(&mut self.role, Role::Busy) else {
            unreachable!("not leading")
        };
        f(self, &mut l);
        if matches!(self.role, Role::Busy) {
            self.role = Role::Leading(l);
        }
    }

    /// Runs `f` with the learner state taken out; puts it back unless `f` changed the role.
    pub(crate) fn with_learner(&mut self, f: impl FnOnce(&mut Node, &mut Learner)) {
        let Role::Learning(mut l) = std::mem::replace(&mut self.role, Role::Busy) else {
            unreachable!("not learning")
        };
        f(self, &mut l);
        if matches!(self.role, Role::Busy) {
            self.role = Role::Learning(l);
        }
    }

    // ----- disk orders -----

    fn next_seq(&mut self) -> DiskSeq {
        self.disk_seq += 1;
        self.disk_seq
    }

    /// Orders the epoch files written with the current values; returns the disk order.
    pub(crate) fn persist_epochs(&mut self) -> DiskSeq {
        let seq = self.next_seq();
        self.epochs_seq = seq;
        self.out.push(Action::PersistEpochs {
            seq,
            accepted: self.accepted_epoch,
            current: self.current_epoch,
        });
        seq
    }

    /// Appends to the in-memory log and orders it written. False if it would leave a hole.
    pub(crate) fn append(&mut self, txn: Txn) -> bool {
        if !self.log.last().may_precede(txn.zxid) {
            return false;
        }
        let seq = self.next_seq();
        self.note_logged(txn.zxid, &txn.payload);
        self.log.append(txn.clone(), seq);
        self.out.push(Action::AppendLog {
            seq,
            txns: vec![txn],
        });
        true
    }

    /// Drops logged entries after `to` and orders the same on disk.
    pub(crate) fn truncate(&mut self, to: Zxid) {
        let seq = self.next_seq();
        self.log.truncate_after(to);
        self.forget_pending_after(to);
        self.out.push(Action::TruncateLog { seq, after: to });
    }

    /// Installs a snapshot: the state machine and log restart at `zxid`.
    pub(crate) fn install_snapshot(&mut self, zxid: Zxid, data: bytes::Bytes) {
        let seq = self.next_seq();
        self.log.reset(zxid);
        // The log is replaced: what it held pending goes with it (a tail the leader's history
        // lacks may be below the snapshot). The snapshot's configuration comes with the
        // leader's NEWLEADER.
        self.forget_pending_after(Zxid::ZERO);
        self.applied = zxid;
        self.commit = zxid;
        self.out.push(Action::InstallSnapshot { seq, zxid, data });
    }

    /// Raises the commit point (never past the log) and applies up to it.
    pub(crate) fn advance_commit(&mut self, to: Zxid) {
        let to = to.min(self.log.last());
        if to > self.commit {
            self.commit = to;
        }
        self.apply_committed();
    }

    /// Orders every committed, unapplied entry applied, in zxid order, then trims the window.
    pub(crate) fn apply_committed(&mut self) {
        if self.applied < self.commit {
            // One search, then a walk: a busy leader commits hundreds of entries at a time.
            let commit = self.commit;
            let mut applied = self.applied;
            for txn in self.log.after(applied).take_while(|t| t.zxid <= commit) {
                applied = txn.zxid;
                self.out.push(Action::Apply { txn: txn.clone() });
            }
            debug_assert_eq!(applied, commit, "committed entry missing from the log");
            self.applied = applied;
            self.activate_through(applied);
        }
        self.log.trim(self.applied, self.cfg.committed_window_max);
    }

    pub(crate) fn send(&mut self, to: ServerId, msg: Message) {
        self.out.push(Action::Send { to, msg });
    }

    pub(crate) fn role_changed(&mut self, role: RoleKind, leader: Option<ServerId>) {
        self.out.push(Action::RoleChanged { role, leader });
    }

    // ----- introspection (drivers, simulator, tests) -----

    /// This server's id.
    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    /// This node's observers (the configuration's non-voting members).
    pub fn observers(&self) -> &[ServerId] {
        &self.cfg.observers
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Current role.
    pub fn role(&self) -> RoleKind {
        match &self.role {
            Role::Looking(_) | Role::Busy => RoleKind::Looking,
            Role::Leading(_) => RoleKind::Leading,
            Role::Learning(l) if l.observer => RoleKind::Observing,
            Role::Learning(_) => RoleKind::Following,
        }
    }

    /// The leader this node is with (itself when leading).
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(_) => Some(self.cfg.id),
            Role::Learning(l) => Some(l.leader),
            _ => None,
        }
    }

    /// The epoch this node leads, once a quorum has acknowledged NEWLEADER.
    pub fn established_epoch(&self) -> Option<Epoch> {
        match &self.role {
            Role::Leading(l) if l.is_established() => Some(l.epoch),
            _ => None,
        }
    }

    /// Whether this node is between roles because of a planned handover: not serving yet,
    /// and no election has started since. A driver keeps its clients waiting meanwhile.
    pub fn in_handover(&self) -> bool {
        self.handover && !self.is_serving() && !matches!(self.role, Role::Looking(_))
    }

    /// Whether clients may be served here (an established leader, or a learner that received
    /// UPTODATE).
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.is_established(),
            Role::Learning(l) => l.is_up_to_date(),
            _ => false,
        }
    }

    /// The zxid an established leader gives the next write it proposes; None when no write
    /// would be taken now (not leading, not established, or out of counter for this epoch),
    /// so a driver that prepares a write only under this zxid never prepares one that is
    /// then refused.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.role {
            Role::Leading(l)
                if self.leader_can_propose(l) && l.next_counter <= self.cfg.counter_max() =>
            {
                Some(Zxid::new(l.epoch, l.next_counter))
            }
            _ => None,
        }
    }

    /// A leader's learners: (id, is observer, is synced and in the broadcast).
    pub fn learners(&self) -> Vec<(ServerId, bool, bool)> {
        match &self.role {
            Role::Leading(l) => l
                .peers
                .iter()
                .map(|(id, p)| (*id, p.observer, p.in_broadcast()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A leader's learners in detail, for operators: id, observer, in the broadcast, highest
    /// zxid acknowledged, ticks since last heard.
    pub fn learner_status(&self) -> Vec<LearnerStatus> {
        match &self.role {
            Role::Leading(l) => l
                .peers
                .iter()
                .map(|(id, p)| LearnerStatus {
                    id: *id,
                    observer: p.observer,
                    synced: p.in_broadcast(),
                    acked: p.acked,
                    silent_ticks: self.now.saturating_sub(p.last_heard),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether this leader is handing leadership over (its proposals held).
    pub fn transferring(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.transfer.is_some())
    }

    /// Whether this leader is moving the ensemble to the next epoch (its proposals held).
    pub fn rolling_over(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.rollover.is_some())
    }

    /// Whether this leader holds proposals: a transfer or a rollover is under way.
    pub fn holding_proposals(&self) -> bool {
        self.transferring() || self.rolling_over()
    }

    /// Client syncs waiting at this leader.
    pub fn pending_syncs(&self) -> usize {
        match &self.role {
            Role::Leading(l) => l.syncs.len(),
            _ => 0,
        }
    }

    /// Highest zxid applied.
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// Highest zxid known committed.
    pub fn commit(&self) -> Zxid {
        self.commit
    }

    /// Last logged zxid.
    pub fn last_logged(&self) -> Zxid {
        self.log.last()
    }

    /// acceptedEpoch (as last ordered written).
    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted_epoch
    }

    /// currentEpoch (as last ordered written).
    pub fn current_epoch(&self) -> Epoch {
        self.current_epoch
    }

    /// Ticks seen.
    pub fn now(&self) -> u64 {
        self.now
    }
}

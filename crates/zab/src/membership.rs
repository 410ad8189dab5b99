//! Changes of membership (ZooKeeper's dynamic reconfiguration) as the replication core sees
//! them.
//!
//! A reconfiguration is a transaction like any other; the driver says which payloads are one
//! (`Config::membership_reader`: the server reads its own transaction records, the simulator
//! its own payloads). From the moment a node logs one until it commits it, the configuration
//! is *pending*: every quorum this node counts (election, discovery, NEWLEADER, commit,
//! heartbeat rounds for sync, rollover) must be a quorum of the committed configuration and of
//! each pending one (joint consensus). A node that commits it adopts it; entries above it are
//! counted by the new voters alone.
//!
//! Why this is safe: the reconfiguration commits only with a quorum of the old voters and of
//! the new ones, so any later quorum of the old voters meets a node that logged it (and ranks
//! above anyone who did not: discovery gives way to a more recent history), and any node that
//! knows it committed holds every entry before it. A node that never heard of it counts old
//! quorums only, and they cannot form without such a node. At most one reconfiguration is
//! pending at a leader at a time (`RejectReason::ReconfigInProgress`), as in ZooKeeper.

use crate::quorum::{Majority, QuorumVerifier};
use crate::zxid::{ServerId, Zxid};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The voters and observers of one configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Voting members (any order; kept sorted).
    pub voters: Vec<ServerId>,
    /// Non-voting members.
    pub observers: Vec<ServerId>,
}

impl Membership {
    /// Sorted and without repeats; a voter listed as an observer too stays a voter.
    pub fn normalized(mut self) -> Membership {
        self.voters.sort_unstable();
        self.voters.dedup();
        self.observers.sort_unstable();
        self.observers.dedup();
        let voters = self.voters.clone();
        self.observers.retain(|o| voters.binary_search(o).is_err());
        self
    }

    /// Whether `id` is a voter or an observer.
    pub fn contains(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.observers.contains(&id)
    }
}

/// Reads a transaction's payload: the configuration it installs, if it is a reconfiguration.
/// Called on every entry a node logs, so it must reject ordinary payloads cheaply.
#[derive(Clone)]
pub struct MembershipReader(Arc<ReadFn>);

/// The function a [`MembershipReader`] wraps.
pub type ReadFn = dyn Fn(&[u8]) -> Option<Membership> + Send + Sync;

impl MembershipReader {
    /// A reader from a function.
    pub fn new(f: impl Fn(&[u8]) -> Option<Membership> + Send + Sync + 'static) -> Self {
        MembershipReader(Arc::new(f))
    }

    /// The configuration `payload` installs, if any.
    pub fn read(&self, payload: &[u8]) -> Option<Membership> {
        (self.0)(payload).map(Membership::normalized)
    }
}

impl fmt::Debug for MembershipReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MembershipReader")
    }
}

/// A configuration logged and not yet known committed.
#[derive(Debug, Clone)]
pub(crate) struct PendingConfig {
    pub zxid: Zxid,
    pub quorum: Majority,
    pub membership: Membership,
    /// The reconfiguration's payload: what the driver reads the members' addresses from.
    pub payload: Bytes,
}

impl PendingConfig {
    pub fn new(zxid: Zxid, membership: Membership, payload: Bytes) -> PendingConfig {
        PendingConfig {
            zxid,
            quorum: Majority::new(membership.voters.clone()),
            membership,
            payload,
        }
    }

    /// The pending configuration a logged entry makes, if it is a reconfiguration newer than
    /// `cfg`'s committed one (on append, and on recovery).
    pub fn of_logged(
        cfg: &crate::config::Config,
        zxid: Zxid,
        payload: &Bytes,
    ) -> Option<PendingConfig> {
        if zxid <= cfg.config_zxid {
            return None;
        }
        let m = cfg.membership_reader.as_ref()?.read(payload)?;
        Some(PendingConfig::new(zxid, m, payload.clone()))
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.quorum.is_voter(id)
    }
}

/// Whether `ids` is a quorum of `cfg`'s configuration and of every pending one (a function
/// of the fields, for callers that hold another part of the node mutably).
pub(crate) fn joint_quorum(
    cfg: &crate::config::Config,
    pending: &[PendingConfig],
    ids: &[ServerId],
) -> bool {
    cfg.quorum.is_quorum(ids) && pending.iter().all(|p| p.quorum.is_quorum(ids))
}

impl crate::node::Node {
    /// Whether `ids` is a quorum of the committed configuration and of every pending one.
    pub(crate) fn is_quorum(&self, ids: &[ServerId]) -> bool {
        joint_quorum(&self.cfg, &self.pending, ids)
    }

    /// Whether `id` votes in the committed configuration or in a pending one: its votes,
    /// acknowledgements and answers are counted (each configuration counts its own voters).
    pub(crate) fn counts(&self, id: ServerId) -> bool {
        self.cfg.quorum.is_voter(id) || self.pending.iter().any(|p| p.is_voter(id))
    }

    /// Whether `id` is a member of the committed configuration or of a pending one.
    pub(crate) fn knows(&self, id: ServerId) -> bool {
        self.cfg.is_member(id) || self.pending.iter().any(|p| p.membership.contains(id))
    }

    /// Every member of the committed and pending configurations except this node.
    pub(crate) fn all_others(&self) -> Vec<ServerId> {
        let mut ids: Vec<ServerId> = self.cfg.others().collect();
        for p in &self.pending {
            ids.extend(
                p.membership
                    .voters
                    .iter()
                    .chain(p.membership.observers.iter())
                    .copied()
                    .filter(|id| *id != self.cfg.id),
            );
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The configuration `payload` installs, if it is a reconfiguration.
    pub(crate) fn read_membership(&self, payload: &[u8]) -> Option<Membership> {
        self.cfg
            .membership_reader
            .as_ref()
            .and_then(|r| r.read(payload))
    }

    /// A logged entry: a reconfiguration above the committed one becomes pending.
    pub(crate) fn note_logged(&mut self, zxid: Zxid, payload: &Bytes) {
        if let Some(p) = PendingConfig::of_logged(&self.cfg, zxid, payload) {
            self.pending.push(p);
            // It may make this node a voter, or a learner a voter (`config_took_effect`).
            self.config_changed = true;
        }
    }

    /// Logged entries after `to` are gone (a TRUNC, or a snapshot installed at `to`).
    pub(crate) fn forget_pending_after(&mut self, to: Zxid) {
        let before = self.pending.len();
        self.pending.retain(|p| p.zxid <= to);
        if self.pending.len() != before {
            self.config_changed = true;
        }
    }

    /// Why this leader would refuse to propose a reconfiguration to `m` now, if it would:
    /// another one is pending, or the new voters have no quorum among this leader and the
    /// learners in sync with it (their acknowledgements could never commit it, nor
    /// anything after it). An observer in sync counts: proposing the reconfiguration makes
    /// it a follower on its connection (`leader_promote_observers`). The server asks before
    /// it prepares one
    /// (ZooKeeper's RECONFIGINPROGRESS and NEWCONFIGNOQUORUM), so zab never refuses one it
    /// prepared.
    pub fn reconfig_refusal(&self, m: &Membership) -> Option<crate::action::RejectReason> {
        use crate::action::RejectReason;
        match &self.role {
            crate::node::Role::Leading(l) => self.reconfig_refusal_at(l, m),
            _ => Some(RejectReason::NotServing),
        }
    }

    pub(crate) fn reconfig_refusal_at(
        &self,
        l: &crate::leader::Leader,
        m: &Membership,
    ) -> Option<crate::action::RejectReason> {
        use crate::action::RejectReason;
        if !self.pending.is_empty() {
            return Some(RejectReason::ReconfigInProgress);
        }
        let mut ids = vec![self.cfg.id];
        ids.extend(
            l.peers
                .iter()
                .filter(|(_, p)| p.phase == crate::leader::PeerPhase::Active)
                .map(|(id, _)| *id),
        );
        if !Majority::new(m.voters.clone()).is_quorum(&ids) {
            return Some(RejectReason::NewConfigNoQuorum);
        }
        None
    }

    /// Applied through `applied`: a pending configuration at or below it is committed and
    /// takes effect.
    pub(crate) fn activate_through(&mut self, applied: Zxid) {
        while self.pending.first().is_some_and(|p| p.zxid <= applied) {
            let p = self.pending.remove(0);
            self.install_membership(p.zxid, p.membership, p.payload);
        }
    }

    fn install_membership(&mut self, zxid: Zxid, m: Membership, payload: Bytes) {
        self.cfg.quorum = Arc::new(Majority::new(m.voters.clone()));
        self.cfg.observers = m.observers.clone();
        self.cfg.config_zxid = zxid;
        self.cfg.config_payload = Some(payload.clone());
        self.config_changed = true;
        self.out.push(crate::action::Action::ConfigActivated {
            zxid,
            voters: m.voters,
            observers: m.observers,
            payload,
        });
    }

    /// A configuration known committed (from the leader's NEWLEADER, a peer's notification,
    /// or from the driver: a snapshot's) is taken if newer than ours: `payload` is the
    /// reconfiguration that made it, as logged (read with `Config::membership_reader`; one
    /// that reads as none is ignored). The caller takes the actions this queues.
    pub fn adopt_config(&mut self, zxid: Zxid, payload: Bytes) {
        if zxid <= self.cfg.config_zxid {
            return;
        }
        let Some(membership) = self.read_membership(&payload) else {
            return;
        };
        self.forget_pending_through(zxid);
        self.install_membership(zxid, membership, payload);
        if !matches!(self.role, crate::node::Role::Busy) {
            self.config_took_effect();
        }
    }

    /// What notifications and NEWLEADER carry: the committed configuration's zxid and
    /// payload, once a reconfiguration made it.
    pub(crate) fn config_to_send(&self) -> Option<(Zxid, Bytes)> {
        match &self.cfg.config_payload {
            Some(p) if self.cfg.config_zxid > Zxid::ZERO => Some((self.cfg.config_zxid, p.clone())),
            _ => None,
        }
    }

    fn forget_pending_through(&mut self, zxid: Zxid) {
        self.pending.retain(|p| p.zxid > zxid);
    }

    /// What a new configuration changes for this node's role, once no role handler runs:
    /// a leader stops serving learners outside it and, no longer a voter, hands over to the
    /// most up-to-date voter; a learner whose part changed (voter or observer) joins again
    /// in its new part; a looking node starts a new round; a server outside it keeps looking
    /// and is taken by nobody.
    pub(crate) fn config_took_effect(&mut self) {
        if !std::mem::take(&mut self.config_changed) {
            return;
        }
        match &self.role {
            crate::node::Role::Leading(_) => self.with_leader(|n, l| {
                n.leader_promote_observers(l);
                // Outside every configuration, or joined in a part that is not theirs any
                // more (they join again in their new part).
                let gone: Vec<ServerId> = l
                    .peers
                    .iter()
                    .filter(|(id, p)| !n.knows(**id) || p.observer == n.counts(**id))
                    .map(|(id, _)| *id)
                    .collect();
                for peer in gone {
                    if let Some(p) = l.peers.remove(&peer) {
                        n.close_conn(peer, p.conn);
                    }
                }
                // The quorums changed: what waited for one may have it now (a rollover whose
                // acknowledgements came from voters that left, say).
                match l.phase {
                    crate::leader::Phase::Discovery => n.maybe_choose_epoch(l),
                    crate::leader::Phase::AwaitAckEpoch => n.maybe_start_sync(l),
                    crate::leader::Phase::Syncing => n.maybe_establish(l),
                    crate::leader::Phase::Established => {
                        n.try_commit(l);
                        n.maybe_finish_rollover(l);
                        n.check_syncs(l);
                    }
                    crate::leader::Phase::EpochPersisting => {}
                }
                if !matches!(n.role, crate::node::Role::Busy) {
                    return; // it stepped down (discovery found a more recent voter)
                }
                n.leader_check_membership(l);
            }),
            crate::node::Role::Learning(l)
                if l.observer
                    && self.counts(self.cfg.id)
                    && l.phase == crate::learner::LPhase::Broadcast
                    && self.log.last().epoch() == l.epoch =>
            {
                // Promoted while in step with the leader, which made the same change on its
                // side when it logged the reconfiguration: acknowledge from now on. (Not
                // after a rollover, which observers do not take part in: an acknowledgement
                // must imply a durable current epoch, so such a learner joins again.)
                self.with_learner(|n, l| {
                    l.observer = false;
                    let leader = l.leader;
                    n.role_changed(crate::action::RoleKind::Following, Some(leader));
                    n.maybe_ack(l);
                })
            }
            crate::node::Role::Learning(l) if l.observer == self.counts(self.cfg.id) => {
                self.with_learner(|n, l| n.learner_leave(l))
            }
            // Votes were counted by the old voters: start a new round with the new ones.
            crate::node::Role::Looking(_) => self.become_looking(),
            _ => {}
        }
    }

    /// Observers in the broadcast that a logged reconfiguration makes voters become followers
    /// where they are: they receive every proposal not yet committed (they have what was
    /// committed, from INFORMs) and everything after, and acknowledge (their side switches
    /// when they log the reconfiguration, `config_took_effect`). So a promotion costs no
    /// reconnection, and their acknowledgements count at once for the new voters.
    fn leader_promote_observers(&mut self, l: &mut crate::leader::Leader) {
        let promoted: Vec<(ServerId, crate::message::ConnId)> = l
            .peers
            .iter()
            .filter(|(id, p)| p.observer && p.in_broadcast() && self.counts(**id))
            .map(|(id, p)| (*id, p.conn))
            .collect();
        for (id, conn) in promoted {
            let uncommitted: Vec<crate::zxid::Txn> = self.log.after(self.commit).cloned().collect();
            for txn in uncommitted {
                self.send_learner(id, conn, crate::message::LearnerMsg::Proposal { txn });
            }
            if let Some(r) = &mut l.rollover {
                // A follower now: it takes part in the move to the next epoch (rollover.rs).
                let epoch = r.epoch;
                r.sent.insert(id);
                self.send_learner(id, conn, crate::message::LearnerMsg::NewEpoch { epoch });
            }
            if let Some(p) = l.peers.get_mut(&id) {
                p.observer = false;
            }
        }
    }

    /// A leader that is no longer a voter hands over (and tries again on each tick while no
    /// new voter is in sync with it); one whose voters cannot be reached steps down on its
    /// tick as always.
    pub(crate) fn leader_check_membership(&mut self, l: &mut crate::leader::Leader) {
        if self.counts(self.cfg.id)
            || !l.is_established()
            || l.transfer.is_some()
            || l.rollover.is_some()
        {
            return;
        }
        let target = l.peers.iter().any(|(id, p)| {
            self.cfg.quorum.is_voter(*id)
                && !p.observer
                && p.phase == crate::leader::PeerPhase::Active
        });
        if target {
            self.leader_transfer(l, None);
        }
    }

    /// Whether a reconfiguration is logged here and not known committed.
    pub fn reconfig_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The committed configuration and the zxid of the reconfiguration that made it (0: the
    /// one the driver started with).
    pub fn membership(&self) -> (Zxid, Membership) {
        (
            self.cfg.config_zxid,
            Membership {
                voters: self.cfg.quorum.voters().to_vec(),
                observers: self.cfg.observers.clone(),
            },
        )
    }
}

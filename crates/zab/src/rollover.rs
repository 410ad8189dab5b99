//! Counter rollover without an election. When the leader stamps the last counter of its epoch
//! (the low 32 bits of a zxid), it moves the ensemble to the next epoch itself, in one quorum
//! round trip, instead of stepping down as ZooKeeper does (ZOOKEEPER-1277, 2789):
//!
//! 1. It holds new proposals, makes `epoch + 1` its accepted and current epoch (durably), and
//!    sends `NewEpoch` to every follower in the broadcast, after the old epoch's last proposal.
//! 2. A follower makes the new epoch its accepted and current epoch and answers `AckNewEpoch`
//!    once that, and so every proposal before it (disk orders complete in order), is durable.
//! 3. With a quorum of voters (itself included once durable), the leader counts every proposal
//!    of the old epoch as acknowledged by those voters, stamps `(epoch + 1, 1)` next, and
//!    proposes what it held.
//!
//! Why it is safe. A voter that took the new epoch holds every proposal of the old one (they
//! came before `NewEpoch` on its one ordered connection), so ranking votes by (current epoch,
//! last zxid) still puts first a voter holding everything committed. Nothing of the new epoch
//! is proposed before a quorum took it, and any quorum of a later discovery meets that one: the
//! next leader's epoch is above it.

use crate::action::Action;
use crate::leader::{Leader, PeerPhase};
use crate::learner::Learner;
use crate::message::{ConnId, HeldRequest, LearnerMsg};
use crate::node::Node;
use crate::zxid::{DiskSeq, Epoch, ServerId, Zxid};
use std::collections::BTreeSet;

/// A move to the next epoch under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollover {
    /// The next epoch.
    pub epoch: Epoch,
    /// The old epoch's last proposal.
    pub through: Zxid,
    /// Our own disk order for the new epoch.
    pub seq: DiskSeq,
    /// Followers sent `NewEpoch`.
    pub sent: BTreeSet<ServerId>,
    /// Voters that acknowledged it.
    pub acks: BTreeSet<ServerId>,
}

impl Node {
    /// On the leader, once the last counter of its epoch is stamped.
    pub(crate) fn leader_start_rollover(&mut self, l: &mut Leader) {
        if l.rollover.is_some() {
            return;
        }
        let epoch = l.epoch.max(self.accepted_epoch).max(self.epoch_floor) + 1;
        self.accepted_epoch = epoch;
        self.accepted_from = Some(self.cfg.id);
        self.current_epoch = epoch;
        let seq = self.persist_epochs();
        let followers = l.followers_in_broadcast();
        for (id, conn) in &followers {
            self.send_learner(*id, *conn, LearnerMsg::NewEpoch { epoch });
        }
        l.rollover = Some(Rollover {
            epoch,
            through: self.log.last(),
            seq,
            sent: followers.iter().map(|(id, _)| *id).collect(),
            acks: BTreeSet::new(),
        });
        self.maybe_finish_rollover(l);
    }

    /// `AckNewEpoch` from a follower.
    pub(crate) fn leader_new_epoch_acked(&mut self, l: &mut Leader, from: ServerId, epoch: Epoch) {
        let Some(r) = &mut l.rollover else { return };
        let Some(p) = l.peers.get_mut(&from) else {
            return;
        };
        if r.epoch != epoch || p.observer || !p.in_broadcast() {
            return;
        }
        r.acks.insert(from);
        // Its acknowledgement covers every proposal sent before the NewEpoch.
        if p.phase == PeerPhase::Active {
            p.acked = p.acked.max(r.through);
        }
        self.try_commit(l);
        self.maybe_finish_rollover(l);
    }

    /// Enters the new epoch once a quorum of voters holds it durably.
    pub(crate) fn maybe_finish_rollover(&mut self, l: &mut Leader) {
        let Some(r) = &l.rollover else { return };
        let mut ids: Vec<ServerId> = r.acks.iter().copied().collect();
        if self.persisted >= r.seq {
            ids.push(self.cfg.id);
        }
        if !self.is_quorum(&ids) {
            return;
        }
        let r = l.rollover.take().expect("checked above");
        l.epoch = r.epoch;
        l.next_counter = 1;
        self.out.push(Action::RolledOver { epoch: r.epoch });
        // Learners in discovery were told the old epoch, which their acknowledgements would
        // name: tell them the new one (one that already acknowledged starts over).
        let discovering: Vec<(ServerId, ConnId)> = l
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, PeerPhase::EpochSent | PeerPhase::AckedEpoch(_)))
            .map(|(id, p)| (*id, p.conn))
            .collect();
        for (id, conn) in discovering {
            l.peers.get_mut(&id).expect("peer").phase = PeerPhase::EpochSent;
            self.send_learner(id, conn, LearnerMsg::LeaderInfo { epoch: r.epoch });
        }
        // Followers that joined the broadcast meanwhile take the new epoch now.
        let late = l.followers_in_broadcast();
        for (id, conn) in late.into_iter().filter(|(id, _)| !r.sent.contains(id)) {
            self.send_learner(id, conn, LearnerMsg::NewEpoch { epoch: r.epoch });
        }
        self.try_commit(l);
        // What arrived meanwhile is proposed now, in arrival order.
        for h in std::mem::take(&mut l.held) {
            let HeldRequest {
                from,
                request_id,
                payload,
            } = h;
            self.leader_take_request(l, from, request_id, payload);
        }
    }

    /// On a follower: `NewEpoch` from its leader.
    pub(crate) fn learner_new_epoch(&mut self, l: &mut Learner, epoch: Epoch) {
        if epoch <= l.epoch || l.observer {
            return;
        }
        if !l.nl_acked {
            // NEWLEADER is not acknowledged yet (it carries the old epoch): after.
            l.next_epoch = Some(epoch);
            return;
        }
        self.accepted_epoch = self.accepted_epoch.max(epoch);
        self.accepted_from = Some(l.leader);
        self.current_epoch = epoch;
        l.epoch = epoch;
        l.rollover_seq = Some(self.persist_epochs());
        self.learner_rollover_progress(l);
    }

    /// Answers the leader once the new epoch is durable.
    pub(crate) fn learner_rollover_progress(&mut self, l: &mut Learner) {
        if let Some(epoch) = l.next_epoch.take() {
            self.learner_new_epoch(l, epoch);
            return;
        }
        match l.rollover_seq {
            Some(seq) if self.persisted >= seq => {
                l.rollover_seq = None;
                let epoch = l.epoch;
                self.send_learner(l.leader, l.conn, LearnerMsg::AckNewEpoch { epoch });
            }
            _ => {}
        }
    }
}

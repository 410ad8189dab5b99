//! Fast leader election.
//!
//! Voters exchange notifications `(round, state, vote)`; votes are ordered by the candidate's
//! current epoch, then its last logged zxid, then its id, so the winner is the most up-to-date
//! voter a quorum can see. A node decides once a quorum of voters in its round agrees with its
//! vote and `election_finalize_ticks` pass with no better vote. A looking node also joins any
//! server that tells it first-hand that it is leading: that is safe because discovery, not the
//! election, guards the history (a learner never accepts an epoch below its acceptedEpoch, and
//! a leader not yet established steps down if an acking voter is more up to date).

use crate::action::RoleKind;
use crate::leader::Leader;
use crate::learner::Learner;
use crate::message::{Message, PeerState, Vote};
use crate::node::INCARNATION_MASK;
use crate::node::{Node, Role};
use crate::zxid::ServerId;
use std::collections::BTreeMap;

/// State while looking.
#[derive(Debug)]
pub(crate) struct Election {
    /// Our current vote.
    vote: Vote,
    /// Latest vote of each voter in our round (ourselves included).
    votes: BTreeMap<ServerId, Vote>,
    /// Tick of the last broadcast of our vote.
    last_sent: u64,
    /// Tick at which to decide, while a quorum agrees with our vote.
    decide_at: Option<u64>,
}

impl Node {
    /// The vote this node casts for itself.
    pub(crate) fn own_vote(&self) -> Vote {
        Vote {
            epoch: self.current_epoch,
            zxid: self.log.last(),
            leader: self.cfg.id,
        }
    }

    /// A notification of our round, with our committed configuration once one was made by
    /// a reconfiguration.
    fn notification(&self, state: PeerState, vote: Vote) -> Message {
        Message::Notification {
            round: self.round,
            state,
            vote,
            config: self.config_to_send(),
        }
    }

    fn peer_state(&self) -> PeerState {
        match self.role() {
            RoleKind::Looking => PeerState::Looking,
            RoleKind::Following => PeerState::Following,
            RoleKind::Observing => PeerState::Observing,
            RoleKind::Leading => PeerState::Leading,
        }
    }

    /// Enters the looking state: new round, vote for ourselves, tell everyone.
    pub(crate) fn become_looking(&mut self) {
        // An election is no planned handover: what the old leader held is lost with it.
        self.handover = false;
        self.inherited.clear();
        self.round += 1;
        let vote = self.own_vote();
        let mut votes = BTreeMap::new();
        if self.counts(self.cfg.id) {
            votes.insert(self.cfg.id, vote);
        }
        self.role = Role::Looking(Election {
            vote,
            votes,
            last_sent: self.now,
            decide_at: None,
        });
        self.role_changed(RoleKind::Looking, None);
        self.broadcast_vote();
    }

    fn broadcast_vote(&mut self) {
        let Role::Looking(el) = &mut self.role else {
            return;
        };
        el.last_sent = self.now;
        let vote = el.vote;
        let msg = self.notification(PeerState::Looking, vote);
        let others: Vec<ServerId> = self.all_others();
        for to in others {
            self.send(to, msg.clone());
        }
    }

    pub(crate) fn on_notification(
        &mut self,
        from: ServerId,
        round: u64,
        state: PeerState,
        vote: Vote,
        config: Option<(crate::zxid::Zxid, bytes::Bytes)>,
    ) {
        if let Some((zxid, payload)) = config {
            // Committed where it comes from; taken while looking only, first (it may make
            // `from` a member, or this node a voter), as ZooKeeper does. A leader or learner
            // of an older epoch must not change its quorums mid-term to a configuration
            // another leader committed since: a deposed leader could then gather a quorum
            // of the new voters for its own proposals. It learns it once it looks again.
            if matches!(self.role, Role::Looking(_)) {
                self.adopt_config(zxid, payload);
            }
        }
        if !self.knows(from) || from == self.cfg.id {
            return;
        }
        if let Role::Learning(l) = &self.role {
            // Our leader votes for someone else: it is not leading and will not be (votes
            // only grow). Look again now instead of waiting out initLimit for an answer that
            // will never come (a quorum can agree on a vote that the candidate itself has
            // already given up).
            if from == l.leader && vote.leader != l.leader && state != PeerState::Leading {
                self.with_learner(|n, l| n.learner_leave(l));
                return;
            }
        }
        let Role::Looking(_) = self.role else {
            // Not looking: answer a looking peer with who we are with, so that it can join.
            // Only a leader's answer is acted on (first-hand), but followers answer too so that
            // a looking peer sees the ensemble is not idle.
            if state == PeerState::Looking {
                if let Some(leader) = self.leader() {
                    let v = Vote {
                        epoch: self.accepted_epoch,
                        zxid: self.log.last(),
                        leader,
                    };
                    let msg = self.notification(self.peer_state(), v);
                    self.send(from, msg);
                }
            }
            return;
        };
        let from_voter = self.counts(from);
        if state == PeerState::Leading && vote.leader == from && from_voter {
            self.decide(from);
            return;
        }
        if state != PeerState::Looking || !from_voter {
            // Only voters' votes are counted, each node counting by its own configurations.
            // An observer votes too: a node that logged a reconfiguration making it a voter
            // counts it (it could not learn it any other way while no leader is established);
            // the others ignore it. It never leads while it is not a voter.
            return;
        }
        let own = self.own_vote();
        let me = self.cfg.id;
        // Candidates are the voters of the committed configuration, as in ZooKeeper: every
        // node judges them the same once committed configurations have spread (they travel
        // with the notifications). Judging by pending ones too would let nodes that logged a
        // reconfiguration and nodes that did not vote for different candidates forever.
        let candidate_ok = self.cfg.quorum.is_voter(vote.leader);
        let Role::Looking(el) = &mut self.role else {
            unreachable!()
        };
        let mut changed = false;
        if round > self.round {
            self.round = round;
            el.votes.clear();
            let own_ok = self.cfg.quorum.is_voter(own.leader);
            el.vote = match (candidate_ok, own_ok) {
                (true, true) => own.max(vote),
                (true, false) => vote,
                _ => own,
            };
            changed = true;
        } else if round < self.round {
            // The sender is behind: tell it our round and vote.
            let vote = el.vote;
            let msg = self.notification(PeerState::Looking, vote);
            self.send(from, msg);
            return;
        } else if candidate_ok && (vote > el.vote || !self.cfg.quorum.is_voter(el.vote.leader)) {
            el.vote = vote;
            changed = true;
        }
        el.votes.insert(from, vote);
        el.votes.insert(me, el.vote);
        let agreeing: Vec<ServerId> = el
            .votes
            .iter()
            .filter(|(_, v)| **v == el.vote)
            .map(|(id, _)| *id)
            .collect();
        if changed {
            el.decide_at = None;
        }
        if crate::membership::joint_quorum(&self.cfg, &self.pending, &agreeing) {
            if el.decide_at.is_none() {
                el.decide_at = Some(self.now + self.cfg.election_finalize_ticks);
            }
        } else {
            el.decide_at = None;
        }
        if changed {
            self.broadcast_vote();
        }
    }

    pub(crate) fn election_tick(&mut self) {
        let Role::Looking(el) = &mut self.role else {
            return;
        };
        if el.decide_at.is_none() {
            // a quorum may already agree without any notification (a one-voter ensemble)
            let agreeing: Vec<ServerId> = el
                .votes
                .iter()
                .filter(|(_, v)| **v == el.vote)
                .map(|(id, _)| *id)
                .collect();
            if crate::membership::joint_quorum(&self.cfg, &self.pending, &agreeing) {
                el.decide_at = Some(self.now + self.cfg.election_finalize_ticks);
            }
        }
        let el = &*el;
        if let Some(at) = el.decide_at {
            if self.now >= at {
                let leader = el.vote.leader;
                self.decide(leader);
                return;
            }
        }
        if self.now >= el.last_sent + self.cfg.election_resend_ticks {
            self.broadcast_vote();
        }
    }

    /// Leaves the election for the role the decided vote gives us.
    pub(crate) fn decide(&mut self, leader: ServerId) {
        if leader == self.cfg.id {
            // Only a voter of the committed configuration leads (the candidates every node
            // votes for, see `on_notification`).
            if !self.cfg.quorum.is_voter(self.cfg.id) {
                return;
            }
            self.role = Role::Leading(Box::new(Leader::new(self.now)));
            self.role_changed(RoleKind::Leading, Some(leader));
            self.with_leader(|n, l| n.leader_start(l));
        } else {
            self.conn_counter += 1;
            if self.conn_counter > 0xffff {
                // Out of counter: move to the next incarnation rather than wrap (ids only grow).
                self.incarnation += 1;
                self.conn_counter = 1;
            }
            // Grows across reconnects and restarts: learner id (low 8 bits, for reading
            // traces; the leader keys connections by sender), incarnation, counter.
            let conn = ((self.cfg.id & 0xff) << 56)
                | ((self.incarnation & INCARNATION_MASK) << 16)
                | self.conn_counter;
            let observer = !self.counts(self.cfg.id);
            self.role = Role::Learning(Box::new(Learner::new(leader, conn, self.now, observer)));
            let kind = if observer {
                RoleKind::Observing
            } else {
                RoleKind::Following
            };
            self.role_changed(kind, Some(leader));
            self.with_learner(|n, l| n.learner_start(l));
        }
    }
}

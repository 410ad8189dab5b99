//! Planned leadership transfer: the leader holds new proposals, waits until the target voter
//! has acknowledged everything it proposed, then tells the target to take over and its other
//! learners to follow the target, and follows it itself. No election runs: the target starts
//! discovery at once, and the others connect to it.
//!
//! Safety rests where it always does in this crate, on discovery: the target becomes leader
//! of a new epoch only with a quorum's ACKEPOCH, and gives way if an acking voter is more up
//! to date. It is not: the target has acknowledged (made durable) every proposal the old
//! leader made, and the old leader proposes nothing more.

use crate::action::{Action, TransferOutcome};
use crate::leader::{Leader, PeerPhase};
use crate::learner::{LPhase, Learner};
use crate::message::{ConnId, HeldRequest, LearnerMsg};
use crate::node::{Node, Role};
use crate::zxid::ServerId;

/// A transfer under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transfer {
    pub to: ServerId,
    /// Tick after which it is given up and proposals go on.
    pub deadline: u64,
}

impl Node {
    fn transfer_outcome(&mut self, outcome: TransferOutcome) {
        self.out.push(Action::Transfer { outcome });
    }

    /// `Event::TransferLeadership`.
    pub(crate) fn transfer_requested(&mut self, to: Option<ServerId>) {
        match &self.role {
            Role::Leading(_) => self.with_leader(|n, l| n.leader_transfer(l, to)),
            Role::Learning(_) => self.with_learner(|n, l| n.learner_request_leadership(l, to)),
            _ => self.transfer_outcome(TransferOutcome::Failed {
                reason: "there is no leader now (an election is on)".into(),
            }),
        }
    }

    /// On the leader: starts handing over to `to` (or the most up-to-date synced voter).
    pub(crate) fn leader_transfer(&mut self, l: &mut Leader, to: Option<ServerId>) {
        let fail = |n: &mut Node, reason: String| {
            n.transfer_outcome(TransferOutcome::Failed { reason });
        };
        if !l.is_established() {
            return fail(self, "this leader is not established yet".into());
        }
        if l.rollover.is_some() {
            return fail(self, "the ensemble is moving to the next epoch".into());
        }
        if let Some(t) = &l.transfer {
            return fail(
                self,
                format!("a transfer to n{} is already under way", t.to),
            );
        }
        // A voter of the committed configuration (a leader removed by a reconfiguration
        // hands over to one of the new voters).
        let quorum = self.cfg.quorum.clone();
        let synced_voter = |l: &Leader, id: ServerId| {
            quorum.is_voter(id)
                && l.peers
                    .get(&id)
                    .is_some_and(|p| !p.observer && p.phase == PeerPhase::Active)
        };
        let target = match to {
            Some(t) if t == self.cfg.id => return fail(self, format!("n{t} leads already")),
            Some(t) if synced_voter(l, t) => t,
            Some(t) => {
                return fail(
                    self,
                    format!("n{t} is not a voter in sync with this leader"),
                )
            }
            None => {
                // The voter furthest along; the lowest id among equals.
                let best = l
                    .peers
                    .iter()
                    .filter(|(id, _)| synced_voter(l, **id))
                    .max_by(|a, b| a.1.acked.cmp(&b.1.acked).then(b.0.cmp(a.0)))
                    .map(|(id, _)| *id);
                match best {
                    Some(t) => t,
                    None => return fail(self, "no voter is in sync with this leader".into()),
                }
            }
        };
        l.transfer = Some(Transfer {
            to: target,
            deadline: self.now + self.cfg.sync_limit_ticks,
        });
        self.transfer_outcome(TransferOutcome::Started { to: target });
        self.maybe_hand_over(l);
    }

    /// Hands over once the target has acknowledged everything proposed; gives up when the
    /// target is gone or the deadline passed. Called on each acknowledgement and tick.
    pub(crate) fn maybe_hand_over(&mut self, l: &mut Leader) {
        let Some(t) = l.transfer.clone() else {
            return;
        };
        let Some(peer) = l.peers.get(&t.to).filter(|p| p.phase == PeerPhase::Active) else {
            self.give_up_transfer(
                l,
                format!("n{} is no longer in sync with this leader", t.to),
            );
            return;
        };
        // A voter that acknowledged NEWLEADER holds the whole initial history durably.
        let durable = peer.acked.max(l.initial_last);
        if durable < self.log.last() {
            if self.now > t.deadline {
                self.give_up_transfer(l, format!("n{} did not catch up in time", t.to));
            }
            return;
        }
        // Each learner learns which of its requests this leader took, so that it sends the
        // later ones (in flight now, lost with this leader's connections) to the new leader.
        // The target also receives the held writes, to propose before anything else.
        let mut held = std::mem::take(&mut l.held);
        let peers: Vec<(ServerId, ConnId, Option<u64>)> = l
            .peers
            .iter()
            .map(|(id, p)| (*id, p.conn, p.last_request))
            .collect();
        for (id, conn, through) in peers {
            let msg = if id == t.to {
                LearnerMsg::TakeOver {
                    through,
                    held: std::mem::take(&mut held),
                }
            } else {
                LearnerMsg::Handover { to: t.to, through }
            };
            self.send_learner(id, conn, msg);
        }
        self.handover = true;
        self.out.push(Action::Handover {
            leader: t.to,
            taken_through: None,
        });
        self.leader_release(l);
        self.transfer_outcome(TransferOutcome::HandedOver { to: t.to });
        self.decide(t.to);
    }

    /// Ends a transfer that cannot complete: proposals go on, the held writes first.
    fn give_up_transfer(&mut self, l: &mut Leader, reason: String) {
        l.transfer = None;
        self.transfer_outcome(TransferOutcome::Failed { reason });
        for h in std::mem::take(&mut l.held) {
            self.leader_take_request(l, h.from, h.request_id, h.payload);
        }
    }

    /// On a learner: asks the leader to hand over to this node.
    fn learner_request_leadership(&mut self, l: &mut Learner, to: Option<ServerId>) {
        if to.is_some_and(|t| t != self.cfg.id) {
            self.transfer_outcome(TransferOutcome::Failed {
                reason: format!(
                    "ask the leader (n{}) to hand over to another server",
                    l.leader
                ),
            });
            return;
        }
        if l.observer || !self.counts(self.cfg.id) || l.phase != LPhase::Broadcast {
            self.transfer_outcome(TransferOutcome::Failed {
                reason: "only a voter in sync with its leader can take over".into(),
            });
            return;
        }
        self.send_learner(l.leader, l.conn, LearnerMsg::RequestLeadership);
        self.transfer_outcome(TransferOutcome::Requested { leader: l.leader });
    }

    /// On a learner: its leader hands over, to this node (`TakeOver`) or to another
    /// (`Handover`). Only a voter whose synced history is durable (it acknowledged NEWLEADER)
    /// takes over.
    pub(crate) fn learner_handover(
        &mut self,
        l: &mut Learner,
        to: ServerId,
        through: Option<u64>,
        held: Vec<HeldRequest>,
    ) {
        if to == self.cfg.id
            && (l.observer || !self.counts(self.cfg.id) || l.phase < LPhase::Synced || !l.nl_acked)
        {
            return;
        }
        self.handover = true;
        self.out.push(Action::Handover {
            leader: to,
            taken_through: through,
        });
        self.learner_release(l);
        self.decide(to);
        // After `decide`, which starts the new role with nothing inherited.
        self.inherited = held;
    }

    /// On a leader just established: the writes its predecessor held during the handover
    /// go first, before any learner's new request.
    pub(crate) fn propose_inherited(&mut self, l: &mut Leader) {
        for h in std::mem::take(&mut self.inherited) {
            self.leader_take_request(l, h.from, h.request_id, h.payload);
        }
    }
}

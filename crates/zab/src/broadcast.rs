//! Leader side of broadcast: pipelined proposals, commit on a quorum that counts the leader,
//! in zxid order, and sync() completion.

use crate::action::{Action, RejectReason};
use crate::leader::{Leader, PeerPhase, PendingSync, Phase};
use crate::message::{ConnId, HeldRequest, LearnerMsg};
use crate::node::Node;
use crate::zxid::{ServerId, Txn, Zxid};
use bytes::Bytes;

impl Node {
    pub(crate) fn leader_can_propose(&self, l: &Leader) -> bool {
        l.phase == Phase::Established && l.rollover.is_none() && l.transfer.is_none()
    }

    /// A learner's write (`from` may be this node, for a write inherited with the
    /// leadership): handed to the driver to prepare, or proposed as it is; refused if this
    /// leader cannot propose now.
    pub(crate) fn leader_take_request(
        &mut self,
        l: &mut Leader,
        from: ServerId,
        request_id: u64,
        payload: Bytes,
    ) {
        if self.cfg.driver_prepares_forwarded && self.leader_can_propose(l) {
            self.out.push(Action::Forwarded {
                from,
                request_id,
                payload,
            });
            return;
        }
        if self.leader_can_propose(l) && self.leader_propose(l, None, payload) {
            return;
        }
        if from == self.cfg.id {
            self.out.push(Action::WriteRejected {
                request_id,
                reason: RejectReason::NotServing,
            });
        } else if let Some(conn) = l.peers.get(&from).map(|p| p.conn) {
            self.send_learner(from, conn, LearnerMsg::Refused { request_id });
        }
    }

    /// A client's write (ours, or forwarded by a learner when `request_id` is None): stamp the
    /// next zxid, log it, and send it to every follower in the broadcast set without waiting
    /// for our own fsync. False if refused (then it is never committed).
    pub(crate) fn leader_propose(
        &mut self,
        l: &mut Leader,
        request_id: Option<u64>,
        payload: Bytes,
    ) -> bool {
        let reject = |n: &mut Node, reason| {
            if let Some(request_id) = request_id {
                n.out.push(Action::WriteRejected { request_id, reason });
            }
        };
        if l.phase != Phase::Established {
            reject(self, RejectReason::NotServing);
            return false;
        }
        if let Some(m) = self.read_membership(&payload) {
            // One reconfiguration at a time, and only one that can commit (membership.rs).
            if let Some(reason) = self.reconfig_refusal_at(l, &m) {
                reject(self, reason);
                return false;
            }
        }
        if l.rollover.is_some() || l.next_counter > self.cfg.counter_max() {
            // The ensemble is moving to the next epoch (rollover.rs): proposed once it has.
            match request_id {
                Some(request_id) => l.held.push(HeldRequest {
                    from: self.cfg.id,
                    request_id,
                    payload,
                }),
                None => reject(self, RejectReason::NotServing),
            }
            self.leader_start_rollover(l);
            return true;
        }
        let zxid = Zxid::new(l.epoch, l.next_counter);
        l.next_counter += 1;
        let txn = Txn { zxid, payload };
        if l.peers.is_empty() {
            // A one-voter ensemble: nobody to send it to.
            let ok = self.append(txn);
            debug_assert!(ok, "leader log must accept its own proposal");
        } else {
            let ok = self.append(txn.clone());
            debug_assert!(ok, "leader log must accept its own proposal");
            for (id, conn) in l.followers_in_broadcast() {
                self.send_learner(id, conn, LearnerMsg::Proposal { txn: txn.clone() });
            }
        }
        self.try_commit(l);
        if l.next_counter > self.cfg.counter_max() {
            // That was the epoch's last counter.
            self.leader_start_rollover(l);
        }
        true
    }

    /// Commits, in zxid order, every proposal a quorum of voters (us included when our own copy
    /// is durable) has acknowledged.
    pub(crate) fn try_commit(&mut self, l: &mut Leader) {
        if l.phase != Phase::Established {
            return;
        }
        let old = self.commit;
        // Each voter's point: how far its log is durable (ours) or acknowledged (the
        // learners'). Logs have no holes, so a voter holds every entry up to its point, and the
        // commit point is the highest point that a quorum of voters has reached: found from
        // the few points, not by walking the entries (one write at a time on a busy leader).
        let mut points: Vec<(Zxid, ServerId)> = Vec::with_capacity(l.peers.len() + 1);
        points.push((l.self_durable, self.cfg.id));
        points.extend(
            l.peers
                .iter()
                .filter(|(_, p)| !p.observer && p.phase == PeerPhase::Active)
                .map(|(id, p)| (p.acked, *id)),
        );
        points.sort_unstable_by(|a, b| b.cmp(a));
        let mut reached = old;
        if self.cfg.bugs.commit_without_quorum {
            reached = self.log.last();
        } else {
            let mut ids: Vec<ServerId> = Vec::with_capacity(points.len());
            for &(point, id) in &points {
                ids.push(id);
                if point <= old {
                    break;
                }
                if self.is_quorum(&ids) {
                    reached = point;
                    break;
                }
            }
        }
        let mut commit = reached.min(self.log.last());
        if !self.log.has(commit) {
            // Points are entries of our log; should one not be, commit only whole entries.
            let mut at = old;
            while let Some(next) = self.log.next_after(at).filter(|n| *n <= commit) {
                at = next;
            }
            commit = at;
        }
        if commit <= old {
            return;
        }
        let observers = l.peers.values().any(|p| p.observer && p.in_broadcast());
        let newly: Vec<Txn> = if observers {
            self.log
                .after(old)
                .take_while(|t| t.zxid <= commit)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        self.advance_commit(commit);
        let targets: Vec<(ServerId, ConnId, bool)> = l
            .peers
            .iter()
            .filter(|(_, p)| p.in_broadcast())
            .map(|(id, p)| (*id, p.conn, p.observer))
            .collect();
        for (id, conn, observer) in targets {
            if observer {
                // Observers never see proposals, only what is committed (INFORM).
                for txn in &newly {
                    self.send_learner(id, conn, LearnerMsg::Inform { txn: txn.clone() });
                }
            } else {
                self.send_learner(id, conn, LearnerMsg::Commit { zxid: commit });
            }
        }
        self.check_syncs(l);
    }

    pub(crate) fn leader_client_sync(&mut self, l: &mut Leader, request_id: u64) {
        if l.phase != Phase::Established {
            self.out.push(Action::SyncFailed { request_id });
            return;
        }
        l.syncs.push(PendingSync {
            origin: None,
            request_id,
            need_commit: self.log.last(),
            need_round: self.ping_round + 1,
        });
        self.sync_heartbeat(l);
        self.check_syncs(l);
    }

    /// Completes the syncs whose conditions hold: everything proposed before the sync is
    /// committed, and a quorum answered a heartbeat sent after it (so we were still the leader
    /// when it arrived). The reply to a learner follows the COMMITs on the same connection.
    pub(crate) fn check_syncs(&mut self, l: &mut Leader) {
        if l.syncs.is_empty() {
            return;
        }
        let commit = self.commit;
        let (done, waiting): (Vec<PendingSync>, Vec<PendingSync>) =
            std::mem::take(&mut l.syncs).into_iter().partition(|s| {
                commit >= s.need_commit
                    && (self.round_answered(l, s.need_round) || self.cfg.bugs.sync_without_quorum)
            });
        l.syncs = waiting;
        for s in done {
            match s.origin {
                None => self.out.push(Action::SyncDone {
                    request_id: s.request_id,
                }),
                Some((id, conn)) => {
                    if l.peers.get(&id).is_some_and(|p| p.conn == conn) {
                        self.send_learner(
                            id,
                            conn,
                            LearnerMsg::SyncReply {
                                request_id: s.request_id,
                            },
                        );
                    }
                }
            }
        }
    }
}

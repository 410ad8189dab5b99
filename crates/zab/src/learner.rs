//! Learner side (follower and observer): discovery, synchronisation and broadcast.

use crate::action::{Action, RejectReason};
use crate::message::{ConnId, LearnerMsg, SyncMode};
use crate::node::Node;
use crate::zxid::{DiskSeq, Epoch, ServerId, Zxid};
use bytes::Bytes;
use std::collections::BTreeSet;

/// Where a learner is with its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LPhase {
    /// Info sent, waiting for LEADERINFO.
    Connecting,
    /// Accepted the new epoch; waiting for it to be durable before ACKEPOCH.
    EpochPersisting,
    /// ACKEPOCH sent, waiting for DIFF / TRUNC / SNAP.
    AwaitSync,
    /// Receiving the synced history.
    Syncing,
    /// NEWLEADER received; waiting for the synced history and current epoch to be durable.
    NewLeaderPersisting,
    /// NEWLEADER acknowledged; waiting for UPTODATE.
    Synced,
    /// Up to date: serving clients.
    Broadcast,
}

/// Learner state.
#[derive(Debug)]
pub(crate) struct Learner {
    pub leader: ServerId,
    pub conn: ConnId,
    pub phase: LPhase,
    pub last_heard: u64,
    pub epoch: Epoch,
    /// Disk order that must be durable before the next acknowledgement of this phase.
    pub wait_seq: DiskSeq,
    pub nl_acked: bool,
    pub acked_sent: Zxid,
    pub syncs: BTreeSet<u64>,
    pub touches: Vec<u64>,
    /// Our ACKEPOCH counts toward the leader's quorum for its epoch (see `AckEpoch`).
    pub promised: bool,
    /// A rollover's new epoch, durable at this disk order: then `AckNewEpoch`.
    pub rollover_seq: Option<DiskSeq>,
    /// A rollover's `NewEpoch` that came before we acknowledged NEWLEADER: taken after.
    pub next_epoch: Option<Epoch>,
    /// The part this learner joined in: an observer or a follower. A configuration that
    /// changes it makes the learner join again.
    pub observer: bool,
}

impl Learner {
    pub fn new(leader: ServerId, conn: ConnId, now: u64, observer: bool) -> Learner {
        Learner {
            leader,
            conn,
            phase: LPhase::Connecting,
            last_heard: now,
            epoch: 0,
            wait_seq: 0,
            nl_acked: false,
            acked_sent: Zxid::ZERO,
            syncs: BTreeSet::new(),
            touches: Vec::new(),
            promised: false,
            rollover_seq: None,
            next_epoch: None,
            observer,
        }
    }

    pub fn is_up_to_date(&self) -> bool {
        self.phase == LPhase::Broadcast
    }
}

impl Node {
    fn send_to_leader(&mut self, l: &Learner, msg: LearnerMsg) {
        self.send_learner(l.leader, l.conn, msg);
    }

    pub(crate) fn learner_start(&mut self, l: &mut Learner) {
        let msg = LearnerMsg::Info {
            accepted_epoch: self.accepted_epoch,
            observer: l.observer,
        };
        self.send_to_leader(l, msg);
    }

    /// Gives up on the leader: fail what waits on it and look again.
    pub(crate) fn learner_leave(&mut self, l: &mut Learner) {
        self.learner_release(l);
        self.become_looking();
    }

    /// What leaving the learner role undoes, whatever comes next: the syncs waiting on this
    /// leader fail.
    pub(crate) fn learner_release(&mut self, l: &mut Learner) {
        for request_id in std::mem::take(&mut l.syncs) {
            self.out.push(Action::SyncFailed { request_id });
        }
    }

    pub(crate) fn learner_on_msg(
        &mut self,
        l: &mut Learner,
        from: ServerId,
        conn: ConnId,
        msg: LearnerMsg,
    ) {
        if from != l.leader || conn != l.conn {
            return;
        }
        l.last_heard = self.now;
        use LPhase::*;
        match (l.phase, msg) {
            (Connecting, LearnerMsg::LeaderInfo { epoch }) => {
                if epoch < self.accepted_epoch {
                    // We already promised a newer leader: this one is stale.
                    self.learner_leave(l);
                    return;
                }
                if epoch > self.accepted_epoch {
                    self.accepted_epoch = epoch;
                    self.accepted_from = Some(l.leader);
                    l.wait_seq = self.persist_epochs();
                    l.promised = true;
                } else {
                    // This epoch was accepted already: a promise to this same leader (a
                    // reconnect during discovery) still counts; one made to another leader
                    // that picked the same epoch must not count twice, or both could gather
                    // a quorum for it.
                    l.wait_seq = self.epochs_seq;
                    l.promised = self.accepted_from == Some(l.leader);
                }
                l.epoch = epoch;
                l.phase = EpochPersisting;
                self.learner_progress(l);
            }
            (AwaitSync, LearnerMsg::Sync { mode, commit }) => {
                if let SyncMode::Trunc { to } = mode {
                    if to < self.applied {
                        // Applied state cannot be undone: a correct leader never asks this.
                        self.learner_leave(l);
                        return;
                    }
                    self.truncate(to);
                }
                l.phase = Syncing;
                self.advance_commit(commit);
            }
            (AwaitSync, LearnerMsg::Snap { zxid, data }) => {
                if zxid < self.applied {
                    self.learner_leave(l);
                    return;
                }
                self.install_snapshot(zxid, data);
                l.phase = Syncing;
            }
            (p, LearnerMsg::Proposal { txn }) if p >= Syncing => {
                let zxid = txn.zxid;
                if self.log.has(zxid) {
                    return;
                }
                if !self.append(txn) {
                    // A hole: never log past one (ZOOKEEPER-4925); resync instead.
                    self.learner_leave(l);
                    return;
                }
                if self.cfg.bugs.apply_uncommitted {
                    self.advance_commit(zxid);
                }
                self.maybe_ack(l);
            }
            (
                Syncing,
                LearnerMsg::NewLeader {
                    epoch,
                    commit,
                    config,
                },
            ) => {
                if epoch != l.epoch {
                    self.learner_leave(l);
                    return;
                }
                if let Some((zxid, payload)) = config {
                    // Committed at the leader; its consequences for our part are drawn
                    // after this step (`config_took_effect`).
                    self.adopt_config(zxid, payload);
                }
                self.current_epoch = epoch;
                // This disk order comes after every order of the sync (truncate, snapshot,
                // appends), so once it is durable the whole synced history is.
                l.wait_seq = self.persist_epochs();
                l.phase = NewLeaderPersisting;
                self.advance_commit(commit);
                if self.cfg.bugs.newleader_ack_before_durable {
                    self.ack_newleader(l);
                } else {
                    self.learner_progress(l);
                }
            }
            (Synced, LearnerMsg::UpToDate { commit }) => {
                l.phase = Broadcast;
                self.advance_commit(commit);
            }
            (p, LearnerMsg::Commit { zxid }) if p >= Syncing => {
                if zxid > self.log.last() {
                    self.learner_leave(l);
                    return;
                }
                self.advance_commit(zxid);
            }
            (p, LearnerMsg::Inform { txn }) if p >= Syncing => {
                let zxid = txn.zxid;
                if zxid > self.log.last() && !self.append(txn) {
                    self.learner_leave(l);
                    return;
                }
                self.advance_commit(zxid);
            }
            (_, LearnerMsg::LeaderInfo { .. }) => {
                // A LEADERINFO past discovery: the leader restarted its role on what we took
                // for our connection. Start over.
                self.learner_leave(l);
            }
            (_, LearnerMsg::TakeOver { through, held }) => {
                let me = self.cfg.id;
                self.learner_handover(l, me, through, held);
            }
            (_, LearnerMsg::Handover { to, through }) => {
                self.learner_handover(l, to, through, Vec::new())
            }
            (p, LearnerMsg::NewEpoch { epoch }) if p >= Syncing => self.learner_new_epoch(l, epoch),
            (_, LearnerMsg::Ping { round }) => {
                let touches = std::mem::take(&mut l.touches);
                self.send_to_leader(l, LearnerMsg::PingAck { round, touches });
            }
            (_, LearnerMsg::SyncReply { request_id }) if l.syncs.remove(&request_id) => {
                self.out.push(Action::SyncDone { request_id });
            }
            (_, LearnerMsg::Refused { request_id }) => {
                self.out.push(Action::WriteRejected {
                    request_id,
                    reason: RejectReason::NotServing,
                });
            }
            _ => {}
        }
    }

    fn ack_newleader(&mut self, l: &mut Learner) {
        l.nl_acked = true;
        l.phase = LPhase::Synced;
        let epoch = l.epoch;
        self.send_to_leader(l, LearnerMsg::AckNewLeader { epoch });
        // A rollover's NewEpoch that came meanwhile.
        self.learner_rollover_progress(l);
        self.maybe_ack(l);
    }

    /// Acts on durability: ACKEPOCH once the accepted epoch is durable, the NEWLEADER ack once
    /// the synced history and current epoch are, proposal ACKs once the proposals are.
    pub(crate) fn learner_progress(&mut self, l: &mut Learner) {
        match l.phase {
            LPhase::EpochPersisting if self.persisted >= l.wait_seq => {
                let applied = self.applied;
                let msg = LearnerMsg::AckEpoch {
                    epoch: l.epoch,
                    current_epoch: self.current_epoch,
                    last_zxid: self.log.last(),
                    applied,
                    runs: self.log.runs_above(applied),
                    promised: l.promised,
                };
                l.phase = LPhase::AwaitSync;
                self.send_to_leader(l, msg);
            }
            LPhase::NewLeaderPersisting if self.persisted >= l.wait_seq => self.ack_newleader(l),
            LPhase::Synced | LPhase::Broadcast => {
                self.learner_rollover_progress(l);
                self.maybe_ack(l);
            }
            _ => {}
        }
    }

    /// ACKs (cumulatively) the highest durable proposal of this epoch. Only after NEWLEADER was
    /// acknowledged: an ACK must imply that our current epoch is durable too, or a crash could
    /// leave a node that acked a committed proposal ranked below one that did not.
    pub(crate) fn maybe_ack(&mut self, l: &mut Learner) {
        if !l.nl_acked || l.observer {
            return;
        }
        let upto = if self.cfg.bugs.ack_before_fsync {
            self.log.last()
        } else {
            self.log.durable_last(self.persisted)
        };
        if upto > l.acked_sent && upto.epoch() == l.epoch {
            l.acked_sent = upto;
            self.send_to_leader(l, LearnerMsg::Ack { zxid: upto });
        }
    }

    pub(crate) fn learner_tick(&mut self, l: &mut Learner) {
        let limit = if l.phase == LPhase::Broadcast {
            self.cfg.sync_limit_ticks
        } else {
            self.cfg.init_limit_ticks
        };
        if self.now.saturating_sub(l.last_heard) > limit {
            self.learner_leave(l);
            return;
        }
        if l.phase == LPhase::Connecting {
            // The leader may not have taken the role yet when our first attempt arrived (a TCP
            // connect would be refused and retried): try again each tick.
            self.learner_start(l);
        }
    }

    pub(crate) fn learner_client_write(
        &mut self,
        l: &mut Learner,
        request_id: u64,
        payload: Bytes,
    ) {
        if l.phase != LPhase::Broadcast {
            self.out.push(Action::WriteRejected {
                request_id,
                reason: RejectReason::NotServing,
            });
            return;
        }
        self.send_to_leader(
            l,
            LearnerMsg::Request {
                request_id,
                payload,
            },
        );
    }

    /// A client resumed a session here: the leader hears it on the ordered connection, ahead
    /// of the writes forwarded for it afterwards. Not in step yet: nobody to tell (the client
    /// is turned away until this node serves).
    pub(crate) fn learner_session_resumed(&mut self, l: &mut Learner, session_id: u64) {
        if l.phase != LPhase::Broadcast {
            return;
        }
        self.send_to_leader(l, LearnerMsg::SessionResumed { session_id });
    }

    pub(crate) fn learner_client_sync(&mut self, l: &mut Learner, request_id: u64) {
        if l.phase != LPhase::Broadcast {
            self.out.push(Action::SyncFailed { request_id });
            return;
        }
        l.syncs.insert(request_id);
        self.send_to_leader(l, LearnerMsg::SyncRequest { request_id });
    }
}

//! Leader side: discovery (choosing the new epoch), the phase bookkeeping, heartbeats and
//! stepping down. Synchronisation of learners is in `sync.rs`, broadcast in `broadcast.rs`.

use crate::action::Action;
use crate::message::{ConnId, LearnerMsg, Message};
use crate::node::Node;
use crate::zxid::{DiskSeq, Epoch, ServerId, Zxid};
use std::collections::BTreeMap;

/// Where the leader is in establishing its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Collecting learner infos until a quorum of voters is connected.
    Discovery,
    /// New epoch chosen; waiting for our own acceptedEpoch to be durable.
    EpochPersisting,
    /// LEADERINFO sent; collecting ACKEPOCHs from a quorum.
    AwaitAckEpoch,
    /// Learners synced and NEWLEADER sent; waiting for a quorum of NEWLEADER acks.
    Syncing,
    /// A quorum acknowledged NEWLEADER: committing and proposing.
    Established,
}

/// What a learner told us in ACKEPOCH: enough to choose DIFF, TRUNC or SNAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LearnerLog {
    pub last_zxid: Zxid,
    pub applied: Zxid,
    pub runs: Vec<(Zxid, Zxid)>,
    /// Its acknowledgement counts toward the epoch's quorum.
    pub promised: bool,
}

/// A learner's progress through discovery and sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerPhase {
    /// Sent its info.
    Info,
    /// We sent LEADERINFO.
    EpochSent,
    /// It acknowledged the epoch; sync not started yet.
    AckedEpoch(LearnerLog),
    /// Sync and NEWLEADER sent: it receives every proposal and commit from now on.
    Synced,
    /// It acknowledged NEWLEADER.
    Active,
}

/// One connected learner.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub conn: ConnId,
    pub observer: bool,
    pub accepted_epoch: Epoch,
    pub phase: PeerPhase,
    /// Highest proposal it acknowledged as durable.
    pub acked: Zxid,
    pub last_heard: u64,
    /// Highest heartbeat round it answered.
    pub ping_acked: u64,
    /// The last request it sent us (taken: proposed or held), for a handover to tell it
    /// which of its later ones to send again.
    pub last_request: Option<u64>,
}

impl Peer {
    /// Whether it is past sync and receives the broadcast stream.
    pub fn in_broadcast(&self) -> bool {
        matches!(self.phase, PeerPhase::Synced | PeerPhase::Active)
    }
}

/// A client's sync() waiting at the leader.
#[derive(Debug, Clone)]
pub(crate) struct PendingSync {
    /// The learner and connection it came from; None for a client of the leader itself.
    pub origin: Option<(ServerId, ConnId)>,
    pub request_id: u64,
    /// Everything proposed before the sync arrived must be committed first.
    pub need_commit: Zxid,
    /// A quorum must answer a heartbeat sent after the sync arrived, proving that no newer
    /// leader had been established by then.
    pub need_round: u64,
}

/// Leader state.
#[derive(Debug)]
pub(crate) struct Leader {
    pub epoch: Epoch,
    pub phase: Phase,
    pub started: u64,
    pub peers: BTreeMap<ServerId, Peer>,
    pub epoch_seq: DiskSeq,
    pub newleader_seq: DiskSeq,
    /// Our last zxid when sync started: the history the new epoch begins with.
    pub initial_last: Zxid,
    pub next_counter: u32,
    /// Highest of our own log entries that is durable (our own ACK).
    pub self_durable: Zxid,
    /// The counter is used up and the ensemble moves to the next epoch (rollover.rs):
    /// proposals are held.
    pub rollover: Option<crate::rollover::Rollover>,

    pub syncs: Vec<PendingSync>,
    /// Syncs wait for a heartbeat round not sent yet (`sync_heartbeat`).
    pub heartbeat_wanted: bool,
    /// A leadership transfer under way: proposals are held.
    pub transfer: Option<crate::transfer::Transfer>,
    /// Learners' writes that arrived while proposals were held, in arrival order: passed on
    /// to the new leader, or proposed here if the transfer is given up or once a rollover
    /// is done.
    pub held: Vec<crate::message::HeldRequest>,
}

impl Leader {
    pub fn new(now: u64) -> Leader {
        Leader {
            epoch: 0,
            phase: Phase::Discovery,
            started: now,
            peers: BTreeMap::new(),
            epoch_seq: 0,
            newleader_seq: 0,
            initial_last: Zxid::ZERO,
            next_counter: 1,
            self_durable: Zxid::ZERO,
            rollover: None,
            syncs: Vec::new(),
            heartbeat_wanted: false,
            transfer: None,
            held: Vec::new(),
        }
    }

    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The followers (voters) that receive proposals, with their connections.
    pub fn followers_in_broadcast(&self) -> Vec<(ServerId, ConnId)> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.observer && p.in_broadcast())
            .map(|(id, p)| (*id, p.conn))
            .collect()
    }
}

impl Node {
    pub(crate) fn leader_start(&mut self, l: &mut Leader) {
        l.self_durable = self.log.durable_last(self.persisted);
        // A one-voter ensemble is its own quorum.
        self.maybe_choose_epoch(l);
    }

    /// Leaves the leader role: fail what waits on us, then look for a leader again.
    /// Remembers that a learner connection is closed, so it is never taken back.
    pub(crate) fn close_conn(&mut self, learner: ServerId, conn: ConnId) {
        let c = self.closed_conns.entry(learner).or_insert(conn);
        *c = (*c).max(conn);
    }

    pub(crate) fn leader_step_down(&mut self, l: &mut Leader) {
        self.leader_release(l);
        self.become_looking();
    }

    /// What leaving the leader role undoes, whatever comes next (looking, or following the
    /// server it handed over to): our learners' connections close with the role, and our own
    /// clients' syncs fail.
    pub(crate) fn leader_release(&mut self, l: &mut Leader) {
        let conns: Vec<(ServerId, ConnId)> = l.peers.iter().map(|(id, p)| (*id, p.conn)).collect();
        for (id, conn) in conns {
            self.close_conn(id, conn);
        }
        // Our own writes held for a rollover are refused (learners' fail with their
        // connections).
        for h in std::mem::take(&mut l.held) {
            if h.from == self.cfg.id {
                self.out.push(Action::WriteRejected {
                    request_id: h.request_id,
                    reason: crate::action::RejectReason::NotServing,
                });
            }
        }
        for s in l.syncs.drain(..) {
            if s.origin.is_none() {
                self.out.push(Action::SyncFailed {
                    request_id: s.request_id,
                });
            }
        }
    }

    pub(crate) fn send_learner(&mut self, to: ServerId, conn: ConnId, msg: LearnerMsg) {
        self.send(to, Message::Learner { conn, msg });
    }

    pub(crate) fn leader_on_msg(
        &mut self,
        l: &mut Leader,
        from: ServerId,
        conn: ConnId,
        msg: LearnerMsg,
    ) {
        if !self.knows(from) {
            return;
        }
        if let LearnerMsg::Info {
            accepted_epoch,
            observer,
        } = msg
        {
            // Its part is taken as it says: it may not have heard of a reconfiguration yet
            // (its NEWLEADER tells it, and it joins again in its new part). Only the
            // configurations' voters are ever counted, whatever a learner says it is.
            if let Some(p) = l.peers.get_mut(&from).filter(|p| p.conn == conn) {
                p.last_heard = self.now; // a repeated connection attempt
                return;
            }
            if self.closed_conns.get(&from).is_some_and(|&c| conn <= c) {
                // A connection we (or an earlier term of ours) already closed: as with TCP, it
                // cannot come back; the learner times out and connects anew.
                return;
            }
            // A new connection from the same learner replaces (closes) the old one.
            if let Some(old) = l.peers.get(&from) {
                let old = old.conn;
                self.close_conn(from, old);
            }
            let mut peer = Peer {
                conn,
                observer,
                accepted_epoch,
                phase: PeerPhase::Info,
                acked: Zxid::ZERO,
                last_heard: self.now,
                ping_acked: 0,
                last_request: None,
            };
            self.epoch_floor = self.epoch_floor.max(accepted_epoch);
            if l.phase >= Phase::EpochPersisting && accepted_epoch > l.epoch {
                // It promised a newer (failed) leader never to follow an older epoch, so it can
                // never join us. Give way: the next election picks an epoch above its promise.
                self.leader_step_down(l);
                return;
            }
            if l.phase >= Phase::AwaitAckEpoch {
                self.send_learner(from, conn, LearnerMsg::LeaderInfo { epoch: l.epoch });
                peer.phase = PeerPhase::EpochSent;
            }
            l.peers.insert(from, peer);
            if l.phase == Phase::Discovery {
                self.maybe_choose_epoch(l);
            }
            return;
        }
        let Some(peer) = l.peers.get_mut(&from) else {
            return;
        };
        if peer.conn != conn {
            return; // an old connection
        }
        peer.last_heard = self.now;
        match msg {
            LearnerMsg::AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                applied,
                runs,
                promised,
            } => {
                if peer.phase != PeerPhase::EpochSent || epoch != l.epoch {
                    return;
                }
                // Compared with the voters of our committed configuration, the candidates:
                // a voter of a pending one only (it cannot lead) may hold an uncommitted tail
                // this leader lacks, truncated by the sync like any uncommitted tail. What a
                // commit needed of the committed voters is checked here; a commit under an
                // older configuration precedes the reconfiguration we hold committed.
                let voter = self.cfg.quorum.is_voter(from);
                peer.phase = PeerPhase::AckedEpoch(LearnerLog {
                    last_zxid,
                    applied,
                    runs,
                    promised,
                });
                match l.phase {
                    Phase::AwaitAckEpoch => {
                        // ZAB requires the leader's history to be at least as recent as every
                        // acking voter's; the election usually ensures it, but votes can be
                        // stale, so check again and give way if not.
                        if voter
                            && (current_epoch, last_zxid) > (self.current_epoch, self.log.last())
                        {
                            self.leader_step_down(l);
                            return;
                        }
                        self.maybe_start_sync(l);
                    }
                    Phase::Syncing | Phase::Established => self.sync_learner(l, from),
                    _ => {}
                }
            }
            LearnerMsg::AckNewLeader { epoch } => {
                // The NEWLEADER it answers came from us on this connection: an epoch this
                // leader led, the current one or one it rolled over from since (rollover.rs).
                if peer.phase != PeerPhase::Synced || epoch > l.epoch {
                    return;
                }
                peer.phase = PeerPhase::Active;
                match l.phase {
                    Phase::Syncing => self.maybe_establish(l),
                    Phase::Established => {
                        let commit = self.commit;
                        self.send_learner(from, conn, LearnerMsg::UpToDate { commit });
                    }
                    _ => {}
                }
            }
            LearnerMsg::Ack { zxid }
                if peer.phase == PeerPhase::Active && !peer.observer && zxid > peer.acked =>
            {
                peer.acked = zxid;
                self.try_commit(l);
                self.maybe_hand_over(l);
            }
            LearnerMsg::AckNewEpoch { epoch } => self.leader_new_epoch_acked(l, from, epoch),
            LearnerMsg::RequestLeadership if peer.phase == PeerPhase::Active => {
                self.leader_transfer(l, Some(from));
            }
            LearnerMsg::PingAck { round, touches } => {
                peer.ping_acked = peer.ping_acked.max(round);
                if !touches.is_empty() {
                    self.out.push(Action::SessionsTouched {
                        from,
                        sessions: touches,
                    });
                }
                self.check_syncs(l);
                self.heartbeat_answered(l);
            }
            LearnerMsg::Request {
                request_id,
                payload,
            } => {
                peer.last_request = Some(request_id);
                if (l.transfer.is_some() || l.rollover.is_some()) && l.phase == Phase::Established {
                    // Neither proposed nor refused: it goes to the new leader with the
                    // leadership, or is proposed here if the transfer is given up.
                    l.held.push(crate::message::HeldRequest {
                        from,
                        request_id,
                        payload,
                    });
                    return;
                }
                self.leader_take_request(l, from, request_id, payload);
            }
            LearnerMsg::SessionResumed { session_id } => {
                self.out.push(Action::SessionOwner {
                    session_id,
                    server: from,
                });
            }
            LearnerMsg::SyncRequest { request_id }
                if l.phase == Phase::Established && peer.phase == PeerPhase::Active =>
            {
                let s = PendingSync {
                    origin: Some((from, conn)),
                    request_id,
                    need_commit: self.log.last(),
                    need_round: self.ping_round + 1,
                };
                l.syncs.push(s);
                self.sync_heartbeat(l);
                self.check_syncs(l);
            }
            _ => {}
        }
    }

    /// With `Config::eager_sync_heartbeat`, a sync does not wait for the next tick's heartbeat
    /// round: one goes out now (its answers prove we still lead, as the tick's would).
    /// A sync needs a quorum to answer a heartbeat sent after it arrived. At most one such
    /// round is in flight: syncs that arrive while one is unanswered wait for the next, sent
    /// once a quorum answered (`heartbeat_answered`). So concurrent syncs, and the
    /// linearizable reads built on them, share one quorum round trip each batch, whatever
    /// their number.
    pub(crate) fn sync_heartbeat(&mut self, l: &mut Leader) {
        if !self.cfg.eager_sync_heartbeat {
            return;
        }
        if self.heartbeat_unanswered(l) {
            l.heartbeat_wanted = true;
        } else {
            self.heartbeat(l);
        }
    }

    /// Whether a quorum of voters (us included) answered heartbeat `round` or a later one.
    pub(crate) fn round_answered(&self, l: &Leader, round: u64) -> bool {
        let mut ids = vec![self.cfg.id];
        ids.extend(
            l.peers
                .iter()
                .filter(|(_, p)| {
                    !p.observer && p.phase == PeerPhase::Active && p.ping_acked >= round
                })
                .map(|(id, _)| *id),
        );
        self.is_quorum(&ids)
    }

    /// Whether the last heartbeat round is still short of a quorum's answers.
    fn heartbeat_unanswered(&self, l: &Leader) -> bool {
        !self.round_answered(l, self.ping_round)
    }

    /// After a heartbeat answer: the round syncs wait for, if one is wanted and none is out.
    fn heartbeat_answered(&mut self, l: &mut Leader) {
        if l.heartbeat_wanted && !self.heartbeat_unanswered(l) {
            l.heartbeat_wanted = false;
            self.heartbeat(l);
        }
    }

    /// Sends every learner a heartbeat of a new round. Rounds count per node, not per term, so
    /// that an answer to an earlier term's heartbeat never passes for an answer to ours.
    fn heartbeat(&mut self, l: &mut Leader) {
        self.ping_round += 1;
        let round = self.ping_round;
        let peers: Vec<(ServerId, ConnId)> = l.peers.iter().map(|(id, p)| (*id, p.conn)).collect();
        for (id, conn) in peers {
            self.send_learner(id, conn, LearnerMsg::Ping { round });
        }
    }

    /// Discovery: once a quorum of voters (us included) has connected, choose an epoch above
    /// every acceptedEpoch we have seen and make it durable before telling anyone.
    pub(crate) fn maybe_choose_epoch(&mut self, l: &mut Leader) {
        // Every learner is counted as its configurations say, whatever part it joined in: one
        // that has not heard of a pending reconfiguration making it a voter joins as an
        // observer, and learns of it only in the sync this quorum leads to (membership.rs).
        let mut ids: Vec<ServerId> = vec![self.cfg.id];
        ids.extend(l.peers.keys().copied());
        if !self.is_quorum(&ids) {
            return;
        }
        let max_seen = l
            .peers
            .values()
            .map(|p| p.accepted_epoch)
            .max()
            .unwrap_or(0);
        l.epoch = max_seen.max(self.accepted_epoch).max(self.epoch_floor) + 1;
        self.accepted_epoch = l.epoch;
        l.epoch_seq = self.persist_epochs();
        l.phase = Phase::EpochPersisting;
    }

    pub(crate) fn leader_on_persisted(&mut self, l: &mut Leader) {
        l.self_durable = self.log.durable_last(self.persisted);
        if l.phase == Phase::EpochPersisting && self.persisted >= l.epoch_seq {
            l.phase = Phase::AwaitAckEpoch;
            let ids: Vec<ServerId> = l.peers.keys().copied().collect();
            for id in ids {
                let p = l.peers.get_mut(&id).expect("peer");
                if p.phase == PeerPhase::Info {
                    p.phase = PeerPhase::EpochSent;
                    let conn = p.conn;
                    self.send_learner(id, conn, LearnerMsg::LeaderInfo { epoch: l.epoch });
                }
            }
            self.maybe_start_sync(l);
        }
        match l.phase {
            Phase::Syncing => self.maybe_establish(l),
            Phase::Established => {
                self.try_commit(l);
                self.maybe_finish_rollover(l);
            }
            _ => {}
        }
    }

    /// Once a quorum of voters acknowledged the epoch: fix the initial history, make the
    /// current epoch durable, and sync every learner that acknowledged.
    pub(crate) fn maybe_start_sync(&mut self, l: &mut Leader) {
        let mut ids: Vec<ServerId> = vec![self.cfg.id];
        ids.extend(
            l.peers
                .iter()
                .filter(|(_, p)| matches!(&p.phase, PeerPhase::AckedEpoch(log) if log.promised))
                .map(|(id, _)| *id),
        );
        if !self.is_quorum(&ids) {
            return;
        }
        l.initial_last = self.log.last();
        self.current_epoch = l.epoch;
        l.newleader_seq = self.persist_epochs();
        l.phase = Phase::Syncing;
        let acked: Vec<ServerId> = l
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, PeerPhase::AckedEpoch(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in acked {
            self.sync_learner(l, id);
        }
        self.maybe_establish(l);
    }

    /// The leader commits nothing of the new epoch, and proposes nothing, before a quorum of
    /// voters (us included, once our current epoch and history are durable) acknowledged
    /// NEWLEADER. Then the whole initial history is committed.
    pub(crate) fn maybe_establish(&mut self, l: &mut Leader) {
        if l.phase != Phase::Syncing {
            return;
        }
        let mut ids: Vec<ServerId> = Vec::new();
        if self.persisted >= l.newleader_seq {
            ids.push(self.cfg.id);
        }
        ids.extend(
            l.peers
                .iter()
                .filter(|(_, p)| p.phase == PeerPhase::Active)
                .map(|(id, _)| *id),
        );
        if !self.is_quorum(&ids) {
            return;
        }
        l.phase = Phase::Established;
        l.next_counter = 1;
        let initial = l.initial_last;
        self.advance_commit(initial);
        let commit = self.commit;
        let active: Vec<(ServerId, ConnId)> = l
            .peers
            .iter()
            .filter(|(_, p)| p.phase == PeerPhase::Active)
            .map(|(id, p)| (*id, p.conn))
            .collect();
        for (id, conn) in active {
            self.send_learner(id, conn, LearnerMsg::UpToDate { commit });
        }
        let synced: Vec<(ServerId, ConnId)> = l
            .peers
            .iter()
            .filter(|(_, p)| p.phase == PeerPhase::Synced)
            .map(|(id, p)| (*id, p.conn))
            .collect();
        for (id, conn) in synced {
            self.send_learner(id, conn, LearnerMsg::Commit { zxid: commit });
        }
        self.propose_inherited(l);
    }

    pub(crate) fn leader_tick(&mut self, l: &mut Leader) {
        let now = self.now;
        let (init, sync) = (self.cfg.init_limit_ticks, self.cfg.sync_limit_ticks);
        // Drop learners we have not heard from in time: their connection is as good as gone.
        l.peers.retain(|_, p| {
            let limit = if p.phase == PeerPhase::Active {
                sync
            } else {
                init
            };
            now.saturating_sub(p.last_heard) <= limit
        });
        self.heartbeat(l);
        if l.phase == Phase::Established {
            let mut ids = vec![self.cfg.id];
            ids.extend(
                l.peers
                    .iter()
                    .filter(|(_, p)| p.phase == PeerPhase::Active)
                    .map(|(id, _)| *id),
            );
            if !self.is_quorum(&ids) {
                self.leader_step_down(l);
                return;
            }
            self.check_syncs(l);
            self.maybe_hand_over(l);
            self.leader_check_membership(l);
        } else if now.saturating_sub(l.started) > init {
            self.leader_step_down(l);
        }
    }
}

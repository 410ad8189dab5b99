//! The server-to-server protocol. Our own format: no wire compatibility with Java servers is
//! needed on the quorum ports.

use crate::zxid::{Epoch, ServerId, Txn, Zxid};
use bytes::Bytes;
use std::fmt;

/// Identifies one learner-to-leader connection. Chosen by the learner: its server id (low 8
/// bits), its incarnation (40 bits, growing from one start to the next; the server uses the
/// wall clock in milliseconds, so a replaced disk does not start it over) and a
/// per-incarnation counter (16 bits). A leader takes a learner's new connection only if its id is above every
/// one it closed for that learner, so after a reconnect or a restart neither side mistakes a
/// message of an old connection for one of the new. In the server this is one
/// TCP connection: messages on it arrive in order, and a lost message means the connection is
/// gone.
pub type ConnId = u64;

/// A server's state as reported in election notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerState {
    /// Looking for a leader.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader.
    Observing,
}

/// A vote for a leader. Ordered by the candidate's current epoch, then its last logged zxid,
/// then its id: the derived `Ord` relies on the field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    /// The candidate's current epoch (last NEWLEADER it acknowledged).
    pub epoch: Epoch,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate.
    pub leader: ServerId,
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}@e{}/{}", self.leader, self.epoch, self.zxid)
    }
}

/// How a learner is brought up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMode {
    /// Its log is a prefix of the leader's history: the missing entries follow as proposals.
    Diff,
    /// Its log goes past the leader's history: drop everything after `to`, then the missing
    /// entries follow.
    Trunc {
        /// Last zxid to keep.
        to: Zxid,
    },
}

/// Messages on a learner connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerMsg {
    /// Learner → leader, discovery: FOLLOWERINFO / OBSERVERINFO.
    Info {
        /// The learner's accepted epoch.
        accepted_epoch: Epoch,
        /// Whether the learner is an observer.
        observer: bool,
    },
    /// Leader → learner, discovery: the proposed new epoch (LEADERINFO).
    LeaderInfo {
        /// New epoch.
        epoch: Epoch,
    },
    /// Learner → leader: the new epoch is durable as accepted (ACKEPOCH), with what the leader
    /// needs to choose DIFF, TRUNC or SNAP.
    AckEpoch {
        /// The epoch acknowledged (as accepted and durable).
        epoch: Epoch,
        /// The learner's current epoch.
        current_epoch: Epoch,
        /// Its last logged zxid.
        last_zxid: Zxid,
        /// Its applied (known committed) point: never truncated.
        applied: Zxid,
        /// Its logged zxids above `applied` as runs `(first, last)` of consecutive counters.
        runs: Vec<(Zxid, Zxid)>,
        /// A promise made to this leader: the learner accepted `epoch` on this leader's
        /// LEADERINFO. False when it had accepted that epoch already from another leader (two
        /// leaders can pick the same epoch from different quorums) or cannot tell (it
        /// restarted since): the leader syncs it but does not count it toward the epoch's
        /// quorum, as ZooKeeper does with its -1 current epoch.
        promised: bool,
    },
    /// Leader → learner: start of synchronisation by DIFF or TRUNC.
    Sync {
        /// DIFF or TRUNC.
        mode: SyncMode,
        /// Leader's commit point (everything up to here is committed).
        commit: Zxid,
    },
    /// Leader → learner: start of synchronisation by snapshot (the driver fills in `data`).
    Snap {
        /// The snapshot's last zxid, committed.
        zxid: Zxid,
        /// Opaque state machine image.
        data: Bytes,
    },
    /// Leader → follower: a proposal (also each entry of a DIFF).
    Proposal {
        /// The transaction.
        txn: Txn,
    },
    /// Leader → learner: end of synchronisation.
    NewLeader {
        /// The new epoch.
        epoch: Epoch,
        /// Leader's commit point.
        commit: Zxid,
        /// The leader's committed configuration and the zxid it came from, for a learner
        /// that synced past a reconfiguration it never logged (a SNAP). None from a leader
        /// whose configuration never changed.
        config: Option<(Zxid, Bytes)>,
    },
    /// Learner → leader: synced history and current epoch are durable.
    AckNewLeader {
        /// The acknowledged epoch.
        epoch: Epoch,
    },
    /// Leader → learner: the leader is established; start serving.
    UpToDate {
        /// Leader's commit point.
        commit: Zxid,
    },
    /// Follower → leader: every proposal up to `zxid` is durable (cumulative).
    Ack {
        /// Highest durable zxid of this epoch.
        zxid: Zxid,
    },
    /// Leader → follower: everything up to `zxid` is committed (cumulative).
    Commit {
        /// Commit point.
        zxid: Zxid,
    },
    /// Leader → observer: a committed transaction (INFORM).
    Inform {
        /// The transaction.
        txn: Txn,
    },
    /// Learner → leader: a client's write, forwarded (REQUEST).
    Request {
        /// Learner-local id for the answer if it is refused.
        request_id: u64,
        /// Opaque payload.
        payload: Bytes,
    },
    /// Leader → learner: a forwarded write was not proposed.
    Refused {
        /// The learner's request id.
        request_id: u64,
    },
    /// Leader → learner: heartbeat.
    Ping {
        /// Heartbeat round.
        round: u64,
    },
    /// Learner → leader: heartbeat answer, with the sessions touched since the last one.
    PingAck {
        /// Round answered.
        round: u64,
        /// Session ids touched by clients of this learner.
        touches: Vec<u64>,
    },
    /// Learner → leader: a client resumed this session here. Sent on the ordered learner
    /// connection, so it reaches the leader before any write forwarded for it afterwards.
    SessionResumed {
        /// Session id.
        session_id: u64,
    },
    /// Learner → leader: a client's sync().
    SyncRequest {
        /// Learner-local id.
        request_id: u64,
    },
    /// Leader → learner: the sync is complete; everything committed before it was asked has been
    /// sent ahead of this message.
    SyncReply {
        /// Learner-local id.
        request_id: u64,
    },
    /// Leader → the voter it hands leadership to: you have acknowledged everything I
    /// proposed, and I propose nothing more: lead now (discovery picks the next epoch).
    TakeOver {
        /// The last of the target's own requests this leader took (proposed, or held and
        /// passed on here): the target's later ones never reached a leader.
        through: Option<u64>,
        /// Learners' writes this leader held during the transfer, in arrival order: the
        /// target proposes them first once it is established.
        held: Vec<HeldRequest>,
    },
    /// Leader → its other learners: follow `to`, which takes over from me now.
    Handover {
        /// The new leader.
        to: ServerId,
        /// The last of this learner's requests this leader took (proposed, or passed on to
        /// `to`): the learner sends its later ones again once it follows `to`.
        through: Option<u64>,
    },
    /// Learner → leader: hand leadership to me (`rqld`).
    RequestLeadership,
    /// Leader → follower: the zxid counter is used up; the leader goes on in `epoch`
    /// (`rollover.rs`). Sent after the last proposal of the old epoch: make `epoch` the
    /// accepted and current epoch, durably, and answer with `AckNewEpoch`.
    NewEpoch {
        /// The next epoch.
        epoch: Epoch,
    },
    /// Follower → leader: `epoch` is durable as our current epoch, and so is every proposal
    /// that came before the `NewEpoch`.
    AckNewEpoch {
        /// The epoch acknowledged.
        epoch: Epoch,
    },
}

/// A learner's write a leader held during a leadership transfer, passed on to the new leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRequest {
    /// The learner it came from (the new leader itself, possibly).
    pub from: ServerId,
    /// The learner's request id.
    pub request_id: u64,
    /// What the learner sent.
    pub payload: Bytes,
}

/// A message between two servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election notification. Any loss, duplication or reordering is tolerated.
    Notification {
        /// Sender's election round (logical clock).
        round: u64,
        /// Sender's state.
        state: PeerState,
        /// Sender's vote (for a leader or follower: the leader it is with).
        vote: Vote,
        /// The sender's committed configuration, once a reconfiguration made it (as
        /// ZooKeeper's notifications carry theirs): a server that restarted behind it learns
        /// it here, from anyone, voter or not.
        config: Option<(Zxid, Bytes)>,
    },
    /// On a learner connection: ordered, and a loss ends the connection.
    Learner {
        /// Connection id.
        conn: ConnId,
        /// Body.
        msg: LearnerMsg,
    },
}

impl fmt::Display for LearnerMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LearnerMsg::*;
        match self {
            Info {
                accepted_epoch,
                observer,
            } => {
                write!(f, "Info(accepted=e{accepted_epoch}, observer={observer})")
            }
            LeaderInfo { epoch } => write!(f, "LeaderInfo(e{epoch})"),
            AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                applied,
                runs,
                promised,
            } => write!(
                f,
                "AckEpoch(e{epoch}, current=e{current_epoch}, last={last_zxid}, applied={applied}, runs={}{})",
                runs.len(),
                if *promised { "" } else { ", not a promise" }
            ),
            Sync {
                mode: SyncMode::Diff,
                commit,
            } => write!(f, "Diff(commit={commit})"),
            Sync {
                mode: SyncMode::Trunc { to },
                commit,
            } => {
                write!(f, "Trunc(to={to}, commit={commit})")
            }
            Snap { zxid, data } => write!(f, "Snap({zxid}, {}B)", data.len()),
            Proposal { txn } => write!(f, "Proposal({txn})"),
            NewLeader { epoch, commit, .. } => write!(f, "NewLeader(e{epoch}, commit={commit})"),
            AckNewLeader { epoch } => write!(f, "AckNewLeader(e{epoch})"),
            UpToDate { commit } => write!(f, "UpToDate(commit={commit})"),
            Ack { zxid } => write!(f, "Ack({zxid})"),
            Commit { zxid } => write!(f, "Commit({zxid})"),
            Inform { txn } => write!(f, "Inform({txn})"),
            Request {
                request_id,
                payload,
            } => {
                write!(f, "Request(#{request_id}, {}B)", payload.len())
            }
            Refused { request_id } => write!(f, "Refused(#{request_id})"),
            Ping { round } => write!(f, "Ping({round})"),
            PingAck { round, touches } => write!(f, "PingAck({round}, touches={})", touches.len()),
            SyncRequest { request_id } => write!(f, "SyncRequest(#{request_id})"),
            SessionResumed { session_id } => write!(f, "SessionResumed(0x{session_id:x})"),
            SyncReply { request_id } => write!(f, "SyncReply(#{request_id})"),
            TakeOver { through, held } => {
                write!(f, "TakeOver(through {through:?}, {} held)", held.len())
            }
            Handover { to, through } => write!(f, "Handover(n{to}, through {through:?})"),
            RequestLeadership => write!(f, "RequestLeadership"),
            NewEpoch { epoch } => write!(f, "NewEpoch({epoch})"),
            AckNewEpoch { epoch } => write!(f, "AckNewEpoch({epoch})"),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Notification {
                round, state, vote, ..
            } => {
                write!(f, "Notification(r{round}, {state:?}, {vote})")
            }
            Message::Learner { conn, msg } => write!(f, "[c{conn:x}] {msg}"),
        }
    }
}

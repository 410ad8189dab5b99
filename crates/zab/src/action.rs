//! Outputs of a node: orders for the driver, executed in the order given.

use crate::message::{ConnId, Message};
use crate::zxid::{DiskSeq, Epoch, ServerId, Txn, Zxid};
use bytes::Bytes;
use std::fmt;

/// What a node currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Electing.
    Looking,
    /// Following (voter).
    Following,
    /// Observing (non-voter learner).
    Observing,
    /// Leading.
    Leading,
}

/// A leadership transfer's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Proposals are held until `to` has acknowledged them all.
    Started {
        /// The target.
        to: ServerId,
    },
    /// `to` was told to take over, the learners to follow it; this node follows it too.
    HandedOver {
        /// The new leader.
        to: ServerId,
    },
    /// On a follower: the request went to the leader.
    Requested {
        /// The leader asked.
        leader: ServerId,
    },
    /// Not done; proposals go on (if this node leads).
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a client's write or sync was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// This node is not serving (looking, syncing, or its leader is not established).
    NotServing,
    /// A reconfiguration while another is pending (logged and not yet committed).
    ReconfigInProgress,
    /// A reconfiguration whose voters have no quorum among the leader and its synced
    /// followers.
    NewConfigNoQuorum,
}

/// An order for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a peer. Learner-connection messages must go out in order.
    Send {
        /// Recipient.
        to: ServerId,
        /// Message.
        msg: Message,
    },
    /// Append transactions to the log (not yet durable).
    AppendLog {
        /// Disk order number.
        seq: DiskSeq,
        /// Transactions, ascending zxid.
        txns: Vec<Txn>,
    },
    /// Drop every logged transaction after `after`.
    TruncateLog {
        /// Disk order number.
        seq: DiskSeq,
        /// Last zxid kept.
        after: Zxid,
    },
    /// Write the epoch files.
    PersistEpochs {
        /// Disk order number.
        seq: DiskSeq,
        /// acceptedEpoch.
        accepted: Epoch,
        /// currentEpoch.
        current: Epoch,
    },
    /// Replace the state machine and the log with this snapshot, and make it durable.
    InstallSnapshot {
        /// Disk order number.
        seq: DiskSeq,
        /// Last zxid the snapshot covers.
        zxid: Zxid,
        /// Opaque image from the leader.
        data: Bytes,
    },
    /// Send `LearnerMsg::Snap` on this connection, with an image of the state machine as it is
    /// after every earlier `Apply` (its last zxid is `zxid`).
    SendSnapshot {
        /// Learner.
        to: ServerId,
        /// Connection.
        conn: ConnId,
        /// Applied point the image must be at.
        zxid: Zxid,
    },
    /// Send, as `LearnerMsg::Proposal`s on this connection and before any later message, every
    /// logged transaction in `(after, through]`, read from the on-disk log (the part of a DIFF
    /// older than the in-memory window).
    SendLogRange {
        /// Learner.
        to: ServerId,
        /// Connection.
        conn: ConnId,
        /// Exclusive lower bound.
        after: Zxid,
        /// Inclusive upper bound.
        through: Zxid,
    },
    /// Apply a committed transaction to the state machine (always in zxid order).
    Apply {
        /// The transaction.
        txn: Txn,
    },
    /// The node changed role.
    RoleChanged {
        /// New role.
        role: RoleKind,
        /// The leader it is with, if any.
        leader: Option<ServerId>,
    },
    /// The leader used up its epoch's counter and the ensemble moved on to `epoch`, without
    /// an election (rollover.rs). For the operator's log.
    RolledOver {
        /// The new epoch.
        epoch: crate::zxid::Epoch,
    },
    /// How a leadership transfer went (`Event::TransferLeadership`).
    Transfer {
        /// What happened.
        outcome: TransferOutcome,
    },
    /// A planned handover: this node leaves its role, without an election, to follow
    /// `leader` (or to lead, if it is this node). The driver may keep its clients waiting
    /// rather than drop them: once it serves again, it sends its requests after
    /// `taken_through` again (no leader received them) and asks again for the syncs that
    /// failed with the old role. If an election comes instead, what waited is lost as usual.
    Handover {
        /// The new leader.
        leader: ServerId,
        /// The last of this node's requests the old leader took (proposed, or passed on to
        /// the new leader); None: none (or this node was the old leader).
        taken_through: Option<u64>,
    },
    /// A client's write was not taken and will never be committed.
    WriteRejected {
        /// Driver's id.
        request_id: u64,
        /// Why.
        reason: RejectReason,
    },
    /// A client's sync() is complete: this node has applied everything committed before it.
    SyncDone {
        /// Driver's id.
        request_id: u64,
    },
    /// A client's sync() failed (the node lost its leader).
    SyncFailed {
        /// Driver's id.
        request_id: u64,
    },
    /// A learner forwarded a client's write to this leader, which can propose now
    /// (`Config::driver_prepares_forwarded`). The driver answers at once, before any other
    /// event, with the `Event::ClientWrite` carrying the transaction prepared from it, if the
    /// payload asks for one (it may only carry news for the driver, such as a session's move).
    Forwarded {
        /// Learner it came from.
        from: ServerId,
        /// The learner's request id.
        request_id: u64,
        /// The learner's payload (a request, not yet a transaction).
        payload: Bytes,
    },
    /// The leader learned which server a session was last resumed at (itself, or a learner).
    SessionOwner {
        /// Session id.
        session_id: u64,
        /// The server its client is connected to now.
        server: ServerId,
    },
    /// The leader learned that these sessions are alive.
    SessionsTouched {
        /// Learner that reported them.
        from: ServerId,
        /// Session ids.
        sessions: Vec<u64>,
    },
    /// A reconfiguration took effect here (committed, or learned committed): from now on
    /// these are the members. The driver connects to new members and drops those that left.
    ConfigActivated {
        /// The zxid of the reconfiguration.
        zxid: Zxid,
        /// Voters.
        voters: Vec<ServerId>,
        /// Observers.
        observers: Vec<ServerId>,
        /// The reconfiguration's payload (the driver's own record of it).
        payload: Bytes,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send { to, msg } => write!(f, "send n{to}: {msg}"),
            Action::AppendLog { seq, txns } => {
                let first = txns.first().map(|t| t.zxid).unwrap_or_default();
                let last = txns.last().map(|t| t.zxid).unwrap_or_default();
                write!(f, "append #{seq} {first}..={last} ({} txns)", txns.len())
            }
            Action::TruncateLog { seq, after } => write!(f, "truncate #{seq} after {after}"),
            Action::PersistEpochs {
                seq,
                accepted,
                current,
            } => {
                write!(
                    f,
                    "persist-epochs #{seq} accepted=e{accepted} current=e{current}"
                )
            }
            Action::InstallSnapshot { seq, zxid, data } => {
                write!(f, "install-snapshot #{seq} {zxid} ({}B)", data.len())
            }
            Action::SendSnapshot { to, conn, zxid } => {
                write!(f, "send-snapshot n{to} [c{conn:x}] at {zxid}")
            }
            Action::SendLogRange {
                to,
                conn,
                after,
                through,
            } => {
                write!(f, "send-log-range n{to} [c{conn:x}] ({after}, {through}]")
            }
            Action::Apply { txn } => write!(f, "apply {txn}"),
            Action::RoleChanged { role, leader } => match leader {
                Some(l) => write!(f, "role {role:?} (leader n{l})"),
                None => write!(f, "role {role:?}"),
            },
            Action::WriteRejected { request_id, reason } => {
                write!(f, "write-rejected #{request_id} {reason:?}")
            }
            Action::Transfer { outcome } => write!(f, "transfer {outcome:?}"),
            Action::ConfigActivated {
                zxid,
                voters,
                observers,
                ..
            } => write!(
                f,
                "config {zxid}: voters {voters:?} observers {observers:?}"
            ),
            Action::RolledOver { epoch } => write!(f, "rolled over to e{epoch}"),
            Action::Handover {
                leader,
                taken_through,
            } => write!(f, "handover to n{leader}, taken through {taken_through:?}"),
            Action::SyncDone { request_id } => write!(f, "sync-done #{request_id}"),
            Action::SyncFailed { request_id } => write!(f, "sync-failed #{request_id}"),
            Action::Forwarded {
                from,
                request_id,
                payload,
            } => write!(f, "forwarded n{from} #{request_id} ({}B)", payload.len()),
            Action::SessionOwner { session_id, server } => {
                write!(f, "session-owner 0x{session_id:x} at n{server}")
            }
            Action::SessionsTouched { from, sessions } => {
                write!(f, "sessions-touched from n{from} ({})", sessions.len())
            }
        }
    }
}

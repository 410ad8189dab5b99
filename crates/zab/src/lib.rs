//! # paddock-zab: the replication core
//!
//! ZAB (ZooKeeper Atomic Broadcast) as a sans-IO state machine: a [`Node`] takes [`Event`]s
//! (a peer's message, a tick, a durability watermark, a client's write or sync) and produces
//! [`Action`]s (send, append, truncate, persist epochs, install or send a snapshot, apply a
//! committed transaction, role changes, client answers). It has no IO, clock, threads or
//! randomness; the server and the simulator ([`sim`]) are two executors of the same actions.
//!
//! Phases, as in ZooKeeper:
//! 1. **Election** (`election.rs`): votes ordered by (current epoch, last zxid, id).
//! 2. **Discovery** (`leader.rs`, `learner.rs`): the leader chooses an epoch above every
//!    acceptedEpoch of a quorum; acceptedEpoch is durable before anyone acts on it.
//! 3. **Synchronisation** (`sync.rs`): DIFF, TRUNC or SNAP, then NEWLEADER; a learner
//!    acknowledges NEWLEADER only once the synced history and currentEpoch are durable; the
//!    leader commits nothing of the new epoch before a quorum acknowledged NEWLEADER.
//! 4. **Broadcast** (`broadcast.rs`): pipelined proposals, ACK after fsync, COMMIT on a quorum
//!    that counts the leader, in zxid order; observers get INFORM of committed transactions.
//!
//! See `README.md` in this crate for the state machine and the simulator's fault model.

#![warn(missing_docs)]

pub mod action;
mod broadcast;
pub mod codec;
pub mod config;
mod election;
pub mod event;
mod leader;
mod learner;
pub mod log;
pub mod membership;
pub mod message;
pub mod node;
pub mod quorum;
mod rollover;
pub mod sim;
mod sync;
mod transfer;
pub mod zxid;

pub use action::{Action, RejectReason, RoleKind, TransferOutcome};
pub use config::{Bugs, Config};
pub use event::Event;
pub use membership::{Membership, MembershipReader};
pub use message::{ConnId, HeldRequest, LearnerMsg, Message, PeerState, SyncMode, Vote};
pub use node::{LearnerStatus, Node, Recovered, RecoveryError};
pub use quorum::{Majority, QuorumVerifier};
pub use zxid::{DiskSeq, Epoch, ServerId, Txn, Zxid};

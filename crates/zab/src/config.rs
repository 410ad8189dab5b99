//! Node configuration, including the test-only planted bugs.

use crate::quorum::{Majority, QuorumVerifier};
use crate::zxid::ServerId;
use std::sync::Arc;

/// Test-only switches that plant known bugs, so that the simulator's checkers can be shown to
/// catch them. All off by default; never set them outside tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// A follower ACKs a proposal as soon as it is appended, before the fsync.
    pub ack_before_fsync: bool,
    /// A learner acknowledges NEWLEADER before its synced history and epoch are durable.
    pub newleader_ack_before_durable: bool,
    /// The leader commits a proposal as soon as it has logged it, without waiting for a quorum.
    pub commit_without_quorum: bool,
    /// A follower applies a proposal when it receives it, before it is committed.
    pub apply_uncommitted: bool,
    /// The leader answers sync() without the quorum heartbeat round that proves it still leads.
    pub sync_without_quorum: bool,
}

impl Bugs {
    /// Names accepted by [`Bugs::set`].
    pub const NAMES: [&'static str; 5] = [
        "ack-before-fsync",
        "newleader-ack-before-durable",
        "commit-without-quorum",
        "apply-uncommitted",
        "sync-without-quorum",
    ];

    /// Turns on the bug with this name; false if the name is unknown.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "ack-before-fsync" => self.ack_before_fsync = true,
            "newleader-ack-before-durable" => self.newleader_ack_before_durable = true,
            "commit-without-quorum" => self.commit_without_quorum = true,
            "apply-uncommitted" => self.apply_uncommitted = true,
            "sync-without-quorum" => self.sync_without_quorum = true,
            _ => return false,
        }
        true
    }
}

/// Everything a node needs to know that does not change while it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// This server.
    pub id: ServerId,
    /// Voting members and the rule for what is a quorum of them.
    pub quorum: Arc<dyn QuorumVerifier>,
    /// Non-voting members: they learn committed transactions and are never counted.
    pub observers: Vec<ServerId>,
    /// Ticks a leader may spend between taking the role and a quorum acknowledging NEWLEADER,
    /// and a learner between choosing a leader and being up to date (ZooKeeper's initLimit).
    pub init_limit_ticks: u64,
    /// Ticks without hearing from the other side after which a learner drops its leader, and a
    /// leader drops a learner (ZooKeeper's syncLimit).
    pub sync_limit_ticks: u64,
    /// Ticks between re-sends of election notifications while looking.
    pub election_resend_ticks: u64,
    /// Ticks a looking node waits, once a quorum agrees with its vote, for a better vote before
    /// it decides (ZooKeeper's finalizeWait).
    pub election_finalize_ticks: u64,
    /// Width of the zxid counter. 32 in production; the simulator uses small widths so that the
    /// leader runs out of counter often.
    pub counter_bits: u32,
    /// How many committed transactions a node keeps in memory to serve DIFF from. A learner
    /// further behind than this gets a SNAP.
    pub committed_window_max: usize,
    /// A learner's forwarded write is a request the leader's driver must first turn into a
    /// transaction (`Action::Forwarded`), as a ZooKeeper leader prepares every write itself.
    /// Off: the payload is proposed as it is (the simulator).
    pub driver_prepares_forwarded: bool,
    /// A learner behind the in-memory window gets a DIFF read from the on-disk log (true) or
    /// a snapshot (false; ZooKeeper's snapshotSizeFactor <= 0).
    pub diff_from_disk: bool,
    /// A client's sync() at the leader starts a heartbeat round at once instead of waiting for
    /// the next tick's (the simulator keeps ticks only).
    pub eager_sync_heartbeat: bool,
    /// Tells which logged payloads are reconfigurations (membership.rs). None: the
    /// membership never changes through the log.
    pub membership_reader: Option<crate::membership::MembershipReader>,
    /// The zxid of the reconfiguration that made `quorum` and `observers` (0 for the
    /// configuration a server was first given): a configuration from a NEWLEADER or a
    /// reconfiguration logged at or below it is not newer.
    pub config_zxid: crate::zxid::Zxid,
    /// The payload of that reconfiguration, as logged (None for a server's first
    /// configuration): passed on to servers behind it, whose drivers read the members'
    /// addresses from it.
    pub config_payload: Option<bytes::Bytes>,
    /// Test-only planted bugs.
    pub bugs: Bugs,
}

impl Config {
    /// A configuration with majority quorums and ZooKeeper-like limits.
    pub fn new(id: ServerId, voters: Vec<ServerId>, observers: Vec<ServerId>) -> Config {
        Config {
            id,
            quorum: Arc::new(Majority::new(voters)),
            observers,
            init_limit_ticks: 20,
            sync_limit_ticks: 10,
            election_resend_ticks: 4,
            election_finalize_ticks: 1,
            counter_bits: 32,
            committed_window_max: 10_000,
            driver_prepares_forwarded: false,
            diff_from_disk: true,
            eager_sync_heartbeat: false,
            membership_reader: None,
            config_zxid: crate::zxid::Zxid::ZERO,
            config_payload: None,
            bugs: Bugs::default(),
        }
    }

    /// Whether this node is an observer.
    pub fn is_observer(&self) -> bool {
        !self.quorum.is_voter(self.id)
    }

    /// Whether `id` is a voter or an observer of this ensemble.
    pub fn is_member(&self, id: ServerId) -> bool {
        self.quorum.is_voter(id) || self.observers.contains(&id)
    }

    /// Every member except this node.
    pub fn others(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.quorum
            .voters()
            .iter()
            .chain(self.observers.iter())
            .copied()
            .filter(move |p| *p != self.id)
    }

    /// The largest counter a zxid may carry.
    pub fn counter_max(&self) -> u32 {
        if self.counter_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.counter_bits) - 1
        }
    }
}

//! Transactions: what the log records and what every replica applies. Each carries absolute
//! results (the new version, the parent's new stored cversion, the owner), so applying a txn
//! never depends on counting, and replaying a log suffix over any snapshot converges.

use paddock_proto::{Acl, ErrorCode};

/// One transaction with its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The session that issued it (0 for server-internal writes such as container deletion).
    pub session_id: i64,
    /// The client's xid.
    pub cxid: i32,
    pub zxid: i64,
    /// Wall-clock milliseconds stamped by the server that prepared it.
    pub time: i64,
    pub op: TxnOp,
}

/// The change a transaction makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        timeout: i32,
        /// The session's random password; None for a password derived from the id as
        /// ZooKeeper derives it (sessions of data written before Paddock kept passwords, of an
        /// imported ZooKeeper directory, or under `paddock.sessionPasswords=derived`).
        password: Option<[u8; 16]>,
    },
    /// Ends the session and deletes these ephemerals (computed at prep, in-flight creates
    /// included).
    CloseSession {
        ephemerals: Vec<String>,
    },
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        /// Raw owner: a session id, the container marker, the TTL marker, or 0.
        owner: i64,
        /// The parent's stored cversion after this create.
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        /// The node's version after the write.
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        /// The node's aversion after the write.
        version: i32,
    },
    /// A version check inside a multi; changes nothing.
    Check {
        path: String,
        version: i32,
    },
    /// A write that failed its checks: it consumes a zxid and changes nothing.
    Error {
        err: ErrorCode,
    },
    /// All sub-ops apply together; a multi holding an `Error` applies nothing.
    Multi(Vec<TxnOp>),
    /// A reconfiguration: the ensemble's new configuration, as `/zookeeper/config` shows it
    /// (ZooKeeper logs it as a setData of that node under the reconfig opcode). Each server
    /// takes it into its own membership when it applies it.
    Reconfig {
        config: Vec<u8>,
    },
    /// A whole tree from a backup replaces the tree (restore.rs). Never inside a multi.
    Restore(Box<crate::restore::RestoreImage>),
}

/// Owner marker of container nodes (clients see 0).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte of the owner of TTL nodes; the low 40 bits hold the TTL in ms.
pub const TTL_MARK: i64 = 0xFF00_0000_0000_0000u64 as i64;
/// The largest TTL ZooKeeper accepts (40 bits).
pub const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

/// What kind of owner a raw owner value denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    None,
    Session(i64),
    Container,
    Ttl(i64),
}

impl Owner {
    /// Classifies a raw owner value.
    pub fn of(raw: i64) -> Owner {
        if raw == 0 {
            Owner::None
        } else if raw == CONTAINER_OWNER {
            Owner::Container
        } else if raw & TTL_MARK == TTL_MARK {
            Owner::Ttl(raw & MAX_TTL)
        } else {
            Owner::Session(raw)
        }
    }

    /// The ephemeralOwner clients see.
    pub fn visible(raw: i64) -> i64 {
        match Owner::of(raw) {
            Owner::Session(s) => s,
            _ => 0,
        }
    }
}

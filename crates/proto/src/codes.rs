//! Numbers of the protocol: opcodes, error codes, event types, states, create modes, permissions.

use thiserror::Error;

/// Opcodes (ZooDefs.OpCode).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    /// Paddock's own: a page of a node's children (`GetChildrenPageRequest`). Sent only to a
    /// server whose handshake answer carried `protocol::PAGING` or more: ZooKeeper closes the
    /// connection on an opcode it does not know.
    pub const GET_CHILDREN_PAGE: i32 = 1000;
    /// Paddock's own: a read answered linearizably. The body is the read's opcode (int), then
    /// the read's own body; the reply is the read's. Sent only to a server that announced
    /// `protocol::LINEARIZABLE_READS`.
    pub const LINEARIZABLE: i32 = 1001;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;

    /// Whether an opcode changes the tree: the one list of writes. A server prepares these as
    /// transactions through its leader; one whose body does not decode still takes a zxid (an
    /// error transaction), as in ZooKeeper. Top-level `check` and `deleteContainer` are not
    /// client operations and are not in it.
    pub fn is_write(op: i32) -> bool {
        matches!(
            op,
            CREATE
                | DELETE
                | SET_DATA
                | SET_ACL
                | MULTI
                | CREATE2
                | RECONFIG
                | CREATE_CONTAINER
                | CREATE_TTL
                | CLOSE_SESSION
        )
    }

    /// The opcode's name as ZooKeeper's `ZooDefs.OpCode` spells it: the label of the
    /// per-operation latency metrics.
    pub fn api_name(op: i32) -> &'static str {
        match op {
            CREATE => "create",
            DELETE => "delete",
            EXISTS => "exists",
            GET_DATA => "getData",
            SET_DATA => "setData",
            GET_ACL => "getACL",
            SET_ACL => "setACL",
            GET_CHILDREN => "getChildren",
            SYNC => "sync",
            PING => "ping",
            GET_CHILDREN2 => "getChildren2",
            CHECK => "check",
            MULTI => "multi",
            CREATE2 => "create2",
            RECONFIG => "reconfig",
            CHECK_WATCHES => "checkWatches",
            REMOVE_WATCHES => "removeWatches",
            CREATE_CONTAINER => "createContainer",
            DELETE_CONTAINER => "deleteContainer",
            CREATE_TTL => "createTTL",
            MULTI_READ => "multiRead",
            AUTH => "auth",
            SET_WATCHES => "setWatches",
            SASL => "sasl",
            GET_EPHEMERALS => "getEphemerals",
            GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
            SET_WATCHES2 => "setWatches2",
            ADD_WATCH => "addWatch",
            WHO_AM_I => "whoAmI",
            GET_CHILDREN_PAGE => "getChildrenPage",
            LINEARIZABLE => "linearizable",
            CREATE_SESSION => "createSession",
            CLOSE_SESSION => "closeSession",
            _ => "unknown",
        }
    }

    /// The name ZooKeeper uses for an opcode (four-letter words print it as the last operation).
    pub fn name(op: i32) -> &'static str {
        match op {
            NOTIFICATION => "NOTIFICATION",
            CREATE => "CREA",
            DELETE => "DELE",
            EXISTS => "EXIS",
            GET_DATA => "GETD",
            SET_DATA => "SETD",
            GET_ACL => "GETA",
            SET_ACL => "SETA",
            GET_CHILDREN => "GETC",
            SYNC => "SYNC",
            PING => "PING",
            GET_CHILDREN2 => "GETC",
            CHECK => "CHEC",
            MULTI => "MULT",
            CREATE2 => "CRE2",
            RECONFIG => "RECO",
            CHECK_WATCHES => "CHKW",
            REMOVE_WATCHES => "REMW",
            CREATE_CONTAINER => "CCON",
            DELETE_CONTAINER => "DCON",
            CREATE_TTL => "CTTL",
            MULTI_READ => "MLTR",
            AUTH => "AUTH",
            SET_WATCHES => "SETW",
            SASL => "SASL",
            GET_EPHEMERALS => "GETE",
            GET_ALL_CHILDREN_NUMBER => "GACN",
            SET_WATCHES2 => "STW2",
            ADD_WATCH => "ADDW",
            WHO_AM_I => "WHOA",
            GET_CHILDREN_PAGE => "GCPG",
            LINEARIZABLE => "LINR",
            CREATE_SESSION => "SESS",
            CLOSE_SESSION => "CLOS",
            _ => "UNKNOWN",
        }
    }
}

/// `protocol_version` of the handshake. ZooKeeper's clients send 0 and its servers answer 0
/// whatever they were sent. Paddock's client asks for `CURRENT`, and a Paddock server answers
/// the lower of what was asked and what it speaks: a client learns what the server it reached
/// understands without sending anything ZooKeeper would close the connection on, and clients
/// that ask for 0 get 0, as from ZooKeeper.
pub mod protocol {
    /// ZooKeeper's protocol.
    pub const ZOOKEEPER: i32 = 0;
    /// Adds getChildrenPage (`op::GET_CHILDREN_PAGE`).
    pub const PAGING: i32 = 1;
    /// Adds linearizable reads asked per request (`op::LINEARIZABLE`).
    pub const LINEARIZABLE_READS: i32 = 2;
    /// What this build speaks.
    pub const CURRENT: i32 = LINEARIZABLE_READS;
}

/// Special xids.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// Error codes (KeeperException.Code). Only assigned codes exist: clients reject others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[repr(i32)]
pub enum ErrorCode {
    #[error("ok")]
    Ok = 0,
    #[error("system error")]
    SystemError = -1,
    #[error("runtime inconsistency")]
    RuntimeInconsistency = -2,
    #[error("data inconsistency")]
    DataInconsistency = -3,
    #[error("connection loss")]
    ConnectionLoss = -4,
    #[error("marshalling error")]
    MarshallingError = -5,
    #[error("unimplemented")]
    Unimplemented = -6,
    #[error("operation timeout")]
    OperationTimeout = -7,
    #[error("bad arguments")]
    BadArguments = -8,
    #[error("unknown session")]
    UnknownSession = -12,
    #[error("new config has no quorum")]
    NewConfigNoQuorum = -13,
    #[error("reconfig in progress")]
    ReconfigInProgress = -14,
    #[error("API error")]
    ApiError = -100,
    #[error("no node")]
    NoNode = -101,
    #[error("not authenticated")]
    NoAuth = -102,
    #[error("bad version")]
    BadVersion = -103,
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals = -108,
    #[error("node exists")]
    NodeExists = -110,
    #[error("directory not empty")]
    NotEmpty = -111,
    #[error("session expired")]
    SessionExpired = -112,
    #[error("invalid callback")]
    InvalidCallback = -113,
    #[error("invalid ACL")]
    InvalidAcl = -114,
    #[error("authentication failed")]
    AuthFailed = -115,
    #[error("session moved")]
    SessionMoved = -118,
    #[error("not a read-only call")]
    NotReadOnly = -119,
    #[error("ephemeral on local session")]
    EphemeralOnLocalSession = -120,
    #[error("no watcher")]
    NoWatcher = -121,
    #[error("request timeout")]
    RequestTimeout = -122,
    #[error("reconfig disabled")]
    ReconfigDisabled = -123,
    #[error("session closed because client failed to authenticate")]
    SessionClosedRequireSaslAuth = -124,
    #[error("quota exceeded")]
    QuotaExceeded = -125,
    #[error("operation throttled")]
    ThrottledOp = -127,
}

impl ErrorCode {
    /// Every assigned code, for tests and lookups.
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::Ok,
        ErrorCode::SystemError,
        ErrorCode::RuntimeInconsistency,
        ErrorCode::DataInconsistency,
        ErrorCode::ConnectionLoss,
        ErrorCode::MarshallingError,
        ErrorCode::Unimplemented,
        ErrorCode::OperationTimeout,
        ErrorCode::BadArguments,
        ErrorCode::UnknownSession,
        ErrorCode::NewConfigNoQuorum,
        ErrorCode::ReconfigInProgress,
        ErrorCode::ApiError,
        ErrorCode::NoNode,
        ErrorCode::NoAuth,
        ErrorCode::BadVersion,
        ErrorCode::NoChildrenForEphemerals,
        ErrorCode::NodeExists,
        ErrorCode::NotEmpty,
        ErrorCode::SessionExpired,
        ErrorCode::InvalidCallback,
        ErrorCode::InvalidAcl,
        ErrorCode::AuthFailed,
        ErrorCode::SessionMoved,
        ErrorCode::NotReadOnly,
        ErrorCode::EphemeralOnLocalSession,
        ErrorCode::NoWatcher,
        ErrorCode::RequestTimeout,
        ErrorCode::ReconfigDisabled,
        ErrorCode::SessionClosedRequireSaslAuth,
        ErrorCode::QuotaExceeded,
        ErrorCode::ThrottledOp,
    ];

    /// The wire value.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code for a wire value, if it is assigned.
    pub fn from_code(c: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|e| e.code() == c)
    }
}

/// Watch event types.
pub mod event {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// Keeper states carried by events.
pub mod state {
    pub const UNKNOWN: i32 = -1;
    pub const DISCONNECTED: i32 = 0;
    pub const NO_SYNC_CONNECTED: i32 = 1;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const SASL_AUTHENTICATED: i32 = 6;
    pub const CLOSED: i32 = 7;
    pub const EXPIRED: i32 = -112;
}

/// WatcherType numbers of checkWatches/removeWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
}

/// addWatch modes.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// Permission bits.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;

    /// Each permission's letter, in the order zkCli prints them (c d r w a).
    const LETTERS: [(i32, char); 5] = [
        (CREATE, 'c'),
        (DELETE, 'd'),
        (READ, 'r'),
        (WRITE, 'w'),
        (ADMIN, 'a'),
    ];

    /// Permissions as zkCli prints them: `cdrwa`, the letters of those granted.
    pub fn letters(p: i32) -> String {
        LETTERS
            .iter()
            .filter(|(bit, _)| p & bit != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    /// The permission a letter of `cdrwa` stands for.
    pub fn from_letter(c: char) -> Option<i32> {
        LETTERS.iter().find(|(_, l)| *l == c).map(|(bit, _)| *bit)
    }
}

/// Create modes (the `flags` field of a create); an enum on the wire, not bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    Container = 4,
    PersistentWithTtl = 5,
    PersistentSequentialWithTtl = 6,
}

impl CreateMode {
    /// The mode for a flags value, if valid.
    pub fn from_flags(f: i32) -> Option<CreateMode> {
        Some(match f {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }
    /// Owned by a session and deleted with it.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    /// Gets a 10-digit suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// Deleted once it has had children and is empty again.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    /// Deleted when childless and unmodified for its TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

//! The messages the core task receives: from connections, the log and snapshot threads, the
//! peers' transport and the timers. A module of its own so that those senders need nothing
//! of the core.

use crate::conn_shared::{ConnId, Outbound};
use paddock_proto::{ConnectRequest, ErrorCode, Request};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// Messages from connections and timers to the core.
#[derive(Debug)]
pub enum CoreMsg {
    /// A connection finished its first bytes and is not a four-letter word.
    NewConn {
        conn: ConnId,
        addr: SocketAddr,
        out: Outbound,
        /// Over TLS.
        secure: bool,
        /// A TLS client's certificate subject, as Java prints it (RFC 2253).
        cert_subject: Option<String>,
    },
    /// The handshake; `bytes`: its frame's length (for `bytes_received_count`).
    Connect {
        conn: ConnId,
        req: ConnectRequest,
        bytes: u32,
    },
    /// A request; `req` is the decode error code when its body could not be decoded; `bytes`:
    /// its frame's length.
    Request {
        conn: ConnId,
        xid: i32,
        op: i32,
        req: Result<Request, ErrorCode>,
        bytes: u32,
    },
    Closed {
        conn: ConnId,
    },
    /// A connection's direct reads are due to be counted (`crate::read_path`).
    DirectReads {
        conn: ConnId,
    },
    /// A congested connection's writer caught up: its session's queued reads may run.
    Drained {
        conn: ConnId,
    },
    FourLetter {
        cmd: &'static str,
        reply: oneshot::Sender<String>,
    },
    /// An AdminServer command.
    Admin {
        req: AdminRequest,
        reply: oneshot::Sender<AdminReply>,
    },
    /// The AdminServer's `snapshot` (a backup): checks the caller may take one, then hands
    /// back what the walk off the core needs.
    Backup {
        auth: paddock_tree::AuthInfo,
        reply: oneshot::Sender<Result<BackupStart, AdminReply>>,
    },
    /// The AdminServer's `restore`, before the backup is read: why this caller cannot
    /// restore here now, if it cannot.
    MayRestore {
        auth: paddock_tree::AuthInfo,
        reply: oneshot::Sender<Option<AdminReply>>,
    },
    /// The AdminServer's `restore`: the backup, loaded, for the leader to propose; answered
    /// once applied here.
    Restore {
        auth: paddock_tree::AuthInfo,
        image: Box<paddock_tree::RestoreImage>,
        base: Box<LoadedTree>,
        reply: oneshot::Sender<AdminReply>,
    },
    /// The web console's view of one znode: its data, Stat, ACL and a page of its children,
    /// as the caller's identities may see them.
    Browse {
        req: BrowseRequest,
        reply: oneshot::Sender<AdminReply>,
    },
    /// The web console acts for a viewer who showed a client certificate: the next client
    /// session that authenticates with scheme `paddock-console` and this one-time token (within
    /// 30 s) gains that certificate's `x509` identity (and `super` if it is the superUser).
    ConsoleGrant {
        token: String,
        subject: String,
        reply: oneshot::Sender<()>,
    },
    /// The figures for a Prometheus scrape.
    Scrape {
        reply: oneshot::Sender<Vec<crate::metrics::Sample>>,
    },
    /// The server is stopping (SIGTERM): read no more requests, answer those in flight (until
    /// `deadline`), then close every client connection and say how many requests were
    /// still unanswered.
    Stop {
        deadline: std::time::Instant,
        reply: oneshot::Sender<usize>,
    },
    /// The session clock: expire what is due.
    Tick,
    /// Look for emptied containers and expired TTL nodes.
    ContainerCheck,
    /// A snapshot finished (or failed), and what the purge after it removed.
    SnapshotDone(Result<SnapshotDone, String>),
    /// A message from another server of the ensemble.
    Peer {
        from: u64,
        msg: paddock_zab::Message,
    },
    /// A leader's snapshot, parsed on the way in (off the core task); the `Peer` message that
    /// carried it follows.
    SnapshotParsed(ParsedSnapshot),
    /// The transport lost its connection with a peer.
    PeerLost {
        peer: u64,
    },
    /// The log thread carried out the replication core's disk orders up to this one.
    Persisted(u64),
    /// The replication core's clock.
    ZabTick,
    /// A GSSAPI step ran off the core: the exchange, back, and what it gave.
    SaslStepped {
        conn: ConnId,
        xid: i32,
        arrived: std::time::Instant,
        exchange: crate::sasl::GssapiExchange,
        result: Result<crate::sasl::Step, crate::sasl::SaslError>,
    },
}

impl CoreMsg {
    /// Whether handling it reads or changes the tree, so the core must hold the tree's lock:
    /// all but counting direct reads, which must not stop them.
    pub fn needs_tree(&self) -> bool {
        !matches!(self, CoreMsg::DirectReads { .. })
    }
}

/// An AdminServer command for the core: its primary name, its arguments (the URL's query),
/// the caller's identities and what the command requires.
#[derive(Debug)]
pub struct AdminRequest {
    pub command: &'static str,
    pub args: std::collections::HashMap<String, String>,
    pub auth: paddock_tree::AuthInfo,
    /// Changes state or shows sessions and watches: an identity with ADMIN on `/` only.
    pub needs_admin: bool,
    /// Answered only by a server that serves (as ZooKeeper's `isServerRequired`).
    pub needs_server: bool,
}

/// A znode for the web console.
#[derive(Debug)]
pub struct BrowseRequest {
    pub path: String,
    /// The page of children: from the `offset`th, at most `limit`.
    pub offset: usize,
    pub limit: usize,
    pub auth: paddock_tree::AuthInfo,
}

/// A tree loaded off the core (a restore's backup), shown by its size.
pub struct LoadedTree(pub paddock_tree::DataTree);

impl std::fmt::Debug for LoadedTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedTree({} nodes)", self.0.node_count())
    }
}

/// What a backup walks and replays, from the core (`CoreMsg::Backup`).
pub struct BackupStart {
    /// The tree to walk, and its generation when the backup began (a replaced tree ends it).
    pub tree: crate::tree_lock::SharedTree,
    pub generation: u64,
    /// The last zxid applied when it began, and the sessions then.
    pub zxid: i64,
    /// The walk, leaving out what the transactions below create.
    pub cursor: paddock_tree::SnapshotCursor,
    pub sessions: Vec<(i64, i32)>,
    /// Every transaction the core applies from then on, until this is dropped.
    pub txns: std::sync::mpsc::Receiver<paddock_tree::Txn>,
}

impl std::fmt::Debug for BackupStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupStart")
            .field("zxid", &self.zxid)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The core's answer: an HTTP status and the JSON object.
#[derive(Debug)]
pub struct AdminReply {
    pub status: u16,
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// A snapshot written, as the snapshot thread reports it.
#[derive(Debug)]
pub struct SnapshotDone {
    pub path: std::path::PathBuf,
    /// Set when the purge after it removed log segments (see `storage::purge::Purged`).
    pub log_purged_through: Option<i64>,
}

/// A snapshot from the leader, parsed by the transport before the core installs it (parsing
/// walks the whole image).
pub struct ParsedSnapshot {
    pub zxid: paddock_zab::Zxid,
    pub tree: Result<Box<paddock_tree::DataTree>, String>,
}

impl std::fmt::Debug for ParsedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedSnapshot")
            .field("zxid", &self.zxid)
            .field("nodes", &self.tree.as_ref().map(|t| t.node_count()))
            .finish()
    }
}

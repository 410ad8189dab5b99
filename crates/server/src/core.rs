//! The core: one task that owns the tree, the preparation stage, the watches and the sessions,
//! and runs the write pipeline (prep, log, apply, reply) in batches.
//!
//! Connections decode requests on their own tasks and send them here; the core answers each
//! session in request order: a read waits behind its own session's pending writes, never behind
//! other sessions'. Watch events are queued to a connection while a transaction is applied, so
//! they always precede the reply to any later request on that connection.

use crate::config::Config;
use crate::conn_shared::{ConnId, Outbound};
use crate::log::LogMsg;
use crate::session::{java_password, Sessions};
use crate::stats::Stats;
use crate::storage::fs::{CoreSection, Fs};
use crate::storage::snapshot::SnapshotWriter;
use bytes::{BufMut, Bytes, BytesMut};
use paddock_proto::{
    event, op, state, xid, AddWatchRequest, ClientInfo, ConnectRequest, ConnectResponse,
    Create2Response, CreateKind, CreateResponse, ErrorCode, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, MultiOp, OpResult, PathRequest, ReadOp, Record, ReplyHeader, Request,
    SetWatches2, Stat, StatResponse, WatcherEvent, WhoAmIResponse,
};
use paddock_tree::{
    digest_id, Applied, AuthInfo, DataTree, Outcome, Prep, PrepConfig, Txn, WatchKind,
    WatchRegistry,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// Messages from connections and timers to the core.
#[derive(Debug)]
pub enum CoreMsg {
    /// A connection finished its first bytes and is not a four-letter word.
    NewConn {
        conn: ConnId,
        addr: SocketAddr,
        out: Outbound,
    },
    Connect {
        conn: ConnId,
        req: ConnectRequest,
    },
    /// A request; `req` is the decode error code when its body could not be decoded.
    Request {
        conn: ConnId,
        xid: i32,
        op: i32,
        req: Result<Request, ErrorCode>,
    },
    Closed {
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
    /// The transport lost its connection with a peer.
    PeerLost {
        peer: u64,
    },
    /// The log thread carried out the replication core's disk orders up to this one.
    Persisted(u64),
    /// The replication core's clock.
    ZabTick,
}

/// Per-connection state kept by the core.
pub(crate) struct Conn {
    pub addr: SocketAddr,
    pub out: Outbound,
    pub session: Option<i64>,
    pub auth: Arc<AuthInfo>,
    /// Old clients omit the readOnly byte and must not get one back.
    pub read_only_byte: bool,
    /// A read-only session of a server cut off from its ensemble (readonlymode.enabled).
    pub read_only: bool,
    pub established: Instant,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_latency_ms: u64,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    pub total_latency_ms: u64,
    pub closing: bool,
}

/// Who waits for a transaction to be applied.
pub(crate) enum Origin {
    Client {
        conn: ConnId,
        xid: i32,
        req: Request,
        arrived: Instant,
    },
    Connect {
        conn: ConnId,
        session: i64,
    },
    Expire {
        session: i64,
    },
    /// A client's sync() in an ensemble.
    Sync {
        conn: ConnId,
        session: i64,
        xid: i32,
        path: String,
        arrived: Instant,
    },
    Internal,
}

/// A reply ready to go out, waiting for its turn in its session's order.
pub(crate) struct Done {
    pub conn: ConnId,
    pub frame: Bytes,
    pub arrived: Instant,
    /// Answers a counted request (not the handshake).
    pub is_reply: bool,
    pub close_after: bool,
}

/// An entry of a session's ordering queue. Replies leave strictly in queue order; a read runs
/// only when it reaches the front and its connection is taking its replies.
pub(crate) enum Queued {
    Write {
        zxid: i64,
        done: Option<Done>,
    },
    Read {
        conn: ConnId,
        xid: i32,
        req: Result<Request, ErrorCode>,
        auth: Arc<AuthInfo>,
        arrived: Instant,
    },
}

/// The core's state.
pub struct Core {
    pub(crate) cfg: Arc<Config>,
    pub(crate) tree: DataTree,
    pub(crate) prep: Prep,
    pub(crate) watches: WatchRegistry,
    pub(crate) sessions: Sessions,
    pub(crate) conns: HashMap<ConnId, Conn>,
    pub(crate) queues: HashMap<i64, VecDeque<Queued>>,
    pub(crate) origins: HashMap<i64, Origin>,
    log: std_mpsc::Sender<LogMsg>,
    pub(crate) fs: Fs,
    /// The database id written into snapshots.
    pub(crate) dbid: u64,
    /// The replication side: every server is a member of an ensemble (standalone is a
    /// one-voter ensemble with no peers).
    pub(crate) replica: crate::replica::Replica,
    snapshot: Option<SnapshotJob>,
    snapshot_running: bool,
    pub(crate) since_snapshot: u64,
    next_snapshot_at: u64,
    /// Log bytes written since the last snapshot began, and the size that starts the next.
    pub(crate) logged_since_snapshot: u64,
    next_snapshot_bytes: u64,
    core_tx: mpsc::Sender<CoreMsg>,
    /// `PADDOCK_TEST_ACK_BEFORE_LOG=1`: report appends durable before they are even written.
    /// Exists only so that the crash tests can show they catch lost acknowledged writes.
    pub(crate) ack_before_log: bool,
    /// Fired the first time this server serves clients (a one-voter ensemble opens its client
    /// port only then).
    pub(crate) first_serving: Option<oneshot::Sender<()>>,
    pub(crate) stats: Stats,
    pub(crate) started: Instant,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds a reply frame; the body is written only when `err` is 0.
pub(crate) fn frame(xid: i32, zxid: i64, err: i32, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    b.put_i32(0);
    ReplyHeader { xid, zxid, err }.encode(&mut b);
    if err == 0 {
        body(&mut b);
    }
    let len = (b.len() - 4) as i32;
    b[0..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

fn record_frame(r: &impl Record) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0);
    r.encode(&mut b);
    let len = (b.len() - 4) as i32;
    b[0..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

/// The handshake's answer. Session 0 refuses the session (expired or invalid: timeout 0 and a
/// zero password, as ZooKeeper sends). Old clients omit the readOnly byte and get none back.
fn connect_frame(session: i64, timeout: i32, read_only_byte: bool, read_only: bool) -> Bytes {
    record_frame(&ConnectResponse {
        protocol_version: 0,
        timeout,
        session_id: session,
        passwd: if session == 0 {
            vec![0; 16]
        } else {
            java_password(session).to_vec()
        },
        read_only: read_only_byte.then_some(read_only),
    })
}

fn notification(event_type: i32, path: &str) -> Bytes {
    // ZooKeeper 3.8 sends -1 as the zxid of every notification.
    frame(xid::NOTIFICATION, -1, 0, |b| {
        WatcherEvent {
            event_type,
            state: state::SYNC_CONNECTED,
            path: path.to_owned(),
        }
        .encode(b)
    })
}

/// Whether a decoded request is a write (`op::is_write`, the one list).
pub(crate) fn is_write(req: &Request) -> bool {
    op::is_write(req.opcode())
}

/// A snapshot written, as the snapshot thread reports it.
#[derive(Debug)]
pub struct SnapshotDone {
    pub path: std::path::PathBuf,
    /// Set when the purge after it removed log segments (see `storage::purge::Purged`).
    pub log_purged_through: Option<i64>,
}

/// A snapshot being walked: the core hands chunks of nodes to a writer thread, never holding
/// more than a few chunks, so memory stays bounded whatever the tree's size.
struct SnapshotJob {
    cursor: Option<String>,
    /// Encoded node records and how many nodes they hold.
    tx: Option<std_mpsc::SyncSender<(Vec<u8>, u64)>>,
    pending: Option<(Vec<u8>, u64)>,
    /// Set when the tree is replaced mid-walk: the writer must not seal what it has.
    abort: Arc<std::sync::atomic::AtomicBool>,
}

/// Most nodes in one chunk handed to the snapshot writer, and the idle walk's step (about a
/// tenth of a millisecond of work, so a request arriving meanwhile waits no longer).
const SNAPSHOT_CHUNK: usize = 256;
/// Chunks the writer may have queued before the walk waits for it.
const SNAPSHOT_QUEUE: usize = 16;
/// How long the core must be quiet before it walks a snapshot in idle time.
const SNAPSHOT_IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

impl Core {
    /// A core serving a recovered tree, logging through `log`, reporting to itself via `core_tx`.
    pub fn new(
        cfg: Arc<Config>,
        storage: (Fs, u64),
        tree: DataTree,
        log: std_mpsc::Sender<LogMsg>,
        core_tx: mpsc::Sender<CoreMsg>,
        replica: crate::replica::Replica,
    ) -> Core {
        let (fs, dbid) = storage;
        let prep = Prep::new(PrepConfig {
            extended_types: cfg.extended_types,
            enforce_quota: cfg.enforce_quota,
            skip_acl: cfg.skip_acl,
            reconfig_enabled: cfg.reconfig_enabled,
        });
        let server_id = replica.node.id();
        let mut sessions = Sessions::new(server_id, cfg.tick_time as u64);
        // Sessions outlive a restart: each gets its full timeout again to come back.
        for (&id, &timeout) in tree.sessions() {
            sessions.restore(id, timeout);
        }
        let next_snapshot_at = snapshot_interval(cfg.snap_count);
        let cfg_snap_size = cfg.snap_size_limit_kb;
        Core {
            sessions,
            fs,
            dbid,
            cfg,
            tree,
            prep,
            watches: WatchRegistry::default(),
            conns: HashMap::new(),
            queues: HashMap::new(),
            origins: HashMap::new(),
            log,
            replica,
            snapshot: None,
            snapshot_running: false,
            since_snapshot: 0,
            next_snapshot_at,
            logged_since_snapshot: 0,
            next_snapshot_bytes: snapshot_bytes(cfg_snap_size),
            core_tx,
            ack_before_log: std::env::var("PADDOCK_TEST_ACK_BEFORE_LOG").is_ok_and(|v| v == "1"),
            first_serving: None,
            stats: Stats::default(),
            started: Instant::now(),
        }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        loop {
            let msg = if self.snapshot.is_some() {
                // Walk the snapshot in idle time only once the server has been quiet for a
                // moment: the short gaps between batches under load are not idle time (walking
                // there slows every batch); the paced step after each batch carries the walk
                // under load.
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        tokio::select! {
                            m = rx.recv() => m,
                            _ = tokio::time::sleep(SNAPSHOT_IDLE_AFTER) => {
                                while rx.is_empty() && {
                                    let _core = CoreSection::enter();
                                    self.snapshot_step(SNAPSHOT_CHUNK)
                                } {
                                    tokio::task::yield_now().await;
                                }
                                continue;
                            }
                        }
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(msg) = msg else { return };
            // No await from here to the end of the round: all of it is core work.
            let _core = CoreSection::enter();
            self.handle(msg);
            // Take whatever else is waiting, so one log flush covers the whole batch.
            let mut n = 0;
            while n < 1024 {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                }
                n += 1;
            }
            self.flush();
            // Busy: a step per batch, paced so that the walk ends about when half of snapCount
            // transactions have gone by (when the next snapshot may be due), but never more
            // than one node per message: a large tree under heavy load snapshots less often
            // rather than slowing every write, as ZooKeeper skips a snapshot while one runs.
            // (Two per message cost a third of setData throughput on a 1.3M-node tree.)
            let needed =
                (n + 1) * self.tree.node_count() * 2 / (self.cfg.snap_count.max(2) as usize);
            let _ = self.snapshot_step(needed.min(n + 1).max(32));
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::NewConn { conn, addr, out } => {
                let auth = Arc::new(AuthInfo::for_ip(&addr.ip().to_string()));
                self.conns.insert(
                    conn,
                    Conn {
                        addr,
                        out,
                        session: None,
                        auth,
                        read_only_byte: true,
                        read_only: false,
                        established: Instant::now(),
                        received: 0,
                        sent: 0,
                        last_op: "NA",
                        last_cxid: -1,
                        last_zxid: -1,
                        last_latency_ms: 0,
                        min_latency_ms: u64::MAX,
                        max_latency_ms: 0,
                        total_latency_ms: 0,
                        closing: false,
                    },
                );
            }
            CoreMsg::Connect { conn, req } => self.connect(conn, req),
            CoreMsg::Request { conn, xid, op, req } => self.request(conn, xid, op, req),
            CoreMsg::Closed { conn } => self.closed(conn),
            CoreMsg::Drained { conn } => {
                if let Some(sid) = self.conns.get(&conn).and_then(|c| c.session) {
                    self.drain(sid, false);
                }
            }
            CoreMsg::FourLetter { cmd, reply } => {
                let text = self.four_letter(cmd);
                if crate::fourlw::needs_dir_sizes(&text) {
                    let (data, logs) = (self.cfg.data_dir.clone(), self.cfg.data_log_dir.clone());
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(crate::fourlw::fill_dir_sizes(&text, &data, &logs));
                    });
                } else {
                    let _ = reply.send(text);
                }
            }
            CoreMsg::Tick => self.tick(),
            CoreMsg::Peer { from, msg } => self.zab_step(paddock_zab::Event::Peer { from, msg }),
            CoreMsg::PeerLost { peer } => self.zab_step(paddock_zab::Event::PeerLost { peer }),
            CoreMsg::Persisted(through) => self.zab_step(paddock_zab::Event::Persisted { through }),
            CoreMsg::ZabTick => self.zab_tick(),
            CoreMsg::ContainerCheck => self.container_check(),
            CoreMsg::SnapshotDone(r) => {
                self.snapshot_running = false;
                match r {
                    Ok(done) => {
                        info!(snapshot = %done.path.display(), "snapshot written");
                        if let Some(through) = done.log_purged_through {
                            // The replication core plans DIFFs from the on-disk log: it must
                            // know what is no longer there, or a leader would keep sending
                            // learners a DIFF with a hole (then a SNAP is due).
                            self.zab_step(paddock_zab::Event::LogPurged {
                                through: paddock_zab::Zxid(through as u64),
                            });
                        }
                    }
                    Err(e) => warn!(error = %e, "snapshot failed; the log still holds everything"),
                }
                self.maybe_snapshot();
            }
        }
    }

    fn closed(&mut self, conn: ConnId) {
        self.watches.remove_watcher(conn);
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(sid) = c.session {
                self.sessions.detach(sid, conn);
            }
            debug!(conn, addr = %c.addr, "connection closed");
        }
    }

    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            c.out.close();
        }
    }

    fn connect(&mut self, conn: ConnId, req: ConnectRequest) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.read_only_byte = req.read_only.is_some();
        let mut read_only = false;
        if !self.serving() {
            if self.read_only_active() && req.read_only == Some(true) {
                read_only = true;
            } else {
                // As ZooKeeper: no quorum, no service; the client tries another server.
                debug!(conn, "not serving: closing a new client connection");
                self.close_conn(conn);
                return;
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.read_only = read_only;
        let last = self.tree.last_zxid();
        if req.last_zxid_seen > last {
            // The client has seen more than this server: it must try another one.
            info!(
                conn,
                client_zxid = req.last_zxid_seen,
                server_zxid = last,
                "refusing a client ahead of this server"
            );
            self.close_conn(conn);
            return;
        }
        let timeout = (req.timeout.max(0) as u32)
            .clamp(self.cfg.min_session_timeout, self.cfg.max_session_timeout)
            as i32;
        if req.session_id == 0 && read_only {
            // A session of this server alone: never replicated (a client that has only seen
            // read-only servers starts afresh when it finds a read-write one).
            let sid = self.sessions.create(timeout, conn);
            self.sessions.mark_live(sid);
            c.session = Some(sid);
            c.out
                .send(connect_frame(sid, timeout, c.read_only_byte, true));
            info!(
                conn,
                session = format_args!("0x{sid:x}"),
                "read-only session"
            );
            return;
        }
        if req.session_id == 0 {
            let sid = self.sessions.create(timeout, conn);
            c.session = Some(sid);
            let origin = Origin::Connect { conn, session: sid };
            if !self.prepares() {
                let fwd = crate::forward::Forward::CreateSession {
                    session: sid,
                    timeout,
                };
                self.forward(sid, 0, fwd, origin);
                return;
            }
            // The leader learns who owns the session (a step of the replication core), before
            // the stamp: a stamp is good only until the next step.
            self.session_resumed(sid);
            let Some(at) = self.stamp() else {
                self.sessions.remove(sid);
                self.replica.owners.remove(&sid);
                self.close_conn(conn);
                return;
            };
            let txn = self.prep.create_session(at, sid, timeout);
            self.submit(txn, origin, Some(sid));
            return;
        }
        let sid = req.session_id;
        // Whatever else holds this session loses it, before the password is even checked.
        if let Some(old) = self.sessions.get(sid).and_then(|s| s.conn) {
            if old != conn {
                self.sessions.detach(sid, old);
                if let Some(oc) = self.conns.get_mut(&old) {
                    oc.session = None;
                }
                self.close_conn(old);
            }
        }
        let valid = self.sessions.get(sid).is_some_and(|s| s.live)
            && !self.prep.is_closing(sid)
            && req.passwd.as_slice() == java_password(sid).as_slice();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !valid {
            c.out.send(connect_frame(0, 0, c.read_only_byte, false));
            info!(
                conn,
                session = format_args!("0x{sid:x}"),
                "session expired or invalid; refusing reattach"
            );
            self.close_conn(conn);
            return;
        }
        c.session = Some(sid);
        self.sessions.attach(sid, conn, timeout);
        c.out
            .send(connect_frame(sid, timeout, c.read_only_byte, read_only));
        debug!(
            conn,
            session = format_args!("0x{sid:x}"),
            "session reattached"
        );
        if !read_only {
            self.session_resumed(sid);
        }
    }

    fn request(&mut self, conn: ConnId, xid: i32, opcode: i32, req: Result<Request, ErrorCode>) {
        let arrived = Instant::now();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(sid) = c.session else {
            warn!(
                conn,
                "request before the session handshake completed; closing"
            );
            self.close_conn(conn);
            return;
        };
        c.received += 1;
        c.last_cxid = xid;
        c.last_op = op::name(opcode);
        self.stats.received += 1;
        self.sessions.touch(sid);
        let auth = c.auth.clone();
        if c.read_only {
            self.read_only_request(sid, conn, xid, req, auth, arrived);
            return;
        }
        if !self.serving() {
            self.close_conn(conn);
            return;
        }
        if !self.replica.is_leader() {
            self.replica.touched.insert(sid);
        }
        if self.ensemble_request(sid, conn, xid, opcode, &req, &auth, arrived) {
            return;
        }
        match &req {
            Ok(r)
                if is_write(r)
                    && (!self.prep.is_closing(sid) || matches!(r, Request::CloseSession)) =>
            {
                if matches!(r, Request::CloseSession) && self.prep.is_closing(sid) {
                    // Already closing: answer in order without a second close.
                    self.enqueue_read(
                        sid,
                        conn,
                        xid,
                        Err(ErrorCode::SessionExpired),
                        auth,
                        arrived,
                    );
                    return;
                }
                let r = req.expect("matched Ok");
                let Some(at) = self.stamp() else {
                    self.close_conn(conn);
                    return;
                };
                let txn = if self.session_moved(sid, None) {
                    self.prep.error_txn(at, sid, xid, ErrorCode::SessionMoved)
                } else {
                    self.prep.prep(&self.tree, at, sid, xid, &auth, &r)
                };
                let origin = Origin::Client {
                    conn,
                    xid,
                    req: r,
                    arrived,
                };
                self.submit(txn, origin, Some(sid));
            }
            Ok(Request::Auth(p)) => {
                // Identities change at once, so later writes are prepared with them; the reply
                // still waits its turn.
                let result = self.authenticate(conn, &p.scheme, p.auth.as_deref().unwrap_or(&[]));
                let req = result.and(req);
                self.enqueue_read(sid, conn, xid::AUTH, req, auth, arrived);
            }
            Err(ErrorCode::MarshallingError) if op::is_write(opcode) => {
                // ZooKeeper logs an undecodable write as an error transaction: it takes a zxid.
                let Some(at) = self.stamp() else {
                    self.close_conn(conn);
                    return;
                };
                let txn = self
                    .prep
                    .error_txn(at, sid, xid, ErrorCode::MarshallingError);
                // The request never decoded; its reply is the transaction's error alone.
                let origin = Origin::Client {
                    conn,
                    xid,
                    req: Request::Ping,
                    arrived,
                };
                self.submit(txn, origin, Some(sid));
            }
            _ => self.enqueue_read(sid, conn, xid, req, auth, arrived),
        }
    }

    /// Hands a prepared transaction to the next log batch and remembers who waits for it; a
    /// session's own write also takes its place in that session's reply order.
    fn submit(&mut self, txn: Txn, origin: Origin, ordered_in: Option<i64>) {
        self.await_reply(txn.zxid, origin, ordered_in);
        self.propose(txn);
    }

    /// Remembers who waits for `key` (a zxid, or an ensemble member's key for a forwarded write
    /// or a sync); a session's own request also takes its place in the session's reply order.
    pub(crate) fn await_reply(&mut self, key: i64, origin: Origin, ordered_in: Option<i64>) {
        if let Some(sid) = ordered_in {
            self.queues
                .entry(sid)
                .or_default()
                .push_back(Queued::Write {
                    zxid: key,
                    done: None,
                });
        }
        self.origins.insert(key, origin);
    }

    pub(crate) fn enqueue_read(
        &mut self,
        sid: i64,
        conn: ConnId,
        xid: i32,
        req: Result<Request, ErrorCode>,
        auth: Arc<AuthInfo>,
        arrived: Instant,
    ) {
        let idle = self.queues.get(&sid).is_none_or(|q| q.is_empty());
        if idle && !self.congested(conn) {
            let done = self.read(sid, conn, xid, req, &auth, arrived);
            self.deliver(done);
        } else {
            self.queues.entry(sid).or_default().push_back(Queued::Read {
                conn,
                xid,
                req,
                auth,
                arrived,
            });
            if idle {
                self.drain(sid, false);
            }
        }
    }

    /// Whether a connection has more replies queued than it may: its reads wait.
    fn congested(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            c.out
                .shared
                .queued
                .load(std::sync::atomic::Ordering::Acquire)
                > crate::conn_shared::OUTBOUND_LIMIT
        })
    }

    /// Sends what is ready at the front of a session's queue, in order. With `force`, reads run
    /// even for a congested connection (the session is ending).
    fn drain(&mut self, sid: i64, force: bool) {
        loop {
            let Some(q) = self.queues.get_mut(&sid) else {
                return;
            };
            match q.front_mut() {
                None => {
                    self.queues.remove(&sid);
                    return;
                }
                Some(Queued::Write { done, .. }) => match done.take() {
                    Some(d) => {
                        q.pop_front();
                        self.deliver(d);
                    }
                    None => return,
                },
                Some(Queued::Read { conn, .. }) => {
                    let conn = *conn;
                    if !force && self.congested(conn) {
                        if let Some(c) = self.conns.get(&conn) {
                            c.out
                                .shared
                                .wants_drain
                                .store(true, std::sync::atomic::Ordering::Release);
                        }
                        // The writer may have caught up in between: look once more.
                        if self.congested(conn) {
                            return;
                        }
                    }
                    let Some(Queued::Read {
                        conn,
                        xid,
                        req,
                        auth,
                        arrived,
                    }) = self.queues.get_mut(&sid).and_then(|q| q.pop_front())
                    else {
                        return;
                    };
                    let done = self.read(sid, conn, xid, req, &auth, arrived);
                    self.deliver(done);
                }
            }
        }
    }

    /// Records the reply of an applied write and sends whatever is now ready.
    pub(crate) fn complete_write(&mut self, sid: i64, zxid: i64, done: Done, force: bool) {
        if let Some(q) = self.queues.get_mut(&sid) {
            let slot = q.iter_mut().find_map(|e| match e {
                Queued::Write { zxid: z, done } if *z == zxid => Some(done),
                _ => None,
            });
            if let Some(slot) = slot {
                *slot = Some(done);
                self.drain(sid, force);
                return;
            }
        }
        self.deliver(done);
    }

    fn deliver(&mut self, d: Done) {
        if d.is_reply {
            self.send_reply(d.conn, d.frame, d.arrived);
        } else if let Some(c) = self.conns.get(&d.conn) {
            c.out.send(d.frame);
        }
        if d.close_after {
            self.close_conn(d.conn);
        }
    }

    fn authenticate(&mut self, conn: ConnId, scheme: &str, data: &[u8]) -> Result<(), ErrorCode> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let mut auth = (*c.auth).clone();
        match scheme {
            "digest" => {
                let text = String::from_utf8_lossy(data);
                let id = digest_id(&text).ok_or(ErrorCode::AuthFailed)?;
                if self.cfg.super_digest.as_deref() == Some(id.as_str()) {
                    auth.add(paddock_proto::Id::new("super", ""));
                }
                auth.add(paddock_proto::Id::new("digest", id));
            }
            "ip" => auth.add(paddock_proto::Id::new("ip", c.addr.ip().to_string())),
            _ => {
                self.stats.auth_failed += 1;
                return Err(ErrorCode::AuthFailed);
            }
        }
        c.auth = Arc::new(auth);
        Ok(())
    }

    /// Runs a read-like request (everything that is not a transaction) and replies.
    fn read(
        &mut self,
        sid: i64,
        conn: ConnId,
        xid: i32,
        req: Result<Request, ErrorCode>,
        auth: &AuthInfo,
        arrived: Instant,
    ) -> Done {
        let req = match req {
            Ok(r) if self.prep.is_closing(sid) && !matches!(r, Request::Ping) => {
                Err(ErrorCode::SessionExpired)
            }
            other => other,
        };
        let zxid = self.tree.last_zxid();
        let (reply, close_after) = match req {
            Err(code) => {
                let z = if xid == xid::AUTH {
                    0
                } else if code == ErrorCode::Unimplemented {
                    -1
                } else {
                    zxid
                };
                let close = matches!(code, ErrorCode::Unimplemented | ErrorCode::AuthFailed);
                (frame(xid, z, code.code(), |_| {}), close)
            }
            Ok(req) => self.exec_read(sid, conn, xid, req, auth),
        };
        Done {
            conn,
            frame: reply,
            arrived,
            is_reply: true,
            close_after,
        }
    }

    fn send_reply(&mut self, conn: ConnId, reply: Bytes, arrived: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let lat = arrived.elapsed().as_millis() as u64;
        c.sent += 1;
        c.last_zxid = self.tree.last_zxid();
        c.last_latency_ms = lat;
        c.min_latency_ms = c.min_latency_ms.min(lat);
        c.max_latency_ms = c.max_latency_ms.max(lat);
        c.total_latency_ms += lat;
        self.stats.record_latency(lat);
        self.stats.sent += 1;
        c.out.reply(reply);
    }

    fn exec_read(
        &mut self,
        sid: i64,
        conn: ConnId,
        xid: i32,
        req: Request,
        auth: &AuthInfo,
    ) -> (Bytes, bool) {
        let skip = self.cfg.skip_acl;
        let zxid = self.tree.last_zxid();
        let err = |e: ErrorCode| (frame(xid, zxid, e.code(), |_| {}), false);
        // getChildren2 is getChildren with the parent's Stat.
        let with_stat = matches!(req, Request::GetChildren2(_));
        let ok = |f: Bytes| (f, false);
        match req {
            Request::Ping => ok(frame(xid::PING, zxid, 0, |_| {})),
            Request::Auth(_) => ok(frame(xid::AUTH, 0, 0, |_| {})),
            Request::Exists(r) => {
                let res = self.tree.exists(&r.path, auth, skip);
                if r.watch && matches!(res, Ok(_) | Err(ErrorCode::NoNode)) {
                    self.watches.add(conn, WatchKind::Data, &r.path);
                }
                match res {
                    Ok(stat) => ok(frame(xid, zxid, 0, |b| StatResponse { stat }.encode(b))),
                    Err(e) => err(e),
                }
            }
            Request::GetData(r) => match self.tree.get_data(&r.path, auth, skip) {
                Ok((data, stat)) => {
                    if r.watch {
                        self.watches.add(conn, WatchKind::Data, &r.path);
                    }
                    ok(frame(xid, zxid, 0, |b| {
                        GetDataResponse { data, stat }.encode(b)
                    }))
                }
                Err(e) => err(e),
            },
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                match self.tree.get_children(&r.path, auth, skip) {
                    Ok((children, stat)) => {
                        if r.watch {
                            self.watches.add(conn, WatchKind::Child, &r.path);
                        }
                        ok(frame(xid, zxid, 0, |b| {
                            if with_stat {
                                GetChildren2Response { children, stat }.encode(b)
                            } else {
                                GetChildrenResponse { children }.encode(b)
                            }
                        }))
                    }
                    Err(e) => err(e),
                }
            }
            Request::GetAcl(r) => match self.tree.get_acl(&r.path, auth, skip) {
                Ok((acl, stat)) => ok(frame(xid, zxid, 0, |b| {
                    GetAclResponse { acl, stat }.encode(b)
                })),
                Err(e) => err(e),
            },
            Request::GetAllChildrenNumber(r) => {
                match self.tree.all_children_number(&r.path, auth, skip) {
                    Ok(n) => ok(frame(xid, zxid, 0, |b| {
                        GetAllChildrenNumberResponse { total_number: n }.encode(b)
                    })),
                    Err(e) => err(e),
                }
            }
            Request::GetEphemerals(r) => {
                let ephemerals = self.tree.ephemerals_with_prefix(sid, &r.path);
                ok(frame(xid, zxid, 0, |b| {
                    GetEphemeralsResponse { ephemerals }.encode(b)
                }))
            }
            Request::Sync(r) => ok(frame(xid, zxid, 0, |b| {
                PathRequest { path: r.path }.encode(b)
            })),
            Request::WhoAmI => {
                let client_info = auth
                    .in_java_order()
                    .into_iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.scheme.clone(),
                        user: if i.scheme == "digest" {
                            i.id.split(':').next().unwrap_or("").to_owned()
                        } else {
                            i.id.clone()
                        },
                    })
                    .collect();
                ok(frame(xid, zxid, 0, |b| {
                    WhoAmIResponse { client_info }.encode(b)
                }))
            }
            Request::AddWatch(AddWatchRequest { path, mode }) => {
                let kind = match mode {
                    paddock_proto::add_watch_mode::PERSISTENT => WatchKind::Persistent,
                    paddock_proto::add_watch_mode::PERSISTENT_RECURSIVE => WatchKind::Recursive,
                    // ZooKeeper 3.8 fails to decode an unknown mode.
                    _ => return err(ErrorCode::MarshallingError),
                };
                self.watches.add(conn, kind, &path);
                // The Java client reads a body here.
                ok(frame(xid, zxid, 0, |b| ErrorResponse { err: 0 }.encode(b)))
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r)
                if !paddock_tree::watch::known_watcher_type(r.watcher_type) =>
            {
                err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches(r) => {
                if self.watches.contains(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                if self.watches.remove(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                self.set_watches(conn, &w);
                ok(frame(xid, zxid, 0, |_| {}))
            }
            Request::MultiRead(ops) => {
                let results: Vec<OpResult> = ops
                    .into_iter()
                    .map(|o| match o {
                        ReadOp::GetChildren(p) => match self.tree.get_children(&p, auth, skip) {
                            Ok((c, _)) => OpResult::GetChildren(c),
                            Err(e) => OpResult::Error(e.code()),
                        },
                        ReadOp::GetData(p) => match self.tree.get_data(&p, auth, skip) {
                            Ok((d, s)) => OpResult::GetData(d, s),
                            Err(e) => OpResult::Error(e.code()),
                        },
                    })
                    .collect();
                ok(frame(xid, zxid, 0, |b| {
                    paddock_proto::encode_multi_response(&results, b)
                }))
            }
            Request::Sasl(_) => (frame(xid, zxid, ErrorCode::AuthFailed.code(), |_| {}), true),
            // Writes never come here.
            _ => err(ErrorCode::Unimplemented),
        }
    }

    /// Re-registers a reconnected client's watches, firing at once what it missed (judged by
    /// the zxid it has seen).
    fn set_watches(&mut self, conn: ConnId, w: &SetWatches2) {
        let rel = w.relative_zxid;
        let mut events: Vec<(i32, String)> = Vec::new();
        for p in &w.data_watches {
            match self.tree.lookup(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(id) if self.tree.node_stat(id).mzxid > rel => {
                    events.push((event::NODE_DATA_CHANGED, p.clone()))
                }
                Some(_) => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.exist_watches {
            match self.tree.lookup(p) {
                Some(_) => events.push((event::NODE_CREATED, p.clone())),
                None => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.child_watches {
            match self.tree.lookup(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(id) if self.tree.node_stat(id).pzxid > rel => {
                    events.push((event::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => self.watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in &w.persistent_watches {
            self.watches.add(conn, WatchKind::Persistent, p);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.add(conn, WatchKind::Recursive, p);
        }
        if let Some(c) = self.conns.get(&conn) {
            for (t, p) in events {
                c.out.send(notification(t, &p));
            }
        }
    }

    /// Hands the replication core's disk orders of this round to the log thread (one group
    /// commit for everything prepared while the core drained its channel).
    fn flush(&mut self) {
        if self.replica.disk.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.replica.disk);
        let last_seq = ops.last().map(crate::log::DiskOp::seq);
        if self.log.send(LogMsg::Disk(ops)).is_err() {
            error!("the log thread is gone; stopping");
            std::process::exit(70);
        }
        if self.ack_before_log {
            // Test-only planted bug: count the orders durable before the log thread wrote them.
            if let Some(through) = last_seq {
                self.zab_step(paddock_zab::Event::Persisted { through });
                self.flush();
            }
        }
    }

    /// Starts a snapshot when one is due: by transaction count or by log size, whichever comes
    /// first, as ZooKeeper does. Checked after each apply and when a snapshot ends (one that
    /// took longer than the interval is followed at once, not at the next write).
    fn maybe_snapshot(&mut self) {
        if (self.since_snapshot >= self.next_snapshot_at
            || self.logged_since_snapshot >= self.next_snapshot_bytes)
            && !self.snapshot_running
        {
            self.since_snapshot = 0;
            self.next_snapshot_at = snapshot_interval(self.cfg.snap_count);
            self.logged_since_snapshot = 0;
            self.next_snapshot_bytes = snapshot_bytes(self.cfg.snap_size_limit_kb);
            self.start_snapshot();
        }
    }

    /// Starts a fuzzy snapshot of the tree as applied so far.
    fn start_snapshot(&mut self) {
        let dir = crate::storage::snap_dir(&self.cfg.data_dir);
        let mut sessions: Vec<(i64, i32)> =
            self.tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort();
        let zxid = self.tree.last_zxid();
        let (tx, rx) = std_mpsc::sync_channel::<(Vec<u8>, u64)>(SNAPSHOT_QUEUE);
        let core = self.core_tx.clone();
        let (fs, dbid) = (self.fs.clone(), self.dbid);
        // Retention runs on the snapshot thread after the snapshot is whole (ZooKeeper purges
        // every purgeInterval hours; Paddock after each snapshot when it is set), so the core
        // task never waits on the file system for it.
        let purge = (self.cfg.autopurge_purge_interval > 0).then(|| {
            (
                self.cfg.data_dir.clone(),
                self.cfg.data_log_dir.clone(),
                self.cfg.autopurge_snap_retain_count as usize,
            )
        });
        // The snapshot covers everything logged so far: the log starts a new segment, so that
        // the older ones can go whole once this snapshot is old enough.
        let _ = self.log.send(LogMsg::RollSegment);
        let abort = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let aborted = abort.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let result = (|| {
                    let mut w = SnapshotWriter::create(&fs, &dir, zxid, dbid, &sessions)?;
                    while let Ok((records, nodes)) = rx.recv() {
                        w.records(&records, nodes)?;
                    }
                    if aborted.load(std::sync::atomic::Ordering::Acquire) {
                        return Err(std::io::Error::other(
                            "snapshot abandoned: the tree was replaced",
                        ));
                    }
                    let path = w.finish()?;
                    let mut log_purged_through = None;
                    if let Some((data_dir, data_log_dir, keep)) = &purge {
                        match crate::storage::purge::purge(&fs, data_dir, data_log_dir, *keep) {
                            Ok(p) => log_purged_through = p.log_purged_through,
                            Err(e) => warn!(error = %e, "purge failed"),
                        }
                    }
                    Ok(SnapshotDone {
                        path,
                        log_purged_through,
                    })
                })();
                if result.is_err() {
                    // A full disk must not be made fuller by a half-written snapshot.
                    let tmp = format!("{}.tmp", crate::storage::snapshot::snap_name(zxid));
                    let _ = fs.remove_file(&dir.join(tmp));
                }
                let _ =
                    core.blocking_send(CoreMsg::SnapshotDone(result.map_err(|e| e.to_string())));
            });
        if spawned.is_err() {
            warn!("could not start the snapshot thread");
            return;
        }
        info!(zxid = format_args!("0x{zxid:x}"), "snapshot started");
        self.snapshot_running = true;
        self.snapshot = Some(SnapshotJob {
            cursor: None,
            tx: Some(tx),
            pending: None,
            abort,
        });
    }

    /// Abandons a running snapshot walk (the tree is about to be replaced).
    pub(crate) fn abort_snapshot(&mut self) {
        if let Some(job) = self.snapshot.take() {
            job.abort.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Walks the next part of a running snapshot, as far as the writer keeps up.
    /// Returns whether it made progress (false when the writer's queue is full or no snapshot
    /// runs).
    fn snapshot_step(&mut self, nodes: usize) -> bool {
        let Some(job) = self.snapshot.as_mut() else {
            return false;
        };
        let mut budget = nodes;
        while budget > 0 {
            let (chunk, last) = match job.pending.take() {
                Some(c) => (c, false),
                None => {
                    let n = budget.min(SNAPSHOT_CHUNK);
                    budget -= n;
                    let mut c = Vec::with_capacity(n * 160);
                    let (more, walked) =
                        self.tree.snapshot_chunk_encoded(&mut job.cursor, n, &mut c);
                    if c.is_empty() {
                        // Walk complete: closing the channel tells the writer to seal the file.
                        self.snapshot = None;
                        return true;
                    }
                    ((c, walked as u64), !more)
                }
            };
            match job.tx.as_ref().map(|tx| tx.try_send(chunk)) {
                Some(Ok(())) if last => {
                    self.snapshot = None;
                    return true;
                }
                Some(Ok(())) => {}
                Some(Err(std_mpsc::TrySendError::Full(c))) => {
                    job.pending = Some(c);
                    return false;
                }
                _ => {
                    self.snapshot = None;
                    return false;
                }
            }
        }
        true
    }

    pub(crate) fn apply(&mut self, txn: Txn) {
        let applied = self.tree.apply(&txn);
        self.since_snapshot += 1;
        self.maybe_snapshot();
        self.prep.applied(txn.zxid);
        self.fire(&applied);
        let key = self.origin_key(&txn);
        let origin = self.origins.remove(&key);
        match &txn.op {
            // Another server's session: known here too, so any server can resume it and a
            // future leader can expire it.
            paddock_tree::TxnOp::CreateSession { timeout }
                if !matches!(origin, Some(Origin::Connect { .. }))
                    && self.sessions.get(txn.session_id).is_none() =>
            {
                self.sessions.restore(txn.session_id, *timeout);
            }
            paddock_tree::TxnOp::CloseSession { .. }
                if !matches!(
                    origin,
                    Some(Origin::Client { .. }) | Some(Origin::Expire { .. })
                ) =>
            {
                if let Some(conn) = self.sessions.get(txn.session_id).and_then(|s| s.conn) {
                    self.close_conn(conn);
                }
                self.end_session(txn.session_id);
            }
            _ => {}
        }
        match origin {
            Some(Origin::Client {
                conn,
                xid,
                req,
                arrived,
            }) => {
                let f = reply_for_write(xid, txn.zxid, &req, &applied);
                let closing = matches!(req, Request::CloseSession);
                let done = Done {
                    conn,
                    frame: f,
                    arrived,
                    is_reply: true,
                    close_after: closing,
                };
                self.complete_write(txn.session_id, key, done, closing);
                if closing {
                    self.end_session(txn.session_id);
                }
            }
            Some(Origin::Connect { conn, session }) => {
                self.sessions.mark_live(session);
                if let Some(c) = self.conns.get(&conn) {
                    let timeout = self.sessions.get(session).map_or(0, |s| s.timeout);
                    let done = Done {
                        conn,
                        frame: connect_frame(session, timeout, c.read_only_byte, false),
                        arrived: Instant::now(),
                        is_reply: false,
                        close_after: false,
                    };
                    debug!(
                        conn,
                        session = format_args!("0x{session:x}"),
                        "session established"
                    );
                    self.complete_write(session, key, done, false);
                }
            }
            Some(Origin::Expire { session }) => {
                info!(session = format_args!("0x{session:x}"), "session expired");
                if let Some(conn) = self.sessions.get(session).and_then(|s| s.conn) {
                    self.close_conn(conn);
                }
                self.end_session(session);
            }
            Some(Origin::Internal) | Some(Origin::Sync { .. }) | None => {}
        }
    }

    pub(crate) fn end_session(&mut self, session: i64) {
        self.sessions.remove(session);
        self.queues.remove(&session);
        self.replica.owners.remove(&session);
    }

    fn fire(&mut self, applied: &Applied) {
        for ch in &applied.changes {
            let watchers = self.watches.trigger(ch.event_type, &ch.path);
            if watchers.is_empty() {
                continue;
            }
            // A watcher hears of a change only if it may read the node (the parent, for a
            // children change): ZooKeeper's fix for CVE-2024-23944. One-shot watches are used
            // up either way.
            let live_acl;
            let acl: Option<&[paddock_proto::Acl]> = match &ch.acl {
                Some(a) => Some(a),
                None => {
                    live_acl = self.tree.lookup(&ch.path).map(|id| self.tree.acl(id));
                    live_acl
                }
            };
            let skip = self.cfg.skip_acl;
            let f = notification(ch.event_type, &ch.path);
            for w in watchers {
                if let Some(c) = self.conns.get(&w) {
                    let readable = acl.is_none_or(|a| {
                        paddock_tree::acl::check(a, paddock_proto::perms::READ, &c.auth, skip)
                    });
                    if readable {
                        c.out.send(f.clone());
                    }
                }
            }
        }
    }

    fn tick(&mut self) {
        if !self.serving() {
            self.expire_read_only_sessions();
            return;
        }
        // In an ensemble the leader alone expires sessions.
        if !self.prepares() || !self.serving() {
            return;
        }
        for sid in self.sessions.expired() {
            if self.prep.is_closing(sid) {
                continue;
            }
            // A stamp for each: every proposal moves the counter on.
            let Some(at) = self.stamp() else { return };
            let txn = self.prep.close_session(&self.tree, at, sid, 0);
            self.submit(txn, Origin::Expire { session: sid }, None);
        }
    }

    /// A server out of its quorum expires the read-only sessions it handed out itself: they
    /// exist here alone (never replicated), so nobody else would, and every reconnect of a
    /// client that has seen no read-write server asks for a new one. Replicated sessions wait
    /// for a leader: their fate is the ensemble's.
    fn expire_read_only_sessions(&mut self) {
        let replicated = self.tree.sessions();
        let local: Vec<i64> = self
            .sessions
            .expired()
            .into_iter()
            .filter(|sid| !replicated.contains_key(sid))
            .collect();
        for sid in local {
            if let Some(conn) = self.sessions.get(sid).and_then(|s| s.conn) {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = None;
                }
                self.close_conn(conn);
            }
            self.end_session(sid);
            info!(
                session = format_args!("0x{sid:x}"),
                "read-only session expired"
            );
        }
    }

    fn container_check(&mut self) {
        if !self.prepares() || !self.serving() {
            return;
        }
        let now = now_ms();
        let mut budget = (self.cfg.container_max_per_minute as f64
            * self.cfg.container_check_interval_ms as f64
            / 60_000.0)
            .ceil()
            .max(1.0) as usize;
        for (path, owner) in self.tree.container_and_ttl_nodes() {
            if budget == 0 {
                break;
            }
            let Some(id) = self.tree.lookup(&path) else {
                continue;
            };
            if self.tree.num_children(id) > 0 {
                continue;
            }
            let st = self.tree.node_stat(id);
            let due = match paddock_tree::Owner::of(owner) {
                paddock_tree::Owner::Container => {
                    st.cversion > 0
                        || (self.cfg.container_max_never_used_ms > 0
                            && now - st.mtime > self.cfg.container_max_never_used_ms as i64)
                }
                paddock_tree::Owner::Ttl(ttl) => now - st.mtime > ttl,
                _ => false,
            };
            if due {
                budget -= 1;
                let Some(at) = self.stamp() else { return };
                let txn = self.prep.delete_container(&self.tree, at, &path);
                self.submit(txn, Origin::Internal, None);
            }
        }
    }
}

/// The reply to an applied write, shaped by the request it answers.
fn reply_for_write(xid: i32, zxid: i64, req: &Request, applied: &Applied) -> Bytes {
    let outcome = match &applied.result {
        Err(e) => return frame(xid, zxid, e.code(), |_| {}),
        Ok(o) => o,
    };
    match (req, outcome) {
        (Request::Create(c), Outcome::Created { path, stat }) => match c.kind {
            CreateKind::Create => frame(xid, zxid, 0, |b| {
                CreateResponse { path: path.clone() }.encode(b)
            }),
            _ => frame(xid, zxid, 0, |b| {
                Create2Response {
                    path: path.clone(),
                    stat: stat.clone(),
                }
                .encode(b)
            }),
        },
        (Request::SetData(_) | Request::SetAcl(_), Outcome::Stat(stat)) => {
            frame(xid, zxid, 0, |b| {
                StatResponse { stat: stat.clone() }.encode(b)
            })
        }
        (Request::Multi(ops), Outcome::Multi(results)) => {
            let failed = results.iter().any(|r| r.is_err());
            let res: Vec<OpResult> = results
                .iter()
                .zip(ops.iter())
                .map(|(r, o)| match r {
                    Err(code) => OpResult::Error(*code),
                    Ok(_) if failed => OpResult::Error(0),
                    Ok(out) => multi_result(o, out),
                })
                .collect();
            frame(xid, zxid, 0, |b| {
                paddock_proto::encode_multi_response(&res, b)
            })
        }
        _ => frame(xid, zxid, 0, |_| {}),
    }
}

fn multi_result(op: &MultiOp, out: &Outcome) -> OpResult {
    match (op, out) {
        (MultiOp::Create(c), Outcome::Created { path, stat }) => match c.kind {
            CreateKind::Create => OpResult::Create(path.clone()),
            _ => OpResult::Create2(path.clone(), stat.clone()),
        },
        (MultiOp::Delete(_), _) => OpResult::Delete,
        (MultiOp::SetData(_), Outcome::Stat(s)) => OpResult::SetData(s.clone()),
        (MultiOp::Check(_), _) => OpResult::Check,
        _ => OpResult::SetData(Stat::default()),
    }
}

/// Transactions until the next snapshot: randomised in (snapCount/2, snapCount], as ZooKeeper
/// does, so that servers of an ensemble do not all snapshot at once.
/// Log bytes after which the next snapshot starts: between half and all of the limit, so
/// servers of an ensemble do not snapshot together; never when the limit is off.
fn snapshot_bytes(limit_kb: i64) -> u64 {
    if limit_kb <= 0 {
        return u64::MAX;
    }
    let full = limit_kb as u64 * 1024;
    full / 2 + rand::random::<u64>() % (full / 2 + 1)
}

fn snapshot_interval(snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rand::random::<u64>() % (snap_count - half + 1).max(1)
}

//! The core: one task that owns the tree, the preparation stage, the watches and the sessions,
//! and runs every write down the one road (prep, proposal, log thread, durable, apply, reply)
//! through the replication driver, in batches.
//!
//! It is made of parts that own their state, each in its own module and tested there without
//! a socket: the connections (`conns`), the reply order (`order`), the sessions
//! (`crate::session`), watch dispatch (`dispatch`), snapshot scheduling and the snapshot walk
//! (`snapshots`) and the replication driver (`crate::replica`). This module routes messages
//! between them; `reads` answers reads, `ensemble` carries out what the driver hands back,
//! `words` renders the four-letter words and `frames` builds what goes on the wire.
//!
//! Connections decode requests on their own tasks and send them here; the core answers each
//! session in request order: a read waits behind its own session's pending writes, never behind
//! other sessions'. Watch events are queued to a connection while a transaction is applied, so
//! they always precede the reply to any later request on that connection.
//!
//! The tree is shared (`crate::tree_lock`): the core, its only writer, holds it through each
//! round of work and lets the threads that walk all of it (snapshots, a learner's SNAP image)
//! and the connections' direct reads (`crate::read_path`, `direct`) read between rounds. The
//! watch registry is shared with the direct reads behind a mutex that only a holder of the
//! tree's lock takes (see docs/ARCHITECTURE.md).

mod admin;
mod audited;
mod barrier;
mod conns;
mod direct;
mod dispatch;
mod ensemble;
mod frames;
mod hold;
mod monitor;
mod order;
mod reads;
mod restore;
mod snapshots;
mod words;

pub use crate::msg::{CoreMsg, SnapshotDone};
pub(crate) use frames::frame;
pub(crate) use order::{Done, Origin};
pub(crate) use snapshots::WALK_CHUNK;

use crate::config::Config;
use crate::conn_shared::ConnId;
use crate::log::LogMsg;
use crate::session::{java_password, Scope, Sessions};
use crate::stats::Stats;
use crate::storage::fs::{CoreSection, Fs};
use crate::tree_lock::HeldTree;
use conns::Conns;
use frames::{connect_frame, reply_for_write};
use order::{Next, PendingRead, ReplyOrder};
use paddock_proto::{op, xid, ConnectRequest, ErrorCode, Record, Request};
use paddock_tree::{digest_id, AuthInfo, DataTree, Prep, PrepConfig, Txn};
use snapshots::{Schedule, Snapshots, Target};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// The auth scheme by which the web console's session takes a viewer's certificate identity
/// (`CoreMsg::ConsoleGrant`).
pub const CONSOLE_SCHEME: &str = "paddock-console";

/// How long a console grant waits for its session.
const CONSOLE_GRANT_LIFE: std::time::Duration = std::time::Duration::from_secs(30);

/// The core's state.
pub struct Core {
    pub(crate) cfg: Arc<Config>,
    pub(crate) tree: HeldTree,
    pub(crate) prep: Prep,
    pub(crate) watches: crate::read_path::SharedWatches,
    /// What the connections' tasks answer reads with (`crate::read_path`).
    pub(crate) read_path: crate::read_path::ReadPath,
    pub(crate) sessions: Sessions,
    pub(crate) conns: Conns,
    pub(crate) order: ReplyOrder,
    /// The one sync in flight that client syncs and linearizable reads ride on.
    pub(crate) barrier: barrier::SyncBarrier,
    /// The ensemble's configuration as this server last applied it (`/zookeeper/config`).
    pub(crate) dynconfig: crate::dynconfig::DynConfig,
    /// The zxid of a reconfiguration this leader proposed and has not applied yet: another
    /// waits (RECONFIGINPROGRESS), as in ZooKeeper.
    reconfig_in_flight: Option<i64>,
    /// The configuration last recorded in the data directory (`dynconfig::write_known`, and
    /// `<zoo.cfg>.dynamic.<version>` with it): read once at start, then kept here.
    known_config: Option<crate::dynconfig::DynConfig>,
    /// This server's client address in the configuration, and where to ask for the client
    /// listener to move when a reconfiguration changes it (`with_client_rebind`).
    own_client_addr: Option<(String, u16)>,
    client_rebind: Option<tokio::sync::mpsc::UnboundedSender<(String, u16)>>,
    /// A configuration applied in a step of the replication core, for the node and the peers
    /// to take once that step's actions are done.
    pub(crate) membership_due: bool,
    log: std_mpsc::Sender<LogMsg>,
    pub(crate) fs: Fs,
    /// The database id written into snapshots.
    pub(crate) dbid: u64,
    /// The replication driver: every server is a member of an ensemble (standalone is a
    /// one-voter ensemble with no peers).
    pub(crate) replica: crate::replica::Replica,
    pub(crate) snapshots: Snapshots,
    /// The core's work so far, which paces snapshot walks.
    pace: Arc<snapshots::Pace>,
    /// The leader's last snapshot, parsed by the transport, waiting for the node to install it.
    pub(crate) parsed_snapshot: Option<crate::msg::ParsedSnapshot>,
    /// `PADDOCK_TEST_ACK_BEFORE_LOG=1`: report appends durable before they are even written.
    /// Exists only so that the crash tests can show they catch lost acknowledged writes.
    pub(crate) ack_before_log: bool,
    /// Fired the first time this server serves clients (a one-voter ensemble opens its client
    /// port only then).
    pub(crate) first_serving: Option<oneshot::Sender<()>>,
    pub(crate) stats: Stats,
    pub(crate) started: Instant,
    /// SASL as the JAAS file configures it; `None`: SASL is off and SASL requests fail.
    sasl: Option<Arc<crate::sasl::SaslServer>>,
    /// This core's own channel, for work it hands off (GSSAPI steps) to report back on.
    me: mpsc::Sender<CoreMsg>,
    /// The audit log (`audit.enable`).
    audit: Option<crate::audit::AuditLog>,
    /// The figures the log thread takes too (fsync time, group-commit size), and snapshots.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// What is measured of every request answered.
    pub(crate) requests: crate::metrics::RequestMetrics,
    /// Events counted as they happen, under ZooKeeper's ServerMetrics names.
    pub(crate) events: crate::metrics::events::Events,
    /// When the replication core last changed role (election and learner sync times).
    pub(crate) role_since: Instant,
    /// ZooKeeper's trace mask, as `stmk` set it: kept and shown, but Paddock's logging is
    /// chosen by RUST_LOG, not by this mask.
    pub(crate) trace_mask: i64,
    /// Stopping (SIGTERM): until when requests in flight may still be answered, and who
    /// waits for the connections to close.
    stopping: Option<(Instant, oneshot::Sender<usize>)>,
    /// Requests waiting out a planned leadership handover (`hold.rs`).
    hold: Option<hold::Hold>,
    /// The web console's one-time grants of a viewer's certificate identity: token to subject
    /// and when it was granted.
    console_grants: std::collections::HashMap<String, (String, Instant)>,
    /// Backups under way (the AdminServer's `snapshot`): each gets every transaction applied
    /// until it hangs up.
    pub(crate) backup_taps: Vec<std_mpsc::Sender<paddock_tree::Txn>>,
    /// An online restore this leader proposed and has not applied yet (restore.rs).
    pub(crate) restore: restore::Pending,
}

/// ZooKeeper's default trace mask (what its `gtmk` answers on a fresh server).
const DEFAULT_TRACE_MASK: i64 = 306;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether a decoded request is a write (`op::is_write`, the one list).
pub(crate) fn is_write(req: &Request) -> bool {
    op::is_write(req.opcode())
}

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
            sasl_acls: cfg.sasl_acls,
            x509_acls: cfg.x509_identities,
            max_txn_bytes: None,
        });
        let server_id = replica.node.id();
        let known_config = crate::dynconfig::read_known(&cfg.data_dir);
        let own_client_addr = cfg
            .servers
            .iter()
            .find(|s| s.id == server_id)
            .and_then(|s| s.client_addr.clone());
        let mut sessions = Sessions::new(server_id, cfg.tick_time as u64);
        // Sessions outlive a restart: each gets its full timeout again to come back.
        for (&id, &timeout) in tree.sessions() {
            sessions.restore(id, timeout);
        }
        let pace = Arc::new(snapshots::Pace::default());
        let me = core_tx.clone();
        let snapshots = Snapshots::new(
            Schedule::new(cfg.snap_count, cfg.snap_size_limit_kb),
            Target {
                fs: fs.clone(),
                dbid,
                data_dir: cfg.data_dir.clone(),
                data_log_dir: cfg.data_log_dir.clone(),
                purge_keep: (cfg.autopurge_purge_interval > 0)
                    .then_some(cfg.autopurge_snap_retain_count as usize),
                snap_count: cfg.snap_count,
                pace: pace.clone(),
                log: log.clone(),
                core: core_tx,
            },
        );
        let dynconfig = crate::dynconfig::DynConfig::new(&cfg.servers, cfg.config_version);
        let tree = HeldTree::new(tree);
        let watches: crate::read_path::SharedWatches = Default::default();
        let read_path =
            crate::read_path::ReadPath::new(tree.shared(), watches.clone(), cfg.skip_acl);
        let mut core = Core {
            sasl: None,
            me,
            audit: None,
            sessions,
            fs,
            dbid,
            cfg,
            tree,
            prep,
            watches,
            read_path,
            conns: Conns::default(),
            order: ReplyOrder::default(),
            barrier: Default::default(),
            dynconfig,
            reconfig_in_flight: None,
            known_config,
            own_client_addr,
            client_rebind: None,
            membership_due: false,
            log,
            replica,
            snapshots,
            pace,
            parsed_snapshot: None,
            ack_before_log: std::env::var("PADDOCK_TEST_ACK_BEFORE_LOG").is_ok_and(|v| v == "1"),
            first_serving: None,
            stats: Stats::default(),
            started: Instant::now(),
            metrics: Default::default(),
            requests: Default::default(),
            events: Default::default(),
            role_since: Instant::now(),
            trace_mask: DEFAULT_TRACE_MASK,
            stopping: None,
            hold: None,
            console_grants: Default::default(),
            backup_taps: Vec::new(),
            restore: Default::default(),
        };
        core.publish_config();
        core
    }

    /// Writes this server's view of its ensemble's configuration into `/zookeeper/config`, as
    /// ZooKeeper does (a standalone server leaves it empty), at the version of the
    /// `dynamicConfigFile` it came from, or 0 for zoo.cfg's own lines (where ZooKeeper shows
    /// the zxid at which its first leader took office).
    ///
    /// A configuration in the tree newer than that one (a reconfiguration applied before a
    /// restart, or in the leader's snapshot) is the ensemble's: it is taken instead, and the
    /// node and peers follow it (`membership_due`).
    pub(crate) fn publish_config(&mut self) {
        if self.cfg.servers.is_empty() {
            return;
        }
        let in_tree = self
            .tree
            .lookup(paddock_tree::CONFIG_NODE)
            .and_then(|id| self.tree.data(id))
            .and_then(|d| crate::dynconfig::DynConfig::parse(&String::from_utf8_lossy(d)).ok());
        // The newer of the snapshot's and the one recorded when it took effect.
        let stored = match (in_tree, self.known_config.clone()) {
            (Some(a), Some(b)) => Some(if a.version >= b.version { a } else { b }),
            (a, b) => a.or(b),
        };
        match stored {
            Some(c) if c.version > self.dynconfig.version => {
                info!(
                    version = format_args!("{:x}", c.version),
                    "the configuration in the data is newer than zoo.cfg's: taking it"
                );
                self.dynconfig = c;
                self.membership_due = true;
            }
            _ => {
                let c = &self.dynconfig;
                self.tree
                    .set_config(c.render().as_bytes(), c.version, now_ms());
            }
        }
    }

    /// The peers take the configuration applied last (`membership_due`), once no
    /// replication step is running: connections to new members, none to those that left.
    /// The replication core counts quorums by the configurations it logged and committed
    /// itself (paddock_zab::membership); it is told here only of one it may not have seen
    /// (a snapshot's, or the data's at startup).
    pub(crate) fn take_membership(&mut self) {
        if !std::mem::take(&mut self.membership_due) {
            return;
        }
        let c = &self.dynconfig;
        let servers: Vec<crate::config::ServerSpec> = c.servers.values().cloned().collect();
        info!(
            version = format_args!("{:x}", c.version),
            voters = ?c.voters(),
            observers = ?c.observers(),
            "taking the ensemble's configuration"
        );
        if !c.servers.contains_key(&self.replica.node.id()) {
            warn!("this server is not in the ensemble's configuration any more: it will not be taken back");
        }
        let me = self.replica.node.id();
        let own = c.servers.get(&me).and_then(|s| s.client_addr.clone());
        if own.is_some() && own != self.own_client_addr {
            if let (Some(tx), Some(addr)) = (&self.client_rebind, &own) {
                info!(host = %addr.0, port = addr.1, "a reconfiguration moved this server's client address");
                let _ = tx.send(addr.clone());
            }
            self.own_client_addr = own;
        }
        let version = paddock_zab::Zxid(c.version.max(0) as u64);
        let payload = c.as_payload();
        self.replica.peers.set_members(&servers);
        self.replica.node.adopt_config(version, payload);
        self.carry_out_actions();
    }

    /// The replication core took a configuration: one this server applied (already taken),
    /// or one it learned committed from a peer (a notification, NEWLEADER) while its own data
    /// is behind. The peers take its members' addresses at the end of the step; the data's
    /// `/zookeeper/config` follows when the transaction is applied here.
    ///
    /// Either way it is recorded in the data directory before anything after it is carried
    /// out (this runs in the order of the core's actions): the server never acknowledges a
    /// proposal under a configuration it would forget in a crash. With a `dynamicConfigFile`
    /// it is also written next to zoo.cfg, as ZooKeeper does.
    pub(crate) fn config_activated(&mut self, payload: &[u8]) {
        let Some(c) = crate::dynconfig::from_payload(payload) else {
            warn!("a configuration from the replication core does not read back");
            return;
        };
        if self
            .known_config
            .as_ref()
            .is_none_or(|k| c.version > k.version)
        {
            match crate::dynconfig::write_known(&self.cfg.data_dir, &c) {
                Ok(()) => self.known_config = Some(c.clone()),
                Err(e) => error!(
                    error = %e,
                    "cannot record the committed configuration in the data directory; a restart \
                     before the next snapshot would start from an older one"
                ),
            }
            if let Some(owner) = &self.cfg.dynamic_config_owner {
                match crate::dynconfig::write_committed(owner, &c) {
                    Ok(path) => info!(file = %path.display(), "wrote the committed configuration"),
                    Err(e) => warn!(
                        error = %e,
                        "could not write the committed configuration next to the zoo.cfg; \
                         this server restarts from the one its data holds"
                    ),
                }
            }
        }
        if c.version > self.dynconfig.version {
            self.dynconfig = c;
            self.membership_due = true;
        }
    }

    /// A reconfiguration that changes this server's client address sends the new one here:
    /// the client listener moves to it (lib.rs, `plain_clients`).
    pub fn with_client_rebind(
        mut self,
        tx: tokio::sync::mpsc::UnboundedSender<(String, u16)>,
    ) -> Core {
        self.client_rebind = Some(tx);
        self
    }

    /// Records into `metrics` (shared with the log thread).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Core {
        self.metrics = metrics;
        self
    }

    /// Turns SASL on as the JAAS file configures it (loaded at start).
    pub fn with_sasl(mut self, sasl: Option<Arc<crate::sasl::SaslServer>>) -> Core {
        self.sasl = sasl;
        self
    }

    /// Writes audited events to `log` (`audit.enable`).
    pub fn with_audit(mut self, log: Option<crate::audit::AuditLog>) -> Core {
        self.audit = log;
        self
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        loop {
            // The walkers (snapshots, SNAP images) read the tree only while the core waits.
            self.tree.release();
            let Some(msg) = rx.recv().await else { return };
            // No await from here to the end of the round: all of it is core work.
            let _core = CoreSection::enter();
            self.take(msg);
            // Take whatever else is waiting, so one log flush covers the whole batch.
            let mut n = 0;
            while n < 1024 {
                match rx.try_recv() {
                    Ok(m) => self.take(m),
                    Err(_) => break,
                }
                n += 1;
            }
            if !self.replica.disk.is_empty() || self.stopping.is_some() {
                self.tree.hold();
            }
            self.flush();
            self.pace.round(n as u64 + 1);
            self.check_stopped();
            let open = self.direct_reads_open();
            if open != self.read_path.is_open() {
                // Changed under the tree's lock: a direct read sees it before it reads.
                self.tree.hold();
                self.read_path.set_open(open);
            }
        }
    }

    /// Handles one message, taking the tree first unless the message leaves it alone: a
    /// round that only counts direct reads does not stop them.
    fn take(&mut self, msg: CoreMsg) {
        if msg.needs_tree() {
            self.tree.hold();
        }
        self.handle(msg);
    }

    fn handle(&mut self, msg: CoreMsg) {
        match msg {
            CoreMsg::NewConn {
                conn,
                addr,
                out,
                secure,
                cert_subject,
            } => {
                if self.stopping.is_some() {
                    out.shared.stop_reading();
                    out.close();
                    return;
                }
                self.conns.open(conn, addr, out);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.secure = secure;
                }
                self.x509_identity(conn, cert_subject);
            }
            CoreMsg::Connect { conn, req, bytes } => {
                self.events.bytes_received += 4 + u64::from(bytes);
                self.connect(conn, req)
            }
            CoreMsg::Request {
                conn,
                xid,
                op,
                req,
                bytes,
            } => {
                self.events.bytes_received += 4 + u64::from(bytes);
                self.request(conn, xid, op, req)
            }
            CoreMsg::Closed { conn } => self.closed(conn),
            CoreMsg::DirectReads { conn } => self.count_direct_reads(conn),
            CoreMsg::Drained { conn } => {
                if let Some(sid) = self.conns.get(conn).and_then(|c| c.session) {
                    self.drain(sid, false);
                }
            }
            CoreMsg::FourLetter { cmd, reply } => {
                self.count_all_direct_reads();
                self.events.bytes_received += 4;
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
            CoreMsg::Admin { req, reply } => {
                self.count_all_direct_reads();
                let _ = reply.send(self.admin(req));
            }
            CoreMsg::Backup { auth, reply } => {
                let _ = reply.send(self.backup(&auth));
            }
            CoreMsg::MayRestore { auth, reply } => {
                let _ = reply.send(self.restore_refusal(&auth));
            }
            CoreMsg::Restore {
                auth,
                image,
                base,
                reply,
            } => self.start_restore(&auth, image, base, reply),
            CoreMsg::Browse { req, reply } => {
                let _ = reply.send(self.browse(req));
            }
            CoreMsg::ConsoleGrant {
                token,
                subject,
                reply,
            } => {
                self.console_grants
                    .retain(|_, (_, at)| at.elapsed() < CONSOLE_GRANT_LIFE);
                self.console_grants.insert(token, (subject, Instant::now()));
                let _ = reply.send(());
            }
            CoreMsg::Scrape { reply } => {
                self.count_all_direct_reads();
                let _ = reply.send(self.monitor_samples());
            }
            CoreMsg::Stop { deadline, reply } => {
                let n = self.outstanding();
                info!(
                    connections = self.conns.len(),
                    in_flight = n,
                    "stopping: no new requests; answering those in flight"
                );
                for c in self.conns.iter() {
                    c.out.shared.stop_reading();
                }
                // A leader hands over first, so the ensemble goes on without an election.
                if self.replica.is_leader() && !self.replica.standalone {
                    match self.transfer_leadership(None) {
                        Ok(o) => info!(outcome = %words::transfer_text(&o), "stopping: leadership"),
                        Err(e) => warn!(reason = %e, "stopping: no leadership transfer"),
                    }
                }
                self.stopping = Some((deadline, reply));
            }
            CoreMsg::Tick => self.tick(),
            CoreMsg::Peer { from, msg } => {
                if let paddock_zab::Message::Learner { msg: m, .. } = &msg {
                    use paddock_zab::LearnerMsg;
                    match m {
                        LearnerMsg::Proposal { .. } => self.events.learner_proposals += 1,
                        LearnerMsg::Commit { .. } | LearnerMsg::Inform { .. } => {
                            self.events.learner_commits += 1
                        }
                        _ => {}
                    }
                }
                self.zab_step(paddock_zab::Event::Peer { from, msg })
            }
            CoreMsg::SnapshotParsed(p) => self.parsed_snapshot = Some(p),
            CoreMsg::PeerLost { peer } => self.zab_step(paddock_zab::Event::PeerLost { peer }),
            CoreMsg::Persisted(through) => self.zab_step(paddock_zab::Event::Persisted { through }),
            CoreMsg::ZabTick => self.zab_tick(),
            CoreMsg::SaslStepped {
                conn,
                xid,
                arrived,
                exchange,
                result,
            } => self.sasl_stepped(conn, xid, arrived, exchange, result),
            CoreMsg::ContainerCheck => self.container_check(),
            CoreMsg::SnapshotDone(r) => {
                let took = self.snapshots.schedule.finished();
                match r {
                    Ok(done) => {
                        info!(snapshot = %done.path.display(), "snapshot written");
                        if let Some(took) = took {
                            self.metrics
                                .snapshottime
                                .lock()
                                .record(took.as_millis() as u64);
                        }
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
                self.snapshots.maybe_start(&self.tree);
            }
        }
    }

    /// Once stopping: when nothing is in flight (or the deadline passed), every client
    /// connection is closed (its writer flushes what is queued first) and the stop answered.
    /// Sessions stay: their clients move to other servers, or come back after a restart.
    fn check_stopped(&mut self) {
        let Some((deadline, _)) = &self.stopping else {
            return;
        };
        let left = self.outstanding();
        // A leader that hands over stays until it serves under the new leader: by then the
        // new leader is established and the other learners have had their Handover (exiting
        // at once could lose it in the sockets, and they would hold an election instead).
        let handing_over = (self.replica.is_leader() && self.replica.node.transferring())
            || self.replica.node.in_handover()
            || self.hold.is_some();
        if (left > 0 || handing_over) && Instant::now() < *deadline {
            return;
        }
        let Some((_, reply)) = self.stopping.take() else {
            return;
        };
        if left > 0 {
            warn!(
                unanswered = left,
                "stopping: requests still in flight at the deadline"
            );
        }
        for c in self.conns.ids() {
            self.close_conn(c);
        }
        let _ = reply.send(left);
    }

    fn closed(&mut self, conn: ConnId) {
        self.count_direct_reads(conn);
        self.watches.lock().remove_watcher(conn);
        if let Some(c) = self.conns.remove(conn) {
            if let Some(sid) = c.session {
                self.sessions.detach(sid, conn);
            }
            debug!(conn, addr = %c.addr, "connection closed");
        }
    }

    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        self.revoke_direct(conn);
        self.conns.close(conn);
    }

    fn connect(&mut self, conn: ConnId, req: ConnectRequest) {
        if self.holding() {
            self.hold_back(hold::Held::Connect { conn, req });
            return;
        }
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.hello = frames::Hello::of(&req);
        let mut read_only = false;
        if !self.serving() {
            if self.read_only_active() && req.read_only == Some(true) {
                read_only = true;
            } else {
                // As ZooKeeper: no quorum, no service; the client tries another server.
                debug!(conn, "not serving: closing a new client connection");
                self.events.closed_not_serving += 1;
                self.close_conn(conn);
                return;
            }
        }
        self.events.connection_requests += 1;
        if req.session_id != 0 {
            self.events.connection_revalidates += 1;
        }
        let Some(c) = self.conns.get_mut(conn) else {
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
        if req.session_id == 0 && (read_only || self.local_sessions()) {
            // A session of this server alone, never replicated: a read-only one (a client
            // that has only seen read-only servers starts afresh when it finds a read-write
            // one), or a local session (`localSessionsEnabled`), which costs no transaction
            // until it creates an ephemeral node.
            let password = self.new_password();
            let sid = if read_only {
                let sid = self.sessions.create(timeout, conn, password);
                self.sessions.mark_live(sid);
                sid
            } else {
                self.sessions.create_local(timeout, conn, password)
            };
            let password = password.unwrap_or_else(|| java_password(sid));
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            c.session = Some(sid);
            c.out
                .send(connect_frame(sid, timeout, password, c.hello, read_only));
            info!(
                conn,
                session = format_args!("0x{sid:x}"),
                kind = if read_only { "read-only" } else { "local" },
                "session of this server alone"
            );
            return;
        }
        if req.session_id == 0 {
            let password = self.new_password();
            let sid = self.sessions.create(timeout, conn, password);
            if let Some(c) = self.conns.get_mut(conn) {
                c.session = Some(sid);
            }
            let origin = Origin::Connect { conn, session: sid };
            if !self.prepares() {
                let fwd = crate::forward::Forward::CreateSession {
                    session: sid,
                    timeout,
                    password,
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
            let txn = self.prep.create_session(at, sid, timeout, password);
            self.submit(txn, origin, Some(sid));
            return;
        }
        let sid = req.session_id;
        let password = self.password_of(sid);
        let valid = self.sessions.get(sid).is_some_and(|s| s.live)
            && !self.prep.is_closing(sid)
            // In constant time: how long it takes says nothing about the password.
            && bool::from(req.passwd.as_slice().ct_eq(password.as_slice()));
        if !valid {
            // Refused without touching the session or the connection that holds it: knowing
            // a session's id (any reader of its ephemerals' Stat does) must not be enough to
            // disturb it.
            if let Some(c) = self.conns.get(conn) {
                c.out.send(connect_frame(0, 0, [0; 16], c.hello, false));
            }
            info!(
                conn,
                session = format_args!("0x{sid:x}"),
                "session expired or wrong password; refusing reattach"
            );
            self.close_conn(conn);
            return;
        }
        // The session moves here: whatever held it loses it.
        if let Some(old) = self.sessions.get(sid).and_then(|s| s.conn) {
            if old != conn {
                self.sessions.detach(sid, old);
                if let Some(oc) = self.conns.get_mut(old) {
                    oc.session = None;
                }
                self.close_conn(old);
            }
        }
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.session = Some(sid);
        self.sessions.attach(sid, conn, timeout);
        c.out
            .send(connect_frame(sid, timeout, password, c.hello, read_only));
        debug!(
            conn,
            session = format_args!("0x{sid:x}"),
            "session reattached"
        );
        // The leader tracks who holds a replicated session; a local one is this server's.
        if !read_only && !self.sessions.is_local(sid) {
            self.session_resumed(sid);
        }
    }

    /// A new session's password: random from a CSPRNG, or None where `sessionPasswords` asks
    /// for ZooKeeper's derivation from the id.
    fn new_password(&self) -> Option<[u8; 16]> {
        match self.cfg.session_passwords {
            crate::config::SessionPasswords::Random => Some(rand::random()),
            crate::config::SessionPasswords::Derived => None,
        }
    }

    /// The password a client must present to resume `sid`: its random one (replicated with the
    /// session, or kept here for a read-only session), else the one derived from its id.
    pub(crate) fn password_of(&self, sid: i64) -> [u8; 16] {
        self.tree
            .session_password(sid)
            .or_else(|| self.sessions.get(sid).and_then(|s| s.password))
            .unwrap_or_else(|| java_password(sid))
    }

    fn request(&mut self, conn: ConnId, xid: i32, opcode: i32, req: Result<Request, ErrorCode>) {
        self.request_at(conn, xid, opcode, req, Instant::now());
    }

    /// A request that arrived at `arrived` (earlier than now if it waited out a handover).
    fn request_at(
        &mut self,
        conn: ConnId,
        xid: i32,
        opcode: i32,
        req: Result<Request, ErrorCode>,
        arrived: Instant,
    ) {
        if self.holding() {
            self.hold_back(hold::Held::Request {
                conn,
                xid,
                op: opcode,
                req,
                arrived,
            });
            return;
        }
        let Some(c) = self.conns.get_mut(conn) else {
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
        if matches!(c.sasl, Some(crate::sasl::Exchange::InFlight)) {
            c.deferred.push((xid, opcode, req));
            return;
        }
        c.received += 1;
        c.last_cxid = xid;
        c.last_op = op::name(opcode);
        self.stats.received += 1;
        self.sessions.touch(sid);
        let auth = c.auth.clone();
        // Auth enforcement, as ZooKeeper's AuthenticationHelper: a connection without an
        // identity of a required scheme may only authenticate; anything else is answered
        // SESSIONCLOSEDREQUIRESASLAUTH and the connection is closed.
        let enforce = &self.cfg.enforce_auth_schemes;
        if !enforce.is_empty()
            && opcode != op::AUTH
            && opcode != op::SASL
            && !auth.ids.iter().any(|i| enforce.contains(&i.scheme))
        {
            info!(conn, addr = %c.addr, op = op::name(opcode), "not authenticated with a required scheme (enforce.auth.schemes); closing the connection");
            let code = ErrorCode::SessionClosedRequireSaslAuth;
            self.enqueue_read(sid, conn, xid, Err(code), auth, arrived);
            return;
        }
        if c.read_only {
            self.read_only_request(sid, conn, xid, req, auth, arrived);
            return;
        }
        if !self.serving() {
            self.close_conn(conn);
            return;
        }
        let mut local = self.sessions.scope(sid) == Some(Scope::Local);
        if local {
            match &req {
                // Ends here, without a transaction, in its turn after the session's writes.
                Ok(Request::CloseSession) => {
                    self.enqueue_read(sid, conn, xid, req, auth, arrived);
                    return;
                }
                Ok(r) if r.creates_ephemeral() && self.cfg.local_sessions_upgrading => {
                    self.upgrade_session(sid);
                    local = false;
                }
                _ => {}
            }
        }
        // A follower tells the leader its clients' sessions are alive; a local session is
        // this server's business.
        if !local && !self.replica.is_leader() {
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
                let txn = if local {
                    // Never resumed anywhere else: no owner to track.
                    self.prep_write(at, sid, xid, &auth, &r, true)
                } else if self.session_moved(sid, None) {
                    self.prep.error_txn(at, sid, xid, ErrorCode::SessionMoved)
                } else {
                    self.prep_write(at, sid, xid, &auth, &r, false)
                };
                let origin = Origin::Client {
                    conn,
                    xid,
                    req: r,
                    arrived,
                };
                self.submit(txn, origin, Some(sid));
            }
            Ok(Request::Sasl(t)) => {
                // Like an auth packet, the identity it gains applies at once; the reply (the
                // next token) waits its turn. A GSSAPI step runs off the core and answers
                // later (`sasl_stepped`).
                let token = t.token.clone().unwrap_or_default();
                if let Some(result) = self.sasl_step(conn, xid, arrived, token) {
                    let result = result
                        .map(|token| Request::Sasl(paddock_proto::records::SaslToken { token }));
                    self.enqueue_read(sid, conn, xid, result, auth, arrived);
                }
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

    /// Remembers who waits for `key` (a zxid, or the driver's key for a forwarded write or a
    /// sync); a session's own request also takes its place in the session's reply order.
    pub(crate) fn await_reply(&mut self, key: i64, origin: Origin, ordered_in: Option<i64>) {
        self.order.await_reply(key, origin, ordered_in);
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
        let idle = self.order.is_idle(sid);
        if idle && !self.conns.congested(conn) {
            if matches!(&req, Ok(r) if r.reads_tree()) {
                self.grant_direct(sid, conn, &auth);
            }
            let done = self.read(sid, conn, xid, req, &auth, arrived);
            self.deliver(done);
        } else {
            self.order.push_read(
                sid,
                PendingRead {
                    conn,
                    xid,
                    req,
                    auth,
                    arrived,
                },
            );
            if idle {
                self.drain(sid, false);
            }
        }
    }

    /// Sends what is ready at the front of a session's order. With `force`, reads run even
    /// for a congested connection (the session is ending).
    fn drain(&mut self, sid: i64, force: bool) {
        loop {
            let conns = &self.conns;
            match self.order.next(sid, |c| !force && conns.congested(c)) {
                Next::Wait => return,
                Next::Deliver(d) => self.deliver(d),
                Next::Run(r) => {
                    let done = self.read(sid, r.conn, r.xid, r.req, &r.auth, r.arrived);
                    self.deliver(done);
                }
                Next::Blocked(conn) => {
                    self.conns.want_drain(conn);
                    // The writer may have caught up in between: look once more.
                    if self.conns.congested(conn) {
                        return;
                    }
                }
            }
        }
    }

    /// Records the reply of an applied write and sends whatever is now ready.
    pub(crate) fn complete_write(&mut self, sid: i64, key: i64, done: Done, force: bool) {
        match self.order.complete(sid, key, done) {
            None => self.drain(sid, force),
            Some(done) => self.deliver(done),
        }
    }

    fn deliver(&mut self, d: Done) {
        if d.is_reply {
            self.send_reply(d.conn, d.frame, d.arrived, d.op);
        } else {
            self.conns.send(d.conn, d.frame);
        }
        if d.close_after {
            self.close_conn(d.conn);
        }
    }

    fn authenticate(&mut self, conn: ConnId, scheme: &str, data: &[u8]) -> Result<(), ErrorCode> {
        let Some(c) = self.conns.get_mut(conn) else {
            return Ok(());
        };
        match scheme {
            "digest" => {
                let text = String::from_utf8_lossy(data);
                let id = digest_id(&text).ok_or(ErrorCode::AuthFailed)?;
                let is_super = self.cfg.is_super_digest(&id);
                c.gain(
                    paddock_proto::Id::new("digest", id),
                    is_super.then(|| paddock_proto::Id::new("super", "")),
                );
            }
            "ip" => {
                let ip = c.addr.ip().to_string();
                c.gain(paddock_proto::Id::new("ip", ip), None);
            }
            CONSOLE_SCHEME => {
                let token = String::from_utf8_lossy(data);
                let granted = self
                    .console_grants
                    .remove(token.as_ref())
                    .filter(|(_, at)| at.elapsed() < CONSOLE_GRANT_LIFE);
                let Some((dn, _)) = granted else {
                    self.stats.auth_failed += 1;
                    return Err(ErrorCode::AuthFailed);
                };
                let is_super = self.cfg.is_super_x509(&dn);
                let super_id = is_super.then(|| paddock_proto::Id::new("super", dn.as_str()));
                c.gain(paddock_proto::Id::new("x509", dn), super_id);
            }
            _ => {
                self.stats.auth_failed += 1;
                return Err(ErrorCode::AuthFailed);
            }
        }
        Ok(())
    }

    /// With ZooKeeper's X509AuthenticationProvider, a TLS client's certificate subject is its
    /// `x509` identity (and `super` for `X509AuthenticationProvider.superUser`).
    fn x509_identity(&mut self, conn: ConnId, subject: Option<String>) {
        let (Some(dn), true) = (subject, self.cfg.x509_identities) else {
            return;
        };
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        debug!(conn, subject = %dn, "x509 identity");
        let is_super = self.cfg.is_super_x509(&dn);
        let super_id = is_super.then(|| paddock_proto::Id::new("super", dn.as_str()));
        c.gain(paddock_proto::Id::new("x509", dn), super_id);
    }

    /// One step of a connection's SASL exchange: the token to send back, or AUTHFAILED (the
    /// reason goes to the log, never to the client; the connection is then closed). `None`
    /// when the step went off the core (GSSAPI: the library reads files), to come back as
    /// `CoreMsg::SaslStepped`.
    #[allow(clippy::type_complexity)]
    fn sasl_step(
        &mut self,
        conn: ConnId,
        xid: i32,
        arrived: Instant,
        token: Vec<u8>,
    ) -> Option<Result<Option<Vec<u8>>, ErrorCode>> {
        use crate::sasl::{Exchange, SaslServer};
        let Some(server) = self.sasl.clone() else {
            self.stats.auth_failed += 1;
            info!(
                conn,
                "SASL request refused: no JAAS Server section configures SASL"
            );
            return Some(Err(ErrorCode::AuthFailed));
        };
        let c = self.conns.get_mut(conn)?;
        let exchange = c.sasl.take().unwrap_or_else(|| server.exchange());
        let step = match exchange {
            Exchange::Digest(mut x) => {
                let SaslServer::Digest(users) = &*server else {
                    return Some(Err(ErrorCode::AuthFailed));
                };
                let r = x.step(users, &token);
                c.sasl = Some(Exchange::Digest(x));
                r
            }
            Exchange::Gssapi(mut x) => {
                c.sasl = Some(Exchange::InFlight);
                let me = self.me.clone();
                tokio::task::spawn_blocking(move || {
                    let SaslServer::Kerberos(k) = &*server else {
                        return;
                    };
                    let result = x.step(&token, k);
                    let _ = me.blocking_send(CoreMsg::SaslStepped {
                        conn,
                        xid,
                        arrived,
                        exchange: x,
                        result,
                    });
                });
                return None;
            }
            Exchange::InFlight => Err(crate::sasl::SaslError::Malformed(
                "a SASL token before the last one was answered".into(),
            )),
        };
        Some(self.sasl_outcome(conn, step))
    }

    /// A GSSAPI step is back: its reply takes its turn, then what came meanwhile.
    fn sasl_stepped(
        &mut self,
        conn: ConnId,
        xid: i32,
        arrived: Instant,
        exchange: crate::sasl::GssapiExchange,
        result: Result<crate::sasl::Step, crate::sasl::SaslError>,
    ) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(sid) = c.session else {
            return;
        };
        c.sasl = Some(crate::sasl::Exchange::Gssapi(exchange));
        let deferred = std::mem::take(&mut c.deferred);
        let result = self
            .sasl_outcome(conn, result)
            .map(|token| Request::Sasl(paddock_proto::records::SaslToken { token }));
        let auth = match self.conns.get(conn) {
            Some(c) => c.auth.clone(),
            None => return,
        };
        self.enqueue_read(sid, conn, xid, result, auth, arrived);
        for (xid, opcode, req) in deferred {
            self.request(conn, xid, opcode, req);
        }
    }

    /// What a SASL step means for the connection: the identity it gained, or a failure.
    fn sasl_outcome(
        &mut self,
        conn: ConnId,
        step: Result<crate::sasl::Step, crate::sasl::SaslError>,
    ) -> Result<Option<Vec<u8>>, ErrorCode> {
        let mechanism = self.sasl.as_ref().map_or("SASL", |s| s.mechanism());
        let identity = |user: &str| match self.sasl.as_deref() {
            Some(crate::sasl::SaslServer::Kerberos(k)) => k.identity(user),
            _ => user.to_owned(),
        };
        let user = match &step {
            Ok(s) => s.user.as_deref().map(identity),
            Err(_) => None,
        };
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(ErrorCode::AuthFailed);
        };
        match step {
            Ok(step) => {
                if let Some(user) = user {
                    info!(conn, addr = %c.addr, %user, principal = step.user.as_deref().unwrap_or(""), mechanism, "SASL authenticated");
                    let is_super = self.cfg.sasl_super_user.as_deref() == Some(user.as_str());
                    c.gain(
                        paddock_proto::Id::new("sasl", user),
                        is_super.then(|| paddock_proto::Id::new("super", "")),
                    );
                }
                // The last GSSAPI reply carries no token at all (null, not empty), as
                // ZooKeeper's: the Java client waits for exactly that before it goes on.
                if step.token.is_empty() && step.user.is_some() {
                    return Ok(None);
                }
                Ok(Some(step.token))
            }
            Err(e) => {
                self.stats.auth_failed += 1;
                let enforced = self.cfg.enforce_auth_schemes.iter().any(|s| s == "sasl");
                if self.cfg.allow_sasl_failed && !enforced {
                    // ZooKeeper's allowSaslFailedClients: the client goes on unauthenticated.
                    warn!(conn, addr = %c.addr, reason = %e, mechanism, "SASL authentication failed; the connection stays (allowSaslFailedClients)");
                    return Ok(None);
                }
                warn!(conn, addr = %c.addr, reason = %e, mechanism, "SASL authentication failed; closing the connection");
                Err(ErrorCode::AuthFailed)
            }
        }
    }

    fn send_reply(&mut self, conn: ConnId, reply: bytes::Bytes, arrived: Instant, opcode: i32) {
        // In microseconds with u64 arithmetic: Duration's as_millis and as_micros divide
        // u128s, a cost worth avoiding on every reply.
        let took = arrived.elapsed();
        let us = took.as_secs() * 1_000_000 + u64::from(took.subsec_micros());
        let ms = us / 1000;
        self.events.replied(reply.len());
        if self.conns.reply(conn, reply, ms, self.tree.last_zxid()) {
            self.count_answered(opcode, op::is_write(opcode), us);
        }
    }

    /// Counts a request answered `us` microseconds after it arrived, in the server's figures
    /// (`srvr`'s latency and packets, the latency summaries and histograms): for the core's
    /// replies and the connections' direct reads alike.
    pub(crate) fn count_answered(&mut self, opcode: i32, write: bool, us: u64) {
        self.stats.record_latency(us / 1000);
        self.stats.sent += 1;
        self.requests.record(opcode, write, self.sessions.len(), us);
    }

    /// Hands the replication core's disk orders of this round to the log thread (one group
    /// commit for everything prepared while the core drained its channel).
    fn flush(&mut self) {
        if self.replica.disk.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.replica.disk);
        let last_seq = ops.last().map(crate::log::DiskOp::seq);
        if self.log.send(LogMsg::Disk(ops, Instant::now())).is_err() {
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

    /// Prepares a client's write as leader, timed (`prep_process_time`, and
    /// `close_session_prep_time` for a closeSession).
    pub(crate) fn prep_write(
        &mut self,
        at: paddock_tree::Stamp,
        sid: i64,
        xid: i32,
        auth: &AuthInfo,
        r: &Request,
        local: bool,
    ) -> Txn {
        let began = Instant::now();
        let txn = if let (Request::Reconfig(rc), true) = (r, self.cfg.reconfig_enabled) {
            match self.reconfig_checked(auth, rc, at.zxid) {
                Ok(next) => {
                    self.reconfig_in_flight = Some(at.zxid);
                    self.prep.reconfig(at, sid, xid, next.render().into_bytes())
                }
                Err(code) => self.prep.error_txn(at, sid, xid, code),
            }
        } else if local {
            let base = self.restore.prep_base(&self.tree);
            self.prep.prep_local(base, at, sid, xid, auth, r)
        } else {
            let base = self.restore.prep_base(&self.tree);
            self.prep.prep(base, at, sid, xid, auth, r)
        };
        let ms = began.elapsed().as_millis() as u64;
        self.events.prep_process_time.record(ms);
        if matches!(r, Request::CloseSession) {
            self.events.close_session_prep_time.record(ms);
        }
        txn
    }

    /// A reconfig request (`reconfigEnabled`) checked as ZooKeeper 3.8's leader checks it, in
    /// its order: standalone, one reconfiguration at a time, `fromConfig` against the current
    /// version, the request's form and the new configuration's voters (`crate::dynconfig`), a
    /// synced quorum of those voters, then WRITE on `/zookeeper/config` (the super user
    /// alone, by its ACL). The configuration it asks for, or the error.
    fn reconfig_checked(
        &self,
        auth: &AuthInfo,
        r: &paddock_proto::ReconfigRequest,
        zxid: i64,
    ) -> Result<crate::dynconfig::DynConfig, ErrorCode> {
        if self.replica.standalone {
            return Err(ErrorCode::Unimplemented);
        }
        if self.replica.node.reconfig_pending()
            || self
                .reconfig_in_flight
                .is_some_and(|z| z > self.tree.last_zxid())
        {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let current = &self.dynconfig;
        if r.cur_config_id != -1 && r.cur_config_id != current.version {
            return Err(ErrorCode::BadVersion);
        }
        // A null string (what clients send for "none") decodes as an empty one.
        fn given(s: &str) -> Option<&str> {
            (!s.trim().is_empty()).then_some(s)
        }
        let next = match current.reconfigured(
            given(&r.joining_servers),
            given(&r.leaving_servers),
            given(&r.new_members),
            zxid,
            self.cfg.standalone_enabled,
        ) {
            Ok(n) => n,
            Err(refusal) => {
                info!(why = %refusal.why, "reconfig refused");
                return Err(refusal.code);
            }
        };
        // The replication core's own rule, so that it never refuses what was prepared here.
        match self.replica.node.reconfig_refusal(&next.membership()) {
            None => {}
            Some(paddock_zab::RejectReason::NewConfigNoQuorum) => {
                info!("reconfig refused: no synced quorum of the new configuration's voters");
                return Err(ErrorCode::NewConfigNoQuorum);
            }
            Some(paddock_zab::RejectReason::ReconfigInProgress) => {
                return Err(ErrorCode::ReconfigInProgress)
            }
            Some(paddock_zab::RejectReason::NotServing) => return Err(ErrorCode::ConnectionLoss),
        }
        let acl = self
            .tree
            .lookup(paddock_tree::CONFIG_NODE)
            .map(|id| self.tree.acl(id).to_vec())
            .unwrap_or_default();
        if !paddock_tree::acl::check(&acl, paddock_proto::perms::WRITE, auth, self.cfg.skip_acl) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(next)
    }

    pub(crate) fn apply(&mut self, txn: Txn) {
        let applied = match &txn.op {
            paddock_tree::TxnOp::Restore(image) => self.apply_restore(&txn, image),
            _ => self.tree.apply(&txn),
        };
        if !self.backup_taps.is_empty() {
            self.backup_taps.retain(|t| t.send(txn.clone()).is_ok());
        }
        self.events
            .applied(txn.time, now_ms(), self.replica.is_leader());
        self.snapshots.schedule.applied();
        self.snapshots.maybe_start(&self.tree);
        self.prep.applied(txn.zxid);
        dispatch::dispatch(
            txn.zxid,
            &applied,
            &mut self.watches.lock(),
            &self.tree,
            &self.conns,
            self.cfg.skip_acl,
            &mut self.events,
        );
        if let paddock_tree::TxnOp::Reconfig { config } = &txn.op {
            match crate::dynconfig::DynConfig::parse(&String::from_utf8_lossy(config)) {
                Ok(c) => {
                    self.dynconfig = c;
                    self.membership_due = true;
                }
                Err(e) => error!(
                    zxid = format_args!("0x{:x}", txn.zxid),
                    error = %e,
                    "a reconfiguration's configuration does not read back; keeping the one before"
                ),
            }
            if self.reconfig_in_flight == Some(txn.zxid) {
                self.reconfig_in_flight = None;
            }
        }
        let key = self.replica.origin_key(&txn);
        let origin = self.order.take_origin(key);
        match &txn.op {
            // Another server's session: known here too, so any server can resume it and a
            // future leader can expire it.
            paddock_tree::TxnOp::CreateSession { timeout, .. }
                if !matches!(origin, Some(Origin::Connect { .. })) =>
            {
                if self.sessions.get(txn.session_id).is_none() {
                    self.sessions.restore(txn.session_id, *timeout);
                } else if self.sessions.is_local(txn.session_id) {
                    // A local session of this server, upgraded: replicated from now on.
                    self.sessions.set_scope(txn.session_id, Scope::Global);
                    info!(
                        session = format_args!("0x{:x}", txn.session_id),
                        "local session upgraded to a global one"
                    );
                }
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
                self.audit_write(txn.session_id, conn, &req, &applied);
                let f = match (&txn.op, &applied.result) {
                    // A reconfig answers with the new configuration and its Stat, as getData.
                    (
                        paddock_tree::TxnOp::Reconfig { config },
                        Ok(paddock_tree::Outcome::Stat(stat)),
                    ) => frames::frame(xid, txn.zxid, 0, |b| {
                        paddock_proto::GetDataResponse {
                            data: Some(config.clone()),
                            stat: stat.clone(),
                        }
                        .encode(b)
                    }),
                    _ => reply_for_write(xid, txn.zxid, &req, &applied),
                };
                let closing = matches!(req, Request::CloseSession);
                let done = Done {
                    conn,
                    frame: f,
                    arrived,
                    is_reply: true,
                    op: req.opcode(),
                    close_after: closing,
                };
                self.complete_write(txn.session_id, key, done, closing);
                if closing {
                    self.end_session(txn.session_id);
                }
            }
            Some(Origin::Connect { conn, session }) => {
                self.sessions.mark_live(session);
                if let Some(c) = self.conns.get(conn) {
                    let timeout = self.sessions.get(session).map_or(0, |s| s.timeout);
                    let password = self.password_of(session);
                    let done = Done {
                        conn,
                        frame: connect_frame(session, timeout, password, c.hello, false),
                        arrived: Instant::now(),
                        is_reply: false,
                        op: 0,
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
                self.audit_session_end(session, &applied);
                if let Some(conn) = self.sessions.get(session).and_then(|s| s.conn) {
                    self.close_conn(conn);
                }
                self.end_session(session);
            }
            Some(Origin::Internal)
            | Some(Origin::Sync { .. })
            | Some(Origin::Read { .. })
            | None => {}
        }
    }

    pub(crate) fn end_session(&mut self, session: i64) {
        self.sessions.remove(session);
        self.order.end_session(session);
        self.replica.owners.remove(&session);
    }

    fn tick(&mut self) {
        // Direct reads keep their sessions alive: counted before any is judged expired.
        self.count_all_direct_reads();
        self.requests.rotate();
        self.events.rotate();
        self.metrics.rotate();
        self.check_hold();
        if !self.serving() {
            self.expire_read_only_sessions();
            return;
        }
        // Every server expires its own local sessions; the leader alone the replicated ones.
        self.expire_local_sessions();
        if !self.prepares() || !self.serving() {
            return;
        }
        for sid in self.sessions.expired() {
            if self.prep.is_closing(sid) || self.sessions.is_local(sid) {
                continue;
            }
            // Its reads answer SESSIONEXPIRED from now on, in the core.
            if let Some(conn) = self.sessions.get(sid).and_then(|s| s.conn) {
                self.revoke_direct(conn);
            }
            // A stamp for each: every proposal moves the counter on.
            let Some(at) = self.stamp() else { return };
            let began = Instant::now();
            let base = self.restore.prep_base(&self.tree);
            let txn = self.prep.close_session(base, at, sid, 0);
            self.events
                .close_session_prep_time
                .record(began.elapsed().as_millis() as u64);
            self.events.sessions_expired += 1;
            self.submit(txn, Origin::Expire { session: sid }, None);
        }
    }

    /// Local sessions (`localSessionsEnabled`) end here, without a transaction: they own no
    /// ephemeral node and no other server knows them. One whose upgrade is in flight waits
    /// for it: the leader expires it once it is global.
    fn expire_local_sessions(&mut self) {
        let due: Vec<i64> = self
            .sessions
            .expired()
            .into_iter()
            .filter(|&sid| self.sessions.scope(sid) == Some(Scope::Local))
            .collect();
        for sid in due {
            self.end_unreplicated_session(sid);
            self.events.sessions_expired += 1;
            info!(session = format_args!("0x{sid:x}"), "local session expired");
        }
    }

    /// Ends a session no other server knows (local or read-only): its connection closes and
    /// it is gone, with no transaction.
    fn end_unreplicated_session(&mut self, sid: i64) {
        if let Some(conn) = self.sessions.get(sid).and_then(|s| s.conn) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.session = None;
            }
            self.close_conn(conn);
        }
        self.end_session(sid);
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
            self.end_unreplicated_session(sid);
            info!(
                session = format_args!("0x{sid:x}"),
                "read-only session expired"
            );
        }
    }

    fn container_check(&mut self) {
        // Not while a restore is on its way: the tree it reads is about to be replaced.
        if !self.prepares() || !self.serving() || self.restore.in_flight() {
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

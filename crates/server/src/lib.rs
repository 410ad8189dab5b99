//! Paddock's server: the client port, connections, sessions, the request pipeline, config and
//! four-letter words. The tree and the protocol live in their own crates; this is the IO shell.

pub mod admin;
pub mod audit;
pub mod auth_to_local;
pub mod config;
pub mod conn;
pub mod conn_shared;
pub mod container_env;
pub mod core;
pub mod dynconfig;
pub mod forward;
pub mod fourlw;
pub mod log;
pub mod metrics;
pub mod msg;
pub mod peer;
mod peer_sasl;
mod peer_tls;
mod progress;
pub mod read_path;
pub mod replica;
pub mod sasl;
pub mod session;
pub mod stats;
pub mod storage;
pub mod tls;
pub mod tree_lock;
pub mod x509;

use crate::config::Config;
use crate::core::Core;
use crate::msg::CoreMsg;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {err}")]
    Bind {
        addr: std::net::SocketAddr,
        err: std::io::Error,
    },
    #[error("cannot create data directory {path}: {err}")]
    DataDir { path: String, err: std::io::Error },
    #[error(transparent)]
    Lock(#[from] storage::dir_lock::LockError),
    #[error("cannot recover the data: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("cannot start the log thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Peer(#[from] peer::PeerError),
    #[error("cannot start the replication core: {0}")]
    Replication(#[from] paddock_zab::RecoveryError),
    #[error("TLS for clients: {0}; Paddock does not start without it")]
    Tls(#[from] tls::TlsError),
    #[error("SASL for clients: {0}; Paddock does not start without it")]
    Jaas(#[from] sasl::JaasError),
    #[error(
        "audit.file: cannot open the audit log {path}: {err}; Paddock does not start without it"
    )]
    Audit { path: String, err: std::io::Error },
    #[error("metricsProvider: {0}")]
    Metrics(#[from] admin::http::HttpError),
}

/// Counts client connections, per address for `maxClientCnxns` and in all for `maxCnxns`.
#[derive(Default, Clone)]
struct ConnCounts(Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>);

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
enum TooMany {
    FromAddress,
    InAll,
}

impl ConnCounts {
    /// Counts a new connection unless a limit (0: none) is reached.
    fn acquire(&self, ip: IpAddr, per_ip: usize, total: usize) -> Result<(), TooMany> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (by_ip, all) = &mut *g;
        if total > 0 && *all >= total {
            return Err(TooMany::InAll);
        }
        let n = by_ip.entry(ip).or_default();
        if per_ip > 0 && *n >= per_ip {
            if *n == 0 {
                by_ip.remove(&ip);
            }
            return Err(TooMany::FromAddress);
        }
        *n += 1;
        *all += 1;
        Ok(())
    }

    /// Client connections open now.
    fn total(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    fn release(&self, ip: IpAddr) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (by_ip, all) = &mut *g;
        if let Some(n) = by_ip.get_mut(&ip) {
            *n -= 1;
            *all -= 1;
            if *n == 0 {
                by_ip.remove(&ip);
            }
        }
    }
}

/// Runs a server (a one-voter ensemble without `server.N` lines, else a member of its
/// ensemble) until the process is stopped.
pub async fn run(cfg: Config) -> Result<(), ServerError> {
    // Stores and protocols are checked before anything else: a server asked for TLS that
    // cannot have it must not start at all, let alone serve plaintext.
    let tls = if cfg.client_tls.wanted() {
        let certs = tls::Certs::new(tls::server_config(&cfg.client_tls.keys)?);
        if cfg.client_tls.cert_reload {
            certs
                .watch(cfg.client_tls.keys.clone(), Duration::from_secs(1))
                .map_err(ServerError::Thread)?;
        }
        Some(certs)
    } else {
        None
    };
    // So is SASL: a JAAS file that cannot be read, a keytab whose keys cannot be had, stops
    // the server rather than leaving it to refuse every client that authenticates.
    let sasl_server = match &cfg.jaas_config {
        Some(path) => sasl::SaslServer::load(
            path,
            &cfg.jaas_section,
            cfg.kerberos_names,
            cfg.auth_to_local.clone(),
        )?
        .map(Arc::new),
        None => None,
    };
    let audit = match &cfg.audit {
        Some(a) => Some(
            audit::AuditLog::start(a.clone()).map_err(|err| ServerError::Audit {
                path: a.file.display().to_string(),
                err,
            })?,
        ),
        None => None,
    };
    match sasl_server.as_deref() {
        Some(sasl::SaslServer::Digest(u)) => {
            info!(users = u.len(), section = %cfg.jaas_section, "SASL DIGEST-MD5 for clients")
        }
        Some(sasl::SaslServer::Kerberos(k)) => {
            info!(principal = %k.acceptor.principal, section = %cfg.jaas_section, "SASL GSSAPI (Kerberos) for clients")
        }
        None => {}
    }
    for d in [&cfg.data_dir, &cfg.data_log_dir] {
        std::fs::create_dir_all(d).map_err(|err| ServerError::DataDir {
            path: d.display().to_string(),
            err,
        })?;
    }
    // Held until the process exits: no second server, purge or truncation may touch these
    // directories meanwhile (storage/dir_lock.rs).
    let _locks = storage::dir_lock::DirLocks::acquire(&[&cfg.data_dir, &cfg.data_log_dir])?;
    if !cfg.force_sync {
        warn!("forceSync=no: writes are acknowledged before they are on disk; for tests and benchmarks only");
    }
    // Every server is a member of an ensemble: without `server.N` lines, a one-voter ensemble
    // with no peer ports. Its writes take the same road as any ensemble's.
    let (membership, standalone) = match cfg.ensemble()? {
        Some(m) => (m, false),
        None => (config::Membership::standalone(), true),
    };
    // TLS between servers is checked as early: a member that cannot have it must not join.
    let peering = if standalone {
        if cfg.quorum_tls.wanted() {
            info!("sslQuorum/portUnification: a standalone server has no peer ports; ignored");
        }
        Peering::Standalone
    } else {
        Peering::Ensemble(peer::PeerSecurity {
            tls: peer_tls::PeerTls::load(&cfg.quorum_tls, &membership.me, &membership.servers)?,
            sasl: peer_sasl::PeerSasl::load(
                &cfg.quorum_sasl,
                cfg.jaas_config.as_deref(),
                &membership.servers,
            )?,
        })
    };
    let mut cfg = cfg;
    // A lone server.N line run standalone (standaloneEnabled) still names the client port, as
    // in ZooKeeper (the container image's default configuration is just that).
    let own_line = if standalone {
        cfg.servers.first().cloned()
    } else {
        Some(membership.me.clone())
    };
    if let Some(me) = own_line {
        cfg.adopt_client_addr(&me)?;
    }
    let cfg = Arc::new(cfg);
    let fs = storage::fs::real();
    // The log is read, not replayed: a member applies only what the ensemble commits (a
    // one-voter commits its whole log as soon as it leads).
    let mut recovered =
        storage::recovery::recover_with(&fs, &cfg.data_dir, &cfg.data_log_dir, false)?;
    let (tx, rx) = mpsc::channel(4096);
    let writer = storage::txn_log::LogWriter::open(
        &fs,
        &storage::log_dir(&cfg.data_log_dir),
        recovered.log_tail.clone(),
        cfg.force_sync,
        recovered.dbid,
    )?;
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    let metrics = Arc::new(metrics::Metrics::default());
    metrics
        .startup_snap_load_time
        .lock()
        .record(recovered.snapshot_ms);
    if recovered.replayed > 0 {
        // As ZooKeeper: nothing recorded for an empty log.
        metrics
            .startup_txns_load_time
            .lock()
            .record(recovered.log_ms);
        metrics
            .startup_txns_loaded
            .lock()
            .record(recovered.replayed);
    }
    metrics
        .dbinittime
        .lock()
        .record(recovered.snapshot_ms + recovered.log_ms);
    let log_core = tx.clone();
    std::thread::Builder::new()
        .name("txn-log".into())
        .spawn({
            let places = log::DiskPlaces {
                fs: fs.clone(),
                data_dir: cfg.data_dir.clone(),
            };
            let metrics = metrics.clone();
            move || log::run(writer, places, log_rx, log_core, metrics)
        })
        .map_err(ServerError::Thread)?;
    let recovered_zxid = recovered.tree.last_zxid();
    let logged = std::mem::take(&mut recovered.logged);
    let last_logged = logged.last().map_or(recovered_zxid, |t| t.zxid);
    let replica = start_replica(
        &cfg,
        &membership,
        peering,
        &fs,
        recovered_zxid,
        logged,
        tx.clone(),
    )
    .await?;
    let mode = if standalone {
        "standalone"
    } else {
        "ensemble member"
    };
    let (rebind_tx, rebind_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut core = Core::new(
        cfg.clone(),
        (fs, recovered.dbid),
        recovered.tree,
        log_tx,
        tx.clone(),
        replica,
    )
    .with_client_rebind(rebind_tx)
    .with_sasl(sasl_server)
    .with_audit(audit.clone())
    .with_metrics(metrics.clone());
    let shared_metrics = metrics;
    // A one-voter ensemble elects itself at once: its clients wait for that, rather than being
    // turned away by a server that does not serve yet.
    let single_voter = membership.voters.len() == 1 && !membership.me.observer;
    let (serving_tx, serving_rx) = tokio::sync::oneshot::channel();
    if single_voter {
        core.first_serving = Some(serving_tx);
    }
    core.start_replica();
    let read_path = core.read_path.clone();
    let core_task = tokio::spawn(core.run(rx));
    // The core owns the tree: if it ever stops (a panic is a bug), a server that kept accepting
    // connections would serve nothing. Exit instead, so a supervisor restarts it and recovery
    // runs from the log.
    tokio::spawn(async move {
        let outcome = core_task.await;
        error!(
            ?outcome,
            "the core task stopped; exiting so the server can be restarted"
        );
        std::process::exit(70);
    });
    // The replication core's clock runs before anything else: a one-voter elects itself on it.
    {
        let zab_tx = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(replica::ZAB_TICK_MS));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                if zab_tx.send(CoreMsg::ZabTick).await.is_err() {
                    return;
                }
            }
        });
    }
    if single_voter && serving_rx.await.is_err() {
        error!("the core stopped before it served");
        std::process::exit(70);
    }
    let mut listeners = Vec::new();
    if cfg.client_port != 0 {
        let security = match (&tls, cfg.client_tls.port_unification) {
            (Some(a), true) => conn::Security::Unified(a.clone()),
            _ => conn::Security::Plain,
        };
        listeners.push((
            bind(cfg.client_addr(), cfg.listen_backlog()).await?,
            security,
        ));
    }
    if let (Some(a), port @ 1..) = (&tls, cfg.client_tls.secure_port) {
        let ip = cfg
            .client_tls
            .secure_address
            .unwrap_or(cfg.client_port_address);
        let addr = std::net::SocketAddr::new(ip, port);
        listeners.push((
            bind(addr, cfg.listen_backlog()).await?,
            conn::Security::Tls(a.clone()),
        ));
    }
    let shown = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    info!(
        client_addr = %listeners.iter().find(|(_, s)| !matches!(s, conn::Security::Tls(_))).map(|(l, _)| shown(l)).unwrap_or_else(|| "none".into()),
        secure_client_addr = %listeners.iter().find(|(_, s)| matches!(s, conn::Security::Tls(_))).map(|(l, _)| shown(l)).unwrap_or_else(|| "none".into()),
        port_unification = cfg.client_tls.port_unification,
        data_dir = %cfg.data_dir.display(),
        tick_time = cfg.tick_time,
        zxid = format_args!("0x{:x}", last_logged),
        "paddock {} started ({mode})",
        fourlw::version_string()
    );
    admin::http::start_admin(cfg.clone(), tx.clone(), shared_metrics.clone()).await;
    admin::http::start_metrics(cfg.clone(), tx.clone()).await?;
    let tick_tx = tx.clone();
    let tick = Duration::from_millis(cfg.tick_time as u64);
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(tick);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            iv.tick().await;
            if tick_tx.send(CoreMsg::Tick).await.is_err() {
                return;
            }
        }
    });
    let cc_tx = tx.clone();
    let cc = Duration::from_millis(cfg.container_check_interval_ms.max(10));
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(cc);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        iv.tick().await;
        loop {
            iv.tick().await;
            if cc_tx.send(CoreMsg::ContainerCheck).await.is_err() {
                return;
            }
        }
    });

    // A connection gets as long to complete its handshake as a follower gets to sync.
    let limits = conn::ConnLimits {
        max_frame: cfg.max_buffer,
        handshake_timeout: Duration::from_millis(
            (cfg.init_limit as u64 * cfg.tick_time as u64).clamp(100, 60_000),
        ),
        metrics: shared_metrics.clone(),
        reads: read_path,
        large: conn_shared::LargeRequests::new(
            cfg.large_request_threshold,
            cfg.large_request_max_bytes,
        ),
    };
    if let Some(log) = &audit {
        log.record_server(None, "serverStart", None, audit::Outcome::Success);
    }
    let signals = StopSignals::watch();
    let accept = Acceptance {
        core: tx.clone(),
        limits,
        counts: ConnCounts::default(),
        next_id: Arc::new(AtomicU64::new(1)),
        max_client_cnxns: cfg.max_client_cnxns,
        max_cnxns: cfg.max_cnxns,
        backlog: cfg.listen_backlog(),
    };
    let mut loops = tokio::task::JoinSet::new();
    let mut rebind = Some(rebind_rx);
    for (listener, security) in listeners {
        match (&security, rebind.take()) {
            // The plain (or unified) client port is the one a reconfiguration may move.
            (conn::Security::Plain | conn::Security::Unified(_), Some(rx)) => {
                loops.spawn(plain_clients(accept.clone(), listener, security, rx));
            }
            (_, rx) => {
                rebind = rx;
                loops.spawn(accept.clone().run(listener, security));
            }
        }
    }
    let Some(mut signals) = signals else {
        // The accept loops never end; the process is stopped from outside.
        while loops.join_next().await.is_some() {}
        return Ok(());
    };
    let sig = signals.next().await;
    // No new connections; the ones open answer what they were asked, then close. Their
    // sessions stay, for their clients to resume on another server (or this one, restarted).
    loops.abort_all();
    info!(signal = sig, "stopping");
    if let Some(log) = &audit {
        // "invoked", as ZooKeeper: logged before the server has stopped.
        log.record_server(None, "serverStop", None, audit::Outcome::Invoked);
    }
    let drain =
        Duration::from_millis((cfg.sync_limit as u64 * cfg.tick_time as u64).clamp(1_000, 10_000));
    let (reply, answered) = tokio::sync::oneshot::channel();
    let stop = CoreMsg::Stop {
        deadline: std::time::Instant::now() + drain,
        reply,
    };
    if tx.send(stop).await.is_ok() {
        tokio::select! {
            left = answered => {
                let left = left.unwrap_or(0);
                info!(unanswered = left, "client connections closed");
            }
            again = signals.next() => warn!(signal = again, "stopping at once"),
        }
    }
    // The writers flush the last replies and the connections wait for their clients to
    // close (exiting first would reset them, and a reset can lose replies not yet read).
    let gone = std::time::Instant::now() + Duration::from_secs(3);
    while accept.counts.total() > 0 && std::time::Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(log) = &audit {
        log.flush(Duration::from_secs(2));
    }
    info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT, watched from the start: the first stops the server gracefully, a
/// second during the stop ends it at once.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> Option<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some(StopSignals { term, int }),
            _ => {
                warn!("cannot watch for SIGTERM: the server stops at once when signalled");
                None
            }
        }
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Listens on a client address with `backlog` (`clientPortListenBacklog`); as tokio's own
/// bind, with SO_REUSEADDR, so that a restart binds while the last run's connections are in
/// TIME_WAIT.
async fn bind(addr: std::net::SocketAddr, backlog: u32) -> Result<TcpListener, ServerError> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(backlog)
    };
    listen().map_err(|err| ServerError::Bind { addr, err })
}

/// The client port's accept loop, moved to another address when a reconfiguration changes
/// this server's (ZooKeeper rebinds its client port the same way). Connections already open
/// stay; the old port closes once the new one is bound (if it cannot be, the old one stays).
async fn plain_clients(
    accept: Acceptance,
    mut listener: TcpListener,
    security: conn::Security,
    mut rebind: tokio::sync::mpsc::UnboundedReceiver<(String, u16)>,
) {
    loop {
        let run = accept.clone().run(listener, security.clone());
        tokio::pin!(run);
        listener = loop {
            tokio::select! {
                _ = &mut run => return,
                next = rebind.recv() => {
                    let Some((host, port)) = next else {
                        (&mut run).await;
                        return;
                    };
                    let addr = match tokio::net::lookup_host((host.as_str(), port)).await {
                        Ok(mut a) => a.next(),
                        Err(_) => None,
                    };
                    let Some(addr) = addr else {
                        warn!(%host, port, "the new client address does not resolve; the client port stays");
                        continue;
                    };
                    match bind(addr, accept.backlog).await {
                        Ok(l) => {
                            info!(%addr, "client port moved");
                            break l;
                        }
                        Err(e) => warn!(error = %e, "cannot listen on the new client address; the client port stays"),
                    }
                }
            }
        };
    }
}

/// What every client listener shares: connection ids, limits and counts.
#[derive(Clone)]
struct Acceptance {
    core: mpsc::Sender<CoreMsg>,
    limits: conn::ConnLimits,
    counts: ConnCounts,
    next_id: Arc<AtomicU64>,
    max_client_cnxns: usize,
    max_cnxns: usize,
    /// The listen backlog of the client ports (also when one moves).
    backlog: u32,
}

impl Acceptance {
    fn rejected(&self) {
        self.limits
            .metrics
            .off_core
            .connection_rejected
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Accepts connections on `listener` for as long as the server runs.
    async fn run(self, listener: TcpListener, security: conn::Security) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Running out of descriptors must not end the server: wait and go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self
                .counts
                .acquire(peer.ip(), self.max_client_cnxns, self.max_cnxns)
            {
                Ok(()) => {}
                Err(TooMany::FromAddress) => {
                    warn!(%peer, max = self.max_client_cnxns, "too many connections from this address (maxClientCnxns); closing");
                    self.rejected();
                    continue;
                }
                Err(TooMany::InAll) => {
                    warn!(%peer, max = self.max_cnxns, "too many connections in all (maxCnxns); closing");
                    self.rejected();
                    continue;
                }
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let core = self.core.clone();
            let counts = self.counts.clone();
            let (limits, security) = (self.limits.clone(), security.clone());
            tokio::spawn(async move {
                conn::serve(stream, peer, id, core, limits, security).await;
                counts.release(peer.ip());
            });
        }
    }
}

/// Builds this server's replication core from what its disk holds, and connects it to the
/// other servers.
/// Whether a server has peers, and how it speaks to them.
enum Peering {
    /// No peer ports: a one-voter ensemble.
    Standalone,
    /// Peer ports, with TLS and SASL as the configuration asks.
    Ensemble(peer::PeerSecurity),
}

async fn start_replica(
    cfg: &Config,
    m: &config::Membership,
    peering: Peering,
    fs: &storage::fs::Fs,
    snapshot_zxid: i64,
    logged: Vec<storage::txn_log::LoggedRecord>,
    core: mpsc::Sender<CoreMsg>,
) -> Result<replica::Replica, ServerError> {
    use storage::epoch;
    let standalone = matches!(peering, Peering::Standalone);
    let last = logged.last().map_or(snapshot_zxid, |t| t.zxid);
    // Without epoch files (a fresh directory, or one from before them) the epoch of the last
    // transaction stands for both, as in ZooKeeper.
    let implied = (last >> 32) as u64;
    let accepted = epoch::read(fs, &cfg.data_dir, epoch::ACCEPTED)?.unwrap_or(implied);
    let current = epoch::read(fs, &cfg.data_dir, epoch::CURRENT)?.unwrap_or(implied);
    // Connection ids carry an incarnation that must grow from one start to the next, so a
    // leader never mistakes a new connection for an old, closed one. The wall clock in
    // milliseconds (since 2024) keeps growing when the disk is replaced; the file covers a
    // clock set back a little.
    const INCARNATION: &str = "paddockIncarnation";
    const SINCE_2024_MS: u64 = 1_704_067_200_000;
    let previous = epoch::read(fs, &cfg.data_dir, INCARNATION)?.unwrap_or(0);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(SINCE_2024_MS);
    let incarnation = (previous + 1).max(clock) & paddock_zab::node::INCARNATION_MASK;
    epoch::write(fs, &cfg.data_dir, INCARNATION, incarnation)?;
    let tick = replica::ZAB_TICK_MS;
    let ms = |ticks: u32| (ticks as u64 * cfg.tick_time as u64 / tick).max(2);
    let mut zc = paddock_zab::Config::new(m.me.id, m.voters.clone(), m.observers.clone());
    zc.init_limit_ticks = ms(cfg.init_limit);
    zc.sync_limit_ticks = ms(cfg.sync_limit);
    zc.election_resend_ticks = 5;
    zc.election_finalize_ticks = 2;
    zc.committed_window_max = cfg.commit_log_count.max(1);
    zc.diff_from_disk = cfg.snapshot_size_factor > 0.0;
    zc.driver_prepares_forwarded = true;
    zc.eager_sync_heartbeat = true;
    zc.counter_bits = cfg.zxid_counter_bits;
    zc.config_zxid = paddock_zab::Zxid(cfg.config_version.max(0) as u64);
    zc.membership_reader = Some(crate::dynconfig::membership_reader());
    let rec = paddock_zab::Recovered {
        accepted_epoch: accepted as u32,
        current_epoch: current as u32,
        snapshot_zxid: paddock_zab::Zxid(snapshot_zxid as u64),
        // The records as read: each is decoded when it is applied.
        log: logged
            .into_iter()
            .map(|r| paddock_zab::Txn {
                zxid: paddock_zab::Zxid(r.zxid as u64),
                payload: r.record,
            })
            .collect(),
    };
    let node = paddock_zab::Node::recover(zc, rec, incarnation)?;
    let peers = match peering {
        Peering::Standalone => peer::Peers::none(),
        Peering::Ensemble(tls) => peer::start(&m.me, &m.servers, core, tls).await?,
    };
    info!(
        id = m.me.id,
        voters = ?m.voters,
        observers = ?m.observers,
        accepted_epoch = accepted,
        current_epoch = current,
        last_logged = format_args!("0x{last:x}"),
        "joining the ensemble"
    );
    Ok(replica::Replica::new(node, peers, standalone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_per_address_and_in_all() {
        let c = ConnCounts::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(c.acquire(a, 2, 3), Ok(()));
        assert_eq!(c.acquire(a, 2, 3), Ok(()));
        assert_eq!(c.acquire(a, 2, 3), Err(TooMany::FromAddress));
        assert_eq!(c.acquire(b, 2, 3), Ok(()));
        assert_eq!(c.acquire(b, 2, 3), Err(TooMany::InAll));
        c.release(a);
        assert_eq!(c.acquire(b, 2, 3), Ok(()));
        assert_eq!(c.acquire(a, 0, 0), Ok(()), "0 means no limit");
    }
}

//! Paddock's server: the client port, connections, sessions, the request pipeline, config and
//! four-letter words. The tree and the protocol live in their own crates; this is the IO shell.

pub mod config;
pub mod conn;
pub mod conn_shared;
pub mod core;
pub mod fourlw;
pub mod log;
pub mod session;
pub mod stats;
pub mod storage;

use crate::config::Config;
use crate::core::{Core, CoreMsg};
use std::collections::HashMap;
use std::net::IpAddr;
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
    #[error("cannot recover the data: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("cannot start the log thread: {0}")]
    Thread(std::io::Error),
}

/// Counts connections per client address for `maxClientCnxns`.
#[derive(Default, Clone)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl PerIp {
    fn acquire(&self, ip: IpAddr, max: usize) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_default();
        if max > 0 && *n >= max {
            return false;
        }
        *n += 1;
        true
    }
    fn release(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// Runs a standalone server until the process is stopped.
pub async fn run(cfg: Config) -> Result<(), ServerError> {
    for d in [&cfg.data_dir, &cfg.data_log_dir] {
        std::fs::create_dir_all(d).map_err(|err| ServerError::DataDir {
            path: d.display().to_string(),
            err,
        })?;
    }
    if !cfg.force_sync {
        warn!("forceSync=no: writes are acknowledged before they are on disk; for tests and benchmarks only");
    }
    let cfg = Arc::new(cfg);
    let fs = storage::fs::real();
    let recovered = storage::recovery::recover(&fs, &cfg.data_dir, &cfg.data_log_dir)?;
    let (tx, rx) = mpsc::channel(4096);
    let writer = storage::txn_log::LogWriter::open(
        &fs,
        &storage::log_dir(&cfg.data_log_dir),
        recovered.log_tail.clone(),
        cfg.force_sync,
        recovered.dbid,
    )?;
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    let log_core = tx.clone();
    std::thread::Builder::new()
        .name("txn-log".into())
        .spawn(move || log::run(writer, log_rx, log_core))
        .map_err(ServerError::Thread)?;
    let recovered_zxid = recovered.tree.last_zxid();
    let core = Core::new(
        cfg.clone(),
        (fs, recovered.dbid),
        recovered.tree,
        log_tx,
        tx.clone(),
    );
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
    let addr = cfg.client_addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| ServerError::Bind { addr, err })?;
    info!(
        client_addr = %listener.local_addr().unwrap_or(addr),
        data_dir = %cfg.data_dir.display(),
        tick_time = cfg.tick_time,
        zxid = format_args!("0x{:x}", recovered_zxid),
        "paddock {} serving (standalone)",
        fourlw::version_string()
    );

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
    };
    let per_ip = PerIp::default();
    let mut next_id: u64 = 1;
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
        if !per_ip.acquire(peer.ip(), cfg.max_client_cnxns) {
            warn!(%peer, max = cfg.max_client_cnxns, "too many connections from this address; closing");
            drop(stream);
            continue;
        }
        let id = next_id;
        next_id += 1;
        let core = tx.clone();
        let per_ip = per_ip.clone();
        tokio::spawn(async move {
            conn::serve(stream, peer, id, core, limits).await;
            per_ip.release(peer.ip());
        });
    }
}

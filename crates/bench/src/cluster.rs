//! Ensembles of Paddock or Apache ZooKeeper 3.8 servers on this machine, configured alike
//! (ZooKeeper's zoo.cfg with `server.N` lines, `dataDir/myid`, `peerType=observer`), for the
//! ensemble benchmark: the test kit's [`paddock_testkit::ensemble`] with the benchmark's
//! settings, plus "is it whole" through `srvr`, `mntr` and a session.
//!
//! Server N listens on 127.0.0.N (Linux routes all of 127/8 to the loopback), client port
//! `base + N`, quorum port `base + 20 + N`, election port `base + 40 + N`.

use crate::compare::{four_letter, Kind};
use crate::conn::Conn;
use anyhow::{anyhow, bail, Result};
use paddock_testkit::ensemble::{self as kit, Launcher, Ports};
use paddock_testkit::logs::tail;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use paddock_testkit::fourlw::{mntr_value, parse_mode, Mode as Role};

/// A server's role, or why it has none (its `srvr` answer or the connection error).
pub async fn role_of(addr: SocketAddr) -> Result<Role, String> {
    match tokio::time::timeout(Duration::from_secs(2), four_letter(addr, "srvr")).await {
        Ok(Ok(out)) => parse_mode(&out).ok_or_else(|| out.trim().to_owned()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("srvr not answered within 2 s".into()),
    }
}

/// How every server of one kind is started.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Which system.
    pub kind: Kind,
    /// Voters, ids 1..=voters.
    pub voters: usize,
    /// Observers, ids after the voters.
    pub observers: usize,
    /// Ports are `base + N` (client), `base + 20 + N` (quorum), `base + 40 + N` (election).
    pub port_base: u16,
    /// Parent of the servers' directories (`sN/`); wiped by `Cluster::create`.
    pub dir: PathBuf,
    /// zoo.cfg tickTime in ms.
    pub tick_ms: u64,
    /// zoo.cfg initLimit (ticks).
    pub init_limit: u32,
    /// zoo.cfg syncLimit (ticks).
    pub sync_limit: u32,
    /// forceSync=yes.
    pub force_sync: bool,
    /// The paddock binary.
    pub paddock_bin: PathBuf,
    /// PADDOCK_LOG for Paddock servers.
    pub paddock_log: String,
    /// Directory of zookeeper.jar and its dependencies.
    pub zk_jars: PathBuf,
    /// JVM options of ZooKeeper servers.
    pub jvm_opts: Vec<String>,
    /// More zoo.cfg lines, the same for both systems (`--set`).
    pub extra: Vec<String>,
}

impl ClusterSpec {
    /// The kit's spec: the same zoo.cfg lines for both systems (ZooKeeper also gets
    /// `admin.enableServer=false`: Debian ships no servlet API for it).
    fn kit(&self) -> kit::Spec {
        let mut body = vec![
            "maxClientCnxns=0".to_string(),
            format!("forceSync={}", if self.force_sync { "yes" } else { "no" }),
            "4lw.commands.whitelist=*".into(),
        ];
        if self.kind == Kind::ZooKeeper {
            body.push("admin.enableServer=false".into());
        }
        body.extend(self.extra.iter().cloned());
        kit::Spec {
            voters: self.voters,
            observers: self.observers,
            root: self.dir.clone(),
            ports: Ports::Base(self.port_base),
            head: vec![
                format!("tickTime={}", self.tick_ms),
                format!("initLimit={}", self.init_limit),
                format!("syncLimit={}", self.sync_limit),
            ],
            body,
            tail: vec![],
            launcher: match self.kind {
                Kind::Paddock => Launcher::Paddock {
                    bin: self.paddock_bin.clone(),
                    env: vec![("PADDOCK_LOG".into(), self.paddock_log.clone())],
                },
                Kind::ZooKeeper => Launcher::ZooKeeper {
                    jars: self.zk_jars.clone(),
                    jvm_opts: self.jvm_opts.clone(),
                },
            },
            marker: "bench".into(),
        }
    }
}

/// A running (or stopped) ensemble; every server is stopped when it drops.
pub struct Cluster {
    /// How it was made.
    pub spec: ClusterSpec,
    kit: kit::Ensemble,
}

impl Cluster {
    /// Writes every server's zoo.cfg and myid under a fresh `spec.dir` (does not start them).
    pub fn create(spec: ClusterSpec) -> Result<Cluster> {
        let kit = kit::Ensemble::create(spec.kit()).map_err(|e| match e {
            paddock_testkit::Error::PortInUse { addr } => anyhow!(
                "port {addr} is in use (a server left over from another run? \
                 choose other ports with --port)"
            ),
            e => e.into(),
        })?;
        Ok(Cluster { spec, kit })
    }

    /// Starts server `id` on its directory (it must not be running).
    pub fn start(&mut self, id: u64) -> Result<()> {
        self.kit.start(id).map_err(|e| {
            anyhow!(e).context(format!(
                "cannot start {} server {id}",
                self.spec.kind.label()
            ))
        })
    }

    /// Starts every server not running.
    pub fn start_all(&mut self) -> Result<()> {
        for id in self.ids() {
            if !self.kit.member(id).is_running() {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs server `id`: returns the instant taken right before the kill system call,
    /// then reaps the process.
    pub fn kill(&mut self, id: u64) -> Result<Instant> {
        Ok(self.kit.kill(id)?)
    }

    /// Stops every server: SIGTERM, up to 10 s, then SIGKILL.
    pub fn stop_all(&mut self) {
        self.kit.stop_all(Duration::from_secs(10));
    }

    /// Fails if a server that should be running has exited on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        self.kit
            .check_alive(30)
            .map_err(|e| anyhow!("{} {e}", self.spec.kind.label()))
    }

    /// Every server id.
    pub fn ids(&self) -> Vec<u64> {
        self.kit.ids()
    }

    /// Ids of the servers running.
    pub fn running(&self) -> Vec<u64> {
        self.kit.running()
    }

    /// Client addresses of every server (the connect string, in id order).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.kit.members().iter().map(|m| m.addr()).collect()
    }

    /// The client address of server `id`.
    pub fn addr(&self, id: u64) -> SocketAddr {
        self.kit.addr(id)
    }

    /// The connect string `host:port,...` of every server.
    pub fn connect_string(&self) -> String {
        self.kit.connect_string(&self.ids())
    }

    /// Pids of the running servers, in id order.
    pub fn pids(&self) -> Vec<u32> {
        self.kit.members().iter().filter_map(|m| m.pid()).collect()
    }

    /// The pid of server `id`.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.kit.member(id).pid()
    }

    /// `srvr` of every running server: its role or why it has none.
    pub async fn roles(&self) -> BTreeMap<u64, Result<Role, String>> {
        let mut out = BTreeMap::new();
        for id in self.running() {
            out.insert(id, role_of(self.addr(id)).await);
        }
        out
    }

    /// Waits until the ensemble is whole: every running server reports a mode (voters leader
    /// or follower, observers observer), exactly one leader, the leader's `mntr` (when it has
    /// the keys) counts every running follower and observer as synced, and every running
    /// server accepts a session. Returns the leader's id and how long it took.
    pub async fn wait_whole(&mut self, limit: Duration) -> Result<(u64, Duration)> {
        let t0 = Instant::now();
        loop {
            self.check_alive()?;
            let last = match self.whole_once().await {
                Ok(leader) => return Ok((leader, t0.elapsed())),
                Err(why) => why,
            };
            if t0.elapsed() > limit {
                let mut logs = String::new();
                for m in self.kit.members() {
                    logs.push_str(&format!(
                        "--- {} (server {}) last lines:\n{}\n",
                        m.log_path().display(),
                        m.id,
                        tail(&m.log_path(), 15)
                    ));
                }
                bail!(
                    "the {} ensemble was not whole within {limit:?}: {last}\n{logs}",
                    self.spec.kind.label()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn whole_once(&self) -> Result<u64, String> {
        let roles = self.roles().await;
        let mut leader = None;
        for (id, r) in &roles {
            let observer = self.kit.member(*id).observer;
            match r {
                Ok(Role::Leader) if !observer => {
                    if leader.replace(*id).is_some() {
                        return Err(format!("two leaders: {roles:?}"));
                    }
                }
                Ok(Role::Follower) if !observer => {}
                Ok(Role::Observer) if observer => {}
                Ok(other) => {
                    return Err(format!("server {id} says Mode: {}", other.name()));
                }
                Err(e) => return Err(format!("server {id} not serving: {e}")),
            }
        }
        let leader = leader.ok_or_else(|| format!("no leader yet: {roles:?}"))?;
        let running: Vec<&kit::Member> = self
            .kit
            .members()
            .iter()
            .filter(|m| m.is_running())
            .collect();
        let followers = running.iter().filter(|m| !m.observer).count() as i64 - 1;
        let observers = running.iter().filter(|m| m.observer).count() as i64;
        let mntr = tokio::time::timeout(
            Duration::from_secs(2),
            four_letter(self.addr(leader), "mntr"),
        )
        .await
        .map_err(|_| "mntr not answered".to_string())?
        .map_err(|e| format!("mntr: {e:#}"))?;
        for (key, want) in [
            ("zk_synced_followers", followers),
            ("zk_synced_observers", observers),
        ] {
            if let Some(v) = mntr_value(&mntr, key) {
                if v != want {
                    return Err(format!("leader {leader}: {key} {v}, want {want}"));
                }
            }
        }
        for m in &running {
            match tokio::time::timeout(Duration::from_secs(5), Conn::connect(m.addr())).await {
                Ok(Ok(c)) => {
                    let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
                }
                Ok(Err(e)) => return Err(format!("server {}: no session: {e:#}", m.id)),
                Err(_) => return Err(format!("server {}: session not opened in 5 s", m.id)),
            }
        }
        Ok(leader)
    }

    /// The last `n` lines of every server's log, labelled.
    pub fn log_tails(&self, n: usize) -> String {
        self.kit.log_tails(self.spec.kind.label(), n)
    }

    /// Removes the servers' directories (they must be stopped).
    pub fn remove_dirs(&self) {
        self.kit.remove_dirs();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

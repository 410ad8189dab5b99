//! Ensembles of Paddock or Apache ZooKeeper 3.8 servers on this machine, configured alike
//! (ZooKeeper's zoo.cfg with `server.N` lines, `dataDir/myid`, `peerType=observer`), for the
//! ensemble benchmark: start, stop, SIGKILL, restart, and "is it whole" through `srvr` and `mntr`.
//!
//! Server N listens on 127.0.0.N (Linux routes all of 127/8 to the loopback), client port
//! `base + N`, quorum port `base + 20 + N`, election port `base + 40 + N`.

use crate::compare::{four_letter, Kind};
use crate::conn::Conn;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `srvr` says a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `Mode: leader`.
    Leader,
    /// `Mode: follower`.
    Follower,
    /// `Mode: observer`.
    Observer,
    /// `Mode: standalone` (wrong for an ensemble member).
    Standalone,
}

impl Role {
    /// As `srvr` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Standalone => "standalone",
        }
    }
}

/// The `Mode:` line of a `srvr` answer.
pub fn parse_mode(srvr: &str) -> Option<Role> {
    let line = srvr.lines().find(|l| l.starts_with("Mode:"))?;
    match line["Mode:".len()..].trim() {
        "leader" => Some(Role::Leader),
        "follower" => Some(Role::Follower),
        "observer" => Some(Role::Observer),
        "standalone" => Some(Role::Standalone),
        _ => None,
    }
}

/// A `key value` line of a `mntr` answer (tab or spaces between).
pub fn mntr_value(mntr: &str, key: &str) -> Option<i64> {
    mntr.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

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
}

/// One server of a cluster.
pub struct Member {
    /// myid.
    pub id: u64,
    /// Listed with `:observer`.
    pub observer: bool,
    /// 127.0.0.id.
    pub host: Ipv4Addr,
    /// Client port.
    pub client_port: u16,
    /// Quorum (follower-to-leader) port.
    pub quorum_port: u16,
    /// Leader election port.
    pub election_port: u16,
    /// Its directory: zoo.cfg, server.log, data/.
    pub dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, self.client_port))
    }
    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    /// Where its output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// A running (or stopped) ensemble; every server is stopped when it drops.
pub struct Cluster {
    /// How it was made.
    pub spec: ClusterSpec,
    /// Voters first, then observers.
    pub members: Vec<Member>,
}

/// The last `n` lines of a file.
pub fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether 127.0.0.2 and up can be bound here (Linux: yes).
fn loopback_aliases(n: usize) -> bool {
    (2..=n.max(2) as u8).all(|i| TcpListener::bind((Ipv4Addr::new(127, 0, 0, i), 0)).is_ok())
}

impl Cluster {
    /// Writes every server's zoo.cfg and myid under a fresh `spec.dir` (does not start them).
    pub fn create(spec: ClusterSpec) -> Result<Cluster> {
        let n = spec.voters + spec.observers;
        if n == 0 || n > 19 {
            bail!("an ensemble of {n} servers is not supported here (1..=19)");
        }
        let aliases = loopback_aliases(n);
        let _ = std::fs::remove_dir_all(&spec.dir);
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("cannot create {}", spec.dir.display()))?;
        let dir = spec.dir.canonicalize()?;
        let mut members = Vec::new();
        for i in 1..=n {
            let host = if aliases {
                Ipv4Addr::new(127, 0, 0, i as u8)
            } else {
                Ipv4Addr::LOCALHOST
            };
            let m = Member {
                id: i as u64,
                observer: i > spec.voters,
                host,
                client_port: spec.port_base + i as u16,
                quorum_port: spec.port_base + 20 + i as u16,
                election_port: spec.port_base + 40 + i as u16,
                dir: dir.join(format!("s{i}")),
                child: None,
                starts: 0,
            };
            for port in [m.client_port, m.quorum_port, m.election_port] {
                if TcpListener::bind((host, port)).is_err() {
                    bail!(
                        "port {host}:{port} is in use (a server left over from another run? \
                         choose other ports with --port)"
                    );
                }
            }
            members.push(m);
        }
        let c = Cluster { spec, members };
        for m in &c.members {
            let data = m.dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", m.id))?;
            std::fs::write(m.dir.join("zoo.cfg"), c.cfg_text(m))?;
            if c.spec.kind == Kind::ZooKeeper {
                std::fs::write(
                    m.dir.join("log4j.properties"),
                    "log4j.rootLogger=INFO, FILE\nlog4j.appender.FILE=org.apache.log4j.FileAppender\n\
                     log4j.appender.FILE.File=${zookeeper.log.dir}/zookeeper.log\n\
                     log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n",
                )?;
            }
        }
        Ok(c)
    }

    /// The zoo.cfg of member `m`: the same lines for both systems (ZooKeeper also gets
    /// `admin.enableServer=false`: Debian ships no servlet API for it).
    pub fn cfg_text(&self, m: &Member) -> String {
        let s = &self.spec;
        let mut out = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\nclientPortAddress={}\n\
             maxClientCnxns=0\nforceSync={}\n4lw.commands.whitelist=*\n",
            s.tick_ms,
            s.init_limit,
            s.sync_limit,
            m.dir.join("data").display(),
            m.client_port,
            m.host,
            if s.force_sync { "yes" } else { "no" },
        );
        if s.kind == Kind::ZooKeeper {
            out.push_str("admin.enableServer=false\n");
        }
        for o in &self.members {
            out.push_str(&format!(
                "server.{}={}:{}:{}{}\n",
                o.id,
                o.host,
                o.quorum_port,
                o.election_port,
                if o.observer { ":observer" } else { "" }
            ));
        }
        if m.observer {
            out.push_str("peerType=observer\n");
        }
        out
    }

    fn member(&self, id: u64) -> &Member {
        self.members.iter().find(|m| m.id == id).expect("member id")
    }

    fn member_mut(&mut self, id: u64) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .expect("member id")
    }

    /// Starts server `id` on its directory (it must not be running).
    pub fn start(&mut self, id: u64) -> Result<()> {
        let spec = self.spec.clone();
        let m = self.member_mut(id);
        if m.child.is_some() {
            bail!("server {id} is already running");
        }
        m.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.log_path())?;
        writeln!(
            log,
            "===== bench: start #{} of server {} =====",
            m.starts, m.id
        )?;
        let cfg = m.dir.join("zoo.cfg");
        let mut c = match spec.kind {
            Kind::Paddock => {
                let mut c = Command::new(&spec.paddock_bin);
                c.arg("server").arg(&cfg);
                c.env("PADDOCK_LOG", &spec.paddock_log);
                c
            }
            Kind::ZooKeeper => {
                let jar = spec.zk_jars.join("zookeeper.jar");
                if !jar.exists() {
                    bail!(
                        "{} is missing: install Debian's zookeeper package (scripts/install-deps.sh)",
                        jar.display()
                    );
                }
                let mut c = Command::new("java");
                c.args(&spec.jvm_opts);
                c.arg("-cp")
                    .arg(crate::compare::zk_classpath(&spec.zk_jars));
                c.arg(format!("-Dzookeeper.log.dir={}", m.dir.display()));
                c.arg(format!(
                    "-Dlog4j.configuration=file:{}",
                    m.dir.join("log4j.properties").display()
                ));
                c.arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg);
                c
            }
        };
        c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        m.child = Some(
            c.spawn()
                .with_context(|| format!("cannot start {} server {id}", spec.kind.label()))?,
        );
        Ok(())
    }

    /// Starts every server not running.
    pub fn start_all(&mut self) -> Result<()> {
        let ids: Vec<u64> = self
            .members
            .iter()
            .filter(|m| m.child.is_none())
            .map(|m| m.id)
            .collect();
        for id in ids {
            self.start(id)?;
        }
        Ok(())
    }

    /// SIGKILLs server `id`: returns the instant taken right before the kill system call
    /// (`Child::kill` is `kill(pid, SIGKILL)`), then reaps the process.
    pub fn kill(&mut self, id: u64) -> Result<Instant> {
        let m = self.member_mut(id);
        let mut child = m
            .child
            .take()
            .with_context(|| format!("server {id} is not running"))?;
        let t0 = Instant::now();
        child.kill().context("kill")?;
        let _ = child.wait();
        append(&m.log_path(), "===== bench: SIGKILL =====");
        Ok(t0)
    }

    /// Stops every server: SIGTERM, up to 10 s, then SIGKILL.
    pub fn stop_all(&mut self) {
        for m in &mut self.members {
            if let Some(c) = &m.child {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(c.id().to_string())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                loop {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    if Instant::now() > deadline {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Fails if a server that should be running has exited on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        for m in &mut self.members {
            if let Some(c) = &mut m.child {
                if let Ok(Some(st)) = c.try_wait() {
                    m.child = None;
                    bail!(
                        "{} server {} exited on its own ({st}); last lines of {}:\n{}",
                        self.spec.kind.label(),
                        m.id,
                        m.log_path().display(),
                        tail(&m.log_path(), 30)
                    );
                }
            }
        }
        Ok(())
    }

    /// Ids of the servers running.
    pub fn running(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    /// Client addresses of every server (the connect string, in id order).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.addr()).collect()
    }

    /// The client address of server `id`.
    pub fn addr(&self, id: u64) -> SocketAddr {
        self.member(id).addr()
    }

    /// The connect string `host:port,...` of every server.
    pub fn connect_string(&self) -> String {
        self.addrs()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Pids of the running servers, in id order.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|m| m.pid()).collect()
    }

    /// The pid of server `id`.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.member(id).pid()
    }

    /// `srvr` of every running server: its role or why it has none.
    pub async fn roles(&self) -> BTreeMap<u64, Result<Role, String>> {
        let mut out = BTreeMap::new();
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            out.insert(m.id, role_of(m.addr()).await);
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
                for m in &self.members {
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
            let m = self.member(*id);
            match r {
                Ok(Role::Leader) if !m.observer => {
                    if leader.replace(*id).is_some() {
                        return Err(format!("two leaders: {roles:?}"));
                    }
                }
                Ok(Role::Follower) if !m.observer => {}
                Ok(Role::Observer) if m.observer => {}
                Ok(other) => {
                    return Err(format!("server {id} says Mode: {}", other.name()));
                }
                Err(e) => return Err(format!("server {id} not serving: {e}")),
            }
        }
        let leader = leader.ok_or_else(|| format!("no leader yet: {roles:?}"))?;
        let running: Vec<&Member> = self.members.iter().filter(|m| m.child.is_some()).collect();
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
        let mut out = String::new();
        for m in &self.members {
            let path = if self.spec.kind == Kind::ZooKeeper {
                m.dir.join("zookeeper.log")
            } else {
                m.log_path()
            };
            out.push_str(&format!(
                "--- {} server {} ({}):\n{}\n",
                self.spec.kind.label(),
                m.id,
                path.display(),
                tail(&path, n)
            ));
        }
        out
    }

    /// Removes the servers' directories (they must be stopped).
    pub fn remove_dirs(&self) {
        let _ = std::fs::remove_dir_all(&self.spec.dir);
    }
}

fn append(path: &std::path::Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr_and_mntr() {
        let s = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000002\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(s), Some(Role::Follower));
        assert_eq!(parse_mode("Mode: leader\n"), Some(Role::Leader));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        let m = "zk_version\t3.8.0\nzk_synced_followers\t2\nzk_synced_observers 1\n";
        assert_eq!(mntr_value(m, "zk_synced_followers"), Some(2));
        assert_eq!(mntr_value(m, "zk_synced_observers"), Some(1));
        assert_eq!(mntr_value(m, "zk_learners"), None);
    }
}

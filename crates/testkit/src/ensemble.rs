//! Ensembles of Paddock or Apache ZooKeeper 3.8 servers on this machine, configured alike:
//! ZooKeeper's zoo.cfg with `server.N=host:quorumPort:electionPort[:observer]` lines,
//! `peerType=observer` for observers and `dataDir/myid`.
//!
//! Server N gets `<root>/sN/zoo.cfg` and `<root>/sN/data/myid`, and its stdout and stderr are
//! appended to `<root>/sN/server.log` (ZooKeeper's own log goes to `<root>/sN/zookeeper.log`).
//! It listens on 127.0.0.N when the loopback takes that address (Linux does), else all
//! servers listen on 127.0.0.1 with distinct ports. Every server still running is SIGKILLed
//! when the [`Ensemble`] drops; its files are the caller's to keep or remove.

use crate::fourlw::{self, Srvr};
use crate::{logs, ports, process, zookeeper, Error, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the servers are.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// `paddock server <zoo.cfg>` with extra environment (e.g. `PADDOCK_LOG`).
    Paddock {
        /// The paddock binary.
        bin: PathBuf,
        /// Extra environment.
        env: Vec<(String, String)>,
    },
    /// Debian's ZooKeeper 3.8 (`java ... QuorumPeerMain <zoo.cfg>`).
    ZooKeeper {
        /// Directory of zookeeper.jar and its dependencies.
        jars: PathBuf,
        /// JVM options.
        jvm_opts: Vec<String>,
    },
}

/// How the members' ports are chosen.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// Client port `base + N`, quorum `base + 20 + N`, election `base + 40 + N` (at most 19
    /// servers); fails if one is taken. For runs a user repeats with `--port`.
    Base(u16),
    /// Free ports picked at random below the ephemeral range (see [`ports::Picker`]); for
    /// tests that run side by side with others.
    Pick,
}

/// How every server of an ensemble is configured and run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Voters, ids 1..=voters.
    pub voters: usize,
    /// Observers, ids after the voters.
    pub observers: usize,
    /// Parent of the servers' directories (`sN/`); wiped by [`Ensemble::create`].
    pub root: PathBuf,
    /// Port choice.
    pub ports: Ports,
    /// zoo.cfg lines before `dataDir` (tickTime, initLimit, syncLimit).
    pub head: Vec<String>,
    /// zoo.cfg lines after `clientPortAddress`, before the `server.N` lines.
    pub body: Vec<String>,
    /// zoo.cfg lines at the end, after `peerType`.
    pub tail: Vec<String>,
    /// What runs.
    pub launcher: Launcher,
    /// Who writes the start and SIGKILL markers into the servers' logs (`bench`,
    /// `ensemble test`).
    pub marker: String,
}

/// One server of the ensemble.
pub struct Member {
    /// myid.
    pub id: u64,
    /// Listed with `:observer`.
    pub observer: bool,
    /// 127.0.0.id (or 127.0.0.1).
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
    /// Its zoo.cfg.
    pub fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }
    /// Its dataDir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, self.client_port))
    }
    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    /// Whether it was started and has not been killed or stopped since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// An ensemble, running or not; see the module doc.
pub struct Ensemble {
    /// How it was made.
    pub spec: Spec,
    members: Vec<Member>,
}

impl Ensemble {
    /// Writes every server's zoo.cfg and myid under a fresh `spec.root` (does not start them).
    pub fn create(mut spec: Spec) -> Result<Ensemble> {
        let n = spec.voters + spec.observers;
        if n == 0 || (matches!(spec.ports, Ports::Base(_)) && n > 19) || n > 254 {
            return Err(Error::Invalid(format!(
                "an ensemble of {n} servers is not supported here (1..=19)"
            )));
        }
        let aliases = ports::loopback_aliases(n);
        let _ = std::fs::remove_dir_all(&spec.root);
        std::fs::create_dir_all(&spec.root)
            .map_err(Error::io(format!("cannot create {}", spec.root.display())))?;
        spec.root = spec
            .root
            .canonicalize()
            .map_err(Error::io(format!("cannot resolve {}", spec.root.display())))?;
        let mut picker = ports::Picker::default();
        let mut members = Vec::new();
        for i in 1..=n {
            let host = if aliases {
                Ipv4Addr::new(127, 0, 0, i as u8)
            } else {
                Ipv4Addr::LOCALHOST
            };
            let [client_port, quorum_port, election_port] = match spec.ports {
                Ports::Base(base) => {
                    let p = [0u16, 20, 40].map(|off| base + off + i as u16);
                    if let Some(port) = p.iter().find(|p| !ports::is_free(host, **p)) {
                        return Err(Error::PortInUse {
                            addr: format!("{host}:{port}"),
                        });
                    }
                    p
                }
                Ports::Pick => [(); 3].map(|_| picker.pick(host)),
            };
            members.push(Member {
                id: i as u64,
                observer: i > spec.voters,
                host,
                client_port,
                quorum_port,
                election_port,
                dir: spec.root.join(format!("s{i}")),
                child: None,
                starts: 0,
            });
        }
        drop(picker);
        let ens = Ensemble { spec, members };
        for m in &ens.members {
            std::fs::create_dir_all(m.data_dir()).map_err(Error::io(format!(
                "cannot create {}",
                m.data_dir().display()
            )))?;
            ens.write_cfg(m.id, &ens.cfg_text(m.id))?;
            ens.write_myid(m.id, Some(&m.id.to_string()))?;
            if matches!(ens.spec.launcher, Launcher::ZooKeeper { .. }) {
                zookeeper::write_log4j(&m.dir, "INFO")?;
            }
        }
        Ok(ens)
    }

    /// The zoo.cfg this ensemble writes for server `id`: the AdminServer off (its port
    /// would be the same on every member), `head`, dataDir, clientPort, clientPortAddress,
    /// `body`, every `server.N` line, `peerType=observer` for an observer, `tail`.
    pub fn cfg_text(&self, id: u64) -> String {
        let m = self.member(id);
        let mut lines = vec!["admin.enableServer=false".to_owned()];
        lines.extend(self.spec.head.iter().cloned());
        lines.push(format!("dataDir={}", m.data_dir().display()));
        lines.push(format!("clientPort={}", m.client_port));
        lines.push(format!("clientPortAddress={}", m.host));
        lines.extend(self.spec.body.iter().cloned());
        for o in &self.members {
            lines.push(format!(
                "server.{}={}:{}:{}{}",
                o.id,
                o.host,
                o.quorum_port,
                o.election_port,
                if o.observer { ":observer" } else { "" }
            ));
        }
        if m.observer {
            lines.push("peerType=observer".into());
        }
        lines.extend(self.spec.tail.iter().cloned());
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    /// Replaces server `id`'s zoo.cfg.
    pub fn write_cfg(&self, id: u64, text: &str) -> Result<()> {
        let p = self.member(id).cfg_path();
        std::fs::write(&p, text).map_err(Error::io(format!("cannot write {}", p.display())))
    }

    /// Writes `dataDir/myid` (`None` removes it).
    pub fn write_myid(&self, id: u64, myid: Option<&str>) -> Result<()> {
        let p = self.member(id).data_dir().join("myid");
        match myid {
            Some(v) => std::fs::write(&p, format!("{v}\n"))
                .map_err(Error::io(format!("cannot write {}", p.display()))),
            None => {
                let _ = std::fs::remove_file(p);
                Ok(())
            }
        }
    }

    /// Every member, voters first.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Server `id`. Panics if there is none: ids come from this ensemble.
    pub fn member(&self, id: u64) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no server {id}"))
    }

    fn member_mut(&mut self, id: u64) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no server {id}"))
    }

    /// Every server id.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// Voter ids.
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| !m.observer)
            .map(|m| m.id)
            .collect()
    }

    /// Ids of the servers started and not killed or stopped since.
    pub fn running(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.is_running())
            .map(|m| m.id)
            .collect()
    }

    /// The client address of server `id`.
    pub fn addr(&self, id: u64) -> SocketAddr {
        self.member(id).addr()
    }

    /// A connect string `host:port,...` naming these servers.
    pub fn connect_string(&self, ids: &[u64]) -> String {
        ids.iter()
            .map(|&id| self.addr(id).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Where server `id` writes its own log (ZooKeeper: log4j's zookeeper.log, Paddock:
    /// server.log).
    pub fn own_log_path(&self, id: u64) -> PathBuf {
        let m = self.member(id);
        match self.spec.launcher {
            Launcher::ZooKeeper { .. } => m.dir.join("zookeeper.log"),
            Launcher::Paddock { .. } => m.log_path(),
        }
    }

    /// The command that runs server `id` on its zoo.cfg (stdin closed, output not set).
    pub fn command(&self, id: u64) -> Result<Command> {
        let m = self.member(id);
        let mut c = match &self.spec.launcher {
            Launcher::Paddock { bin, env } => {
                let mut c = Command::new(bin);
                c.arg("server").arg(m.cfg_path());
                c.envs(env.iter().map(|(k, v)| (k, v)));
                c
            }
            Launcher::ZooKeeper { jars, jvm_opts } => {
                zookeeper::require(jars)?;
                zookeeper::java_command(jars, jvm_opts, &m.dir, &m.cfg_path())
            }
        };
        c.stdin(Stdio::null());
        Ok(c)
    }

    /// Starts server `id` (it must not be running), its output appended to its server.log
    /// after a marker line.
    pub fn start(&mut self, id: u64) -> Result<()> {
        if self.member(id).is_running() {
            return Err(Error::Invalid(format!("server {id} is already running")));
        }
        let mut cmd = self.command(id)?;
        let marker = self.spec.marker.clone();
        let m = self.member_mut(id);
        m.starts += 1;
        let log = logs::append(&m.log_path())?;
        logs::mark(
            &m.log_path(),
            &format!(
                "===== {marker}: start #{} of server {} =====",
                m.starts, m.id
            ),
        );
        let out = log.try_clone().map_err(Error::io(format!(
            "cannot share {}",
            m.log_path().display()
        )))?;
        cmd.stdout(out).stderr(log);
        m.child = Some(
            cmd.spawn()
                .map_err(Error::io(format!("cannot start server {id}")))?,
        );
        Ok(())
    }

    /// Starts every server that is not running.
    pub fn start_all(&mut self) -> Result<()> {
        for id in self.ids() {
            if !self.member(id).is_running() {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs server `id` and reaps it; returns the instant taken right before the kill
    /// system call (`Child::kill` is `kill(pid, SIGKILL)`), for failover timings.
    pub fn kill(&mut self, id: u64) -> Result<Instant> {
        let marker = self.spec.marker.clone();
        let m = self.member_mut(id);
        let mut child = m
            .child
            .take()
            .ok_or_else(|| Error::Invalid(format!("server {id} is not running")))?;
        let t0 = Instant::now();
        process::kill(&mut child);
        logs::mark(&m.log_path(), &format!("===== {marker}: SIGKILL ====="));
        Ok(t0)
    }

    /// SIGKILLs every running server.
    pub fn kill_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                process::kill(&mut c);
            }
        }
    }

    /// Stops every server: SIGTERM to all, up to `grace` for them to exit, then SIGKILL.
    pub fn stop_all(&mut self, grace: Duration) {
        for m in &self.members {
            if let Some(c) = &m.child {
                process::signal(c.id(), "-TERM");
            }
        }
        let deadline = Instant::now() + grace;
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                loop {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    if Instant::now() > deadline {
                        process::kill(&mut c);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Removes server `id`'s data directory entirely, then writes its myid again (it must be
    /// stopped).
    pub fn wipe(&self, id: u64) -> Result<()> {
        let m = self.member(id);
        if m.is_running() {
            return Err(Error::Invalid(format!("wipe a running server {id}")));
        }
        let d = m.data_dir();
        std::fs::remove_dir_all(&d).map_err(Error::io(format!("cannot remove {}", d.display())))?;
        std::fs::create_dir_all(&d).map_err(Error::io(format!("cannot create {}", d.display())))?;
        self.write_myid(id, Some(&id.to_string()))
    }

    /// Fails if a server that should be running has exited on its own (it then counts as
    /// stopped); the error carries the last `tail_lines` of its server.log.
    pub fn check_alive(&mut self, tail_lines: usize) -> Result<()> {
        for m in &mut self.members {
            if let Some(c) = &mut m.child {
                if let Ok(Some(status)) = c.try_wait() {
                    m.child = None;
                    return Err(Error::Exited {
                        who: format!("server {} ({})", m.id, m.log_path().display()),
                        status,
                        log_tail: logs::tail(&m.log_path(), tail_lines),
                    });
                }
            }
        }
        Ok(())
    }

    /// Server `id`'s `srvr` answer.
    pub fn srvr(&self, id: u64) -> Srvr {
        fourlw::srvr(self.addr(id))
    }

    /// The last `n` lines of every server's own log, one labelled block each.
    pub fn log_tails(&self, label: &str, n: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            let path = self.own_log_path(m.id);
            out.push_str(&format!(
                "--- {label} server {} ({}):\n{}\n",
                m.id,
                path.display(),
                logs::tail(&path, n)
            ));
        }
        out
    }

    /// Removes the servers' directories (they must be stopped).
    pub fn remove_dirs(&self) {
        let _ = std::fs::remove_dir_all(&self.spec.root);
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.spec.root
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(root: &str, ports: Ports) -> Spec {
        Spec {
            voters: 2,
            observers: 1,
            root: std::env::temp_dir().join(format!("{root}-{}", std::process::id())),
            ports,
            head: vec!["tickTime=200".into()],
            body: vec!["maxClientCnxns=0".into()],
            tail: vec!["x=y".into()],
            launcher: Launcher::Paddock {
                bin: "/nonexistent/paddock".into(),
                env: vec![],
            },
            marker: "kit test".into(),
        }
    }

    #[test]
    fn writes_configs_and_myids() {
        let ens = Ensemble::create(spec("paddock-testkit-ens", Ports::Pick)).unwrap();
        assert_eq!(ens.voters(), vec![1, 2]);
        let m3 = ens.member(3);
        assert!(m3.observer);
        let cfg = std::fs::read_to_string(m3.cfg_path()).unwrap();
        assert!(
            cfg.starts_with("admin.enableServer=false\ntickTime=200\ndataDir="),
            "{cfg}"
        );
        assert!(cfg.contains(&format!(
            "clientPort={}\nclientPortAddress={}\nmaxClientCnxns=0\nserver.1=",
            m3.client_port, m3.host
        )));
        assert!(
            cfg.ends_with(":observer\npeerType=observer\nx=y\n"),
            "{cfg}"
        );
        assert_eq!(
            std::fs::read_to_string(m3.data_dir().join("myid")).unwrap(),
            "3\n"
        );
        assert!(ens.running().is_empty());
        ens.remove_dirs();
    }

    #[test]
    fn base_ports() {
        let mut s = spec("paddock-testkit-base", Ports::Base(29_100));
        s.voters = 20;
        assert!(Ensemble::create(s).is_err());
        let ens = Ensemble::create(spec("paddock-testkit-base", Ports::Base(29_100))).unwrap();
        let m = ens.member(2);
        assert_eq!(
            (m.client_port, m.quorum_port, m.election_port),
            (29_102, 29_122, 29_142)
        );
        ens.remove_dirs();
    }
}

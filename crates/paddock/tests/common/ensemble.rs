//! An ensemble of `paddock server` processes on this machine, configured as ZooKeeper's are.
//!
//! Server N gets `<root>/sN/zoo.cfg` (tickTime=200, initLimit=10, syncLimit=5, clientPort,
//! clientPortAddress, `server.M=host:quorumPort:electionPort[:observer]` for every member,
//! `peerType=observer` for observers) and `<root>/sN/data/myid`; its stdout and stderr are
//! appended to `<root>/sN/server.log`. Servers listen on 127.0.0.N when the loopback takes that
//! address (Linux does), else all on 127.0.0.1 with distinct ports.
//!
//! Every process is SIGKILLed when the `Ensemble` drops. On a panic the tail of every server's
//! log is printed and the directory is kept (`PADDOCK_KEEP_ENSEMBLE=1` keeps it always).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// zoo.cfg's tickTime for test ensembles.
pub const TICK_MS: u64 = 200;

/// What `srvr` says a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
}

/// A `srvr` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Srvr {
    /// `Mode: ...` and the `Zxid: 0x...` line.
    Serving(Mode, u64),
    /// Anything else it answered (e.g. "This ZooKeeper instance is not currently serving
    /// requests").
    NotServing(String),
    /// No answer: connection refused, reset or timed out.
    Unreachable(String),
}

impl Srvr {
    pub fn mode(&self) -> Option<Mode> {
        match self {
            Srvr::Serving(m, _) => Some(*m),
            _ => None,
        }
    }
}

/// Ensemble tests run one at a time: two ensembles electing on two shared cores would make
/// each other's timeouts fire.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One server of the ensemble.
pub struct Member {
    pub id: u64,
    pub observer: bool,
    pub host: Ipv4Addr,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    pub fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, self.client_port))
    }
}

/// Some ensemble of servers; see the module doc.
pub struct Ensemble {
    pub root: PathBuf,
    members: Vec<Member>,
    extra: Vec<String>,
}

/// A pseudo-random number for port picking (no dependency for this).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Linux's range for outgoing connections' local ports; servers' ports are picked below it, so
/// no outgoing connection can hold a server's port while that server is down for a restart.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// A port free on `ip`, held by a listener in `held` until all ports are chosen.
fn pick_port(ip: Ipv4Addr, held: &mut Vec<TcpListener>) -> u16 {
    // Above kazoo's harness ports (20000..20030), below the ephemeral range.
    let (lo, hi) = (21_000u16, ephemeral_low().min(32_768));
    if hi > lo + 1000 {
        for _ in 0..500 {
            let port = lo + (rand_u64() % u64::from(hi - lo)) as u16;
            if let Ok(l) = TcpListener::bind((ip, port)) {
                held.push(l);
                return port;
            }
        }
    }
    let l = TcpListener::bind((ip, 0)).expect("a free port");
    let port = l.local_addr().unwrap().port();
    held.push(l);
    port
}

/// Whether 127.0.0.2.. can be bound here.
fn loopback_aliases() -> bool {
    (2..=5u8).all(|n| TcpListener::bind((Ipv4Addr::new(127, 0, 0, n), 0)).is_ok())
}

impl Ensemble {
    /// Configures (does not start) `voters` voters with ids 1..=voters and `observers`
    /// observers after them. `extra` lines are appended to every zoo.cfg.
    pub fn new(name: &str, voters: usize, observers: usize, extra: &[&str]) -> Ensemble {
        let root = std::env::temp_dir().join(format!("paddock-ens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let aliases = loopback_aliases();
        let mut held = Vec::new();
        let mut members = Vec::new();
        for i in 0..voters + observers {
            let id = i as u64 + 1;
            let host = if aliases {
                Ipv4Addr::new(127, 0, 0, id as u8)
            } else {
                Ipv4Addr::LOCALHOST
            };
            members.push(Member {
                id,
                observer: i >= voters,
                host,
                client_port: pick_port(host, &mut held),
                quorum_port: pick_port(host, &mut held),
                election_port: pick_port(host, &mut held),
                dir: root.join(format!("s{id}")),
                child: None,
                starts: 0,
            });
        }
        drop(held);
        let ens = Ensemble {
            root,
            members,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for m in &ens.members {
            std::fs::create_dir_all(m.data_dir()).unwrap();
            std::fs::write(m.cfg_path(), ens.cfg_text(m.id)).unwrap();
            ens.set_myid(m.id, Some(&m.id.to_string()));
        }
        ens
    }

    /// The zoo.cfg this ensemble writes for server `id`.
    pub fn cfg_text(&self, id: u64) -> String {
        let m = self.member(id);
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("tickTime={TICK_MS}"));
        line("initLimit=10".into());
        line("syncLimit=5".into());
        line(format!("dataDir={}", m.data_dir().display()));
        line(format!("clientPort={}", m.client_port));
        line(format!("clientPortAddress={}", m.host));
        line("maxClientCnxns=0".into());
        // Sessions of 8 s outlive an election on a loaded machine (the default ceiling is 20
        // ticks, 4 s).
        line("maxSessionTimeout=10000".into());
        line("4lw.commands.whitelist=*".into());
        for o in &self.members {
            line(format!(
                "server.{}={}:{}:{}{}",
                o.id,
                o.host,
                o.quorum_port,
                o.election_port,
                if o.observer { ":observer" } else { "" }
            ));
        }
        if m.observer {
            line("peerType=observer".into());
        }
        for e in &self.extra {
            line(e.clone());
        }
        s
    }

    /// Replaces server `id`'s zoo.cfg.
    pub fn set_cfg(&self, id: u64, text: &str) {
        std::fs::write(self.member(id).cfg_path(), text).unwrap();
    }

    /// Writes `dataDir/myid` (`None` removes it).
    pub fn set_myid(&self, id: u64, myid: Option<&str>) {
        let p = self.member(id).data_dir().join("myid");
        match myid {
            Some(v) => std::fs::write(p, format!("{v}\n")).unwrap(),
            None => {
                let _ = std::fs::remove_file(p);
            }
        }
    }

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

    /// Ids of the servers started and not killed since.
    pub fn running(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    /// `host:port` of server `id`'s client port.
    pub fn addr(&self, id: u64) -> String {
        self.member(id).client_addr().to_string()
    }

    /// A connect string naming these servers.
    pub fn connect_string(&self, ids: &[u64]) -> String {
        ids.iter()
            .map(|&id| self.addr(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command that runs server `id`.
    pub fn command(&self, id: u64) -> Command {
        let m = self.member(id);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
        cmd.arg("server").arg(m.cfg_path()).stdin(Stdio::null());
        cmd
    }

    /// Starts server `id` (it must not be running).
    pub fn start(&mut self, id: u64) {
        assert!(
            self.member(id).child.is_none(),
            "server {id} is already running"
        );
        let mut cmd = self.command(id);
        let m = self.member_mut(id);
        m.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.log_path())
            .unwrap();
        writeln!(
            log,
            "===== ensemble test: start #{} of server {} =====",
            m.starts, m.id
        )
        .unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        m.child = Some(cmd.spawn().expect("start paddock server"));
    }

    /// Starts every server that is not running.
    pub fn start_all(&mut self) {
        for id in self.ids() {
            if self.member(id).child.is_none() {
                self.start(id);
            }
        }
    }

    /// SIGKILLs server `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        let m = self.member_mut(id);
        let mut c = m
            .child
            .take()
            .unwrap_or_else(|| panic!("server {id} is not running"));
        let _ = c.kill();
        let _ = c.wait();
        append_log(&m.log_path(), "===== ensemble test: SIGKILL =====");
    }

    /// Removes server `id`'s data directory entirely, then writes its myid again.
    pub fn wipe(&self, id: u64) {
        let m = self.member(id);
        assert!(m.child.is_none(), "wipe a running server {id}");
        std::fs::remove_dir_all(m.data_dir()).unwrap();
        std::fs::create_dir_all(m.data_dir()).unwrap();
        self.set_myid(id, Some(&id.to_string()));
    }

    /// Panics if a server that should be running has exited.
    pub fn check_alive(&mut self) {
        for m in &mut self.members {
            if let Some(c) = &mut m.child {
                if let Ok(Some(status)) = c.try_wait() {
                    m.child = None;
                    panic!(
                        "server {} exited on its own ({status}); its log:\n{}",
                        m.id,
                        tail(&m.log_path(), 40)
                    );
                }
            }
        }
    }

    /// Server `id`'s `srvr` answer.
    pub fn srvr(&self, id: u64) -> Srvr {
        match four_letter(self.member(id).client_addr(), "srvr") {
            Ok(out) => parse_srvr(&out),
            Err(e) => Srvr::Unreachable(e.to_string()),
        }
    }

    /// Waits until every running server reports a serving mode and exactly one is the leader;
    /// returns the modes. Panics (with every server's last answer) after `within`.
    pub fn wait_serving(&mut self, within: Duration) -> BTreeMap<u64, Mode> {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive();
            let answers: BTreeMap<u64, Srvr> = self
                .running()
                .into_iter()
                .map(|id| (id, self.srvr(id)))
                .collect();
            if let Some((id, _)) = answers
                .iter()
                .find(|(_, a)| a.mode() == Some(Mode::Standalone))
            {
                panic!("server {id} runs standalone although its zoo.cfg lists an ensemble");
            }
            let modes: BTreeMap<u64, Mode> = answers
                .iter()
                .filter_map(|(id, a)| a.mode().map(|m| (*id, m)))
                .collect();
            let leaders = modes.values().filter(|m| **m == Mode::Leader).count();
            if modes.len() == answers.len() && leaders == 1 {
                return modes;
            }
            if Instant::now() > deadline {
                panic!(
                    "the ensemble did not serve (every running server in a mode, one leader) \
                     within {within:?}; srvr answers: {answers:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until server `id` no longer serves (srvr says so, or refuses); returns the answer.
    pub fn wait_not_serving(&mut self, id: u64, within: Duration) -> Srvr {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive();
            let a = self.srvr(id);
            if a.mode().is_none() {
                return a;
            }
            if Instant::now() > deadline {
                panic!("server {id} still serves after {within:?}: {a:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The one leader among `modes`.
    pub fn leader_of(modes: &BTreeMap<u64, Mode>) -> u64 {
        let l: Vec<u64> = modes
            .iter()
            .filter(|(_, m)| **m == Mode::Leader)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(l.len(), 1, "exactly one leader: {modes:?}");
        l[0]
    }

    /// Runs server `id` with its current files, expecting it to refuse to start: returns its
    /// exit status and output. Panics if it is still running after `within`.
    pub fn run_expecting_exit(&self, id: u64, within: Duration) -> (ExitStatus, String) {
        let out = self.member(id).dir.join("refused.log");
        let f = std::fs::File::create(&out).unwrap();
        let mut cmd = self.command(id);
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let mut child = KillOnDrop(cmd.spawn().expect("start paddock server"));
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return (status, std::fs::read_to_string(&out).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.0.kill();
                let _ = child.0.wait();
                panic!(
                    "server {id} was expected to refuse its configuration but still runs after \
                     {within:?}; zoo.cfg:\n{}\noutput:\n{}",
                    std::fs::read_to_string(self.member(id).cfg_path()).unwrap_or_default(),
                    std::fs::read_to_string(&out).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The zxid of server `id`'s newest complete snapshot (`dataDir/snapshots/snap.<zxid>`,
    /// docs/storage.md), if any.
    pub fn newest_snapshot(&self, id: u64) -> Option<u64> {
        std::fs::read_dir(self.member(id).data_dir().join("snapshots"))
            .ok()?
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
            })
            .max()
    }

    /// Server `id`'s log so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.member(id).log_path()).unwrap_or_default()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let keep = std::env::var("PADDOCK_KEEP_ENSEMBLE").is_ok_and(|v| v == "1");
        if std::thread::panicking() {
            for m in &self.members {
                eprintln!(
                    "----- server {} ({}:{}, quorum {}, election {}{}): last lines of {} -----\n{}",
                    m.id,
                    m.host,
                    m.client_port,
                    m.quorum_port,
                    m.election_port,
                    if m.observer { ", observer" } else { "" },
                    m.log_path().display(),
                    tail(&m.log_path(), 60)
                );
            }
            eprintln!("ensemble files kept in {}", self.root.display());
        } else if keep {
            eprintln!("ensemble files kept in {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A child process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn append_log(path: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sends a four-letter word and reads the answer to EOF.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Reads `Mode:` and `Zxid:` from a `srvr` answer.
pub fn parse_srvr(out: &str) -> Srvr {
    let mode = out.lines().find_map(|l| l.strip_prefix("Mode:"));
    let mode = match mode.map(str::trim) {
        Some("leader") => Mode::Leader,
        Some("follower") => Mode::Follower,
        Some("observer") => Mode::Observer,
        Some("standalone") => Mode::Standalone,
        _ => return Srvr::NotServing(out.trim().to_string()),
    };
    let zxid = out
        .lines()
        .find_map(|l| l.strip_prefix("Zxid:"))
        .and_then(|z| u64::from_str_radix(z.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Srvr::Serving(mode, zxid)
}

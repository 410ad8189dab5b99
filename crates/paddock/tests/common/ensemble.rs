//! An ensemble of `paddock server` processes on this machine, configured as ZooKeeper's are:
//! the kit's [`paddock_testkit::ensemble`] with the tests' settings and panics for errors.
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

use paddock_testkit::ensemble::{self as kit, Launcher, Ports, Spec};
use paddock_testkit::fourlw;
pub use paddock_testkit::fourlw::{Mode, Srvr};
pub use paddock_testkit::logs::tail;
use paddock_testkit::process::KillOnDrop;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// zoo.cfg's tickTime for test ensembles.
pub const TICK_MS: u64 = 200;

/// Ensemble tests run one at a time: two ensembles electing on two shared cores would make
/// each other's timeouts fire.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub use kit::Member;

/// Some ensemble of servers; see the module doc.
pub struct Ensemble {
    pub root: PathBuf,
    kit: kit::Ensemble,
}

impl Ensemble {
    /// Configures (does not start) `voters` voters with ids 1..=voters and `observers`
    /// observers after them. `extra` lines are appended to every zoo.cfg.
    pub fn new(name: &str, voters: usize, observers: usize, extra: &[&str]) -> Ensemble {
        let root = std::env::temp_dir().join(format!("paddock-ens-{name}-{}", std::process::id()));
        let kit = kit::Ensemble::create(Spec {
            voters,
            observers,
            root,
            ports: Ports::Pick,
            head: vec![
                format!("tickTime={TICK_MS}"),
                "initLimit=10".into(),
                "syncLimit=5".into(),
            ],
            body: vec![
                "maxClientCnxns=0".into(),
                // Sessions of 8 s outlive an election on a loaded machine (the default ceiling
                // is 20 ticks, 4 s).
                "maxSessionTimeout=10000".into(),
                "4lw.commands.whitelist=*".into(),
            ],
            tail: extra.iter().map(|s| s.to_string()).collect(),
            launcher: Launcher::Paddock {
                bin: env!("CARGO_BIN_EXE_paddock").into(),
                env: vec![],
            },
            marker: "ensemble test".into(),
        })
        .expect("configure the ensemble");
        Ensemble {
            root: kit.root().to_owned(),
            kit,
        }
    }

    /// The zoo.cfg this ensemble writes for server `id`.
    pub fn cfg_text(&self, id: u64) -> String {
        self.kit.cfg_text(id)
    }

    /// Replaces server `id`'s zoo.cfg.
    pub fn set_cfg(&self, id: u64, text: &str) {
        self.kit.write_cfg(id, text).unwrap();
    }

    /// Writes `dataDir/myid` (`None` removes it).
    pub fn set_myid(&self, id: u64, myid: Option<&str>) {
        self.kit.write_myid(id, myid).unwrap();
    }

    pub fn member(&self, id: u64) -> &Member {
        self.kit.member(id)
    }

    /// Every server id.
    pub fn ids(&self) -> Vec<u64> {
        self.kit.ids()
    }

    /// Voter ids.
    pub fn voters(&self) -> Vec<u64> {
        self.kit.voters()
    }

    /// Ids of the servers started and not killed since.
    pub fn running(&self) -> Vec<u64> {
        self.kit.running()
    }

    /// `host:port` of server `id`'s client port.
    pub fn addr(&self, id: u64) -> String {
        self.kit.addr(id).to_string()
    }

    /// A connect string naming these servers.
    pub fn connect_string(&self, ids: &[u64]) -> String {
        self.kit.connect_string(ids)
    }

    /// The command that runs server `id`.
    pub fn command(&self, id: u64) -> Command {
        self.kit.command(id).unwrap()
    }

    /// Starts server `id` (it must not be running).
    pub fn start(&mut self, id: u64) {
        self.kit.start(id).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts every server that is not running.
    pub fn start_all(&mut self) {
        self.kit.start_all().unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGKILLs server `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        self.kit.kill(id).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Removes server `id`'s data directory entirely, then writes its myid again.
    pub fn wipe(&self, id: u64) {
        self.kit.wipe(id).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Panics if a server that should be running has exited.
    pub fn check_alive(&mut self) {
        self.kit.check_alive(40).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Server `id`'s `srvr` answer.
    pub fn srvr(&self, id: u64) -> Srvr {
        self.kit.srvr(id)
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

    /// The zxids in the names `<prefix><zxid>` of the files in server `id`'s `dataDir/<sub>`
    /// (docs/storage.md).
    fn zxid_files(&self, id: u64, sub: &str, prefix: &str) -> Vec<u64> {
        let Ok(dir) = std::fs::read_dir(self.member(id).data_dir().join(sub)) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix(prefix)?, 16).ok()
        })
        .collect()
    }

    /// The zxid of server `id`'s newest complete snapshot (`dataDir/snapshots/snap.<zxid>`),
    /// if any.
    pub fn newest_snapshot(&self, id: u64) -> Option<u64> {
        self.zxid_files(id, "snapshots", "snap.").into_iter().max()
    }

    /// The first zxid of server `id`'s oldest log segment (`dataDir/log/log.<zxid>`), if any.
    pub fn oldest_segment(&self, id: u64) -> Option<u64> {
        self.zxid_files(id, "log", "log.").into_iter().min()
    }

    /// Server `id`'s log so far.
    pub fn log(&self, id: u64) -> String {
        paddock_testkit::logs::read(&self.member(id).log_path())
    }
}

/// Sends a four-letter word (1 s to connect, 2 s to answer) and reads the answer to EOF.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> std::io::Result<String> {
    fourlw::ask(
        addr,
        cmd,
        Some((Duration::from_secs(1), Duration::from_secs(2))),
    )
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.kit.kill_all();
        let keep = std::env::var("PADDOCK_KEEP_ENSEMBLE").is_ok_and(|v| v == "1");
        if std::thread::panicking() {
            for m in self.kit.members() {
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
            self.kit.remove_dirs();
        }
    }
}

//! The two servers under comparison: one Paddock and one Apache ZooKeeper 3.8, configured alike.

use crate::common::{Client, Server};
use paddock_proto::Request;
use paddock_testkit::ports;
use paddock_testkit::zookeeper::{self, Scripted};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Short ticks make session expiry testable in about a second.
pub const TICK_MS: u32 = 200;

/// Both servers run their container/TTL sweeper on their own clock, so a sweep could land
/// between any two steps on one server and not the other. A day-long interval keeps it out of
/// the comparison; containers and TTL nodes are still created, read and deleted explicitly.
const SWEEP_INTERVAL_MS: &str = "86400000";

/// The ports this test may use (shared machine).
const PORTS: std::ops::Range<u16> = 24000..25000;

/// A free port in `PORTS`, starting the scan at a per-process offset so that concurrent runs
/// rarely collide.
pub fn free_port(skip: &[u16]) -> u16 {
    ports::free_port_in(PORTS, skip).expect("no free port in 24000-24999")
}

/// Waits until a server completes a session handshake, then closes that session: ZooKeeper
/// answers `ruok` a moment before it accepts sessions.
pub fn wait_for_sessions(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(mut c) = Client::attach(addr, 0, vec![0; 16], 4000) {
            if c.timeout > 0 {
                c.req(&Request::CloseSession);
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{addr} accepts no sessions after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts Paddock with the same settings as the ZooKeeper below.
pub fn start_paddock(port: u16) -> Server {
    let tick = TICK_MS.to_string();
    Server::start_on(
        port,
        &[
            ("tickTime", tick.as_str()),
            ("extendedTypesEnabled", "true"),
            ("maxClientCnxns", "0"),
            ("forceSync", "no"),
            ("znode.container.checkIntervalMs", SWEEP_INTERVAL_MS),
        ],
    )
}

/// A ZooKeeper started by scripts/start-zookeeper.sh, stopped by its PID on drop.
pub struct ZooKeeper {
    pub addr: SocketAddr,
    pid: u32,
    dir: PathBuf,
}

impl ZooKeeper {
    pub fn start(port: u16) -> Result<ZooKeeper, String> {
        let dir = std::env::temp_dir().join(format!("paddock-diff-zk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pid = Scripted {
            script: zookeeper::start_script(Path::new(env!("CARGO_MANIFEST_DIR"))),
            port,
            dir: dir.clone(),
            lines: vec![
                format!("tickTime={TICK_MS}"),
                "extendedTypesEnabled=true".into(),
                "maxClientCnxns=0".into(),
                // The differential test needs no durability; fsync per write would dominate
                // its time.
                "forceSync=no".into(),
            ],
            // ZooKeeper reads the sweeper interval only as a JVM system property, which the
            // script has no option for; the JVM picks this variable up by itself.
            env: vec![(
                "JAVA_TOOL_OPTIONS".into(),
                format!("-Dznode.container.checkIntervalMs={SWEEP_INTERVAL_MS}"),
            )],
            timeout_s: None,
        }
        .start()
        .map_err(|e| e.to_string())?;
        Ok(ZooKeeper {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pid,
            dir,
        })
    }

    /// ZooKeeper's log, for reports.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("zookeeper.log")
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        zookeeper::stop(self.pid, Duration::from_secs(10));
        if std::env::var_os("DIFF_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

//! The two servers under comparison: one Paddock and one Apache ZooKeeper 3.8, configured alike.

use crate::common::{Client, Server};
use paddock_proto::Request;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
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
    let span = PORTS.end - PORTS.start;
    let start = (std::process::id() % span as u32) as u16;
    (0..span)
        .map(|i| PORTS.start + (start + i * 7) % span)
        .find(|p| !skip.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("no free port in 24000-24999")
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start-zookeeper.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(port.to_string())
            .arg(&dir)
            .arg(format!("tickTime={TICK_MS}"))
            .arg("extendedTypesEnabled=true")
            .arg("maxClientCnxns=0")
            // The differential test needs no durability; fsync per write would dominate its time.
            .arg("forceSync=no")
            // ZooKeeper reads the sweeper interval only as a JVM system property, which the
            // script has no option for; the JVM picks this variable up by itself.
            .env(
                "JAVA_TOOL_OPTIONS",
                format!("-Dznode.container.checkIntervalMs={SWEEP_INTERVAL_MS}"),
            )
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("no PID from the script: {:?}", out.stdout))?;
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
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let proc_dir = PathBuf::from(format!("/proc/{}", self.pid));
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if std::env::var_os("DIFF_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

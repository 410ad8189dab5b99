//! Apache ZooKeeper 3.8 from Debian's package (jars in /usr/share/java): the reference server.

use crate::{process, Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where Debian's zookeeper package puts zookeeper.jar and its dependencies.
pub const JARS: &str = "/usr/share/java";

/// The main class of a ZooKeeper server, standalone or in an ensemble.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Whether Debian's ZooKeeper is installed in `jars`.
pub fn installed(jars: &Path) -> bool {
    jars.join("zookeeper.jar").exists()
}

/// An [`Error::Missing`] unless ZooKeeper is installed in `jars`.
pub fn require(jars: &Path) -> Result<()> {
    if installed(jars) {
        return Ok(());
    }
    Err(Error::Missing {
        path: jars.join("zookeeper.jar"),
        hint: "install Debian's zookeeper package (scripts/install-deps.sh)",
    })
}

/// The classpath of Debian's ZooKeeper: zookeeper.jar's manifest Class-Path lacks a few jars
/// (netty-codec & co, needed as soon as Netty or TLS is configured; see
/// scripts/start-zookeeper.sh).
pub fn classpath(jars: &Path) -> String {
    [
        "zookeeper.jar",
        "netty-codec.jar",
        "netty-resolver.jar",
        "netty-transport-native-unix-common.jar",
        "slf4j-log4j12.jar",
        "log4j-1.2.jar",
    ]
    .iter()
    .map(|j| jars.join(j).display().to_string())
    .collect::<Vec<_>>()
    .join(":")
}

/// A log4j.properties sending everything at `level` (`INFO`, `WARN`) and above to
/// `${zookeeper.log.dir}/zookeeper.log`.
pub fn log4j_properties(level: &str) -> String {
    format!(
        "log4j.rootLogger={level}, FILE\nlog4j.appender.FILE=org.apache.log4j.FileAppender\n\
         log4j.appender.FILE.File=${{zookeeper.log.dir}}/zookeeper.log\n\
         log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
         log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} - %-5p [%t:%C{{1}}@%L] - %m%n\n"
    )
}

/// Writes `dir/log4j.properties` at `level`.
pub fn write_log4j(dir: &Path, level: &str) -> Result<()> {
    let p = dir.join("log4j.properties");
    std::fs::write(&p, log4j_properties(level))
        .map_err(Error::io(format!("cannot write {}", p.display())))
}

/// The java command running a ZooKeeper server on `cfg`, logging through
/// `dir/log4j.properties` (see [`write_log4j`]) into `dir/zookeeper.log`. Output and stdin are
/// the caller's to set.
pub fn java_command(jars: &Path, jvm_opts: &[String], dir: &Path, cfg: &Path) -> Command {
    let mut c = Command::new("java");
    c.args(jvm_opts);
    c.arg("-cp").arg(classpath(jars));
    c.arg(format!("-Dzookeeper.log.dir={}", dir.display()));
    c.arg(format!(
        "-Dlog4j.configuration=file:{}",
        dir.join("log4j.properties").display()
    ));
    c.arg(MAIN_CLASS).arg(cfg);
    c
}

/// scripts/start-zookeeper.sh of the workspace whose crate is at `manifest_dir`.
pub fn start_script(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("../../scripts/start-zookeeper.sh")
}

/// A standalone ZooKeeper started by scripts/start-zookeeper.sh (which writes `dir/zoo.cfg`
/// with `lines`, starts the JVM detached and waits until it answers `ruok` and serves).
pub struct Scripted {
    /// The script.
    pub script: PathBuf,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// Its directory (zoo.cfg, zookeeper.log, data).
    pub dir: PathBuf,
    /// zoo.cfg lines after the script's own.
    pub lines: Vec<String>,
    /// Extra environment for the script and the JVM (e.g. `JAVA_TOOL_OPTIONS`).
    pub env: Vec<(String, String)>,
    /// Run under timeout(1) with this many seconds.
    pub timeout_s: Option<u32>,
}

impl Scripted {
    /// Runs the script and returns the JVM's pid (the JVM is not our child: stop it with
    /// [`process::signal`]).
    pub fn start(&self) -> Result<u32> {
        let mut cmd = match self.timeout_s {
            Some(s) => {
                let mut c = Command::new("timeout");
                c.arg(s.to_string()).arg("bash");
                c
            }
            None => Command::new("bash"),
        };
        cmd.arg(&self.script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .args(&self.lines)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        let script = self.script.display().to_string();
        let out = cmd
            .output()
            .map_err(Error::io(format!("cannot run {script}")))?;
        if !out.status.success() {
            return Err(Error::Script {
                script,
                detail: format!("{}:\n{}", out.status, String::from_utf8_lossy(&out.stderr)),
            });
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid = stdout
            .trim()
            .lines()
            .last()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .ok_or_else(|| Error::Script {
                script,
                detail: format!("no PID on its output: {stdout:?}"),
            })?;
        tracing::debug!(port = self.port, pid, "zookeeper serving");
        Ok(pid)
    }
}

/// Stops a ZooKeeper by pid: SIGTERM, then up to `within` for it to go.
pub fn stop(pid: u32, within: Duration) {
    process::signal(pid, "-TERM");
    process::wait_gone(pid, within);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classpath_and_log4j() {
        let cp = classpath(Path::new("/j"));
        assert!(cp.starts_with("/j/zookeeper.jar:/j/netty-codec.jar:"));
        assert!(cp.ends_with(":/j/log4j-1.2.jar"));
        let l = log4j_properties("WARN");
        assert!(l.starts_with("log4j.rootLogger=WARN, FILE\n"));
        assert!(l.contains("File=${zookeeper.log.dir}/zookeeper.log\n"));
        assert!(l.contains("%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n"));
    }
}

//! A standalone `paddock server` configured by `-D` properties.

use crate::{logs, process, Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The paddock binary a test should run: `$PADDOCK_BIN`, else `paddock` in the test
/// executable's profile directory (`target/<profile>/deps/x` -> `target/<profile>/paddock`).
pub fn binary_next_to_test() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PADDOCK_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(Error::io("test executable path"))?;
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or_else(|| Error::Invalid(format!("{} has no target/<profile>", exe.display())))?
        .join("paddock");
    if !bin.exists() {
        return Err(Error::Missing {
            path: bin,
            hint: "build it first (cargo build --release -p paddock), or set PADDOCK_BIN",
        });
    }
    Ok(bin)
}

/// Where a server's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Nowhere.
    Null,
    /// stderr appended to this file, stdout discarded (Paddock logs to stderr).
    StderrTo(PathBuf),
    /// Both appended to this file.
    BothTo(PathBuf),
}

/// How to run one standalone Paddock: `paddock server -D...` with its client port and data
/// directory, further properties, environment and output.
#[derive(Debug, Clone)]
pub struct Standalone {
    /// The paddock binary.
    pub bin: PathBuf,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// dataDir (created by [`Standalone::spawn`]).
    pub data_dir: PathBuf,
    /// `-D` arguments after clientPort and dataDir, as `key=value`.
    pub props: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where its output goes.
    pub output: Output,
}

impl Standalone {
    /// Paddock on `port` with its data in `data_dir`, output discarded.
    pub fn new(bin: impl Into<PathBuf>, port: u16, data_dir: impl Into<PathBuf>) -> Standalone {
        Standalone {
            bin: bin.into(),
            port,
            data_dir: data_dir.into(),
            props: Vec::new(),
            env: Vec::new(),
            output: Output::Null,
        }
    }

    /// Adds `-D{key}={value}` (`key` as given: `zookeeper.tickTime`, `tickTime` and
    /// `znode.container.checkIntervalMs` all work).
    pub fn prop(mut self, key: &str, value: impl std::fmt::Display) -> Standalone {
        self.props.push(format!("{key}={value}"));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Standalone {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets where output goes.
    pub fn output(mut self, output: Output) -> Standalone {
        self.output = output;
        self
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Creates the data directory and starts the process (does not wait for it).
    pub fn spawn(&self) -> Result<Child> {
        if !self.bin.exists() {
            return Err(Error::Missing {
                path: self.bin.clone(),
                hint: "cargo build --release -p paddock",
            });
        }
        std::fs::create_dir_all(&self.data_dir).map_err(Error::io(format!(
            "cannot create {}",
            self.data_dir.display()
        )))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg(format!("-Dzookeeper.clientPort={}", self.port))
            .arg(format!("-Dzookeeper.dataDir={}", self.data_dir.display()))
            // Tests start many servers on one host: the AdminServer's default port 8080 would
            // be taken by the first; a test that wants it says so in its properties.
            .arg("-Dzookeeper.admin.enableServer=false");
        for p in &self.props {
            cmd.arg(format!("-D{p}"));
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null());
        match &self.output {
            Output::Null => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Output::StderrTo(p) => {
                cmd.stdout(Stdio::null()).stderr(logs::append(p)?);
            }
            Output::BothTo(p) => {
                let log = logs::append(p)?;
                let out = log
                    .try_clone()
                    .map_err(Error::io(format!("cannot share {}", p.display())))?;
                cmd.stdout(out).stderr(log);
            }
        }
        cmd.spawn()
            .map_err(Error::io(format!("cannot start {}", self.bin.display())))
    }

    /// Starts the server and waits (polling every `poll`) until it listens; a server that does
    /// not listen within `within` is killed. The caller owns (and stops) the process.
    pub fn start(&self, within: Duration, poll: Duration) -> Result<Child> {
        let mut child = self.spawn()?;
        if !process::wait_listening(self.addr(), within, poll) {
            process::kill(&mut child);
            return Err(Error::NotUp {
                who: format!("paddock on {}", self.addr()),
                within,
            });
        }
        tracing::debug!(addr = %self.addr(), pid = child.id(), "paddock listening");
        Ok(child)
    }
}

/// `-D` property names as the paddock tests write them: a bare ZooKeeper key (`tickTime`) or
/// one of the `znode.*`/`4lw.*` keys gets the `zookeeper.` prefix, a dotted system property
/// (`zookeeper.x`, `jute.maxbuffer`) is passed as is.
pub fn zk_prop(key: &str) -> String {
    if key.contains('.') && !key.starts_with("znode") && !key.starts_with("4lw") {
        key.to_string()
    } else {
        format!("zookeeper.{key}")
    }
}

/// A fresh directory `<tmp>/<name>` (removed first if left over).
pub fn fresh_dir(name: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(Error::io(format!("cannot create {}", d.display())))?;
    Ok(d)
}

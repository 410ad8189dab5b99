//! The one harness that tests and `paddock bench` share for running servers on this machine:
//! Paddock or Apache ZooKeeper 3.8 (Debian's package), standalone or as an ensemble on
//! 127.0.0.N loopback aliases, with free ports, four-letter words, `srvr`/`mntr` parsing and
//! log tails.
//!
//! Everything here is blocking std code: tests call it from plain `#[test]`s, and async callers
//! (the recipe tests, `paddock bench`) only start and stop processes through it. Failures are
//! [`Error`]s; tests turn them into panics, the bench into `anyhow` errors. Nothing here prints:
//! a caller decides what to show (for example [`logs::tail`] on a failure).

pub mod ensemble;
pub mod fourlw;
pub mod logs;
pub mod paddock;
pub mod ports;
pub mod process;
pub mod tmpfs;
pub mod zookeeper;

use std::path::PathBuf;
use std::time::Duration;

/// Why the kit could not start, stop or ask a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file or program.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something the kit runs is not installed or not built.
    #[error("{} is missing: {hint}", path.display())]
    Missing {
        /// The absent file.
        path: PathBuf,
        /// How to get it.
        hint: &'static str,
    },
    /// A port the caller chose is taken.
    #[error("port {addr} is in use (a server left over from another run? choose other ports)")]
    PortInUse {
        /// `host:port`.
        addr: String,
    },
    /// The server did not listen (or serve) in time.
    #[error("{who} did not come up within {within:?}")]
    NotUp {
        /// Which server.
        who: String,
        /// How long was waited.
        within: Duration,
    },
    /// The server process ended on its own.
    #[error("{who} exited on its own ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// Which server.
        who: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// scripts/start-zookeeper.sh failed or said something unexpected.
    #[error("{script} failed: {detail}")]
    Script {
        /// The script's path.
        script: String,
        /// Its status and error output.
        detail: String,
    },
    /// A request the kit cannot carry out (an ensemble member that is not there, a server
    /// started twice, ...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// An [`Error::Io`] saying what was done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// The kit's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

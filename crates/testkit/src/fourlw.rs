//! Four-letter words (`srvr`, `mntr`, `ruok`, `envi`, ...) and what their answers say.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends a four-letter word and reads the answer until the server closes the connection. With
/// `limits`, connecting waits at most `.0` and each read at most `.1` (a stopped or overloaded
/// server then gives an error instead of hanging the caller).
pub fn ask(
    addr: SocketAddr,
    word: &str,
    limits: Option<(Duration, Duration)>,
) -> std::io::Result<String> {
    let mut s = match limits {
        Some((connect, read)) => {
            let s = TcpStream::connect_timeout(&addr, connect)?;
            s.set_read_timeout(Some(read))?;
            s
        }
        None => TcpStream::connect(addr)?,
    };
    s.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What `srvr` says a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// `Mode: leader`.
    Leader,
    /// `Mode: follower`.
    Follower,
    /// `Mode: observer`.
    Observer,
    /// `Mode: standalone` (wrong for an ensemble member).
    Standalone,
}

impl Mode {
    /// As `srvr` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
        }
    }
}

/// A `srvr` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Srvr {
    /// `Mode: ...` and the `Zxid: 0x...` line (0 when absent).
    Serving(Mode, u64),
    /// Anything else it answered (e.g. "This ZooKeeper instance is not currently serving
    /// requests").
    NotServing(String),
    /// No answer: connection refused, reset or timed out.
    Unreachable(String),
}

impl Srvr {
    /// The mode of a serving server.
    pub fn mode(&self) -> Option<Mode> {
        match self {
            Srvr::Serving(m, _) => Some(*m),
            _ => None,
        }
    }
}

/// The `Mode:` line of a `srvr` answer.
pub fn parse_mode(srvr: &str) -> Option<Mode> {
    match srvr.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim() {
        "leader" => Some(Mode::Leader),
        "follower" => Some(Mode::Follower),
        "observer" => Some(Mode::Observer),
        "standalone" => Some(Mode::Standalone),
        _ => None,
    }
}

/// Reads `Mode:` and `Zxid:` from a `srvr` answer.
pub fn parse_srvr(out: &str) -> Srvr {
    let Some(mode) = parse_mode(out) else {
        return Srvr::NotServing(out.trim().to_string());
    };
    let zxid = out
        .lines()
        .find_map(|l| l.strip_prefix("Zxid:"))
        .and_then(|z| u64::from_str_radix(z.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Srvr::Serving(mode, zxid)
}

/// `srvr` asked of `addr` with the ensemble's limits (1 s to connect, 2 s to answer).
pub fn srvr(addr: SocketAddr) -> Srvr {
    match ask(
        addr,
        "srvr",
        Some((Duration::from_secs(1), Duration::from_secs(2))),
    ) {
        Ok(out) => parse_srvr(&out),
        Err(e) => Srvr::Unreachable(e.to_string()),
    }
}

/// A `key value` line of a `mntr` answer (tab or spaces between), as a number.
pub fn mntr_value(mntr: &str, key: &str) -> Option<i64> {
    mntr.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr_and_mntr() {
        let s = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000002\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(s), Some(Mode::Follower));
        assert_eq!(parse_srvr(s), Srvr::Serving(Mode::Follower, 0x1_0000_0002));
        assert_eq!(parse_mode("Mode: leader\n"), Some(Mode::Leader));
        let idle = "This ZooKeeper instance is not currently serving requests\n";
        assert_eq!(parse_mode(idle), None);
        assert_eq!(parse_srvr(idle), Srvr::NotServing(idle.trim().to_string()));
        let m = "zk_version\t3.8.0\nzk_synced_followers\t2\nzk_synced_observers 1\n";
        assert_eq!(mntr_value(m, "zk_synced_followers"), Some(2));
        assert_eq!(mntr_value(m, "zk_synced_observers"), Some(1));
        assert_eq!(mntr_value(m, "zk_learners"), None);
    }
}

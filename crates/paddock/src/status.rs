//! `paddock status`: what `zkServer.sh status` tells about one server, for a whole ensemble.
//!
//! Each listed server is asked `srvr` (the four-letter word every ZooKeeper and Paddock server
//! allows by default) on its client port, all at once. The table gives each one's mode, last
//! zxid and how far it is behind the leader; the exit status is 0 when a quorum serves (a
//! leader, and more than half of the voters that answered or not, observers aside), 1 when it
//! does not, so scripts and runbooks can wait on it.

use anyhow::Result;
use clap::Parser;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "paddock status",
    about = "The mode, zxid and lag of each server, and whether a quorum serves (exit 0) or not (exit 1)"
)]
struct Args {
    /// The servers, as a client's connect string (host:port,...).
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// How long to wait for each server, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one server said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Serving, in this mode (leader, follower, observer, standalone, read-only), at this zxid.
    Serving { mode: String, zxid: u64 },
    /// Up, but not serving (no quorum yet, or cut off from it).
    NotServing,
    /// No answer: the reason.
    Unreachable(String),
}

/// Parses `srvr` output.
fn parse_srvr(text: &str) -> Answer {
    if text.contains("not currently serving") {
        return Answer::NotServing;
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let mode = field("Mode:");
    let zxid =
        field("Zxid:").and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok());
    match (mode, zxid) {
        (Some(mode), Some(zxid)) => Answer::Serving { mode, zxid },
        _ => Answer::Unreachable(format!(
            "an answer that is not srvr's: {:?}",
            text.chars().take(80).collect::<String>()
        )),
    }
}

fn ask(server: &str, timeout: Duration) -> Answer {
    let addr = match server.to_socket_addrs() {
        Ok(mut a) => match a.next() {
            Some(a) => a,
            None => return Answer::Unreachable("no address".into()),
        },
        Err(e) => return Answer::Unreachable(e.to_string()),
    };
    let run = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"srvr")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    match run() {
        Ok(text) => parse_srvr(&text),
        Err(e) => Answer::Unreachable(e.to_string()),
    }
}

/// The verdict: whether a quorum serves.
fn quorum(answers: &[Answer]) -> bool {
    fn mode(a: &Answer) -> Option<&str> {
        match a {
            Answer::Serving { mode, .. } => Some(mode.as_str()),
            _ => None,
        }
    }
    if answers.iter().any(|a| mode(a) == Some("standalone")) {
        return true;
    }
    let leaders = answers.iter().filter(|a| mode(a) == Some("leader")).count();
    let observers = answers
        .iter()
        .filter(|a| mode(a) == Some("observer"))
        .count();
    let voters = answers.len() - observers;
    let serving = answers
        .iter()
        .filter(|a| matches!(mode(a), Some("leader" | "follower")))
        .count();
    leaders == 1 && serving * 2 > voters
}

pub fn main(args: &[String]) -> Result<()> {
    let args = Args::try_parse_from(
        std::iter::once("paddock status".to_owned()).chain(crate::argv::normalise(args)),
    )
    .unwrap_or_else(|e| e.exit());
    let servers = crate::argv::servers(&args.server)?;
    let timeout = Duration::from_millis(args.timeout.max(1));
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let asks: Vec<_> = servers
            .iter()
            .map(|srv| s.spawn(move || ask(srv, timeout)))
            .collect();
        asks.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Answer::Unreachable("panicked".into()))
            })
            .collect()
    });
    let leader_zxid = answers.iter().find_map(|a| match a {
        Answer::Serving { mode, zxid } if mode == "leader" || mode == "standalone" => Some(*zxid),
        _ => None,
    });
    let lag = |zxid: u64| leader_zxid.map(|l| l.saturating_sub(zxid));
    let ok = quorum(&answers);
    if args.json {
        let rows: Vec<serde_json::Value> = servers
            .iter()
            .zip(&answers)
            .map(|(srv, a)| match a {
                Answer::Serving { mode, zxid } => serde_json::json!({
                    "server": srv, "mode": mode, "zxid": format!("0x{zxid:x}"), "lag": lag(*zxid),
                }),
                Answer::NotServing => {
                    serde_json::json!({"server": srv, "mode": "not serving"})
                }
                Answer::Unreachable(e) => {
                    serde_json::json!({"server": srv, "mode": "unreachable", "error": e})
                }
            })
            .collect();
        println!("{}", serde_json::json!({"servers": rows, "quorum": ok}));
    } else {
        println!("{:<24} {:<12} {:<20} LAG", "SERVER", "MODE", "ZXID");
        for (srv, a) in servers.iter().zip(&answers) {
            match a {
                Answer::Serving { mode, zxid } => println!(
                    "{srv:<24} {mode:<12} {:<20} {}",
                    format!("0x{zxid:x}"),
                    lag(*zxid).map_or("-".to_owned(), |l| l.to_string())
                ),
                Answer::NotServing => println!("{srv:<24} {:<12} {:<20} -", "not serving", "-"),
                Answer::Unreachable(e) => {
                    println!("{srv:<24} {:<12} {:<20} - ({e})", "unreachable", "-")
                }
            }
        }
        let serving = answers
            .iter()
            .filter(|a| matches!(a, Answer::Serving { .. }))
            .count();
        println!(
            "{serving} of {} serving; quorum: {}",
            servers.len(),
            if ok { "yes" } else { "no" }
        );
    }
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(mode: &str) -> Answer {
        Answer::Serving {
            mode: mode.into(),
            zxid: 5,
        }
    }

    #[test]
    fn reads_srvr() {
        let text = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nReceived: 3\n\
                    Sent: 2\nConnections: 1\nOutstanding: 0\nZxid: 0x100000007\nMode: follower\n\
                    Node count: 5\n";
        assert_eq!(
            parse_srvr(text),
            Answer::Serving {
                mode: "follower".into(),
                zxid: 0x1_0000_0007
            }
        );
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            Answer::NotServing
        );
        assert!(matches!(parse_srvr("ruok"), Answer::Unreachable(_)));
    }

    #[test]
    fn a_quorum_needs_a_leader_and_a_majority_of_voters() {
        let down = || Answer::Unreachable("refused".into());
        assert!(quorum(&[serving("leader"), serving("follower"), down()]));
        assert!(!quorum(&[serving("leader"), down(), down()]));
        assert!(!quorum(&[serving("follower"), serving("follower"), down()]));
        assert!(!quorum(&[Answer::NotServing, Answer::NotServing, down()]));
        // Observers do not vote: one leader and one follower of three voters is a quorum.
        assert!(quorum(&[
            serving("leader"),
            serving("follower"),
            down(),
            serving("observer")
        ]));
        assert!(quorum(&[serving("standalone")]));
    }
}

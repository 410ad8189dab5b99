//! Failover time: clients write one setData at a time in a loop while the leader is SIGKILLed;
//! for each client, the time from the kill to the acknowledgement of its first write issued
//! after the kill, reconnection included.
//!
//! Each client is one session (paddock-bench's `Conn`) with the whole connect string, starting
//! on a different server (so one client sits on the leader). When its connection drops it walks
//! the list from the next server on, reattaching the same session (ConnectRequest with the
//! session id, password and the last zxid it saw), as ZooKeeper's clients do but without the
//! Java client's random reconnect delay: after a full pass over the servers has failed it
//! pauses `retry_pause` and walks again. If a server says the session expired it opens a new
//! one (the outcome says so). While a write waits, it pings every third of the session
//! timeout and gives the connection up after two thirds without a byte, as ZooKeeper's clients
//! do; nothing else cuts a wait short.
//!
//! The kill's instant T0 is taken right before the kill system call; every write's issue and
//! acknowledgement instants are taken on the same monotonic clock (`Instant`), so T1 - T0 is
//! measured, not polled.

use crate::cluster::{role_of, Role};
use crate::conn::{Conn, Handshake, SessionAsk};
use crate::gen;
use crate::report::{json_num, json_str};
use crate::runner::err_name;
use crate::workload::{ensure_node, ROOT};
use anyhow::{bail, Context, Result};
use paddock_proto::{op, CreateMode};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Knobs of the failover clients.
#[derive(Debug, Clone)]
pub struct FailoverParams {
    /// Limit for one connection attempt (TCP connect, and again the handshake's answer).
    pub attempt_timeout: Duration,
    /// Pause after a full pass over the servers failed.
    pub retry_pause: Duration,
    /// A client whose write is not acknowledged this long after the kill has failed.
    pub limit: Duration,
    /// Session timeout asked for (ms).
    pub session_timeout_ms: i32,
    /// Writes every client must have acknowledged before the kill.
    pub warm_writes: usize,
    /// Clients (0: one per server); client i starts on server i modulo their number.
    pub clients: usize,
    /// What happens to the leader, for the report: "killed", or "handed over" for a planned
    /// leadership transfer.
    pub event: &'static str,
}

impl Default for FailoverParams {
    fn default() -> Self {
        FailoverParams {
            attempt_timeout: Duration::from_secs(2),
            retry_pause: Duration::from_millis(20),
            limit: Duration::from_secs(30),
            session_timeout_ms: 30_000,
            warm_writes: 20,
            clients: 0,
            event: "killed",
        }
    }
}

/// Something a failover client did, with when.
#[derive(Debug, Clone)]
pub enum Ev {
    /// A session is open on `server`.
    Connected {
        /// When the handshake was answered.
        at: Instant,
        /// Which server.
        server: SocketAddr,
        /// The session id.
        session: i64,
        /// A new session (the first, or after an expiry) rather than the same one reattached.
        new_session: bool,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// When.
        at: Instant,
        /// Which server.
        server: SocketAddr,
        /// Why.
        why: String,
    },
    /// A server said the session had expired.
    Expired {
        /// When.
        at: Instant,
        /// Which server said so.
        server: SocketAddr,
    },
    /// The connection was lost.
    Disconnected {
        /// When it was noticed.
        at: Instant,
        /// Which server.
        server: SocketAddr,
        /// How.
        why: String,
    },
    /// A setData was acknowledged.
    Ack {
        /// When the request was written.
        issued: Instant,
        /// When the reply was read.
        acked: Instant,
        /// Through which server.
        server: SocketAddr,
    },
    /// A setData was answered with an error.
    ErrReply {
        /// When the reply was read.
        at: Instant,
        /// Through which server.
        server: SocketAddr,
        /// The error code.
        code: i32,
    },
}

type Log = Rc<RefCell<Vec<Ev>>>;

/// One failover client: setData on `path` one at a time until `stop` turns true.
async fn client(
    hosts: Vec<SocketAddr>,
    path: String,
    p: FailoverParams,
    log: Log,
    mut stop: watch::Receiver<bool>,
) {
    let n = hosts.len();
    let body = gen::set_data_body(&path, b"failover");
    let mut ask = SessionAsk {
        timeout_ms: p.session_timeout_ms,
        ..SessionAsk::default()
    };
    let mut conn: Option<(Conn, SocketAddr)> = None;
    let mut next = 0usize;
    let push = |e: Ev| log.borrow_mut().push(e);
    'outer: while !*stop.borrow() {
        if conn.is_none() {
            let mut k = 0;
            while k < n {
                let addr = hosts[(next + k) % n];
                let attempt = tokio::select! {
                    r = Conn::handshake(addr, &ask, p.attempt_timeout) => r,
                    _ = stop.changed() => break 'outer,
                };
                match attempt {
                    Ok(Handshake::Open(c)) => {
                        push(Ev::Connected {
                            at: Instant::now(),
                            server: addr,
                            session: c.session_id,
                            new_session: c.session_id != ask.session_id,
                        });
                        ask.session_id = c.session_id;
                        ask.passwd = c.passwd.clone();
                        next = (next + k) % n;
                        conn = Some((c, addr));
                        break;
                    }
                    Ok(Handshake::Expired) => {
                        push(Ev::Expired {
                            at: Instant::now(),
                            server: addr,
                        });
                        if ask.session_id == 0 {
                            k += 1;
                        }
                        // Ask the same server for a new session.
                        ask.session_id = 0;
                        ask.passwd = vec![0; 16];
                    }
                    Ok(Handshake::Closed) => {
                        push(Ev::ConnectFailed {
                            at: Instant::now(),
                            server: addr,
                            why: "closed without answering the handshake".into(),
                        });
                        k += 1;
                    }
                    Err(e) => {
                        push(Ev::ConnectFailed {
                            at: Instant::now(),
                            server: addr,
                            why: format!("{e:#}"),
                        });
                        k += 1;
                    }
                }
            }
            if conn.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(p.retry_pause) => {}
                    _ = stop.changed() => break 'outer,
                }
                continue;
            }
        }
        let Some((c, server)) = conn.as_mut() else {
            continue;
        };
        let server = *server;
        let timeout = Duration::from_millis(c.timeout_ms.max(300) as u64);
        let (ping_every, read_timeout) = (timeout / 3, timeout * 2 / 3);
        let issued = Instant::now();
        let xid = c.push(op::SET_DATA, &body);
        let mut lost: Option<String> = None;
        if let Err(e) = c.flush().await {
            lost = Some(format!("write failed: {e}"));
        }
        let mut last_send = issued;
        let mut last_recv = issued;
        while lost.is_none() {
            tokio::select! {
                r = c.recv() => match r {
                    Ok(r) => {
                        last_recv = Instant::now();
                        if r.head.zxid > ask.last_zxid_seen {
                            ask.last_zxid_seen = r.head.zxid;
                        }
                        if r.head.xid == xid {
                            if r.head.err == 0 {
                                push(Ev::Ack { issued, acked: last_recv, server });
                            } else {
                                push(Ev::ErrReply { at: last_recv, server, code: r.head.err });
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            break;
                        } else if r.head.xid >= 0 {
                            lost = Some(format!("reply out of order: xid {} for {xid}", r.head.xid));
                        }
                    }
                    Err(e) => lost = Some(format!("{e:#}")),
                },
                _ = tokio::time::sleep_until((last_send + ping_every).into()) => {
                    c.push_ping();
                    if let Err(e) = c.flush().await {
                        lost = Some(format!("ping failed: {e}"));
                    }
                    last_send = Instant::now();
                }
                _ = tokio::time::sleep_until((last_recv + read_timeout).into()) => {
                    lost = Some(format!("nothing from the server for {read_timeout:?}"));
                }
                _ = stop.changed() => break 'outer,
            }
        }
        if let Some(why) = lost {
            push(Ev::Disconnected {
                at: Instant::now(),
                server,
                why,
            });
            conn = None;
            next = (next + 1) % n;
        }
    }
    if let Some((c, _)) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
    }
}

/// How a client's session came through the failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFate {
    /// Its connection was never lost.
    NotDisconnected,
    /// It reattached the same session on another (or the same) server.
    Kept,
    /// It had to open a new session.
    New,
    /// It had not reconnected when the round ended.
    NotReconnected,
}

impl SessionFate {
    /// For reports.
    pub fn name(self) -> &'static str {
        match self {
            SessionFate::NotDisconnected => "not disconnected",
            SessionFate::Kept => "same session",
            SessionFate::New => "new session",
            SessionFate::NotReconnected => "not reconnected",
        }
    }
}

/// What one client saw in one round.
#[derive(Debug, Clone)]
pub struct ClientOutcome {
    /// The server it was connected to at the kill.
    pub server_at_kill: Option<SocketAddr>,
    /// That server was the leader killed.
    pub on_leader: bool,
    /// Kill to the acknowledgement of the first write issued after it.
    pub t1: Option<Duration>,
    /// The server that acknowledged it.
    pub acked_by: Option<SocketAddr>,
    /// How the session came through.
    pub session: SessionFate,
    /// Failed connection attempts after the kill.
    pub failed_connects: usize,
    /// Error replies after the kill (code names, in order).
    pub errors: Vec<String>,
    /// When the connection loss was noticed, after the kill.
    pub disconnected_after: Option<Duration>,
    /// When it was connected again, after the kill.
    pub reconnected_after: Option<Duration>,
    /// The first few failed attempts after the kill, for the report.
    pub connect_failures: Vec<String>,
}

/// One failover round.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// The leader killed (client address).
    pub leader: SocketAddr,
    /// What happened to it ("killed", "handed over").
    pub event: &'static str,
    /// The first survivor `srvr` reported as leader, and when after the kill.
    pub new_leader: Option<(SocketAddr, Duration)>,
    /// Every client, in server order.
    pub clients: Vec<ClientOutcome>,
}

impl RoundOutcome {
    /// Whether every client wrote again within the limit.
    pub fn ok(&self) -> bool {
        self.clients.iter().all(|c| c.t1.is_some())
    }

    /// The latest client's T1 (every client has written again), if all did.
    pub fn all_clients(&self) -> Option<Duration> {
        self.clients
            .iter()
            .map(|c| c.t1)
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// One line per client, for the progress output and failure reports.
    pub fn describe(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "never".into())
        };
        let mut s = format!(
            "leader {} {}; new leader {}",
            self.leader,
            self.event,
            match self.new_leader {
                Some((a, d)) => format!("{a} reported by srvr after {}", ms(Some(d))),
                None => "not reported".into(),
            }
        );
        for c in &self.clients {
            s.push_str(&format!(
                "\n    client on {}{}: first write after the kill acknowledged after {} by {}; {}; disconnected after {}, reconnected after {}, {} failed connection attempts{}{}",
                c.server_at_kill.map(|a| a.to_string()).unwrap_or("-".into()),
                if c.on_leader { " (the leader)" } else { "" },
                ms(c.t1),
                c.acked_by.map(|a| a.to_string()).unwrap_or("-".into()),
                c.session.name(),
                ms(c.disconnected_after),
                ms(c.reconnected_after),
                c.failed_connects,
                if c.errors.is_empty() { String::new() } else { format!(", error replies: {}", c.errors.join(" ")) },
                if c.connect_failures.is_empty() { String::new() } else { format!("; first failures: {}", c.connect_failures.join("; ")) },
            ));
        }
        s
    }

    /// A JSON line.
    pub fn to_json(&self, label: &str, round: usize) -> String {
        let ms = |d: Option<Duration>| json_num(d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3));
        let clients: Vec<String> = self
            .clients
            .iter()
            .map(|c| {
                format!(
                    "{{\"server\":{},\"on_leader\":{},\"t1_ms\":{},\"acked_by\":{},\"session\":{},\"failed_connects\":{},\"errors\":{},\"disconnected_ms\":{},\"reconnected_ms\":{}}}",
                    json_str(&c.server_at_kill.map(|a| a.to_string()).unwrap_or_default()),
                    c.on_leader,
                    ms(c.t1),
                    json_str(&c.acked_by.map(|a| a.to_string()).unwrap_or_default()),
                    json_str(c.session.name()),
                    c.failed_connects,
                    c.errors.len(),
                    ms(c.disconnected_after),
                    ms(c.reconnected_after),
                )
            })
            .collect();
        format!(
            "{{\"kind\":\"failover\",\"label\":{},\"round\":{round},\"leader\":{},\"new_leader\":{},\"new_leader_ms\":{},\"clients\":[{}]}}",
            json_str(label),
            json_str(&self.leader.to_string()),
            json_str(&self.new_leader.map(|(a, _)| a.to_string()).unwrap_or_default()),
            ms(self.new_leader.map(|(_, d)| d)),
            clients.join(",")
        )
    }
}

/// What a log says about one client's round, given the kill's instant.
fn analyse(events: &[Ev], t0: Instant, leader: SocketAddr) -> ClientOutcome {
    let mut at_kill = None;
    for e in events {
        match e {
            Ev::Connected { at, server, .. } if *at <= t0 => at_kill = Some(*server),
            Ev::Disconnected { at, .. } if *at <= t0 => at_kill = None,
            _ => {}
        }
    }
    let mut out = ClientOutcome {
        server_at_kill: at_kill,
        on_leader: at_kill == Some(leader),
        t1: None,
        acked_by: None,
        session: SessionFate::NotDisconnected,
        failed_connects: 0,
        errors: Vec::new(),
        disconnected_after: None,
        reconnected_after: None,
        connect_failures: Vec::new(),
    };
    let mut disconnected = false;
    for e in events {
        match e {
            Ev::Ack {
                issued,
                acked,
                server,
            } if *issued > t0 && out.t1.is_none() => {
                out.t1 = Some(*acked - t0);
                out.acked_by = Some(*server);
            }
            Ev::Disconnected { at, .. } if *at > t0 && out.t1.is_none() => {
                disconnected = true;
                out.disconnected_after.get_or_insert(*at - t0);
                out.session = SessionFate::NotReconnected;
            }
            Ev::Connected {
                at, new_session, ..
            } if *at > t0 && out.t1.is_none() && disconnected => {
                out.reconnected_after = Some(*at - t0);
                out.session = if *new_session {
                    SessionFate::New
                } else {
                    SessionFate::Kept
                };
            }
            Ev::ConnectFailed { at, server, why } if *at > t0 && out.t1.is_none() => {
                out.failed_connects += 1;
                if out.connect_failures.len() < 3 {
                    out.connect_failures.push(format!(
                        "{server} after {:.0} ms: {why}",
                        (*at - t0).as_secs_f64() * 1e3
                    ));
                }
            }
            Ev::ErrReply { at, code, .. } if *at > t0 && out.t1.is_none() => {
                out.errors.push(err_name(*code));
            }
            _ => {}
        }
    }
    out
}

/// Runs one failover round against `servers` (the whole connect string; one client starts on
/// each): creates the clients' znodes under `dir`, waits until every client has written
/// `warm_writes` times, calls `kill` (which SIGKILLs the leader at `servers[leader]` and
/// returns the instant taken right before the kill system call), and waits until every client
/// has had a write issued after that instant acknowledged, or `p.limit` has passed.
pub async fn run_round(
    servers: &[SocketAddr],
    leader: usize,
    dir: &str,
    p: &FailoverParams,
    kill: impl FnOnce() -> Result<Instant>,
) -> Result<RoundOutcome> {
    let leader_addr = servers[leader];
    // A small tree: the run's directory and one znode per client.
    let setup_addr = servers[(leader + 1) % servers.len()];
    let mut setup = Conn::connect(setup_addr)
        .await
        .context("failover setup session")?;
    ensure_node(&mut setup, ROOT).await?;
    ensure_node(&mut setup, dir).await?;
    let count = if p.clients == 0 {
        servers.len()
    } else {
        p.clients
    };
    let paths: Vec<String> = (0..count).map(|i| format!("{dir}/c{i}")).collect();
    for path in &paths {
        let body = gen::create_body(path, b"", CreateMode::Persistent as i32);
        crate::workload::call_all(
            &mut setup,
            op::CREATE,
            &[body],
            &[paddock_proto::ErrorCode::NodeExists.code()],
        )
        .await?;
    }
    let _ = setup.close().await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut logs: Vec<Log> = Vec::new();
    let mut tasks = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let mut hosts = servers.to_vec();
        hosts.rotate_left(i % servers.len());
        let log: Log = Rc::new(RefCell::new(Vec::new()));
        logs.push(log.clone());
        tasks.push(tokio::task::spawn_local(client(
            hosts,
            path.clone(),
            p.clone(),
            log,
            stop_rx.clone(),
        )));
    }
    let acks = |log: &Log, after: Option<Instant>| {
        log.borrow()
            .iter()
            .filter(|e| matches!(e, Ev::Ack { issued, .. } if after.is_none_or(|t| *issued > t)))
            .count()
    };
    let warm_deadline = Instant::now() + Duration::from_secs(20);
    while logs.iter().any(|l| acks(l, None) < p.warm_writes) {
        if Instant::now() > warm_deadline {
            let _ = stop_tx.send(true);
            let detail: Vec<String> = logs
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    format!(
                        "client {i} ({} acks): {:?}",
                        acks(l, None),
                        l.borrow().iter().rev().take(3).collect::<Vec<_>>()
                    )
                })
                .collect();
            bail!(
                "the clients could not write {} times each within 20 s, before any kill: {}",
                p.warm_writes,
                detail.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let t0 = kill()?;

    // Watch the survivors' srvr for the new leader (informative: server-side failover).
    let survivors: Vec<SocketAddr> = servers
        .iter()
        .copied()
        .filter(|a| *a != leader_addr)
        .collect();
    let found: Rc<RefCell<Option<(SocketAddr, Duration)>>> = Rc::new(RefCell::new(None));
    let poller = {
        let found = found.clone();
        let limit = p.limit;
        tokio::task::spawn_local(async move {
            while t0.elapsed() < limit {
                for &a in &survivors {
                    if let Ok(Role::Leader) = role_of(a).await {
                        *found.borrow_mut() = Some((a, t0.elapsed()));
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let deadline = t0 + p.limit;
    while logs.iter().any(|l| acks(l, Some(t0)) == 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    poller.abort();
    let new_leader = *found.borrow();
    let clients = logs
        .iter()
        .map(|l| analyse(&l.borrow(), t0, leader_addr))
        .collect();
    Ok(RoundOutcome {
        leader: leader_addr,
        event: p.event,
        new_leader,
        clients,
    })
}

/// Median, min and max of some durations, in ms.
pub fn stats_ms(v: &[Duration]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((crate::compare::median(ms), min, max))
}

/// `paddock bench failover`: one round against a running ensemble whose servers and pids are
/// given in the same order; SIGKILLs the leader (found with srvr). It does not restart it.
pub async fn run_standalone(a: crate::args::FailoverArgs) -> Result<()> {
    let servers = crate::args::parse_servers(&a.target.server)?;
    let pids = crate::args::parse_pids(&a.target.pids)?;
    if pids.len() != servers.len() {
        bail!(
            "--pid must list the pid of every server of --server, in the same order ({} servers, {} pids)",
            servers.len(),
            pids.len()
        );
    }
    let mut leader = None;
    for (i, &s) in servers.iter().enumerate() {
        match role_of(s).await {
            Ok(Role::Leader) => leader = Some(i),
            Ok(_) => {}
            Err(e) => eprintln!("failover: {s}: {e}"),
        }
    }
    let leader = leader.context("no server of --server says Mode: leader")?;
    let pid = pids[leader];
    let p = FailoverParams {
        attempt_timeout: a.attempt_timeout,
        retry_pause: a.retry_pause,
        limit: a.limit,
        session_timeout_ms: a.session_timeout.as_millis() as i32,
        warm_writes: 20,
        clients: a.clients,
        event: if a.transfer { "handed over" } else { "killed" },
    };
    eprintln!(
        "failover: leader {} (pid {pid}); {} clients writing; {} next",
        servers[leader],
        if a.clients == 0 {
            servers.len()
        } else {
            a.clients
        },
        if a.transfer {
            "ydld (a planned leadership transfer)"
        } else {
            "SIGKILL"
        }
    );
    let dir = format!("{ROOT}/failover-{}", crate::workload::new_run_id());
    let leader_addr = servers[leader];
    let r = run_round(&servers, leader, &dir, &p, || {
        if a.transfer {
            return yield_leadership(leader_addr);
        }
        let t0 = Instant::now();
        // SAFETY: kill(2) with a pid and a signal number has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        if rc != 0 {
            bail!("kill -KILL {pid}: {}", std::io::Error::last_os_error());
        }
        Ok(t0)
    })
    .await?;
    println!("{}", r.describe());
    println!("{}", r.to_json(&a.target.label, 1));
    if !r.ok() {
        bail!(
            "a client's write was not acknowledged within {:?} of the kill",
            a.limit
        );
    }
    Ok(())
}

/// Asks the leader to hand over (the `ydld` four-letter word); the instant taken right
/// before it was sent.
fn yield_leadership(leader: SocketAddr) -> Result<Instant> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&leader, Duration::from_secs(2))
        .with_context(|| format!("ydld to {leader}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let t0 = Instant::now();
    s.write_all(b"ydld")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    if !reply.starts_with("Hand") {
        bail!(
            "ydld on {leader}: {} (4lw.commands.whitelist must allow ydld)",
            reply.trim()
        );
    }
    Ok(t0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyses_a_client_log() {
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1".parse().unwrap();
        let ev = vec![
            Ev::Connected {
                at: at(0),
                server: a,
                session: 7,
                new_session: true,
            },
            Ev::Ack {
                issued: at(90),
                acked: at(95),
                server: a,
            },
            // In flight at the kill (t0 = 100): does not count.
            Ev::Disconnected {
                at: at(101),
                server: a,
                why: "eof".into(),
            },
            Ev::ConnectFailed {
                at: at(102),
                server: b,
                why: "closed".into(),
            },
            Ev::Connected {
                at: at(300),
                server: b,
                session: 7,
                new_session: false,
            },
            Ev::Ack {
                issued: at(301),
                acked: at(340),
                server: b,
            },
            Ev::Ack {
                issued: at(341),
                acked: at(345),
                server: b,
            },
        ];
        let o = analyse(&ev, at(100), a);
        assert!(o.on_leader);
        assert_eq!(o.t1, Some(Duration::from_millis(240)));
        assert_eq!(o.acked_by, Some(b));
        assert_eq!(o.session, SessionFate::Kept);
        assert_eq!(o.failed_connects, 1);
        assert_eq!(o.disconnected_after, Some(Duration::from_millis(1)));
        assert_eq!(o.reconnected_after, Some(Duration::from_millis(200)));
        let o = analyse(&ev, at(100), b);
        assert!(!o.on_leader);
        assert_eq!(
            stats_ms(&[Duration::from_millis(3), Duration::from_millis(1)]),
            Some((2.0, 1.0, 3.0))
        );
    }
}

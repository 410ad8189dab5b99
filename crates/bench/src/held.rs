//! Sessions held open by the thousand, for the scale sweep's session points. Each session
//! owns one ephemeral znode and a data watch on it, watches their common parent too (many
//! watches on one path), and behaves as an idle client does:
//! it pings a third of its timeout apart, re-arms its watch when it fires, and when its
//! connection drops it waits a random delay of up to a second (as the Java client does),
//! reattaches to the same session and restores its watch with setWatches. The fleet's
//! counters say how many are connected, how many watch events arrived and how many
//! sessions the server said had expired.
//!
//! Everything runs on the caller's `LocalSet` (the bench's one thread): a task per session,
//! counters in `Cell`s.

use crate::conn::{Conn, Dial, Handshake, SessionAsk};
use crate::gen;
use anyhow::{bail, Context, Result};
use bytes::BufMut;
use paddock_proto::{event, op, xid, CreateMode, Reader, Record, SetWatches, WatcherEvent};
use rand::Rng;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The parent of every held session's ephemeral znode.
pub const PARENT: &str = "/paddock-held";

/// Sessions per source address: well under the ~28,000 ephemeral ports one
/// address has, with room for each session's reconnection.
const PER_SOURCE: usize = 5_000;

/// Handshakes in flight while the fleet opens, so that opening measures the server rather
/// than its listen backlog.
const OPENING: usize = 256;

/// How long a handshake, or a setup request, may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Fleets opened by this process: each connects from addresses of its own, so that the
/// ports a fleet left in TIME_WAIT do not slow the next one's connections.
static FLEETS: AtomicU32 = AtomicU32::new(0);

/// The loopback address session `i` of fleet `fleet` connects from: 127.1.0.1 for the
/// first fleet's first 5,000, then 127.1.0.2, and on; the next fleet from 127.2.0.1 (all of
/// 127/8 is the loopback on Linux).
fn source_of(fleet: u32, i: usize) -> IpAddr {
    let base = u32::from(Ipv4Addr::new(127, 1 + (fleet % 200) as u8, 0, 0));
    IpAddr::V4(Ipv4Addr::from(base + 1 + (i / PER_SOURCE) as u32))
}

/// The znode session `i` owns.
pub fn path_of(i: usize) -> String {
    format!("{PARENT}/s-{i:07}")
}

/// What every session reports to the fleet.
#[derive(Default)]
struct Counters {
    connected: Cell<u64>,
    /// NodeDataChanged events received for the sessions' own znodes.
    events: Cell<u64>,
    /// NodeDataChanged events received for the parent, which every session watches.
    shared_events: Cell<u64>,
    /// Sessions the server answered with "expired" on reattach.
    expired: Cell<u64>,
    /// Sessions that failed to open, and the first reason.
    failed: Cell<u64>,
    first_failure: RefCell<Option<String>>,
}

/// A fleet of held sessions; dropping it drops every connection (no closeSession).
pub struct Fleet {
    counters: Rc<Counters>,
    tasks: JoinSet<()>,
    /// Sessions in the fleet.
    pub sessions: usize,
}

impl Fleet {
    /// Opens `n` sessions on `addr`, each with its ephemeral znode and data watch (the
    /// parent is created first); returns once all are open, or fails with the first
    /// session's error.
    pub async fn open(addr: SocketAddr, n: usize) -> Result<Fleet> {
        let mut setup = Conn::connect(addr).await?;
        crate::workload::ensure_node(&mut setup, PARENT).await?;
        setup.close().await?;
        let counters = Rc::new(Counters::default());
        let gate = Rc::new(Semaphore::new(OPENING));
        let fleet = FLEETS.fetch_add(1, Ordering::Relaxed);
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let source = source_of(fleet, i);
            tasks.spawn_local(session(i, addr, source, counters.clone(), gate.clone()));
        }
        let fleet = Fleet {
            counters,
            tasks,
            sessions: n,
        };
        loop {
            let c = &fleet.counters;
            if c.failed.get() > 0 {
                bail!(
                    "{} of {n} sessions failed to open; the first: {}",
                    c.failed.get(),
                    c.first_failure.borrow().as_deref().unwrap_or("?")
                );
            }
            if c.connected.get() == n as u64 {
                return Ok(fleet);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sessions connected now.
    pub fn connected(&self) -> u64 {
        self.counters.connected.get()
    }

    /// Sessions the server has said are expired.
    pub fn expired(&self) -> u64 {
        self.counters.expired.get()
    }

    /// Watch events received so far.
    pub fn events(&self) -> u64 {
        self.counters.events.get()
    }

    /// Waits until every session is either connected or expired, for at most `limit`;
    /// returns whether they all got there.
    pub async fn settled(&self, limit: Duration) -> bool {
        let t0 = Instant::now();
        while self.connected() + self.expired() < self.sessions as u64 {
            if t0.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Changes the parent once, from a connection of its own, and times until every session
    /// has had the event of its watch on it (or `limit` passes); returns the seconds and the
    /// events that arrived.
    pub async fn fire_shared(&self, addr: SocketAddr, limit: Duration) -> Result<(f64, u64)> {
        let c = &self.counters;
        let before = c.shared_events.get();
        let mut writer = Conn::connect(addr).await?;
        let t0 = Instant::now();
        let body = gen::set_data_body(PARENT, b"fired");
        crate::workload::call_all(&mut writer, op::SET_DATA, &[body], &[]).await?;
        let target = before + self.sessions as u64;
        while c.shared_events.get() < target && t0.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        let _ = writer.close().await;
        Ok((secs, c.shared_events.get() - before))
    }

    /// Changes every session's znode once from a connection of its own and times until every
    /// session has had its watch event (or `limit` passes); returns the seconds and the
    /// events that arrived.
    pub async fn fire(&self, addr: SocketAddr, limit: Duration) -> Result<(f64, u64)> {
        let before = self.events();
        let mut writer = Conn::connect(addr).await?;
        let t0 = Instant::now();
        let bodies: Vec<Vec<u8>> = (0..self.sessions)
            .map(|i| gen::set_data_body(&path_of(i), b"fired"))
            .collect();
        crate::workload::call_all(&mut writer, op::SET_DATA, &bodies, &[]).await?;
        let target = before + self.sessions as u64;
        while self.events() < target && t0.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        let _ = writer.close().await;
        Ok((secs, self.events() - before))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Counts `i`'s session as not opened, keeping the first reason.
fn failed(c: &Counters, i: usize, source: IpAddr, e: anyhow::Error) {
    c.failed.set(c.failed.get() + 1);
    let mut first = c.first_failure.borrow_mut();
    if first.is_none() {
        *first = Some(format!("session {i} from {source}: {e:#}"));
    }
}

/// One held session, for as long as the fleet lives.
async fn session(i: usize, addr: SocketAddr, source: IpAddr, c: Rc<Counters>, gate: Rc<Semaphore>) {
    let path = path_of(i);
    let dial = Dial {
        source: Some(source),
        read_chunk: 1024,
        ..Dial::default()
    };
    let opened = {
        let _permit = gate.acquire().await;
        open(addr, &path, dial).await
    };
    let mut conn = match opened {
        Ok(conn) => conn,
        Err(e) => return failed(&c, i, source, e),
    };
    c.connected.set(c.connected.get() + 1);
    let mut last_zxid = 0;
    loop {
        // Serves until the connection drops; then reattaches.
        let _ = serve(&mut conn, &path, &c, &mut last_zxid).await;
        c.connected.set(c.connected.get() - 1);
        let ask = SessionAsk {
            session_id: conn.session_id,
            passwd: conn.passwd.clone(),
            last_zxid_seen: last_zxid,
            timeout_ms: conn.timeout_ms,
        };
        let mut delay = rand::thread_rng().gen_range(0..1000);
        conn = loop {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            match Conn::handshake_with(addr, &ask, Duration::from_secs(5), dial).await {
                Ok(Handshake::Open(mut again)) => {
                    push_set_watches(&mut again, last_zxid, &path);
                    if again.flush().await.is_ok() {
                        break again;
                    }
                }
                Ok(Handshake::Expired) => {
                    c.expired.set(c.expired.get() + 1);
                    return;
                }
                Ok(Handshake::Closed) | Err(_) => {}
            }
            delay = rand::thread_rng().gen_range(200..1000);
        };
        c.connected.set(c.connected.get() + 1);
    }
}

/// A new session with its ephemeral znode, a data watch on it and one on the parent.
async fn open(addr: SocketAddr, path: &str, dial: Dial) -> Result<Conn> {
    let mut conn = match Conn::handshake_with(addr, &SessionAsk::default(), LIMIT, dial).await? {
        Handshake::Open(conn) => conn,
        Handshake::Expired => bail!("the server refused a new session"),
        Handshake::Closed => bail!("the server closed the connection during the handshake"),
    };
    let create = gen::create_body(path, b"", CreateMode::Ephemeral as i32);
    let exists = gen::path_watch_body(path, true);
    let shared = gen::path_watch_body(PARENT, true);
    for (opcode, body) in [
        (op::CREATE, create),
        (op::EXISTS, exists),
        (op::EXISTS, shared),
    ] {
        let r = tokio::time::timeout(LIMIT, conn.call(opcode, &body))
            .await
            .with_context(|| format!("{} {path} not answered", op::name(opcode)))??;
        if r.head.err != 0 {
            bail!("{} {path} failed: error {}", op::name(opcode), r.head.err);
        }
    }
    Ok(conn)
}

/// Answers the connection until it drops: pings when due, counts data-change events and
/// re-arms each watch after it fires.
async fn serve(conn: &mut Conn, path: &str, c: &Counters, last_zxid: &mut i64) -> Result<()> {
    let every = Duration::from_millis(conn.timeout_ms.max(3) as u64 / 3);
    // Spread the first ping so that thousands of sessions do not ping in step.
    let mut next = tokio::time::Instant::now() + every.mul_f64(rand::thread_rng().gen());
    let rearm = gen::path_watch_body(path, true);
    let rearm_shared = gen::path_watch_body(PARENT, true);
    loop {
        tokio::select! {
            r = conn.recv() => {
                let r = r?;
                *last_zxid = (*last_zxid).max(r.head.zxid);
                if r.head.xid == xid::NOTIFICATION {
                    let ev = WatcherEvent::decode(&mut Reader::new(&r.body))?;
                    if ev.event_type == event::NODE_DATA_CHANGED {
                        if ev.path == PARENT {
                            c.shared_events.set(c.shared_events.get() + 1);
                            conn.push(op::EXISTS, &rearm_shared);
                        } else {
                            c.events.set(c.events.get() + 1);
                            conn.push(op::EXISTS, &rearm);
                        }
                        conn.flush().await?;
                    }
                }
            }
            _ = tokio::time::sleep_until(next) => {
                conn.push_ping();
                conn.flush().await?;
                next += every;
            }
        }
    }
}

/// Appends setWatches for the session's two data watches (with its reserved xid, as the
/// Java client sends it on a reconnection).
fn push_set_watches(conn: &mut Conn, relative_zxid: i64, path: &str) {
    let mut body = Vec::new();
    SetWatches {
        relative_zxid,
        data_watches: vec![path.to_owned(), PARENT.to_owned()],
        exist_watches: vec![],
        child_watches: vec![],
    }
    .encode(&mut body);
    conn.wbuf.put_i32(8 + body.len() as i32);
    conn.wbuf.put_i32(xid::SET_WATCHES);
    conn.wbuf.put_i32(op::SET_WATCHES);
    conn.wbuf.put_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_addresses() {
        assert_eq!(source_of(0, 0).to_string(), "127.1.0.1");
        assert_eq!(source_of(0, PER_SOURCE - 1).to_string(), "127.1.0.1");
        assert_eq!(source_of(0, PER_SOURCE).to_string(), "127.1.0.2");
        assert_eq!(source_of(0, 49_999).to_string(), "127.1.0.10");
        assert_eq!(source_of(0, 255 * PER_SOURCE).to_string(), "127.1.1.0");
        assert_eq!(source_of(1, 0).to_string(), "127.2.0.1");
    }
}

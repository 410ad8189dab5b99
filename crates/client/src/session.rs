//! The session task: owns the socket, runs the handshake, pipelines requests, pings, dispatches
//! notifications, and reconnects to the next host with setWatches2 when the connection drops.
//!
//! State machine (as the application sees it): Connecting -> Connected | ConnectedReadOnly ->
//! Disconnected -> (reconnect) Connected ... ; terminal states are Expired, AuthFailed, Closed.
//! After a full session timeout without any server, `SessionEvent::PresumedLost` is raised once
//! (before any server can confirm expiry) so recipes stop acting as lock holder or leader.

use crate::depot::{Depot, Outstanding, RawReply};
use crate::error::Error;
use crate::tls::Stream;
use crate::watch::{PendingWatch, WatchRegistry, WatchedEvent};
use bytes::{BufMut, BytesMut};
use paddock_proto::frame::{take_frame, DEFAULT_MAX_FRAME};
use paddock_proto::{
    op, protocol, state, xid, AuthPacket, ConnectRequest, ConnectResponse, ErrorCode, PathRequest,
    Reader, Record, ReplyHeader, RequestHeader, SetWatches2, WatcherEvent,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info, warn};

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Looking for a server for the first time.
    Connecting,
    /// Connected to a server that serves reads and writes.
    Connected,
    /// Connected to a read-only server (only with `allow_read_only`).
    ConnectedReadOnly,
    /// Lost the server; reconnecting to the next host by itself.
    Disconnected,
    /// A server said the session is gone. Terminal.
    Expired,
    /// The server refused the credentials given with `add_auth`. Terminal.
    AuthFailed,
    /// Closed by the application. Terminal.
    Closed,
}

impl SessionState {
    /// Whether requests can be sent now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
    /// Whether the session can never be used again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
    /// The Java `KeeperState` name, as zkCli prints it in `WatchedEvent state:...`.
    pub fn keeper_state_name(self) -> &'static str {
        match self {
            SessionState::Connecting | SessionState::Disconnected => "Disconnected",
            SessionState::Connected => "SyncConnected",
            SessionState::ConnectedReadOnly => "ConnectedReadOnly",
            SessionState::Expired => "Expired",
            SessionState::AuthFailed => "AuthFailed",
            SessionState::Closed => "Closed",
        }
    }
    /// The Java `KeeperState` number.
    pub fn keeper_state(self) -> i32 {
        match self {
            SessionState::Connecting | SessionState::Disconnected => state::DISCONNECTED,
            SessionState::Connected => state::SYNC_CONNECTED,
            SessionState::ConnectedReadOnly => state::CONNECTED_READ_ONLY,
            SessionState::Expired => state::EXPIRED,
            SessionState::AuthFailed => state::AUTH_FAILED,
            SessionState::Closed => state::CLOSED,
        }
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The state changed.
    State(SessionState),
    /// No server has been reachable for a whole session timeout: the session has probably
    /// expired, though no server has said so yet. Stop acting on ephemeral-backed roles.
    PresumedLost,
}

/// Session identity, shared with the `Client` handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInfo {
    pub id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub server: Option<String>,
    /// What the server of the current connection speaks (`paddock_proto::protocol`).
    pub protocol: i32,
}

pub(crate) struct Shared {
    pub state: watch::Sender<SessionState>,
    pub events: broadcast::Sender<SessionEvent>,
    pub info: Mutex<SessionInfo>,
}

impl Shared {
    fn set(&self, s: SessionState) {
        // Event first: whoever sees the new state must find its event already queued.
        let _ = self.events.send(SessionEvent::State(s));
        self.state.send_replace(s);
    }
}

/// A message from a `Client` handle to the session task.
pub(crate) enum Command {
    Request {
        opcode: i32,
        body: Vec<u8>,
        path: String,
        watch: Option<PendingWatch>,
        reply: oneshot::Sender<Result<RawReply, Error>>,
        /// Answer it linearizably (a read of the tree; `Client::linearizable`).
        linearizable: bool,
    },
    /// Credentials: sent now if connected, and again after every reconnect.
    Auth {
        scheme: String,
        auth: Vec<u8>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
    /// removeWatches with `local`: drop the watches here without asking the server.
    RemoveLocal {
        path: String,
        client_path: String,
        wtype: i32,
        done: oneshot::Sender<bool>,
    },
}

/// How the session task was configured.
pub(crate) struct Config {
    pub hosts: Vec<String>,
    pub session_timeout: Duration,
    pub chroot: Option<String>,
    pub read_only: bool,
    pub session: Option<(i64, Vec<u8>)>,
    /// TLS to every server (`zookeeper.client.secure`).
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// SASL DIGEST-MD5 on every connection (a JAAS `Client` section).
    pub sasl: Option<crate::sasl::SaslOptions>,
}

enum Lost {
    /// Connection dropped: reconnect.
    Disconnected(String),
    AuthFailed,
    Closed(Option<oneshot::Sender<()>>),
}

fn frame(xid: i32, opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + body.len());
    v.put_i32(0);
    RequestHeader { xid, op: opcode }.encode(&mut v);
    v.extend_from_slice(body);
    let len = (v.len() - 4) as i32;
    v[..4].copy_from_slice(&len.to_be_bytes());
    v
}

async fn read_frame(s: &mut Stream, buf: &mut BytesMut) -> std::io::Result<BytesMut> {
    loop {
        match take_frame(buf, DEFAULT_MAX_FRAME) {
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        if s.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Strips the chroot from a server path ("/chroot/a" -> "/a", "/chroot" -> "/").
pub(crate) fn strip_chroot(chroot: &Option<String>, p: &str) -> String {
    match chroot {
        Some(c) => match p.strip_prefix(c.as_str()) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => p.to_string(),
        },
        None => p.to_string(),
    }
}

pub(crate) struct Session {
    cfg: Config,
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedReceiver<Command>,
    /// Commands received while no server was connected: sent after the handshake.
    queued: VecDeque<Command>,
    depot: Depot,
    watches: WatchRegistry,
    auths: Vec<(String, Vec<u8>)>,
    last_zxid: i64,
    session_id: i64,
    passwd: Vec<u8>,
    negotiated: Duration,
    next_host: usize,
    /// Whether the session was ever confirmed by a read-write server. A session a read-only
    /// server hands out exists on that server alone; until a read-write server has seen it,
    /// reconnecting asks for a new session (id 0), as ZooKeeper's client does.
    seen_rw: bool,
    /// The protocol version the current connection's server answered (`protocol`): requests
    /// it would not know are failed here, never sent (ZooKeeper closes the connection on an
    /// unknown opcode).
    protocol: i32,
    /// When we last sent something the server has since answered: PresumedLost counts the
    /// session timeout from here, so it comes before the server can expire the session.
    last_touch: Instant,
}

impl Session {
    pub(crate) fn new(
        cfg: Config,
        shared: Arc<Shared>,
        cmds: mpsc::UnboundedReceiver<Command>,
    ) -> Session {
        let negotiated = cfg.session_timeout;
        let (session_id, passwd) = cfg.session.clone().unwrap_or((0, vec![0; 16]));
        Session {
            cfg,
            shared,
            cmds,
            queued: VecDeque::new(),
            depot: Depot::default(),
            watches: WatchRegistry::default(),
            auths: Vec::new(),
            last_zxid: 0,
            session_id,
            passwd,
            negotiated,
            next_host: 0,
            seen_rw: session_id != 0,
            protocol: protocol::ZOOKEEPER,
            last_touch: Instant::now(),
        }
    }

    fn finish(&mut self, terminal: SessionState, code: ErrorCode) {
        self.depot.fail_all(code);
        for c in self.queued.drain(..) {
            if let Command::Request { reply, .. } = c {
                let _ = reply.send(Err(Error::Code(code)));
            }
        }
        self.watches.clear();
        self.cmds.close();
        while let Ok(c) = self.cmds.try_recv() {
            match c {
                Command::Request { reply, .. } => {
                    let _ = reply.send(Err(Error::Code(code)));
                }
                Command::Close { done } => {
                    let _ = done.send(());
                }
                Command::Auth { .. } | Command::RemoveLocal { .. } => {}
            }
        }
        self.shared.set(terminal);
    }

    /// Runs the session until it is closed, expires or fails authentication.
    pub(crate) async fn run(mut self) {
        // Since when no server has answered; a full session timeout of this raises PresumedLost.
        let mut silent_since = Instant::now();
        let mut presumed_lost = false;
        let mut round_failures = 0usize;
        loop {
            let host = self.cfg.hosts[self.next_host % self.cfg.hosts.len()].clone();
            self.next_host += 1;
            let per_host = self.negotiated / self.cfg.hosts.len().max(1) as u32;
            let req = ConnectRequest {
                protocol_version: protocol::CURRENT,
                last_zxid_seen: self.last_zxid,
                timeout: self.cfg.session_timeout.as_millis() as i32,
                session_id: if self.seen_rw { self.session_id } else { 0 },
                passwd: if self.seen_rw {
                    self.passwd.clone()
                } else {
                    vec![0; 16]
                },
                read_only: Some(self.cfg.read_only),
            };
            debug!(%host, session = format_args!("0x{:x}", self.session_id), "connecting");
            let attempt = timeout(
                per_host.max(Duration::from_millis(100)),
                handshake(host.clone(), req, self.cfg.tls.clone()),
            );
            tokio::pin!(attempt);
            let lost_at = silent_since + self.negotiated;
            let result = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    c = self.cmds.recv() => match c {
                        Some(Command::Close { done }) => {
                            self.finish(SessionState::Closed, ErrorCode::ConnectionLoss);
                            let _ = done.send(());
                            return;
                        }
                        None => {
                            self.finish(SessionState::Closed, ErrorCode::ConnectionLoss);
                            return;
                        }
                        Some(Command::Auth { scheme, auth }) => self.auths.push((scheme, auth)),
                        Some(Command::RemoveLocal { path, client_path, wtype, done }) => {
                            let _ = done.send(self.watches.remove(&path, &client_path, wtype));
                        }
                        Some(c) => self.queued.push_back(c),
                    },
                    _ = sleep_until(lost_at), if !presumed_lost && self.session_id != 0 => {
                        presumed_lost = true;
                        warn!("no server for a whole session timeout: session presumed lost");
                        let _ = self.shared.events.send(SessionEvent::PresumedLost);
                    }
                }
            };
            let (stream, resp, rbuf) = match result {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => {
                    debug!(%host, error = %e, "connect failed");
                    round_failures += 1;
                    if round_failures >= self.cfg.hosts.len() {
                        round_failures = 0;
                        // A whole round failed: back off a little, as ZooKeeper's client does.
                        let jitter = rand::random::<u64>() % 200;
                        tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
                    }
                    continue;
                }
                Err(_) => {
                    debug!(%host, "connect timed out");
                    round_failures += 1;
                    continue;
                }
            };
            round_failures = 0;
            if resp.timeout <= 0 {
                info!(
                    session = format_args!("0x{:x}", self.session_id),
                    "session expired"
                );
                self.finish(SessionState::Expired, ErrorCode::SessionExpired);
                return;
            }
            self.session_id = resp.session_id;
            self.passwd = resp.passwd.clone();
            self.negotiated = Duration::from_millis(resp.timeout as u64);
            {
                let mut info = self.shared.info.lock().expect("info lock");
                info.id = resp.session_id;
                info.passwd = resp.passwd.clone();
                info.timeout_ms = resp.timeout;
                info.server = Some(host.clone());
                info.protocol = resp.protocol_version;
            }
            self.protocol = resp.protocol_version;
            presumed_lost = false;
            info!(%host, session = format_args!("0x{:x}", self.session_id), timeout_ms = resp.timeout, "connected");
            let ro = resp.read_only == Some(true);
            if !ro {
                self.seen_rw = true;
            }
            let outcome = self.connected(stream, rbuf, ro).await;
            silent_since = self.last_touch;
            if let Lost::Disconnected(why) = &outcome {
                info!(%host, %why, "disconnected");
                self.shared.set(SessionState::Disconnected);
            }
            // Nothing is resent: the caller decides whether a write that may have applied is
            // to be retried.
            self.depot.fail_all(ErrorCode::ConnectionLoss);
            match outcome {
                Lost::Disconnected(_) => {}
                Lost::AuthFailed => {
                    self.finish(SessionState::AuthFailed, ErrorCode::AuthFailed);
                    return;
                }
                Lost::Closed(done) => {
                    self.finish(SessionState::Closed, ErrorCode::ConnectionLoss);
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                    return;
                }
            }
        }
    }

    fn send_request(&mut self, c: Command, out: &mut Vec<u8>) -> Option<Lost> {
        match c {
            Command::Request {
                opcode,
                body,
                path,
                watch,
                reply,
                linearizable,
            } => {
                if opcode == op::GET_CHILDREN_PAGE && self.protocol < protocol::PAGING {
                    let _ = reply.send(Err(Error::Code(ErrorCode::Unimplemented)));
                    return None;
                }
                let x = if !linearizable {
                    let x = self.depot.next_xid();
                    out.extend_from_slice(&frame(x, opcode, &body));
                    x
                } else if self.protocol >= protocol::LINEARIZABLE_READS {
                    // The read, wrapped: answered once the server has synced with the leader.
                    let wrapped = paddock_proto::linearizable_body(opcode, &body);
                    let x = self.depot.next_xid();
                    out.extend_from_slice(&frame(x, op::LINEARIZABLE, &wrapped));
                    x
                } else {
                    // A server that does not know it (ZooKeeper): a sync, then the read, on the
                    // same connection, the best ZooKeeper offers. The sync's answer is dropped.
                    let sync_path = if path.is_empty() { "/" } else { path.as_str() };
                    let (dropped, _) = oneshot::channel();
                    let sx = self.depot.next_xid();
                    out.extend_from_slice(&frame(
                        sx,
                        op::SYNC,
                        &PathRequest {
                            path: sync_path.into(),
                        }
                        .to_bytes(),
                    ));
                    self.depot.push(Outstanding {
                        xid: sx,
                        opcode: op::SYNC,
                        path: sync_path.to_owned(),
                        watch: None,
                        reply: dropped,
                    });
                    let x = self.depot.next_xid();
                    out.extend_from_slice(&frame(x, opcode, &body));
                    x
                };
                self.depot.push(Outstanding {
                    xid: x,
                    opcode,
                    path,
                    watch,
                    reply,
                });
                None
            }
            Command::Auth { scheme, auth } => {
                out.extend_from_slice(&frame(xid::AUTH, op::AUTH, &auth_body(&scheme, &auth)));
                self.auths.push((scheme, auth));
                None
            }
            Command::Close { done } => Some(Lost::Closed(Some(done))),
            Command::RemoveLocal {
                path,
                client_path,
                wtype,
                done,
            } => {
                let _ = done.send(self.watches.remove(&path, &client_path, wtype));
                None
            }
        }
    }

    async fn connected(&mut self, mut s: Stream, mut rbuf: BytesMut, ro: bool) -> Lost {
        // SASL before anything else, as the Java client holds its requests until it is done.
        if let Some(sasl) = self.cfg.sasl.clone() {
            if let Err(lost) = self.sasl_exchange(&mut s, &mut rbuf, &sasl).await {
                return lost;
            }
        }
        // Order matters: auth first, then the watches, then what the application queued.
        let mut out = Vec::new();
        for (scheme, auth) in &self.auths {
            out.extend_from_slice(&frame(xid::AUTH, op::AUTH, &auth_body(scheme, auth)));
        }
        if !self.watches.is_empty() {
            for sw in
                set_watches_batches(self.last_zxid, self.watches.lists(), SET_WATCHES_MAX_LENGTH)
            {
                out.extend_from_slice(&frame(xid::SET_WATCHES, op::SET_WATCHES2, &sw.to_bytes()));
            }
        }
        let queued: Vec<Command> = self.queued.drain(..).collect();
        let mut closing: Option<(oneshot::Sender<()>, Instant)> = None;
        for c in queued {
            if let Some(Lost::Closed(Some(done))) = self.send_request(c, &mut out) {
                closing = Some((done, Instant::now()));
            }
        }
        if let Some((done, _)) = closing.take() {
            // Close queued while disconnected: send closeSession now.
            out.clear();
            return self.close_now(&mut s, &mut rbuf, done).await;
        }
        if let Err(e) = s.write_all(&out).await {
            return Lost::Disconnected(e.to_string());
        }
        self.shared.set(if ro {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });
        let ping_every = self.negotiated / 3;
        let read_timeout = self.negotiated * 2 / 3;
        let mut last_send = Instant::now();
        let mut last_recv = Instant::now();
        // Read-only: look for a read-write server among the other hosts, as ZooKeeper's
        // client does, probing one host at a time with `isro`, 100 ms after connecting and
        // then twice as long after every miss, up to a minute.
        let current = (self.next_host + self.cfg.hosts.len() - 1) % self.cfg.hosts.len();
        let probing = ro && self.cfg.hosts.len() > 1;
        let mut probe_wait = RW_PROBE_FIRST;
        let mut next_probe = Instant::now() + probe_wait;
        let mut probe_target = current;
        let (probe_tx, mut probe_rx) = mpsc::channel::<(usize, bool)>(1);
        let mut probe_running = false;
        loop {
            tokio::select! {
                _ = sleep_until(next_probe), if probing && !probe_running => {
                    probe_target = (probe_target + 1) % self.cfg.hosts.len();
                    if probe_target == current {
                        probe_target = (probe_target + 1) % self.cfg.hosts.len();
                    }
                    let host = self.cfg.hosts[probe_target].clone();
                    let (tx, target) = (probe_tx.clone(), probe_target);
                    let tls = self.cfg.tls.clone();
                    probe_running = true;
                    tokio::spawn(async move {
                        let rw = is_read_write(&host, tls.as_ref()).await;
                        let _ = tx.send((target, rw)).await;
                    });
                }
                Some((target, rw)) = probe_rx.recv(), if probe_running => {
                    probe_running = false;
                    if rw {
                        let host = &self.cfg.hosts[target];
                        info!(%host, "read-write server found; leaving the read-only one");
                        self.next_host = target;
                        return Lost::Disconnected(format!("read-write server found at {host}"));
                    }
                    probe_wait = (probe_wait * 2).min(RW_PROBE_MAX);
                    next_probe = Instant::now() + probe_wait;
                }
                c = self.cmds.recv() => {
                    let c = match c {
                        Some(c) => c,
                        None => {
                            let (tx, _rx) = oneshot::channel();
                            return self.close_now(&mut s, &mut rbuf, tx).await;
                        }
                    };
                    let mut out = Vec::new();
                    if let Some(Lost::Closed(Some(done))) = self.send_request(c, &mut out) {
                        return self.close_now(&mut s, &mut rbuf, done).await;
                    }
                    // Drain whatever else is ready, so pipelined requests share one write.
                    while out.len() < 64 * 1024 {
                        match self.cmds.try_recv() {
                            Ok(Command::Close { done }) => {
                                self.queued.push_back(Command::Close { done });
                                break;
                            }
                            Ok(c) => { self.send_request(c, &mut out); }
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = s.write_all(&out).await {
                        return Lost::Disconnected(e.to_string());
                    }
                    last_send = Instant::now();
                    if let Some(Command::Close { .. }) = self.queued.back() {
                        if let Some(Command::Close { done }) = self.queued.pop_back() {
                            return self.close_now(&mut s, &mut rbuf, done).await;
                        }
                    }
                }
                r = s.read_buf(&mut rbuf) => {
                    match r {
                        Ok(0) => return Lost::Disconnected("server closed the connection".into()),
                        Err(e) => return Lost::Disconnected(e.to_string()),
                        Ok(_) => {}
                    }
                    last_recv = Instant::now();
                    // The server certainly got what we sent before this reply: its session clock
                    // restarted no earlier than that.
                    self.last_touch = last_send;
                    loop {
                        match take_frame(&mut rbuf, DEFAULT_MAX_FRAME) {
                            Ok(Some(f)) => {
                                if let Some(l) = self.on_frame(&f) {
                                    return l;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Lost::Disconnected(e.to_string()),
                        }
                    }
                }
                _ = sleep_until(last_send + ping_every) => {
                    if let Err(e) = s.write_all(&frame(xid::PING, op::PING, &[])).await {
                        return Lost::Disconnected(e.to_string());
                    }
                    last_send = Instant::now();
                }
                _ = sleep_until(last_recv + read_timeout) => {
                    return Lost::Disconnected(format!("no reply from the server in {read_timeout:?}"));
                }
            }
        }
    }

    /// One SASL request and the server's token in reply. A refusal ends the session as
    /// AuthFailed.
    async fn sasl_round(
        &mut self,
        s: &mut Stream,
        rbuf: &mut BytesMut,
        token: Vec<u8>,
    ) -> Result<Vec<u8>, Lost> {
        let limit = self.negotiated.max(Duration::from_secs(1));
        let x = self.depot.next_xid();
        let mut body = Vec::new();
        paddock_proto::records::SaslToken { token: Some(token) }.encode(&mut body);
        s.write_all(&frame(x, op::SASL, &body))
            .await
            .map_err(|e| Lost::Disconnected(e.to_string()))?;
        loop {
            let f = match tokio::time::timeout(limit, read_frame(s, rbuf)).await {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => return Err(Lost::Disconnected(e.to_string())),
                Err(_) => return Err(Lost::Disconnected("no SASL reply".into())),
            };
            let mut r = Reader::new(&f);
            let h = ReplyHeader::decode(&mut r).map_err(|e| Lost::Disconnected(e.to_string()))?;
            if h.xid == x {
                if h.err != 0 {
                    warn!(err = h.err, "SASL authentication refused by the server");
                    return Err(Lost::AuthFailed);
                }
                let t = paddock_proto::records::SaslToken::decode(&mut r)
                    .map_err(|e| Lost::Disconnected(e.to_string()))?;
                return Ok(t.token.unwrap_or_default());
            }
        }
    }

    /// The SASL exchange the options ask for (`crate::sasl::SaslClient`), with the server of
    /// the current connection.
    async fn sasl_exchange(
        &mut self,
        s: &mut Stream,
        rbuf: &mut BytesMut,
        sasl: &crate::sasl::SaslOptions,
    ) -> Result<(), Lost> {
        let current = (self.next_host + self.cfg.hosts.len() - 1) % self.cfg.hosts.len().max(1);
        let host = host_part(&self.cfg.hosts[current]).to_owned();
        let refused = |e: String| {
            warn!(error = %e, "SASL authentication failed");
            Lost::AuthFailed
        };
        let (mut client, mut token) = crate::sasl::SaslClient::start(sasl, &host)
            .await
            .map_err(refused)?;
        for _ in 0..crate::sasl::MAX_SASL_ROUNDS {
            let reply = self.sasl_round(s, rbuf, token).await?;
            match client.step(&reply).map_err(refused)? {
                Some(next) => token = next,
                None => return Ok(()),
            }
        }
        Err(refused("the exchange did not end".into()))
    }

    /// Sends closeSession and waits (briefly) for its reply, answering what comes before it.
    async fn close_now(
        &mut self,
        s: &mut Stream,
        rbuf: &mut BytesMut,
        done: oneshot::Sender<()>,
    ) -> Lost {
        let (tx, mut rx) = oneshot::channel();
        let x = self.depot.next_xid();
        let _ = s.write_all(&frame(x, op::CLOSE_SESSION, &[])).await;
        self.depot.push(Outstanding {
            xid: x,
            opcode: op::CLOSE_SESSION,
            path: String::new(),
            watch: None,
            reply: tx,
        });
        let deadline = Instant::now() + self.negotiated.min(Duration::from_secs(2));
        loop {
            if rx.try_recv().is_ok() {
                break;
            }
            match tokio::time::timeout_at(deadline, read_frame(s, rbuf)).await {
                Ok(Ok(f)) => {
                    let _ = self.on_frame(&f);
                }
                _ => break,
            }
        }
        Lost::Closed(Some(done))
    }

    fn on_frame(&mut self, f: &[u8]) -> Option<Lost> {
        let r = &mut Reader::new(f);
        let h = match ReplyHeader::decode(r) {
            Ok(h) => h,
            Err(e) => return Some(Lost::Disconnected(format!("bad reply header: {e}"))),
        };
        if h.zxid > self.last_zxid {
            self.last_zxid = h.zxid;
        }
        match h.xid {
            xid::NOTIFICATION => {
                let ev = match WatcherEvent::decode(r) {
                    Ok(e) => e,
                    Err(e) => return Some(Lost::Disconnected(format!("bad notification: {e}"))),
                };
                let path = strip_chroot(&self.cfg.chroot, &ev.path);
                self.watches.dispatch(
                    &ev.path,
                    WatchedEvent {
                        event_type: ev.event_type,
                        state: ev.state,
                        path,
                        zxid: h.zxid,
                    },
                );
                None
            }
            xid::PING | xid::SET_WATCHES => None,
            xid::AUTH => {
                if h.err == ErrorCode::AuthFailed.code() {
                    Some(Lost::AuthFailed)
                } else {
                    None
                }
            }
            x => {
                let o = match self.depot.pop(x) {
                    Ok(o) => o,
                    Err((got, want)) => {
                        return Some(Lost::Disconnected(format!(
                            "reply xid {got} out of order (expected {want:?})"
                        )))
                    }
                };
                let body = r.rest().to_vec();
                let ok = h.err == 0;
                if let Some(w) = o.watch {
                    match w {
                        PendingWatch::Remove(wtype, client_path) if ok => {
                            self.watches.remove(&o.path, &client_path, wtype);
                        }
                        PendingWatch::Remove(..) => {}
                        w if ok => self.watches.register(&o.path, w, true),
                        w if o.opcode == op::EXISTS && h.err == ErrorCode::NoNode.code() => {
                            self.watches.register(&o.path, w, false)
                        }
                        _ => {}
                    }
                }
                let _ = o.reply.send(Ok(RawReply { err: h.err, body }));
                None
            }
        }
    }
}

fn auth_body(scheme: &str, auth: &[u8]) -> Vec<u8> {
    AuthPacket {
        auth_type: 0,
        scheme: scheme.to_string(),
        auth: Some(auth.to_vec()),
    }
    .to_bytes()
}

/// Connects and runs the handshake. A server that closes without a reply has seen a later zxid
/// than ours (or refused us): the caller tries the next host.
/// The most path bytes one setWatches2 packet carries, as ZooKeeper's client: a packet with
/// every watch of a large client would exceed the server's `jute.maxbuffer` (1 MiB) and cost
/// the connection, and with it every watch.
pub(crate) const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;

/// Splits the five watch lists (data, exist, child, persistent, persistent recursive) into
/// setWatches2 packets of at most `max` path bytes each (a single longer path gets a packet
/// of its own). Order is kept, so the server registers them as one packet would.
pub(crate) fn set_watches_batches(
    relative_zxid: i64,
    lists: [Vec<String>; 5],
    max: usize,
) -> Vec<SetWatches2> {
    let empty = || SetWatches2 {
        relative_zxid,
        data_watches: Vec::new(),
        exist_watches: Vec::new(),
        child_watches: Vec::new(),
        persistent_watches: Vec::new(),
        persistent_recursive_watches: Vec::new(),
    };
    let mut batches = Vec::new();
    let mut cur = empty();
    let mut len = 0usize;
    for (kind, list) in lists.into_iter().enumerate() {
        for path in list {
            if len > 0 && len + path.len() > max {
                batches.push(std::mem::replace(&mut cur, empty()));
                len = 0;
            }
            len += path.len();
            match kind {
                0 => cur.data_watches.push(path),
                1 => cur.exist_watches.push(path),
                2 => cur.child_watches.push(path),
                3 => cur.persistent_watches.push(path),
                _ => cur.persistent_recursive_watches.push(path),
            }
        }
    }
    if len > 0 {
        batches.push(cur);
    }
    batches
}

/// The first wait before a read-only session probes for a read-write server, and the longest.
const RW_PROBE_FIRST: Duration = Duration::from_millis(100);
const RW_PROBE_MAX: Duration = Duration::from_secs(60);

/// Whether `host` answers the `isro` four-letter word with "rw" (within a second).
async fn is_read_write(host: &str, tls: Option<&tokio_rustls::TlsConnector>) -> bool {
    let probe = async {
        let mut s = Stream::connect(host, tls).await.ok()?;
        s.write_all(b"isro").await.ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"rw"))
    };
    matches!(timeout(Duration::from_secs(1), probe).await, Ok(Some(true)))
}

async fn handshake(
    host: String,
    req: ConnectRequest,
    tls: Option<tokio_rustls::TlsConnector>,
) -> std::io::Result<(Stream, ConnectResponse, BytesMut)> {
    let mut s = Stream::connect(host.as_str(), tls.as_ref()).await?;
    let body = req.to_bytes();
    let mut v = Vec::with_capacity(4 + body.len());
    v.put_i32(body.len() as i32);
    v.extend_from_slice(&body);
    s.write_all(&v).await?;
    let mut buf = BytesMut::with_capacity(4096);
    let f = read_frame(&mut s, &mut buf).await?;
    let resp = ConnectResponse::decode(&mut Reader::new(&f))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((s, resp, buf))
}

/// The host of a `host:port` connect string entry (`[v6]:port` too).
fn host_part(hostport: &str) -> &str {
    let h = match hostport.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => hostport,
    };
    h.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::set_watches_batches;

    #[test]
    fn set_watches_split_by_path_bytes_keeping_order() {
        let paths = |p: &str, n: usize| (0..n).map(|i| format!("/{p}{i:04}")).collect::<Vec<_>>();
        // 6 bytes per path; at most 4 paths (24 bytes) per packet.
        let lists = [
            paths("d", 3),
            paths("e", 2),
            paths("c", 4),
            vec![],
            paths("r", 1),
        ];
        let batches = set_watches_batches(7, lists.clone(), 24);
        assert_eq!(batches.len(), 3);
        assert!(batches.iter().all(|b| b.relative_zxid == 7));
        let total = |b: &paddock_proto::SetWatches2| {
            b.data_watches.len()
                + b.exist_watches.len()
                + b.child_watches.len()
                + b.persistent_watches.len()
                + b.persistent_recursive_watches.len()
        };
        assert_eq!(batches.iter().map(total).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(batches[0].data_watches, lists[0]);
        assert_eq!(batches[0].exist_watches, vec!["/e0000".to_string()]);
        assert_eq!(batches[1].exist_watches, vec!["/e0001".to_string()]);
        assert_eq!(batches[2].persistent_recursive_watches, lists[4]);
        // Everything in one packet when it fits; nothing at all for no watches.
        assert_eq!(set_watches_batches(0, lists, 1 << 20).len(), 1);
        assert!(set_watches_batches(0, Default::default(), 10).is_empty());
        // A path longer than the limit still goes, alone.
        let long = [
            vec![format!("/{}", "x".repeat(50)), "/y".into()],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        assert_eq!(set_watches_batches(0, long, 10).len(), 2);
    }

    #[test]
    fn host_of_a_connect_string_entry() {
        assert_eq!(super::host_part("zk1.example.com:2181"), "zk1.example.com");
        assert_eq!(super::host_part("127.0.0.1:2181"), "127.0.0.1");
        assert_eq!(super::host_part("[::1]:2181"), "::1");
        assert_eq!(super::host_part("zk1"), "zk1");
    }
}

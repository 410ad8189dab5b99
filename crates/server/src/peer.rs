//! Server-to-server transport: the election and quorum ports over TCP.
//!
//! Every connection carries messages one way only: each server dials every other server's two
//! ports and writes; it reads what the others dial in. The first bytes of a connection name the
//! sender (`HELLO`), then frames of `paddock_zab::codec` follow.
//!
//! The replication core assumes that the messages of one learner connection (`ConnId`) arrive
//! in order and that a lost one means the connection is gone. Both hold here: a `ConnId`'s
//! messages only ever travel on the one TCP connection that carried its first message, and
//! once that connection breaks the id is dead — later messages with it are dropped, never sent
//! on a new TCP connection with a gap before them — and the core is told (`PeerLost`).

use crate::config::ServerSpec;
use crate::msg::CoreMsg;
use crate::peer_sasl::{self, PeerSasl};
use crate::peer_tls::PeerTls;
use paddock_zab::{codec, Message, ServerId};
use rustls::pki_types::CertificateDer;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

const HELLO_MAGIC: &[u8; 4] = b"PDKP";
/// Which port a connection was dialled on (in the hello, so a misconfigured peer that dials
/// the wrong port is refused rather than misread).
const KIND_ELECTION: u8 = 0;
const KIND_QUORUM: u8 = 1;
const HELLO_LEN: usize = 4 + 1 + 8;
/// Most messages encoded into one write.
const WRITE_BATCH: usize = 256;
/// How long a peer may take to send its hello, or to finish a TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// A connection the peer closes sooner than this, before we wrote anything on it, counts as
/// refused (a certificate or hello it did not accept): the next dial waits longer.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);
/// The longest wait between dials of a peer that keeps refusing us.
const REFUSED_BACKOFF: Duration = Duration::from_secs(1);

/// How this server secures its peer connections.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    /// TLS (`sslQuorum`, `portUnification`).
    pub tls: Option<Arc<PeerTls>>,
    /// SASL (`quorum.auth.enableSasl`).
    pub sasl: Option<Arc<PeerSasl>>,
}

/// A peer connection, plaintext or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type PeerIo = Box<dyn Io>;

/// Why the peer ports could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot resolve {host}: {err}")]
    Resolve { host: String, err: std::io::Error },
    #[error("cannot listen on {addr} ({what} port): {err}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        err: std::io::Error,
    },
}

/// What is queued for one peer connection.
pub enum Outgoing {
    Msg(Message),
    /// Messages produced elsewhere (a DIFF read from the on-disk log off the core task), sent
    /// in full, in order, before anything queued after them.
    Stream(mpsc::Receiver<Message>),
}

/// The ids whose connections this server takes: the members of its configuration, changed
/// by a reconfiguration.
type Members = Arc<std::sync::RwLock<HashSet<ServerId>>>;

/// What dialling a newly added member takes.
struct Dialler {
    me: ServerId,
    core: mpsc::Sender<CoreMsg>,
    security: PeerSecurity,
    members: Members,
}

/// Handles for sending to peers.
pub struct Peers {
    out: HashMap<
        ServerId,
        (
            mpsc::UnboundedSender<Outgoing>,
            mpsc::UnboundedSender<Outgoing>,
        ),
    >,
    /// None for a one-voter ensemble without peer ports.
    dialler: Option<Dialler>,
}

impl Peers {
    /// No peers: a one-voter ensemble without peer ports.
    pub fn none() -> Peers {
        Peers {
            out: HashMap::new(),
            dialler: None,
        }
    }

    /// The members changed (a reconfiguration applied): connections to new members are
    /// dialled and taken from them, those to members that left are dropped (their writers
    /// stop once their queues close) and no longer taken.
    pub fn set_members(&mut self, servers: &[ServerSpec]) {
        let Some(d) = &self.dialler else {
            return;
        };
        if let Ok(mut m) = d.members.write() {
            *m = servers.iter().map(|s| s.id).collect();
        }
        if let Some(tls) = &d.security.tls {
            tls.set_hosts(servers);
        }
        self.out.retain(|id, _| servers.iter().any(|s| s.id == *id));
        for s in servers.iter().filter(|s| s.id != d.me) {
            self.out
                .entry(s.id)
                .or_insert_with(|| spawn_links(d.me, s, &d.core, &d.security));
        }
    }

    /// Queues a message for a peer: notifications on the election connection, everything else
    /// on the quorum connection. Unknown peers are ignored.
    pub fn send(&self, to: ServerId, msg: Message) {
        if let Some((election, quorum)) = self.out.get(&to) {
            let ch = match msg {
                Message::Notification { .. } => election,
                Message::Learner { .. } => quorum,
            };
            let _ = ch.send(Outgoing::Msg(msg));
        }
    }

    /// Queues a stream of learner messages for a peer's quorum connection: everything sent to
    /// it later waits until the stream ends.
    pub fn send_stream(&self, to: ServerId, stream: mpsc::Receiver<Message>) {
        if let Some((_, quorum)) = self.out.get(&to) {
            let _ = quorum.send(Outgoing::Stream(stream));
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, PeerError> {
    let mut addrs =
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| PeerError::Resolve {
                host: host.to_owned(),
                err,
            })?;
    // Prefer IPv4 (localhost may resolve to ::1 first while peers listen on 127.0.0.1).
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| PeerError::Resolve {
            host: host.to_owned(),
            err: std::io::Error::other("no address"),
        })
}

/// Binds this server's two ports and starts dialling every other server.
pub async fn start(
    me: &ServerSpec,
    servers: &[ServerSpec],
    core: mpsc::Sender<CoreMsg>,
    security: PeerSecurity,
) -> Result<Peers, PeerError> {
    let members: Members = Arc::new(std::sync::RwLock::new(
        servers.iter().map(|s| s.id).collect(),
    ));
    for (port, kind, what) in [
        (me.election_port, KIND_ELECTION, "election"),
        (me.quorum_port, KIND_QUORUM, "quorum"),
    ] {
        let addr = resolve(&me.host, port).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| PeerError::Bind { addr, what, err })?;
        info!(%addr, port = what, "listening for peers");
        tokio::spawn(accept_loop(
            listener,
            kind,
            members.clone(),
            core.clone(),
            security.clone(),
        ));
    }
    let mut out = HashMap::new();
    for s in servers.iter().filter(|s| s.id != me.id) {
        out.insert(s.id, spawn_links(me.id, s, &core, &security));
    }
    Ok(Peers {
        out,
        dialler: Some(Dialler {
            me: me.id,
            core,
            security,
            members,
        }),
    })
}

/// Starts the two writers (election and quorum connections) that dial `s`.
fn spawn_links(
    me: ServerId,
    s: &ServerSpec,
    core: &mpsc::Sender<CoreMsg>,
    security: &PeerSecurity,
) -> (
    mpsc::UnboundedSender<Outgoing>,
    mpsc::UnboundedSender<Outgoing>,
) {
    let (etx, erx) = mpsc::unbounded_channel();
    let (qtx, qrx) = mpsc::unbounded_channel();
    let link = Link {
        me,
        peer: s.id,
        host: s.host.clone(),
        port: s.election_port,
        kind: KIND_ELECTION,
    };
    tokio::spawn(writer(link, erx, core.clone(), security.clone()));
    let link = Link {
        me,
        peer: s.id,
        host: s.host.clone(),
        port: s.quorum_port,
        kind: KIND_QUORUM,
    };
    tokio::spawn(writer(link, qrx, core.clone(), security.clone()));
    (etx, qtx)
}

async fn accept_loop(
    listener: TcpListener,
    kind: u8,
    members: Members,
    core: mpsc::Sender<CoreMsg>,
    security: PeerSecurity,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio::spawn(reader(
                    stream,
                    addr,
                    kind,
                    members.clone(),
                    core.clone(),
                    security.clone(),
                ));
            }
            Err(e) => {
                warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The certificates a peer showed in its TLS handshake (none for plaintext).
type Shown = Option<Vec<CertificateDer<'static>>>;

/// Takes a connection a peer dialled: plaintext, or a TLS handshake when its first byte
/// starts one, as this server's TLS settings allow. `None`: refused (and logged).
async fn accept_io(
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<&PeerTls>,
) -> Option<(PeerIo, Shown)> {
    let Some(t) = tls else {
        return Some((Box::new(stream), None));
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => {
            debug!(%addr, "peer connection closed or silent before its first byte");
            return None;
        }
    }
    if !crate::tls::starts_tls(first[0]) {
        if t.accept_plain {
            return Some((Box::new(stream), None));
        }
        warn!(%addr, "plaintext connection on a TLS peer port (sslQuorum=true without portUnification); closing");
        return None;
    }
    match tokio::time::timeout(HANDSHAKE, t.acceptor().accept(stream)).await {
        Ok(Ok(s)) => {
            let shown = s
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
            Some((Box::new(s), shown))
        }
        Ok(Err(e)) => {
            warn!(%addr, error = %e, "TLS handshake with a peer failed; closing");
            None
        }
        Err(_) => {
            warn!(%addr, "TLS handshake with a peer timed out; closing");
            None
        }
    }
}

/// Reads one peer's messages until its connection ends.
async fn reader(
    stream: TcpStream,
    addr: SocketAddr,
    kind: u8,
    members: Members,
    core: mpsc::Sender<CoreMsg>,
    security: PeerSecurity,
) {
    let _ = stream.set_nodelay(true);
    let tls = security.tls;
    let Some((mut stream, shown)) = accept_io(stream, addr, tls.as_deref()).await else {
        return;
    };
    let mut hello = [0u8; HELLO_LEN];
    let ok = tokio::time::timeout(HANDSHAKE, stream.read_exact(&mut hello)).await;
    let wants_sasl = &hello[..4] == peer_sasl::MAGIC_SASL;
    if !matches!(ok, Ok(Ok(_))) || !(wants_sasl || &hello[..4] == HELLO_MAGIC) || hello[4] != kind {
        if crate::tls::starts_tls(hello[0]) {
            warn!(%addr, "TLS connection on a plaintext peer port (sslQuorum and portUnification are off here); closing");
        } else {
            warn!(%addr, "peer connection without a valid hello; closing");
        }
        return;
    }
    let from = u64::from_be_bytes(hello[5..13].try_into().expect("8 bytes"));
    let member = members.read().map(|m| m.contains(&from)).unwrap_or(false);
    if !member {
        warn!(%addr, id = from, "connection from a server not in the configuration; closing");
        return;
    }
    if let (Some(t), Some(certs)) = (&tls, &shown) {
        if let Err(e) = t.check_peer(from, certs) {
            warn!(%addr, id = from, "peer refused: {e}; closing");
            return;
        }
    }
    match (&security.sasl, wants_sasl) {
        (Some(sasl), true) => {
            match tokio::time::timeout(HANDSHAKE, sasl.check(&mut stream, from)).await {
                Ok(Ok(user)) => debug!(%addr, id = from, user, "peer authenticated by SASL"),
                Ok(Err(e)) => {
                    warn!(%addr, id = from, "peer SASL authentication failed: {e}; closing");
                    return;
                }
                Err(_) => {
                    warn!(%addr, id = from, "peer SASL authentication timed out; closing");
                    return;
                }
            }
        }
        (None, true) => {
            let answered = peer_sasl::answer_without_sasl(&mut stream).await;
            if answered.is_err() {
                return;
            }
        }
        (Some(sasl), false) if sasl.server_require() => {
            warn!(%addr, id = from, "peer did not authenticate by SASL (quorum.auth.serverRequireSasl=true); closing");
            return;
        }
        _ => {}
    }
    debug!(%addr, from, kind, "peer connected");
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut start = 0;
    let mut chunk = vec![0u8; 64 << 10];
    'read: loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match codec::take_frame(&buf[start..]) {
                Ok(Some((body, used))) => {
                    let msg = match codec::decode(body) {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(from, error = %e, "undecodable message from a peer; closing");
                            break 'read;
                        }
                    };
                    start += used;
                    if let Some(parsed) = parse_snapshot(&msg).await {
                        if core.send(CoreMsg::SnapshotParsed(parsed)).await.is_err() {
                            return;
                        }
                    }
                    if core.send(CoreMsg::Peer { from, msg }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(from, error = %e, "bad frame from a peer; closing");
                    break 'read;
                }
            }
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
    }
    debug!(from, kind, "peer connection ended");
    if kind == KIND_QUORUM {
        let _ = core.send(CoreMsg::PeerLost { peer: from }).await;
    }
}

/// Encodes a message for the wire unless its learner connection is dead; remembers which
/// learner connections this TCP connection carried.
fn encode_unless_dead(
    m: &Message,
    dead: &HashSet<u64>,
    carried: &mut HashSet<u64>,
    out: &mut Vec<u8>,
) {
    if let Message::Learner { conn, .. } = m {
        if dead.contains(conn) {
            return;
        }
        carried.insert(*conn);
    }
    codec::encode_frame(m, out);
}

/// One port of one peer, dialled by this server.
struct Link {
    me: ServerId,
    peer: ServerId,
    host: String,
    port: u16,
    kind: u8,
}

/// Dials one port of one peer and writes what is queued for it, reconnecting as needed.
async fn writer(
    link: Link,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    core: mpsc::Sender<CoreMsg>,
    security: PeerSecurity,
) {
    let Link {
        me,
        peer,
        host,
        port,
        kind,
    } = link;
    // Learner connections whose messages may have been lost: never sent again.
    let mut dead: HashSet<u64> = HashSet::new();
    let mut backoff = Duration::from_millis(10);
    // The last refusal logged, so a peer that keeps refusing us is reported once, not at
    // every dial.
    let mut last_refusal: Option<String> = None;
    let mut hello = Vec::with_capacity(HELLO_LEN);
    hello.extend_from_slice(if security.sasl.is_some() {
        peer_sasl::MAGIC_SASL
    } else {
        HELLO_MAGIC
    });
    hello.push(kind);
    hello.extend_from_slice(&me.to_be_bytes());
    let lost = |core: &mpsc::Sender<CoreMsg>| {
        let core = core.clone();
        async move {
            let _ = core.send(CoreMsg::PeerLost { peer }).await;
        }
    };
    loop {
        let stream = match dial(&host, port, &security, &hello).await {
            Ok(s) => s,
            Err(e) => {
                let refused = match &e {
                    DialError::Unreachable(m) => {
                        debug!(peer, port, error = %m, "cannot reach peer");
                        false
                    }
                    DialError::Refused(m) => {
                        if last_refusal.as_ref() != Some(m) {
                            warn!(peer, port, "cannot connect to peer: {m}");
                            last_refusal = Some(m.clone());
                        }
                        true
                    }
                };
                // What was queued meanwhile cannot be delivered in order: drop it.
                let mut newly_dead = false;
                while let Ok(o) = rx.try_recv() {
                    match o {
                        Outgoing::Msg(Message::Learner { conn, .. }) => {
                            newly_dead |= dead.insert(conn);
                        }
                        Outgoing::Msg(_) => {}
                        Outgoing::Stream(mut s) => {
                            while let Some(m) = s.recv().await {
                                if let Message::Learner { conn, .. } = m {
                                    newly_dead |= dead.insert(conn);
                                }
                            }
                        }
                    }
                }
                if newly_dead {
                    lost(&core).await;
                }
                if rx.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                let most = if refused {
                    REFUSED_BACKOFF
                } else {
                    Duration::from_millis(50)
                };
                backoff = (backoff * 2).min(most);
                continue;
            }
        };
        let connected_at = tokio::time::Instant::now();
        // Buffered writes (TLS) go out at each flush; a plain socket's flush does nothing.
        let (mut rd, mut wr) = tokio::io::split(stream);
        // Conn ids that went out on this TCP connection: dead with it.
        let mut carried: HashSet<u64> = HashSet::new();
        let mut out = Vec::with_capacity(64 << 10);
        let mut probe = [0u8; 64];
        loop {
            let first = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
                // The peer never writes here: a read returning means it closed or reset.
                _ = rd.read(&mut probe) => break,
            };
            out.clear();
            let mut next = Some(first);
            let mut n = 0;
            let mut stream = None;
            while let Some(o) = next {
                match o {
                    Outgoing::Msg(m) => {
                        encode_unless_dead(&m, &dead, &mut carried, &mut out);
                        n += 1;
                        next = if n < WRITE_BATCH {
                            rx.try_recv().ok()
                        } else {
                            None
                        };
                    }
                    Outgoing::Stream(s) => {
                        stream = Some(s);
                        next = None;
                    }
                }
            }
            if !out.is_empty() && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err()) {
                break;
            }
            if let Some(mut s) = stream {
                // The stream goes out whole before anything queued after it.
                let mut broke = false;
                while let Some(m) = s.recv().await {
                    out.clear();
                    encode_unless_dead(&m, &dead, &mut carried, &mut out);
                    let mut k = 1;
                    while k < WRITE_BATCH {
                        match s.try_recv() {
                            Ok(m) => encode_unless_dead(&m, &dead, &mut carried, &mut out),
                            Err(_) => break,
                        }
                        k += 1;
                    }
                    if !out.is_empty()
                        && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err())
                    {
                        broke = true;
                        break;
                    }
                }
                if broke {
                    break;
                }
            }
        }
        debug!(peer, port, "peer connection broke; reconnecting");
        if connected_at.elapsed() < REFUSED_WITHIN {
            // Closed as soon as it was made: most likely refused (a certificate or hello the
            // peer does not accept). Dialling again at once would only repeat that.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(REFUSED_BACKOFF);
        } else {
            backoff = Duration::from_millis(10);
            last_refusal = None;
        }
        if !carried.is_empty() {
            dead.extend(carried);
            lost(&core).await;
        }
    }
}

/// Why a peer could not be dialled.
enum DialError {
    /// No connection (the peer is down or unreachable): retried quickly.
    Unreachable(String),
    /// A connection, but no TLS session (a certificate refused either way).
    Refused(String),
}

/// Connects to one port of a peer, with TLS when `sslQuorum` asks for it, and sends the
/// hello (then authenticates, with quorum SASL).
async fn dial(
    host: &str,
    port: u16,
    security: &PeerSecurity,
    hello: &[u8],
) -> Result<PeerIo, DialError> {
    let addr = resolve(host, port)
        .await
        .map_err(|e| DialError::Unreachable(e.to_string()))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| DialError::Unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut io: PeerIo = match security.tls.as_deref().filter(|t| t.dial_tls) {
        None => Box::new(tcp),
        Some(t) => {
            let (connector, name) = t.connector(host).map_err(DialError::Refused)?;
            match tokio::time::timeout(HANDSHAKE, connector.connect(name, tcp)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => return Err(DialError::Refused(format!("TLS handshake failed: {e}"))),
                Err(_) => return Err(DialError::Refused("TLS handshake timed out".into())),
            }
        }
    };
    let sent = async {
        io.write_all(hello).await?;
        io.flush().await
    };
    sent.await
        .map_err(|e| DialError::Unreachable(e.to_string()))?;
    if let Some(sasl) = &security.sasl {
        match tokio::time::timeout(HANDSHAKE, sasl.authenticate(&mut io, host)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(DialError::Refused(format!(
                    "SASL authentication failed: {e}"
                )))
            }
            Err(_) => return Err(DialError::Refused("SASL authentication timed out".into())),
        }
    }
    Ok(io)
}

/// A leader's snapshot is parsed here, on a blocking thread, before the message reaches the
/// core: parsing walks the whole image, which the core task never does.
async fn parse_snapshot(msg: &Message) -> Option<crate::msg::ParsedSnapshot> {
    let Message::Learner {
        msg: paddock_zab::LearnerMsg::Snap { zxid, data },
        ..
    } = msg
    else {
        return None;
    };
    let (zxid, data) = (*zxid, data.clone());
    let tree = tokio::task::spawn_blocking(move || {
        crate::storage::snapshot::parse(&data, std::path::Path::new("<snapshot from the leader>"))
            .map(|(t, _)| Box::new(t))
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    Some(crate::msg::ParsedSnapshot { zxid, tree })
}

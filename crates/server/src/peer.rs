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
use paddock_zab::{codec, Message, ServerId};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// Handles for sending to peers.
pub struct Peers {
    out: HashMap<
        ServerId,
        (
            mpsc::UnboundedSender<Outgoing>,
            mpsc::UnboundedSender<Outgoing>,
        ),
    >,
}

impl Peers {
    /// No peers: a one-voter ensemble without peer ports.
    pub fn none() -> Peers {
        Peers {
            out: HashMap::new(),
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
) -> Result<Peers, PeerError> {
    let members: HashSet<ServerId> = servers.iter().map(|s| s.id).collect();
    for (port, kind, what) in [
        (me.election_port, KIND_ELECTION, "election"),
        (me.quorum_port, KIND_QUORUM, "quorum"),
    ] {
        let addr = resolve(&me.host, port).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| PeerError::Bind { addr, what, err })?;
        info!(%addr, port = what, "listening for peers");
        tokio::spawn(accept_loop(listener, kind, members.clone(), core.clone()));
    }
    let mut out = HashMap::new();
    for s in servers.iter().filter(|s| s.id != me.id) {
        let (etx, erx) = mpsc::unbounded_channel();
        let (qtx, qrx) = mpsc::unbounded_channel();
        tokio::spawn(writer(
            me.id,
            s.id,
            s.host.clone(),
            s.election_port,
            KIND_ELECTION,
            erx,
            core.clone(),
        ));
        tokio::spawn(writer(
            me.id,
            s.id,
            s.host.clone(),
            s.quorum_port,
            KIND_QUORUM,
            qrx,
            core.clone(),
        ));
        out.insert(s.id, (etx, qtx));
    }
    Ok(Peers { out })
}

async fn accept_loop(
    listener: TcpListener,
    kind: u8,
    members: HashSet<ServerId>,
    core: mpsc::Sender<CoreMsg>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio::spawn(reader(stream, addr, kind, members.clone(), core.clone()));
            }
            Err(e) => {
                warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads one peer's messages until its connection ends.
async fn reader(
    mut stream: TcpStream,
    addr: SocketAddr,
    kind: u8,
    members: HashSet<ServerId>,
    core: mpsc::Sender<CoreMsg>,
) {
    let _ = stream.set_nodelay(true);
    let mut hello = [0u8; HELLO_LEN];
    let ok = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut hello)).await;
    if !matches!(ok, Ok(Ok(_))) || &hello[..4] != HELLO_MAGIC || hello[4] != kind {
        warn!(%addr, "peer connection without a valid hello; closing");
        return;
    }
    let from = u64::from_be_bytes(hello[5..13].try_into().expect("8 bytes"));
    if !members.contains(&from) {
        warn!(%addr, id = from, "connection from a server not in the configuration; closing");
        return;
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

/// Dials one port of one peer and writes what is queued for it, reconnecting as needed.
async fn writer(
    me: ServerId,
    peer: ServerId,
    host: String,
    port: u16,
    kind: u8,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    core: mpsc::Sender<CoreMsg>,
) {
    // Learner connections whose messages may have been lost: never sent again.
    let mut dead: HashSet<u64> = HashSet::new();
    let mut backoff = Duration::from_millis(10);
    let lost = |core: &mpsc::Sender<CoreMsg>| {
        let core = core.clone();
        async move {
            let _ = core.send(CoreMsg::PeerLost { peer }).await;
        }
    };
    loop {
        let stream = match resolve(&host, port).await {
            Ok(addr) => TcpStream::connect(addr).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                debug!(peer, port, error = %e, "cannot reach peer");
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
                backoff = (backoff * 2).min(Duration::from_millis(50));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let _ = stream.set_nodelay(true);
        let mut hello = Vec::with_capacity(HELLO_LEN);
        hello.extend_from_slice(HELLO_MAGIC);
        hello.push(kind);
        hello.extend_from_slice(&me.to_be_bytes());
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        let (mut rd, mut wr) = stream.into_split();
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
            if !out.is_empty() && wr.write_all(&out).await.is_err() {
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
                    if !out.is_empty() && wr.write_all(&out).await.is_err() {
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
        if !carried.is_empty() {
            dead.extend(carried);
            lost(&core).await;
        }
    }
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

//! One client connection: the handshake or four-letter word, then framed requests decoded here
//! and handed to the core, and a writer that batches replies onto the socket.

use crate::conn_shared::{ConnId, ConnShared, LargeRequests, OutMsg, Outbound};
use crate::msg::CoreMsg;
use crate::read_path::Parsed;
use crate::tls::Certs;
use bytes::{Buf, Bytes, BytesMut};
use paddock_proto::frame::{four_letter_word, take_frame};
use paddock_proto::{
    ConnectRequest, DecodeError, ErrorCode, Reader, Record, Request, RequestHeader,
};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info};

/// The read buffer: an idle connection's stays at `READ_MIN`; a busy one's doubles up to
/// `READ_CHUNK`. It grows by these steps as bytes arrive, never to the length a client
/// announces. Tens of thousands of idle sessions each keep only the small one.
const READ_MIN: usize = 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Replies gathered for one vectored write (the kernel takes up to 1,024), and bytes.
const GATHER_FRAMES: usize = 64;
const GATHER_BYTES: usize = 256 * 1024;

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] paddock_proto::frame::FrameError),
    #[error("malformed handshake: {0}")]
    Handshake(DecodeError),
    #[error("malformed request header: {0}")]
    Header(DecodeError),
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("server is shutting down")]
    CoreGone,
    #[error("rejecting a large request of {0} bytes: largeRequestMaxBytes are in flight")]
    LargeRequest(usize),
}

/// One more of a rare event, counted off the core.
fn count(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

async fn fill<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
) -> Result<bool, std::io::Error> {
    if buf.capacity() - buf.len() < READ_MIN {
        // Reclaims the buffer when the frames split off it are gone; otherwise a new one,
        // twice as large as the last.
        buf.reserve(buf.capacity().clamp(READ_MIN, READ_CHUNK));
    }
    Ok(rd.read_buf(buf).await? > 0)
}

/// Writes `frames` in order with as few system calls as the writer allows, and empties it.
async fn write_frames<W: AsyncWrite + Unpin>(
    w: &mut W,
    frames: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    if !w.is_write_vectored() {
        // One buffer, so that a writer that cannot gather (TLS may not) still sends one
        // record and one system call for many replies.
        let mut all = Vec::with_capacity(frames.iter().map(Bytes::len).sum());
        for f in frames.drain(..) {
            all.extend_from_slice(&f);
        }
        return w.write_all(&all).await;
    }
    let mut first = 0;
    while first < frames.len() {
        let slices: Vec<IoSlice> = frames[first..].iter().map(|f| IoSlice::new(f)).collect();
        let mut n = w.write_vectored(&slices).await?;
        drop(slices);
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let len = frames[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                frames[first].advance(n);
                n = 0;
            }
        }
    }
    frames.clear();
    Ok(())
}

async fn writer<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::UnboundedReceiver<OutMsg>,
    shared: Arc<ConnShared>,
    conn: ConnId,
    core: mpsc::Sender<CoreMsg>,
) {
    // No buffer of its own: replies are written from where they were encoded, gathered, so
    // that an idle connection holds no write buffer at all.
    let mut w = wr;
    let mut frames: Vec<Bytes> = Vec::new();
    'outer: while let Some(msg) = rx.recv().await {
        let mut next = Some(msg);
        let mut closing = false;
        let mut gathered = 0;
        // Drain whatever is queued before writing: one syscall for many replies.
        while let Some(m) = next {
            match m {
                OutMsg::Frame(b) => {
                    gathered += b.len();
                    frames.push(b);
                    if frames.len() >= GATHER_FRAMES || gathered >= GATHER_BYTES {
                        if write_frames(&mut w, &mut frames).await.is_err() {
                            break 'outer;
                        }
                        shared.queued.fetch_sub(gathered, Ordering::AcqRel);
                        gathered = 0;
                    }
                }
                OutMsg::Close => {
                    closing = true;
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        if write_frames(&mut w, &mut frames).await.is_err() {
            break;
        }
        shared.queued.fetch_sub(gathered, Ordering::AcqRel);
        if w.flush().await.is_err() || closing {
            break;
        }
        if frames.capacity() > GATHER_FRAMES {
            frames = Vec::new();
        }
        shared.drained.notify_waiters();
        if shared.queued.load(Ordering::Acquire) <= crate::conn_shared::OUTBOUND_LIMIT
            && shared.wants_drain.swap(false, Ordering::AcqRel)
            && core.send(CoreMsg::Drained { conn }).await.is_err()
        {
            break;
        }
    }
    let _ = w.shutdown().await;
    shared.mark_closed();
}

/// Limits a connection lives under, and where it counts what went wrong.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// The largest frame accepted (`jute.maxbuffer`).
    pub max_frame: usize,
    /// How long a connection may take to complete its handshake.
    pub handshake_timeout: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The large-request budget shared by all connections (`largeRequestThreshold`).
    pub large: Option<Arc<LargeRequests>>,
    /// Reads this connection may answer on its own task.
    pub reads: crate::read_path::ReadPath,
}

/// How a listener's connections are secured.
#[derive(Clone)]
pub enum Security {
    /// Plaintext only (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Certs),
    /// Either, told apart by the first byte (`client.portUnification` on `clientPort`).
    Unified(Certs),
}

/// Serves one accepted connection until it closes, after its TLS handshake where the
/// listener asks for one. The handshake gets the same time limit as ZooKeeper's: it and the
/// ConnectRequest must both come within the handshake timeout.
pub async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    id: ConnId,
    core: mpsc::Sender<CoreMsg>,
    limits: ConnLimits,
    security: Security,
) {
    let _ = stream.set_nodelay(true);
    let acceptor = match security {
        Security::Plain => None,
        Security::Tls(a) => Some(a.acceptor()),
        Security::Unified(a) => {
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.handshake_timeout, stream.peek(&mut first)).await {
                Ok(Ok(1)) if crate::tls::starts_tls(first[0]) => Some(a.acceptor()),
                Ok(Ok(1)) => None,
                Ok(_) => return,
                Err(_) => {
                    info!(%addr, "closing connection: no data within {:?}", limits.handshake_timeout);
                    count(&limits.metrics.off_core.sessionless_connections_expired);
                    return;
                }
            }
        }
    };
    let Some(acceptor) = acceptor else {
        let (rd, wr) = stream.into_split();
        return serve_halves(rd, wr, addr, id, core, limits, (false, None)).await;
    };
    // TLS lives on the heap: its states are large, and inline they would size every
    // connection's task, plaintext ones included.
    Box::pin(serve_tls(stream, acceptor, addr, id, core, limits)).await
}

/// [`serve`] after the first byte said TLS.
async fn serve_tls(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    addr: SocketAddr,
    id: ConnId,
    core: mpsc::Sender<CoreMsg>,
    limits: ConnLimits,
) {
    let off_core = &limits.metrics.off_core;
    off_core
        .outstanding_tls_handshake
        .fetch_add(1, Ordering::Relaxed);
    let accepted = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await;
    off_core
        .outstanding_tls_handshake
        .fetch_sub(1, Ordering::Relaxed);
    let tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // Plaintext on a TLS port, an untrusted or expired certificate, a truncated
            // handshake: the client is told by the TLS alert; nobody else is affected.
            info!(conn = id, %addr, reason = %e, "closing connection: TLS handshake failed");
            count(&off_core.unsuccessful_handshake);
            return;
        }
        Err(_) => {
            info!(conn = id, %addr, "closing connection: no TLS handshake within {:?}", limits.handshake_timeout);
            count(&off_core.unsuccessful_handshake);
            return;
        }
    };
    debug!(conn = id, %addr, version = ?tls.get_ref().1.protocol_version(), "TLS connection");
    let cert_subject = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|c| crate::x509::subject_rfc2253(c));
    let (rd, wr) = tokio::io::split(tls);
    serve_halves(rd, wr, addr, id, core, limits, (true, cert_subject)).await
}

async fn serve_halves<R, W>(
    mut rd: R,
    mut wr: W,
    addr: SocketAddr,
    id: ConnId,
    core: mpsc::Sender<CoreMsg>,
    limits: ConnLimits,
    (secure, cert_subject): (bool, Option<String>),
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let handshake_timeout = limits.handshake_timeout;
    let mut buf = BytesMut::with_capacity(READ_MIN);

    // The first four bytes decide between a four-letter word and a handshake.
    let first = tokio::time::timeout(handshake_timeout, async {
        while buf.len() < 4 {
            if !fill(&mut rd, &mut buf).await? {
                return Ok::<bool, std::io::Error>(false);
            }
        }
        Ok(true)
    })
    .await;
    match first {
        Ok(Ok(true)) => {}
        Ok(_) => return,
        Err(_) => {
            info!(%addr, "closing connection: no data within {handshake_timeout:?}");
            count(&limits.metrics.off_core.sessionless_connections_expired);
            return;
        }
    }
    if let Some(cmd) = four_letter_word(&buf[..4]) {
        let (tx, rx) = oneshot::channel();
        if core
            .send(CoreMsg::FourLetter { cmd, reply: tx })
            .await
            .is_ok()
        {
            if let Ok(text) = rx.await {
                let _ = wr.write_all(text.as_bytes()).await;
            }
        }
        let _ = wr.shutdown().await;
        return;
    }

    let shared = Arc::new(ConnShared::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Outbound {
        tx,
        shared: shared.clone(),
        large: limits.large.clone(),
    };
    tokio::spawn(writer(wr, rx, shared.clone(), id, core.clone()));
    if core
        .send(CoreMsg::NewConn {
            conn: id,
            addr,
            out: out.clone(),
            secure,
            cert_subject,
        })
        .await
        .is_err()
    {
        return;
    }
    let metrics = limits.metrics.clone();
    let large = limits.large.clone();
    let result = read_loop(&mut rd, &mut buf, id, &core, &out, limits).await;
    if let Some(pool) = &large {
        // Requests still unanswered will not be (the connection closes): their budget
        // goes back now.
        shared.large.release_all(pool);
    }
    match &result {
        Err(ConnError::HandshakeTimeout(_)) => {
            count(&metrics.off_core.sessionless_connections_expired)
        }
        Err(
            ConnError::Frame(paddock_proto::frame::FrameError::BadLength { .. })
            | ConnError::LargeRequest(_),
        ) => count(&metrics.off_core.large_requests_rejected),
        _ => {}
    }
    if shared.stop_reading.load(Ordering::Acquire) {
        // The server is stopping and the writer has sent its last reply and a FIN. Requests
        // the client sent meanwhile are still unread: closing now would answer them with a
        // RST, which can make the client's kernel drop replies it has not read yet. Wait for
        // the client to close (it does on the FIN), discarding what it sent.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            // On the heap: an array here would be part of every connection's task.
            let mut sink = vec![0u8; 8192];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    match &result {
        Ok(()) => debug!(conn = id, %addr, "client closed the connection"),
        Err(e) => info!(conn = id, %addr, reason = %e, "closing connection"),
    }
    out.close();
    let _ = core.send(CoreMsg::Closed { conn: id }).await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    id: ConnId,
    core: &mpsc::Sender<CoreMsg>,
    out: &Outbound,
    limits: ConnLimits,
) -> Result<(), ConnError> {
    let ConnLimits {
        max_frame,
        handshake_timeout,
        large,
        reads,
        ..
    } = limits;
    let shared = &*out.shared;
    // Handshake.
    let connect = tokio::time::timeout(handshake_timeout, async {
        loop {
            if let Some(f) = take_frame(buf, max_frame)? {
                return Ok::<_, ConnError>(Some(f));
            }
            if !fill(rd, buf).await? {
                return Ok(None);
            }
        }
    })
    .await
    .map_err(|_| ConnError::HandshakeTimeout(handshake_timeout))??;
    let Some(frame) = connect else { return Ok(()) };
    let req = ConnectRequest::decode(&mut Reader::new(&frame)).map_err(ConnError::Handshake)?;
    core.send(CoreMsg::Connect {
        conn: id,
        req,
        bytes: frame.len() as u32,
    })
    .await
    .map_err(|_| ConnError::CoreGone)?;

    // Requests read, numbered from 1 (the n-th reply answers the n-th).
    let mut seq: u64 = 0;
    // Whether something other than a read was sent to the core since the last time nothing
    // of this connection was there (a write, a ping, an auth).
    let mut waits_on_core = false;
    // Requests parsed from what is buffered, answered in order.
    let mut parsed: VecDeque<Parsed> = VecDeque::new();
    loop {
        // Everything already here, up to a batch: runs of reads are answered together.
        let mut failure = None;
        while parsed.len() < PARSE_BATCH {
            let frame = match take_frame(buf, max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            };
            seq += 1;
            if let Some(pool) = &large {
                if !shared.large.admit(pool, seq, frame.len()) {
                    failure = Some(ConnError::LargeRequest(frame.len()));
                    break;
                }
            }
            match parse(id, &frame) {
                Ok(p) => parsed.push_back(p),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let full = parsed.len() == PARSE_BATCH;
        while !parsed.is_empty() {
            wait_until_drained(shared).await;
            if shared.closed.load(Ordering::Acquire) {
                return Ok(());
            }
            let run = parsed
                .iter()
                .take_while(|p| matches!(&p.req, Ok(r) if reads.may_answer(r)))
                .count();
            if run > 0 {
                if !waits_on_core && !reads.core_busy() {
                    // Only reads of this connection are at the core, and the core is between
                    // rounds: they are answered at once, and these can then run here. (Behind
                    // a write, or while the core works, they go to the core instead, so that
                    // requests pipelined after them still join its next round.)
                    wait_until_answered(shared).await;
                }
                if let Some((n, hand_over)) =
                    reads.try_answer(id, shared, out, &parsed.make_contiguous()[..run])
                {
                    parsed.drain(..n);
                    if hand_over {
                        // Enough direct reads to count: the core folds them into its figures.
                        core.send(CoreMsg::DirectReads { conn: id })
                            .await
                            .map_err(|_| ConnError::CoreGone)?;
                    }
                    // Other connections' turn: a socket that always has requests must not
                    // keep its worker to itself (the core's queue is first come, first
                    // served; the workers' run queues are only fair between turns).
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            let Some(Parsed {
                xid,
                op,
                req,
                bytes,
            }) = parsed.pop_front()
            else {
                break;
            };
            if shared.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
                waits_on_core = false;
            }
            waits_on_core |= !matches!(&req, Ok(r) if r.reads_tree());
            core.send(CoreMsg::Request {
                conn: id,
                xid,
                op,
                req,
                bytes,
            })
            .await
            .map_err(|_| ConnError::CoreGone)?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if full {
            // More may be buffered already: no need to wait for the socket.
            continue;
        }
        // A large request is refused when its length arrives, before its bytes are
        // buffered, as ZooKeeper refuses it (and again once read whole, in `admit`).
        if let (Some(pool), Some(len)) = (&large, announced_len(buf)) {
            if !pool.may_fit(len) {
                return Err(ConnError::LargeRequest(len));
            }
        }
        wait_until_drained(shared).await;
        if shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let closed = shared.close_notify.notified();
        tokio::select! {
            r = fill(rd, buf) => {
                if !r? {
                    return Ok(());
                }
            }
            // Closing, or stopping (the loop then waits for the close).
            _ = closed => continue,
        }
        // Keep unread bytes at the front; `take_frame` already advanced past consumed frames.
        if buf.is_empty() {
            buf.clear();
        }
        let _ = buf.remaining();
    }
}

/// Requests parsed at once from what a connection's socket delivered.
const PARSE_BATCH: usize = 64;

/// Decodes a request frame: a bad header closes the connection; a bad body is answered.
fn parse(conn: ConnId, frame: &[u8]) -> Result<Parsed, ConnError> {
    let mut r = Reader::new(frame);
    let hdr = RequestHeader::decode(&mut r).map_err(ConnError::Header)?;
    let req = match Request::decode(hdr.op, r.rest()) {
        Ok(req) => Ok(req),
        Err(DecodeError::UnknownOpcode(_)) => Err(ErrorCode::Unimplemented),
        Err(e) => {
            debug!(conn, op = hdr.op, error = %e, "undecodable request body");
            Err(ErrorCode::MarshallingError)
        }
    };
    // A top-level `check` is only valid inside a multi; ZooKeeper answers UNIMPLEMENTED.
    let req = if hdr.op == paddock_proto::op::CHECK {
        Err(ErrorCode::Unimplemented)
    } else {
        req
    };
    Ok(Parsed {
        xid: hdr.xid,
        op: hdr.op,
        req,
        bytes: frame.len() as u32,
    })
}

/// The length of the frame at the front of `buf`, once its prefix has arrived.
fn announced_len(buf: &BytesMut) -> Option<usize> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    usize::try_from(i32::from_be_bytes(prefix)).ok()
}

/// Waits until every request of the connection sent to the core is answered (or the
/// connection is closing).
async fn wait_until_answered(shared: &ConnShared) {
    let done = || {
        shared.in_flight.load(Ordering::Acquire) == 0
            || shared.closed.load(Ordering::Acquire)
            || shared.stop_reading.load(Ordering::Acquire)
    };
    while !done() {
        notified_unless(&shared.drained, done).await;
    }
}

/// Waits for `notify` unless `done` holds, looking only after registering: a wake-up between
/// the look and the wait is not missed.
async fn notified_unless(notify: &Notify, done: impl Fn() -> bool) {
    let notified = notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if !done() {
        notified.await;
    }
}

/// Stops reading while the client is not taking its replies, and for good once the server
/// is stopping (until the core closes the connection).
async fn wait_until_drained(shared: &ConnShared) {
    let stopping = || shared.stop_reading.load(Ordering::Acquire);
    loop {
        // The usual case, every request: nothing to wait for, and no waiter registered
        // (registering takes the Notify's lock).
        if shared.closed.load(Ordering::Acquire) || (!stopping() && !shared.congested()) {
            return;
        }
        if stopping() {
            notified_unless(&shared.close_notify, || {
                shared.closed.load(Ordering::Acquire)
            })
            .await;
            continue;
        }
        notified_unless(&shared.drained, || {
            shared.closed.load(Ordering::Acquire) || stopping() || !shared.congested()
        })
        .await;
    }
}

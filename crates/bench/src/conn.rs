//! A small pipelined client connection: one TCP stream, one session, a write buffer that many
//! requests are appended to before one `write` call, and a read buffer parsed in place.
//! It knows the handshake and frame layout (from paddock-proto) and nothing of workloads.

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, BytesMut};
use paddock_proto::frame::{frame_len, DEFAULT_MAX_FRAME};
use paddock_proto::{op, ConnectRequest, ConnectResponse, Reader, Record};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS for every connection the bench opens, when the run asks for it (`bench compare --tls`):
/// set once, before the first connection, and the same for both servers of a comparison.
static TLS: OnceLock<TlsConnector> = OnceLock::new();

/// Makes every later connection speak TLS with `connector`.
pub fn use_tls(connector: TlsConnector) {
    let _ = TLS.set(connector);
}

/// SASL for every session the bench opens, when the client properties ask for it (a JAAS
/// `Client` section): DIGEST-MD5 or Kerberos, as crates/client speaks them.
static SASL: OnceLock<paddock_client::SaslOptions> = OnceLock::new();

/// Makes every later session authenticate with `options` right after its handshake.
pub fn use_sasl(options: paddock_client::SaslOptions) {
    let _ = SASL.set(options);
}

/// The socket: plain, or TLS split into halves so that reading and writing never wait on
/// each other (the pipelined loop must not block a write while replies wait to be read).
enum Stream {
    Plain(TcpStream),
    Tls {
        rd: ReadHalf<TlsStream<TcpStream>>,
        wr: WriteHalf<TlsStream<TcpStream>>,
    },
}

/// Session timeout the bench asks for, in milliseconds.
pub const SESSION_TIMEOUT_MS: i32 = 30_000;

/// Replies larger than this are refused, as a real client would (jute.maxbuffer plus slack).
const MAX_FRAME: usize = DEFAULT_MAX_FRAME + 1024;

/// The fixed part of every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHead {
    /// Request xid, or -1 for a watch event, -2 for a ping reply.
    pub xid: i32,
    /// The zxid the server had when it answered.
    pub zxid: i64,
    /// 0 or a ZooKeeper error code.
    pub err: i32,
}

/// An owned reply, for the sequential (non-hot) paths.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The header.
    pub head: ReplyHead,
    /// The body after the header.
    pub body: Vec<u8>,
}

/// Whether an error is the peer resetting or closing the connection under us.
fn is_reset(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    })
}

/// One client session over one TCP connection.
pub struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    /// Encoded requests not yet written.
    pub wbuf: BytesMut,
    next_xid: i32,
    /// The session id the server assigned.
    pub session_id: i64,
    /// The session timeout the server granted, in milliseconds.
    pub timeout_ms: i32,
    /// The session password the server gave, for reattaching the session elsewhere.
    pub passwd: Vec<u8>,
    /// The protocol version the server answered (`paddock_proto::protocol`): 0 from
    /// ZooKeeper, what it speaks (up to what was asked) from Paddock.
    pub server_protocol: i32,
    /// Bytes made room for before each read.
    read_chunk: usize,
    /// The largest reply accepted.
    max_frame: usize,
}

/// How a connection is dialled, beyond the server's address.
#[derive(Debug, Clone, Copy)]
pub struct Dial {
    /// The local address to connect from; `None` lets the kernel choose. Tens of thousands
    /// of connections to one server spread over several loopback addresses, because one
    /// address runs out of ephemeral ports near 28,000.
    pub source: Option<IpAddr>,
    /// Bytes made room for before each read: 64 KiB for the pipelined workloads, a little
    /// for sessions that sit idle by the thousand.
    pub read_chunk: usize,
    /// The largest reply accepted (a real client's `jute.maxbuffer`): about 1 MiB, more to
    /// list a million children at once.
    pub max_frame: usize,
}

impl Default for Dial {
    fn default() -> Self {
        Dial {
            source: None,
            read_chunk: 64 * 1024,
            max_frame: MAX_FRAME,
        }
    }
}

/// What a server answered to a session handshake (see [`Conn::handshake`]).
pub enum Handshake {
    /// The session is open on this connection (a new one, or the one asked for).
    Open(Conn),
    /// The server says the session asked for has expired (timeout 0 in the reply).
    Expired,
    /// The server closed the connection without answering, as ZooKeeper does when it is not
    /// serving or has seen an older zxid than the client.
    Closed,
}

/// The session a handshake asks for: a new one (`Default`) or one to reattach.
#[derive(Debug, Clone)]
pub struct SessionAsk {
    /// 0 for a new session.
    pub session_id: i64,
    /// The password of the session (16 zero bytes for a new one).
    pub passwd: Vec<u8>,
    /// The highest zxid the client has seen; a server behind it refuses the connection.
    pub last_zxid_seen: i64,
    /// Session timeout to ask for, in milliseconds.
    pub timeout_ms: i32,
}

impl Default for SessionAsk {
    fn default() -> Self {
        SessionAsk {
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid_seen: 0,
            timeout_ms: SESSION_TIMEOUT_MS,
        }
    }
}

impl Conn {
    /// Connects to `addr` and creates a new session.
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        let limit = Duration::from_secs(10);
        match Conn::handshake(addr, &SessionAsk::default(), limit).await? {
            Handshake::Open(c) => Ok(c),
            Handshake::Expired => bail!("{addr} refused the session (timeout 0)"),
            Handshake::Closed => bail!(
                "{addr} closed the connection during the handshake (server full or not serving?)"
            ),
        }
    }

    /// Connects to `addr` and asks for the session `ask` (a new one when its id is 0), with
    /// `limit` for the TCP connect and again for the server's answer.
    pub async fn handshake(
        addr: SocketAddr,
        ask: &SessionAsk,
        limit: Duration,
    ) -> Result<Handshake> {
        Conn::handshake_with(addr, ask, limit, Dial::default()).await
    }

    /// [`Conn::handshake`], dialled as `dial` says.
    pub async fn handshake_with(
        addr: SocketAddr,
        ask: &SessionAsk,
        limit: Duration,
        dial: Dial,
    ) -> Result<Handshake> {
        let connect = async {
            match dial.source {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let socket = match ip {
                        IpAddr::V4(_) => TcpSocket::new_v4()?,
                        IpAddr::V6(_) => TcpSocket::new_v6()?,
                    };
                    socket.bind(SocketAddr::new(ip, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        let stream = tokio::time::timeout(limit, connect)
            .await
            .with_context(|| format!("connecting to {addr} timed out"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let stream = match TLS.get() {
            None => Stream::Plain(stream),
            Some(connector) => {
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let tls = tokio::time::timeout(limit, connector.connect(name, stream))
                    .await
                    .with_context(|| format!("TLS handshake with {addr} timed out"))?
                    .with_context(|| format!("TLS handshake with {addr} failed"))?;
                let (rd, wr) = tokio::io::split(tls);
                Stream::Tls { rd, wr }
            }
        };
        let mut c = Conn {
            stream,
            rbuf: BytesMut::with_capacity(dial.read_chunk),
            wbuf: BytesMut::with_capacity(dial.read_chunk),
            next_xid: 1,
            session_id: 0,
            timeout_ms: 0,
            passwd: Vec::new(),
            server_protocol: 0,
            read_chunk: dial.read_chunk,
            max_frame: dial.max_frame,
        };
        let req = ConnectRequest {
            // What this build speaks: a server that does not (ZooKeeper) answers 0.
            protocol_version: paddock_proto::protocol::CURRENT,
            last_zxid_seen: ask.last_zxid_seen,
            timeout: ask.timeout_ms,
            session_id: ask.session_id,
            passwd: ask.passwd.clone(),
            read_only: Some(false),
        };
        let mut body = Vec::with_capacity(64);
        req.encode(&mut body);
        c.wbuf.put_i32(body.len() as i32);
        c.wbuf.put_slice(&body);
        c.flush().await?;
        let frame = match tokio::time::timeout(limit, c.read_frame())
            .await
            .with_context(|| {
                format!("{addr} did not answer the session handshake within {limit:?}")
            })? {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Handshake::Closed),
            Err(e) if is_reset(&e) => return Ok(Handshake::Closed),
            Err(e) => return Err(e),
        };
        let resp =
            ConnectResponse::decode(&mut Reader::new(&frame)).context("bad ConnectResponse")?;
        if resp.session_id == 0 || resp.timeout <= 0 {
            return Ok(Handshake::Expired);
        }
        c.session_id = resp.session_id;
        c.timeout_ms = resp.timeout;
        c.passwd = resp.passwd;
        c.server_protocol = resp.protocol_version;
        if let Some(opts) = SASL.get() {
            c.authenticate(addr, opts).await?;
        }
        Ok(Handshake::Open(c))
    }

    /// The SASL exchange, before anything else goes out on the session (as the Java client).
    async fn authenticate(
        &mut self,
        addr: SocketAddr,
        opts: &paddock_client::SaslOptions,
    ) -> Result<()> {
        use paddock_client::sasl::{SaslClient, MAX_SASL_ROUNDS};
        use paddock_proto::records::SaslToken;
        let (mut client, mut token) = SaslClient::start(opts, &addr.ip().to_string())
            .await
            .map_err(|e| anyhow::anyhow!("SASL with {addr}: {e}"))?;
        for _ in 0..MAX_SASL_ROUNDS {
            let mut body = Vec::new();
            SaslToken { token: Some(token) }.encode(&mut body);
            let reply = self.call(op::SASL, &body).await?;
            if reply.head.err != 0 {
                bail!(
                    "{addr} refused the SASL authentication (error {})",
                    reply.head.err
                );
            }
            let t = SaslToken::decode(&mut Reader::new(&reply.body))
                .context("bad SASL reply")?
                .token
                .unwrap_or_default();
            match client
                .step(&t)
                .map_err(|e| anyhow::anyhow!("SASL with {addr}: {e}"))?
            {
                Some(next) => token = next,
                None => return Ok(()),
            }
        }
        bail!("SASL with {addr}: the exchange did not end")
    }

    /// Takes the next xid; xids are positive and wrap before reaching the reserved negatives.
    fn take_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// Appends a request whose body is already encoded; returns its xid.
    #[inline]
    pub fn push(&mut self, opcode: i32, body: &[u8]) -> i32 {
        let xid = self.take_xid();
        self.wbuf.reserve(12 + body.len());
        self.wbuf.put_i32(8 + body.len() as i32);
        self.wbuf.put_i32(xid);
        self.wbuf.put_i32(opcode);
        self.wbuf.put_slice(body);
        xid
    }

    /// Appends a request whose body `f` writes straight into the buffer; returns its xid.
    #[inline]
    pub fn push_with(&mut self, opcode: i32, f: impl FnOnce(&mut BytesMut)) -> i32 {
        let xid = self.take_xid();
        let start = self.wbuf.len();
        self.wbuf.put_i32(0);
        self.wbuf.put_i32(xid);
        self.wbuf.put_i32(opcode);
        f(&mut self.wbuf);
        let len = (self.wbuf.len() - start - 4) as i32;
        self.wbuf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        xid
    }

    /// Appends a ping (xid -2), as clients send when idle so the server keeps the session.
    pub fn push_ping(&mut self) {
        self.wbuf.put_i32(8);
        self.wbuf.put_i32(paddock_proto::xid::PING);
        self.wbuf.put_i32(op::PING);
    }

    /// Writes everything buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(&self.wbuf).await?,
                Stream::Tls { wr, .. } => {
                    wr.write_all(&self.wbuf).await?;
                    wr.flush().await?;
                }
            }
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Whether requests are waiting to be written.
    pub fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// One round of IO for the pipelined loop: writes what it can of the buffer without
    /// waiting, then waits until the socket is readable (or writable, if bytes remain) and
    /// moves bytes both ways. Never blocks on a write while replies wait to be read, so a
    /// server that stops reading until we read cannot deadlock us.
    pub async fn io(&mut self) -> io::Result<()> {
        if let Stream::Tls { rd, wr } = &mut self.stream {
            // TLS: read and write concurrently; whichever is ready first.
            self.rbuf.reserve(self.read_chunk);
            let pending = !self.wbuf.is_empty();
            tokio::select! {
                r = rd.read_buf(&mut self.rbuf) => {
                    if r? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "server closed the connection",
                        ));
                    }
                }
                w = wr.write(&self.wbuf), if pending => {
                    self.wbuf.advance(w?);
                    wr.flush().await?;
                }
            }
            return Ok(());
        }
        if !self.wbuf.is_empty() {
            self.try_write()?;
        }
        let interest = if self.wbuf.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let Stream::Plain(stream) = &mut self.stream else {
            unreachable!("TLS connections returned above");
        };
        let ready = stream.ready(interest).await?;
        if ready.is_writable() && !self.wbuf.is_empty() {
            self.try_write()?;
        }
        if ready.is_readable() {
            self.rbuf.reserve(self.read_chunk);
            let Stream::Plain(stream) = &mut self.stream else {
                unreachable!("TLS connections returned above");
            };
            match stream.try_read_buf(&mut self.rbuf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn try_write(&mut self) -> io::Result<()> {
        let Stream::Plain(stream) = &mut self.stream else {
            return Ok(());
        };
        match stream.try_write(&self.wbuf) {
            Ok(n) => {
                self.wbuf.advance(n);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Calls `f` with the header and body of every complete reply in the read buffer, in
    /// order, and consumes them.
    pub fn drain_replies(&mut self, mut f: impl FnMut(ReplyHead, &[u8])) -> io::Result<()> {
        let mut pos = 0;
        loop {
            let buf = &self.rbuf[pos..];
            let len = match frame_len(buf, self.max_frame) {
                Ok(Some(len)) if buf.len() >= 4 + len => len,
                Ok(_) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            };
            let frame = &buf[4..4 + len];
            if frame.len() < 16 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply shorter than its header",
                ));
            }
            let head = ReplyHead {
                xid: i32::from_be_bytes(frame[0..4].try_into().unwrap()),
                zxid: i64::from_be_bytes(frame[4..12].try_into().unwrap()),
                err: i32::from_be_bytes(frame[12..16].try_into().unwrap()),
            };
            f(head, &frame[16..]);
            pos += 4 + len;
        }
        self.rbuf.advance(pos);
        Ok(())
    }

    /// Reads one whole frame (sequential paths only). `None` on a clean close.
    async fn read_frame(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(len) = frame_len(&self.rbuf, self.max_frame)? {
                if self.rbuf.len() >= 4 + len {
                    self.rbuf.advance(4);
                    return Ok(Some(self.rbuf.split_to(len).to_vec()));
                }
            }
            self.rbuf.reserve(self.read_chunk);
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read_buf(&mut self.rbuf).await?,
                Stream::Tls { rd, .. } => rd.read_buf(&mut self.rbuf).await?,
            };
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads the next reply of any kind (sequential paths only).
    pub async fn recv(&mut self) -> Result<Reply> {
        let frame = self
            .read_frame()
            .await?
            .context("server closed the connection")?;
        if frame.len() < 16 {
            bail!("reply shorter than its header");
        }
        let head = ReplyHead {
            xid: i32::from_be_bytes(frame[0..4].try_into().unwrap()),
            zxid: i64::from_be_bytes(frame[4..12].try_into().unwrap()),
            err: i32::from_be_bytes(frame[12..16].try_into().unwrap()),
        };
        Ok(Reply {
            head,
            body: frame[16..].to_vec(),
        })
    }

    /// Sends one request and waits for its reply, skipping watch events and pings.
    pub async fn call(&mut self, opcode: i32, body: &[u8]) -> Result<Reply> {
        let xid = self.push(opcode, body);
        self.flush().await?;
        loop {
            let r = self.recv().await?;
            if r.head.xid == xid {
                return Ok(r);
            }
            if r.head.xid >= 0 {
                bail!("reply out of order: expected xid {xid}, got {}", r.head.xid);
            }
        }
    }

    /// Closes the session politely (closeSession, then wait for its reply or the close).
    pub async fn close(mut self) -> Result<()> {
        let xid = self.push(op::CLOSE_SESSION, &[]);
        self.flush().await?;
        let wait = async {
            loop {
                match self.read_frame().await? {
                    None => return Ok::<(), anyhow::Error>(()),
                    Some(f)
                        if f.len() >= 4
                            && i32::from_be_bytes(f[0..4].try_into().unwrap()) == xid =>
                    {
                        return Ok(())
                    }
                    Some(_) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .context("closeSession was not answered within 10 s")??;
        Ok(())
    }
}

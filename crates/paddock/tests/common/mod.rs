//! A running `paddock server` process and a minimal blocking client for tests over real sockets.
#![allow(dead_code)]

use paddock_proto::frame::take_frame;
use paddock_proto::{
    ConnectRequest, ConnectResponse, Reader, Record, ReplyHeader, Request, RequestHeader,
    WatcherEvent,
};
use paddock_testkit::paddock::{zk_prop, Output, Standalone};
use paddock_testkit::{fourlw, logs, ports, process};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// A server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    /// Remove `dir` on drop.
    pub owns_dir: bool,
}

impl Server {
    /// Starts a server with these extra `-D` properties (names without the `zookeeper.` prefix).
    pub fn start(props: &[(&str, &str)]) -> Server {
        Server::start_on(ports::free_port(), props)
    }

    /// Like `start`, on a given port (for tests confined to a port range).
    pub fn start_on(port: u16, props: &[(&str, &str)]) -> Server {
        let dir = std::env::temp_dir().join(format!("paddock-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Server::start_in(&dir, port, props);
        s.owns_dir = true;
        s
    }

    /// Starts a server on `port` with its data in `dir`, which outlives it.
    pub fn start_in(dir: &std::path::Path, port: u16, props: &[(&str, &str)]) -> Server {
        Server::start_in_env(dir, port, props, &[])
    }

    /// `start_in` with extra environment variables for the server process; its stderr is
    /// appended to `dir/server.log`.
    pub fn start_in_env(
        dir: &std::path::Path,
        port: u16,
        props: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Server {
        let mut spec = Standalone::new(env!("CARGO_BIN_EXE_paddock"), port, dir)
            .prop("zookeeper.4lw.commands.whitelist", "*")
            .output(Output::StderrTo(dir.join("server.log")));
        for (k, v) in props {
            spec = spec.prop(&zk_prop(k), v);
        }
        for (k, v) in env {
            spec = spec.env(k, v);
        }
        let child = spec
            .start(Duration::from_secs(10), Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server {
            child,
            addr: spec.addr(),
            dir: dir.to_owned(),
            owns_dir: false,
        }
    }

    /// A free port for `start_in`.
    pub fn free_port() -> u16 {
        ports::free_port()
    }

    /// Resident set size of the server process in bytes.
    pub fn rss(&self) -> u64 {
        process::rss(self.child.id()).expect("the server's VmRSS")
    }

    /// A four-letter word's output.
    pub fn four(&self, cmd: &str) -> String {
        fourlw::ask(self.addr, cmd, None).unwrap()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        logs::read(&self.dir.join("server.log"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        process::kill(&mut self.child);
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One frame from the server after the handshake.
#[derive(Debug, Clone)]
pub enum Frame {
    Reply(ReplyHeader, Vec<u8>),
    Event(WatcherEvent),
}

/// A blocking client speaking the wire protocol.
pub struct Client {
    pub sock: TcpStream,
    buf: bytes::BytesMut,
    pub xid: i32,
    pub session: i64,
    pub passwd: Vec<u8>,
    pub timeout: i32,
}

impl Client {
    /// Connects and completes a handshake asking for a new session.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::attach(addr, 0, vec![0; 16], 30_000).expect("handshake")
    }

    /// Opens a socket without a handshake.
    pub fn raw(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Handshake for `session` (0 = new). `None` if the server closed without a reply.
    pub fn attach(addr: SocketAddr, session: i64, passwd: Vec<u8>, timeout: i32) -> Option<Client> {
        Client::attach_with(
            addr,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout,
                session_id: session,
                passwd,
                read_only: Some(false),
            },
        )
    }

    /// Handshake with a given ConnectRequest.
    pub fn attach_with(addr: SocketAddr, req: ConnectRequest) -> Option<Client> {
        let sock = Client::raw(addr);
        let mut c = Client {
            sock,
            buf: bytes::BytesMut::new(),
            xid: 0,
            session: 0,
            passwd: vec![],
            timeout: 0,
        };
        c.write_frame(&req.to_bytes());
        let f = c.read_frame()?;
        let resp = ConnectResponse::decode(&mut Reader::new(&f)).unwrap();
        c.session = resp.session_id;
        c.passwd = resp.passwd;
        c.timeout = resp.timeout;
        Some(c)
    }

    /// Writes one length-prefixed frame. A failed write (the server died or closed the
    /// connection) is left for the next read to report as EOF.
    pub fn write_frame(&mut self, payload: &[u8]) {
        let mut v = (payload.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        let _ = self.sock.write_all(&v);
    }

    /// Reads one frame's payload; `None` on EOF or error.
    pub fn read_frame(&mut self) -> Option<bytes::BytesMut> {
        loop {
            if let Some(f) = take_frame(&mut self.buf, 64 << 20).unwrap() {
                return Some(f);
            }
            let mut tmp = [0u8; 65536];
            match self.sock.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Reads the next reply or event.
    pub fn next(&mut self) -> Option<Frame> {
        let f = self.read_frame()?;
        let mut r = Reader::new(&f);
        let h = ReplyHeader::decode(&mut r).unwrap();
        if h.xid == -1 {
            return Some(Frame::Event(WatcherEvent::decode(&mut r).unwrap()));
        }
        Some(Frame::Reply(h, r.rest().to_vec()))
    }

    /// Sends a request and returns its xid.
    pub fn send(&mut self, req: &Request) -> i32 {
        self.xid += 1;
        let xid = match req {
            Request::Ping => -2,
            Request::Auth(_) => -4,
            _ => self.xid,
        };
        let mut v = Vec::new();
        RequestHeader {
            xid,
            op: req.opcode(),
        }
        .encode(&mut v);
        req.encode_body(&mut v);
        self.write_frame(&v);
        xid
    }

    /// Sends a request and waits for its reply, collecting events seen meanwhile.
    pub fn call(
        &mut self,
        req: &Request,
        events: &mut Vec<WatcherEvent>,
    ) -> (ReplyHeader, Vec<u8>) {
        let xid = self.send(req);
        loop {
            match self.next().expect("connection closed") {
                Frame::Event(e) => events.push(e),
                Frame::Reply(h, b) => {
                    assert_eq!(h.xid, xid, "replies must come in request order");
                    return (h, b);
                }
            }
        }
    }

    /// `call` ignoring events.
    pub fn req(&mut self, req: &Request) -> (ReplyHeader, Vec<u8>) {
        let mut ev = Vec::new();
        self.call(req, &mut ev)
    }

    /// Whether the server has closed this connection (waits up to `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut tmp = [0u8; 4096];
        let deadline = Instant::now() + wait;
        loop {
            match self.sock.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
            if Instant::now() > deadline {
                return false;
            }
        }
    }
}

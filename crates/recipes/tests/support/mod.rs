//! What the recipe tests run against: a fresh `paddock server` per test (the default), or the
//! server named by `RECIPES_SERVER=host:port` (Apache ZooKeeper in CI), plus a TCP proxy that a
//! test can cut to make a client lose its connection without touching the server.
#![allow(dead_code)]

use paddock_client::{open_acl, Client, CreateMode};
use paddock_testkit::paddock::{self, Output, Standalone};
use paddock_testkit::{ports, process};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
/// Ticks short enough that session expiry takes about a second (the ZooKeeper that CI starts
/// for these tests uses the same tickTime).
pub const TICK_MS: u64 = 200;

/// A short session timeout for tests that lose sessions (the server clamps it to 2..20 ticks).
pub const SHORT_SESSION: Duration = Duration::from_millis(1200);

/// The server of one test.
pub struct Target {
    /// host:port of the server (or of the external one).
    pub addr: String,
    server: Option<Child>,
    dir: Option<PathBuf>,
    /// A namespace of its own for this test, so tests can share an external server.
    pub root: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the tests run against an external server (RECIPES_SERVER).
pub fn external() -> bool {
    std::env::var_os("RECIPES_SERVER").is_some()
}

impl Target {
    /// A fresh Paddock server, or the external one.
    pub async fn start(test: &str) -> Target {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = format!("/recipes-{test}-{}-{n}", std::process::id());
        if let Ok(addr) = std::env::var("RECIPES_SERVER") {
            return Target {
                addr,
                server: None,
                dir: None,
                root,
            };
        }
        let port = ports::free_port();
        let dir =
            std::env::temp_dir().join(format!("paddock-recipes-{}-{test}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = paddock::binary_next_to_test().unwrap_or_else(|e| panic!("{e}"));
        let srv = Standalone::new(bin, port, &dir)
            .prop("zookeeper.tickTime", TICK_MS)
            .prop("zookeeper.forceSync", "no")
            .output(Output::StderrTo(dir.join("server.log")));
        let child = srv.spawn().expect("start paddock server");
        let addr = format!("127.0.0.1:{port}");
        let sa = srv.addr();
        let up = tokio::task::spawn_blocking(move || {
            process::wait_listening(sa, Duration::from_secs(20), Duration::from_millis(20))
        })
        .await
        .unwrap();
        assert!(up, "paddock did not listen on {addr}");
        Target {
            addr,
            server: Some(child),
            dir: Some(dir),
            root,
        }
    }

    /// A path under this test's namespace.
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{}", self.root, rel.trim_start_matches('/'))
    }

    /// A connected client with the default (10 s) session timeout.
    pub async fn client(&self) -> Client {
        self.client_with(Duration::from_secs(10)).await
    }

    /// A connected client with this session timeout.
    pub async fn client_with(&self, timeout: Duration) -> Client {
        connect(&self.addr, timeout).await
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = &mut self.server {
            process::kill(c);
        }
        if let Some(d) = &self.dir {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

/// Connects to `addr` and waits for the session.
pub async fn connect(addr: &str, timeout: Duration) -> Client {
    let c = Client::builder()
        .session_timeout(timeout)
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    c.wait_connected(Duration::from_secs(20))
        .await
        .expect("connected");
    c
}

/// Expires `client`'s session the way ZooKeeper's own tests do: a second connection with the
/// same id and password closes it. The first client learns of it when it next talks to a
/// server (SESSIONEXPIRED), as after a real expiry.
pub async fn expire(addr: &str, client: &Client) {
    let twin = Client::builder()
        .session(client.session_id(), client.session_passwd())
        .session_timeout(Duration::from_millis(
            client.negotiated_timeout_ms().max(1) as u64
        ))
        .connect(addr)
        .await
        .expect("twin connect");
    twin.wait_connected(Duration::from_secs(20))
        .await
        .expect("twin connected");
    twin.close().await;
}

/// [`expire`] for a client connected through `proxy`. A client reconnects at once when the
/// twin's connection takes its session over, and its new connection then takes the session
/// back before the twin can close it; cut off meanwhile, it cannot.
pub async fn expire_behind(proxy: &Proxy, addr: &str, client: &Client) {
    proxy.cut();
    expire(addr, client).await;
    proxy.restore();
}

/// Creates `path` (and parents) as a persistent node with `data`.
pub async fn mkdirs(client: &Client, path: &str) {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        let _ = client
            .create(&at, b"", open_acl(), CreateMode::Persistent)
            .await;
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of a server. `cut()` closes every proxied connection and refuses new
/// ones (a client behind it sees its server vanish); `restore()` lets connections through again.
pub struct Proxy {
    /// host:port to give a client instead of the server's.
    pub addr: String,
    open: watch::Sender<bool>,
    muted: watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free local port.
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (open, open_rx) = watch::channel(true);
        let (muted, muted_rx) = watch::channel(false);
        let upstream: Arc<str> = upstream.into();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                if !*open_rx.borrow() {
                    let _ = down.shutdown().await;
                    continue;
                }
                let upstream = upstream.clone();
                let mut rx = open_rx.clone();
                // Any later cut ends this connection, even if restored before the task looks.
                rx.borrow_and_update();
                let muted = muted_rx.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(&*upstream).await else {
                        return;
                    };
                    let (mut down_r, mut down_w) = down.into_split();
                    let (mut up_r, mut up_w) = up.into_split();
                    let requests = tokio::io::copy(&mut down_r, &mut up_w);
                    let replies = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match up_r.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            // Muted: the server's answers vanish on the way.
                            if *muted.borrow() {
                                continue;
                            }
                            if down_w.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = requests => {}
                        _ = replies => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            open,
            muted,
            _task: task,
        }
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Accepts connections again (and forwards replies again after `mute`).
    pub fn restore(&self) {
        self.muted.send_replace(false);
        self.open.send_if_modified(|o| !std::mem::replace(o, true));
    }

    /// Swallows everything the server sends from now on while still forwarding requests: a
    /// request is applied but its reply never arrives (cut then, and the client sees
    /// CONNECTIONLOSS for a request that succeeded).
    pub fn mute(&self) {
        self.muted.send_replace(true);
    }
}

//! Servers for the client tests: a fresh Paddock or Apache ZooKeeper 3.8 standalone on a free
//! port, killed when the guard drops.

#![allow(dead_code)]

use paddock_testkit::paddock::{fresh_dir, Standalone};
use paddock_testkit::zookeeper::{self, Scripted};
use paddock_testkit::{ports, process};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Paddock,
    Zookeeper,
}

/// A running server; killed (SIGKILL, after SIGCONT) on drop.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    pub pid: u32,
    child: Option<Child>,
    dir: PathBuf,
}

impl Server {
    /// SIGKILL now (the guard's drop then has nothing left to do).
    pub fn kill(&mut self) {
        process::signal(self.pid, "-KILL");
        if let Some(c) = &mut self.child {
            let _ = c.wait();
        }
        // The JVM is not our child: wait until its port is free.
        process::wait_closed(self.sock_addr(), Duration::from_secs(10));
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn sock_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    /// SIGSTOP: the server keeps its sockets but answers nothing.
    pub fn pause(&self) {
        process::signal(self.pid, "-STOP");
        // kill(2) returns before every thread of a busy JVM has stopped.
        std::thread::sleep(Duration::from_millis(100));
    }
    pub fn resume(&self) {
        process::signal(self.pid, "-CONT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        process::signal(self.pid, "-CONT");
        process::signal(self.pid, "-KILL");
        if let Some(c) = &mut self.child {
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tmpdir(tag: &str, port: u16) -> PathBuf {
    fresh_dir(&format!(
        "paddock-client-{tag}-{port}-{}",
        std::process::id()
    ))
    .unwrap()
}

/// Starts Paddock (the release binary, built by `cargo build --release -p paddock`).
pub fn paddock() -> Server {
    paddock_on(ports::free_port(), "paddock")
}

/// Starts a server of `kind` on `port` with a fresh data directory.
pub fn start_on(kind: Kind, port: u16, tag: &str) -> Option<Server> {
    match kind {
        Kind::Paddock => Some(paddock_on(port, tag)),
        Kind::Zookeeper => zookeeper_on(port, tag),
    }
}

fn paddock_on(port: u16, tag: &str) -> Server {
    let bin = workspace().join("target/release/paddock");
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p paddock",
        bin.display()
    );
    let dir = tmpdir(tag, port);
    let srv = Standalone::new(bin, port, &dir)
        .prop("tickTime", 200)
        .prop("extendedTypesEnabled", true);
    let child = srv
        .start(Duration::from_secs(30), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("server on port {port} did not come up: {e}"));
    Server {
        kind: Kind::Paddock,
        port,
        pid: child.id(),
        child: Some(child),
        dir,
    }
}

/// Starts ZooKeeper 3.8 with scripts/start-zookeeper.sh, or `None` (loudly) if it is absent.
pub fn zookeeper() -> Option<Server> {
    zookeeper_on(ports::free_port(), "zk")
}

fn zookeeper_on(port: u16, tag: &str) -> Option<Server> {
    if !Path::new(ZK_JAR).exists() {
        eprintln!("!!!!! SKIPPING: {ZK_JAR} absent, ZooKeeper tests not run !!!!!");
        return None;
    }
    let dir = tmpdir(tag, port);
    let pid = Scripted {
        script: zookeeper::start_script(Path::new(env!("CARGO_MANIFEST_DIR"))),
        port,
        dir: dir.clone(),
        lines: vec![
            "tickTime=200".into(),
            "extendedTypesEnabled=true".into(),
            "4lw.commands.whitelist=*".into(),
        ],
        env: vec![],
        timeout_s: Some(90),
    }
    .start()
    .unwrap_or_else(|e| panic!("start-zookeeper.sh failed: {e}"));
    Some(Server {
        kind: Kind::Zookeeper,
        port,
        pid,
        child: None,
        dir,
    })
}

pub fn start(kind: Kind) -> Option<Server> {
    match kind {
        Kind::Paddock => Some(paddock()),
        Kind::Zookeeper => zookeeper(),
    }
}

/// A TCP proxy in front of a server: `cut()` drops every connection and refuses new ones
/// (accept then close, like a server that will not answer) until `restore()`; the server itself
/// keeps running, so a long cut lets it expire the session.
pub struct Proxy {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (cut, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = l.accept().await else {
                    return;
                };
                if *rx.borrow() {
                    drop(down);
                    continue;
                }
                let mut rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

//! Durability over real processes and files: SIGKILL at random moments while clients pipeline
//! writes; after each restart every acknowledged write must be there.

mod common;

use common::{Client, Frame, Server};
use paddock_proto::{
    Acl, Create, CreateKind, PathWatchRequest, Reader, Record, Request, SetDataRequest,
    StatResponse,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn create(path: &str) -> Request {
    Request::Create(Create {
        kind: CreateKind::Create,
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl: -1,
    })
}

/// What the clients were told succeeded.
#[derive(Default)]
struct Acked {
    created: Vec<String>,
    /// Highest acknowledged data version per node.
    versions: HashMap<String, i32>,
}

/// One client: creates its own nodes and bumps a counter node, `depth` requests in flight, until
/// the server dies under it.
fn worker(addr: std::net::SocketAddr, id: usize, round: usize, acked: Arc<Mutex<Acked>>) {
    let Some(mut c) = Client::attach(addr, 0, vec![0; 16], 10_000) else {
        return;
    };
    let counter = format!("/w{id}");
    let mut pending: std::collections::VecDeque<(i32, Option<String>)> = Default::default();
    // The SIGKILL may land while this first write is in flight (a worker that got no CPU
    // until just before it): no answer is not a wrong answer.
    let xid = c.send(&create(&counter));
    loop {
        match c.next() {
            Some(Frame::Reply(h, _)) => {
                assert_eq!(h.xid, xid);
                if h.err == 0 {
                    acked.lock().unwrap().created.push(counter.clone());
                }
                break;
            }
            Some(Frame::Event(_)) => {}
            None => return,
        }
    }
    let mut n = 0;
    loop {
        while pending.len() < 16 {
            n += 1;
            if n % 2 == 0 {
                let p = format!("/w{id}-r{round}-{n}");
                pending.push_back((c.send(&create(&p)), Some(p)));
            } else {
                let req = Request::SetData(SetDataRequest {
                    path: counter.clone(),
                    data: Some(vec![n as u8]),
                    version: -1,
                });
                pending.push_back((c.send(&req), None));
            }
        }
        match c.next() {
            Some(Frame::Reply(h, body)) => {
                let (xid, what) = pending
                    .pop_front()
                    .expect("a reply answers a pending request");
                assert_eq!(h.xid, xid);
                assert_eq!(h.err, 0, "write failed: {h:?}");
                let mut a = acked.lock().unwrap();
                match what {
                    Some(p) => a.created.push(p),
                    None => {
                        let stat = StatResponse::decode(&mut Reader::new(&body)).unwrap().stat;
                        let v = a.versions.entry(counter.clone()).or_default();
                        *v = (*v).max(stat.version);
                    }
                }
            }
            Some(Frame::Event(_)) => {}
            None => return,
        }
    }
}

/// The acknowledged writes the server no longer has. The checks are pipelined (up to 500 in
/// flight), so verifying every acknowledged write after every restart stays cheap as the
/// history grows.
fn lost(addr: std::net::SocketAddr, acked: &Acked) -> Vec<String> {
    let mut c = Client::connect(addr);
    let mut lost = Vec::new();
    let checks: Vec<(String, Option<i32>)> = acked
        .created
        .iter()
        .map(|p| (p.clone(), None))
        .chain(acked.versions.iter().map(|(p, v)| (p.clone(), Some(*v))))
        .collect();
    for window in checks.chunks(500) {
        let mut xids = std::collections::VecDeque::new();
        for (p, _) in window {
            xids.push_back(c.send(&Request::Exists(PathWatchRequest {
                path: p.clone(),
                watch: false,
            })));
        }
        let mut answers = window.iter();
        while let Some(xid) = xids.pop_front() {
            let (h, body) = loop {
                match c.next().expect("the server answers the checks") {
                    Frame::Reply(h, body) => break (h, body),
                    Frame::Event(_) => {}
                }
            };
            assert_eq!(h.xid, xid, "replies come in order");
            let (p, want) = answers.next().expect("one answer per check");
            match want {
                None if h.err != 0 => lost.push(format!("create of {p}")),
                None => {}
                Some(v) => match StatResponse::decode(&mut Reader::new(&body)) {
                    Ok(r) if h.err == 0 && r.stat.version >= *v => {}
                    _ => lost.push(format!("{p} at version {v}")),
                },
            }
        }
    }
    lost
}

/// Kills the server `kills` times under load; returns the acknowledged writes found missing.
fn crash_loop(kills: usize, env: &[(&str, &str)]) -> (Vec<String>, usize) {
    let dir = std::env::temp_dir().join(format!(
        "paddock-crash-{}-{}",
        std::process::id(),
        env.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Server::free_port();
    let props = [("snapCount", "400"), ("tickTime", "500")];
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let mut missing = Vec::new();
    for round in 0..kills {
        let mut s = Server::start_in_env(&dir, port, &props, env);
        missing.extend(lost(s.addr, &acked.lock().unwrap()));
        if !missing.is_empty() {
            break;
        }
        let workers: Vec<_> = (0..4)
            .map(|id| {
                let a = acked.clone();
                let addr = s.addr;
                std::thread::spawn(move || worker(addr, id, round, a))
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        for w in workers {
            w.join().expect("worker saw a wrong reply");
        }
    }
    if missing.is_empty() {
        let s = Server::start_in_env(&dir, port, &props, env);
        missing = lost(s.addr, &acked.lock().unwrap());
    }
    let n = acked.lock().unwrap().created.len();
    let _ = std::fs::remove_dir_all(&dir);
    (missing, n)
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let kills: usize = std::env::var("PADDOCK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let started = Instant::now();
    let (missing, created) = crash_loop(kills, &[]);
    assert!(
        missing.is_empty(),
        "lost acknowledged writes: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert!(
        created > kills * 10,
        "too few writes were acknowledged to mean anything: {created}"
    );
    eprintln!(
        "{kills} kills, {created} acknowledged creates verified in {:?}",
        started.elapsed()
    );
}

/// The crash test bites: with replies sent before the log write, it finds lost writes.
#[test]
fn crash_test_catches_replies_before_the_log() {
    let (missing, _) = crash_loop(20, &[("PADDOCK_TEST_ACK_BEFORE_LOG", "1")]);
    assert!(
        !missing.is_empty(),
        "a server that acknowledges before logging went unnoticed"
    );
}

#[test]
fn restart_keeps_data_and_sessions() {
    let dir = std::env::temp_dir().join(format!("paddock-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Server::free_port();
    let s = Server::start_in(&dir, port, &[]);
    let c = Client::attach(s.addr, 0, vec![0; 16], 30_000).unwrap();
    let mut c = c;
    c.req(&create("/kept"));
    let mut e = create("/eph");
    if let Request::Create(cr) = &mut e {
        cr.flags = 1;
    }
    c.req(&e);
    drop(s); // SIGKILL
    let s = Server::start_in(&dir, port, &[]);
    let mut back = Client::attach(s.addr, c.session, c.passwd.clone(), 30_000).unwrap();
    assert_eq!(back.session, c.session, "the session survives the restart");
    for p in ["/kept", "/eph"] {
        let (h, _) = back.req(&Request::Exists(PathWatchRequest {
            path: p.into(),
            watch: false,
        }));
        assert_eq!(h.err, 0, "{p}");
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_logs_are_refused_and_torn_tails_cut() {
    let dir = std::env::temp_dir().join(format!("paddock-damage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Server::free_port();
    let s = Server::start_in(&dir, port, &[]);
    let mut c = Client::connect(s.addr);
    for i in 0..50 {
        c.req(&create(&format!("/n{i}")));
    }
    drop(s);
    let seg = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = std::fs::read(&seg).unwrap();
    let end = good.iter().rposition(|&b| b != 0).unwrap() + 1;

    // A log cut mid-record recovers cleanly, minus that record.
    let mut torn = good.clone();
    for b in &mut torn[end - 10..end] {
        *b = 0;
    }
    std::fs::write(&seg, &torn).unwrap();
    let s = Server::start_in(&dir, port, &[]);
    let mut c = Client::connect(s.addr);
    let (h, _) = c.req(&Request::Exists(PathWatchRequest {
        path: "/n48".into(),
        watch: false,
    }));
    assert_eq!(h.err, 0);
    drop(s);

    // A flipped byte in the middle is refused, naming the file and offset.
    let mut bad = std::fs::read(&seg).unwrap();
    bad[200] ^= 0x01;
    std::fs::write(&seg, &bad).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .arg("server")
        .arg(format!("-Dzookeeper.clientPort={port}"))
        .arg(format!("-Dzookeeper.dataDir={}", dir.display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output_timeout();
    assert!(!out.0.success(), "the server must refuse to start");
    assert!(
        out.1.contains("corrupt at offset") && out.1.contains("log."),
        "{}",
        out.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

trait WaitTimeout {
    fn wait_with_output_timeout(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitTimeout for std::process::Child {
    fn wait_with_output_timeout(&mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.try_wait().unwrap() {
                let mut s = String::new();
                use std::io::Read;
                self.stderr.take().unwrap().read_to_string(&mut s).unwrap();
                return (st, s);
            }
            if Instant::now() > deadline {
                let _ = self.kill();
                panic!("server neither started nor refused");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A full disk stalls writes (docs/storage.md, "Failures while running"): the write that does
/// not fit is not acknowledged and not failed, it waits; reads go on meanwhile; when space
/// returns the waiting write and every later one are acknowledged; after a SIGKILL and a
/// restart everything acknowledged is there.
#[test]
fn a_full_disk_stalls_writes_until_space_returns() {
    let dir = std::env::temp_dir().join(format!("paddock-enospc-{}", std::process::id()));
    let mnt = paddock_testkit::tmpfs::Tmpfs::mount(&dir, "4m").expect("a 4 MiB tmpfs");
    let ballast = dir.join("ballast");
    std::fs::write(&ballast, vec![1u8; 1536 * 1024]).unwrap();
    let port = Server::free_port();
    let data = dir.join("data");
    let props = [("snapCount", "1000000")];
    let s = Server::start_in(&data, port, &props);
    let mut reader = Client::connect(s.addr);
    let mut writer = Client::connect(s.addr);
    // A write that gets no answer for 2 s waits on the full disk.
    writer
        .sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut acked = Vec::new();
    let mut stalled = None;
    let big = vec![7u8; 64 * 1024];
    for i in 0..200 {
        let p = format!("/full-{i}");
        let req = Request::Create(Create {
            kind: CreateKind::Create,
            path: p.clone(),
            data: Some(big.clone()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: -1,
        });
        let xid = writer.send(&req);
        match writer.next() {
            Some(Frame::Reply(h, _)) => {
                assert_eq!(
                    h.err, 0,
                    "a write failed instead of waiting for space: {h:?}"
                );
                acked.push(p);
            }
            Some(Frame::Event(e)) => panic!("unexpected event {e:?}"),
            None => {
                stalled = Some((xid, p));
                break;
            }
        }
    }
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the disk filled"
    );
    let (stalled_xid, stalled_path) = stalled.expect("the disk never filled in 200 writes");
    // Reads go on while the disk is full.
    let (h, _) = reader.req(&Request::GetData(PathWatchRequest {
        path: acked[0].clone(),
        watch: false,
    }));
    assert_eq!(h.err, 0);
    let (h, _) = reader.req(&Request::Exists(PathWatchRequest {
        path: stalled_path.clone(),
        watch: false,
    }));
    assert_eq!(
        h.err,
        paddock_proto::ErrorCode::NoNode.code(),
        "a write that waits for the disk is not applied"
    );
    // Space comes back: the waiting write is acknowledged, then later ones.
    std::fs::remove_file(&ballast).unwrap();
    writer
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match writer.next() {
        Some(Frame::Reply(h, _)) => {
            assert_eq!(h.xid, stalled_xid);
            assert_eq!(h.err, 0, "the waiting write failed: {h:?}");
            acked.push(stalled_path);
        }
        other => panic!("the waiting write was not answered once space returned: {other:?}"),
    }
    let (h, _) = writer.req(&create("/after"));
    assert_eq!(h.err, 0, "writes go on after space returned");
    acked.push("/after".to_string());
    drop(reader);
    drop(writer);
    drop(s); // SIGKILL
    let s = Server::start_in(&data, port, &props);
    let mut c = Client::connect(s.addr);
    for p in &acked {
        let (h, _) = c.req(&Request::Exists(PathWatchRequest {
            path: p.clone(),
            watch: false,
        }));
        assert_eq!(
            h.err, 0,
            "{p} was acknowledged and is gone after the restart"
        );
    }
    drop(s);
    drop(mnt);
}

/// Runs `paddock <args>` to completion (at most 10 s) and returns its status and stderr.
fn paddock_run(args: &[String]) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("paddock {args:?} is still running after 10 s: it was not refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two processes writing one log lose acknowledged writes without a trace, so a server locks
/// its dataDir and dataLogDir: a second server, `paddock purge` and `paddock log truncate*`
/// are refused while it runs, naming the directory and the holder's pid; a SIGKILLed holder
/// leaves nothing that blocks the next start.
#[test]
fn a_locked_data_directory_refuses_a_second_server_and_the_offline_tools() {
    let base = std::env::temp_dir().join(format!("paddock-dirlock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    let logs = base.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let port = Server::free_port();
    let props = [("dataLogDir", logs.to_str().unwrap())];
    let s = Server::start_in(&data, port, &props);
    let pid = s.child.id();
    let mut c = Client::connect(s.addr);
    let (h, _) = c.req(&create("/first"));
    assert_eq!(h.err, 0);

    let holder = format!("pid {pid}");
    let refused = |args: Vec<String>, dir: &std::path::Path| {
        let (status, err) = paddock_run(&args);
        assert!(!status.success(), "{args:?} was not refused: {err}");
        assert!(
            err.contains("in use by another Paddock process") && err.contains(&holder),
            "{args:?}: {err}"
        );
        let dir = std::fs::canonicalize(dir).unwrap();
        assert!(err.contains(&dir.display().to_string()), "{args:?}: {err}");
    };
    let other_port = Server::free_port().to_string();
    // The same dataDir, and another dataDir with the same dataLogDir.
    refused(
        vec![
            "server".into(),
            format!("-Dzookeeper.clientPort={other_port}"),
            format!("-Dzookeeper.dataDir={}", data.display()),
            format!("-Dzookeeper.dataLogDir={}", base.join("other").display()),
        ],
        &data,
    );
    refused(
        vec![
            "server".into(),
            format!("-Dzookeeper.clientPort={other_port}"),
            format!("-Dzookeeper.dataDir={}", base.join("other").display()),
            format!("-Dzookeeper.dataLogDir={}", logs.display()),
        ],
        &logs,
    );
    refused(
        vec![
            "purge".into(),
            data.display().to_string(),
            logs.display().to_string(),
        ],
        &data,
    );
    refused(
        vec![
            "log".into(),
            "truncate-zxid".into(),
            logs.display().to_string(),
            "0x1".into(),
        ],
        &logs,
    );
    let segment = std::fs::read_dir(logs.join("log"))
        .unwrap()
        .next()
        .expect("a log segment")
        .unwrap()
        .path();
    refused(
        vec![
            "log".into(),
            "truncate".into(),
            segment.display().to_string(),
            "0".into(),
        ],
        &logs,
    );
    // The server that was there first is untouched.
    let (h, _) = c.req(&create("/second"));
    assert_eq!(h.err, 0);
    drop(c);

    drop(s); // SIGKILL: the kernel releases the locks
    let s = Server::start_in(&data, port, &props);
    let mut c = Client::connect(s.addr);
    for p in ["/first", "/second"] {
        let (h, _) = c.req(&Request::Exists(PathWatchRequest {
            path: p.into(),
            watch: false,
        }));
        assert_eq!(h.err, 0, "{p} is gone after the restart");
    }
    drop(c);
    drop(s);
    // With no server, the offline tools run.
    let (status, err) = paddock_run(&[
        "purge".into(),
        data.display().to_string(),
        logs.display().to_string(),
    ]);
    assert!(status.success(), "purge: {err}");
    let _ = std::fs::remove_dir_all(&base);
}

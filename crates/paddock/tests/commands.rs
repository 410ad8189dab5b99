//! `paddock lock` and `paddock elect` as users run them: real processes against a real server.
//! (The HA demo, examples/ha/demo.sh, puts `paddock elect` through kills and partitions.)

mod common;

use common::Server;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_paddock");

fn server() -> Server {
    Server::start(&[("tickTime", "200")])
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("paddock-cmd-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn lock_cmd(addr: &str, path: &str, extra: &[&str], script: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("lock").arg(path).arg("-server").arg(addr);
    c.args(extra).arg("--").arg("sh").arg("-c").arg(script);
    c.env("PADDOCK_LOG", "info");
    c
}

fn finish(mut c: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    loop {
        if c.try_wait().unwrap().is_some() {
            return c.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let out = c.wait_with_output().unwrap();
            panic!(
                "process did not finish in {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn cli(addr: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("cli")
        .arg("-server")
        .arg(addr)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn lock_runs_one_command_at_a_time_with_growing_tokens() {
    let s = server();
    let addr = s.addr.to_string();
    let dir = scratch("mutex");
    let log = dir.join("log");
    // Each holder writes "in <token>", works a little, writes "out <token>".
    let script = format!(
        "echo in $PADDOCK_LOCK_TOKEN >> {0}; sleep 0.2; echo out $PADDOCK_LOCK_TOKEN >> {0}",
        log.display()
    );
    let kids: Vec<Child> = (0..4)
        .map(|i| {
            let flag = if i % 2 == 0 { "-server" } else { "--server" };
            let mut c = Command::new(BIN);
            c.arg("lock")
                .arg("/locks/one")
                .arg(flag)
                .arg(&addr)
                .arg("--")
                .arg("sh")
                .arg("-c")
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for k in kids {
        let out = finish(k, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines: Vec<String> = read(&log).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8, "{lines:?}");
    let mut last = 0i64;
    for pair in lines.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let tok: i64 = a
            .strip_prefix("in ")
            .expect("an 'in' line")
            .parse()
            .unwrap();
        assert_eq!(
            b,
            &format!("out {tok}"),
            "two holders overlapped: {lines:?}"
        );
        assert!(tok > last, "tokens must grow: {lines:?}");
        last = tok;
    }
}

#[test]
fn lock_exit_status_wait_and_bad_arguments() {
    let s = server();
    let addr = s.addr.to_string();
    // The command's status comes back.
    let out = lock_cmd(&addr, "/locks/st", &[], "exit 3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // A held lock and --wait: give up with status 1 and a clear message.
    let holder = lock_cmd(&addr, "/locks/st", &[], "sleep 3")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "the holder", || {
        cli(&addr, &["ls", "/locks/st"]).contains("lock-")
    });
    let out = lock_cmd(&addr, "/locks/st", &["--wait", "300"], "exit 0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not acquired within 300 ms"));
    let out = finish(holder, Duration::from_secs(10));
    assert!(out.status.success());
    // The waiter's node is gone: only what the holder left (nothing) remains.
    assert!(!cli(&addr, &["ls", "/locks/st"]).contains("lock-"));
    // Bad input: a relative path, an unknown signal.
    let out = lock_cmd(&addr, "locks", &[], "true").output().unwrap();
    assert!(!out.status.success());
    let out = lock_cmd(&addr, "/l", &["--signal", "NOPE"], "true")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown signal"));
}

#[test]
fn lock_lost_stops_the_command() {
    let s = server();
    let addr = s.addr.to_string();
    let dir = scratch("lost");
    let marker = dir.join("term");
    let script = format!(
        "trap 'echo term > {}; exit 7' USR1; while :; do sleep 0.05; done",
        marker.display()
    );
    let child = lock_cmd(
        &addr,
        "/locks/lost",
        &["--signal", "USR1", "--grace", "2000"],
        &script,
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut node = String::new();
    wait_until(Duration::from_secs(10), "the lock node", || {
        let ls = cli(&addr, &["ls", "/locks/lost"]);
        if let Some(n) = ls
            .split(['[', ']', ',', ' ', '\n'])
            .find(|n| n.contains("lock-"))
        {
            node = n.to_string();
            true
        } else {
            false
        }
    });
    // An operator breaks the lock: the command gets the configured signal.
    cli(&addr, &["delete", &format!("/locks/lost/{node}")]);
    let out = finish(child, Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(&marker).trim(), "term");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NodeDeleted"));
}

/// A controller whose hooks record into `dir`: `<id>.state` (active <token> | standby) and
/// `fence.log`; the fence succeeds only while `dir/fence-ok` exists.
fn controller(addr: &str, dir: &Path, id: &str) -> Child {
    let d = dir.display();
    Command::new(BIN)
        .arg("elect")
        .arg("/ha")
        .arg("-server")
        .arg(addr)
        .args(["-id", id, "--session-timeout", "1000", "--retry-delay", "200"])
        .arg("--on-active")
        .arg(format!("echo active $PADDOCK_FENCING_TOKEN > {d}/{id}.state"))
        .arg("--on-standby")
        .arg(format!("echo standby > {d}/{id}.state"))
        .arg("--fence")
        .arg(format!(
            "echo \"$PADDOCK_ELECT_ID fences $PADDOCK_FENCE_TARGET\" >> {d}/fence.log; test -f {d}/fence-ok"
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap())
        .spawn()
        .unwrap()
}

fn state(dir: &Path, id: &str) -> String {
    read(&dir.join(format!("{id}.state"))).trim().to_string()
}

fn sigterm(c: &Child) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
}

#[test]
fn elect_fences_before_going_active_and_never_without_a_fence() {
    let s = server();
    let addr = s.addr.to_string();
    let dir = scratch("elect");
    let mut a = controller(&addr, &dir, "a");
    wait_until(Duration::from_secs(10), "a active", || {
        state(&dir, "a").starts_with("active")
    });
    let b = controller(&addr, &dir, "b");
    wait_until(Duration::from_secs(10), "b standby", || {
        state(&dir, "b") == "standby"
    });
    // a dies without a word: its breadcrumb stays. b wins the lock once a's session expires,
    // but fencing fails, so b must not go active; it keeps retrying.
    a.kill().unwrap();
    a.wait().unwrap();
    wait_until(Duration::from_secs(10), "b's first fence attempt", || {
        read(&dir.join("fence.log")).contains("b fences a")
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        state(&dir, "b"),
        "standby",
        "b went active without fencing a"
    );
    assert!(
        read(&dir.join("fence.log")).lines().count() >= 2,
        "b should retry the fence"
    );
    // Fencing works now: b goes active with a larger token.
    std::fs::write(dir.join("fence-ok"), "").unwrap();
    wait_until(Duration::from_secs(10), "b active", || {
        state(&dir, "b").starts_with("active")
    });
    assert!(cli(&addr, &["get", "/ha/breadcrumb"])
        .lines()
        .any(|l| l == "b"));
    // A clean exit: on-standby runs, the breadcrumb and the lock go.
    sigterm(&b);
    let out = finish(b, Duration::from_secs(10));
    assert!(out.status.success());
    assert_eq!(state(&dir, "b"), "standby");
    let ls = cli(&addr, &["ls", "/ha"]);
    assert!(
        ls.contains("[]"),
        "breadcrumb and lock should be gone: {ls}"
    );
    let blog = read(&dir.join("b.log"));
    assert!(
        blog.contains("to=Active") && blog.contains("breadcrumb removed"),
        "{blog}"
    );
}

#[test]
fn elect_gives_up_the_lock_when_unhealthy() {
    let s = server();
    let addr = s.addr.to_string();
    let dir = scratch("health");
    let healthy = dir.join("healthy");
    std::fs::write(&healthy, "").unwrap();
    let d = dir.display();
    let spawn = |id: &str, health: &str| {
        Command::new(BIN)
            .args(["elect", "/hh", "--server", &addr, "--id", id])
            .args(["--health-interval", "100", "--session-timeout", "2000"])
            .arg("--on-active")
            .arg(format!("echo active > {d}/{id}.state"))
            .arg("--on-standby")
            .arg(format!("echo standby > {d}/{id}.state"))
            .arg("--fence")
            .arg("true")
            .arg("--health")
            .arg(health)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = spawn("a", &format!("test -f {}", healthy.display()));
    wait_until(Duration::from_secs(10), "a active", || {
        state(&dir, "a") == "active"
    });
    let mut b = spawn("b", "true");
    wait_until(Duration::from_secs(10), "b standby", || {
        state(&dir, "b") == "standby"
    });
    std::fs::remove_file(&healthy).unwrap();
    // Well within a session timeout: the lock is given up, not left to expire.
    wait_until(Duration::from_millis(1500), "b active", || {
        state(&dir, "b") == "active"
    });
    assert_eq!(state(&dir, "a"), "standby");
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = a.wait();
    let _ = b.wait();
}

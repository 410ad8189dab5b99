//! `paddock cli` driven as a person uses it: on a pseudo-terminal, so rustyline's line editing,
//! history and completion are in play, and across a lost connection (server killed and
//! restarted; network cut until the session expires). Expected output is zkCli.sh's (ZooKeeper
//! 3.8's ZooKeeperMain) for the same keystrokes and outages.

mod common;

use common::Server;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one expected output may take: generous, for a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(30);

const UP: &str = "\x1b[A";
const LEFT: &str = "\x1b[D";
const END: &str = "\x1b[F";
const BACKSPACE: &str = "\x7f";

/// Opens a pseudo-terminal: (master, slave). Both are opened by std, hence close-on-exec, so
/// servers spawned meanwhile by other tests do not hold the slave open (which would keep the
/// master from seeing the cli's exit).
fn openpty() -> (File, File) {
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/ptmx")
        .expect("open /dev/ptmx");
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: plain calls on a descriptor we own; `name` is large enough and NUL-terminated
    // by ptsname_r on success.
    let slave_path = unsafe {
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)
        .expect("open pty slave");
    // Wide, so that rustyline never wraps a line (wrapping would redraw and split the echo).
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 300,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we pass by reference.
    unsafe {
        libc::ioctl(
            slave.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    (master, slave)
}

/// Terminal output as text: ANSI escape sequences (CSI, OSC, two-byte ESC), carriage returns
/// and bells removed, so rustyline's redraws leave only the characters shown.
fn strip_ansi(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\x1b' => match it.next() {
                Some('[') => {
                    for c in it.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = it.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            it.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' | '\x07' => {}
            c => out.push(c),
        }
    }
    out
}

/// An interactive `paddock cli` on a pseudo-terminal; killed on drop.
struct Cli {
    child: Child,
    master: File,
    /// Everything the cli wrote to the terminal, raw.
    output: Arc<Mutex<Vec<u8>>>,
    /// The address given with -server, as the prompt shows it.
    addr: String,
    /// The command counter the next prompt shows.
    count: u32,
    home: PathBuf,
}

impl Cli {
    fn start(addr: &str, timeout_ms: u32) -> Cli {
        let (master, slave) = openpty();
        // A HOME of its own: the history file starts empty and the user's is left alone.
        let home = std::env::temp_dir().join(format!(
            "paddock-cli-home-{}-{}",
            std::process::id(),
            addr.replace([':', '.'], "_")
        ));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
        cmd.args(["cli", "-server", addr, "-timeout", &timeout_ms.to_string()])
            .env("HOME", &home)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe. The pty becomes the controlling
        // terminal of a session of its own, as a terminal emulator arranges for a shell.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start paddock cli");
        // `cmd` holds the last slave descriptors; drop them so the master sees EOF at exit.
        drop(cmd);
        let output = Arc::new(Mutex::new(Vec::new()));
        let (mut rd, out) = (master.try_clone().unwrap(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the cli has exited and the slave is closed.
            while let Ok(n @ 1..) = rd.read(&mut buf) {
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Cli {
            child,
            master,
            output,
            addr: addr.to_string(),
            count: 0,
            home,
        }
    }

    /// A position in the output, to look only at what comes after it.
    fn mark(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// The output since `from`, as text.
    fn since(&self, from: usize) -> String {
        strip_ansi(&self.output.lock().unwrap()[from..])
    }

    fn transcript(&self) -> String {
        self.since(0)
    }

    /// Waits until the output since `from` satisfies `ok`; returns that output.
    fn wait_for(&self, from: usize, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.since(from);
            if ok(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; output since the mark:\n{s}\n--- whole transcript:\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a line equal to `line` (after trailing blanks are trimmed) since `from`.
    fn wait_line(&self, from: usize, line: &str) -> String {
        self.wait_for(from, &format!("the line {line:?}"), |s| has_line(s, line))
    }

    /// Sends keystrokes.
    fn keys(&mut self, k: &str) {
        self.master.write_all(k.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// The prompts shown since `from`: (state, counter).
    fn prompts(&self, from: usize) -> Vec<(String, u32)> {
        prompts(&self.since(from), &self.addr)
    }

    /// Types `keys` and Enter, and waits until the command has run, i.e. the next prompt is
    /// shown; returns the output since the keystrokes.
    fn enter(&mut self, keys: &str) -> String {
        let m = self.mark();
        self.keys(keys);
        self.keys("\r");
        self.count += 1;
        let want = self.count;
        let out = self.wait_for(m, &format!("prompt number {want} after {keys:?}"), |s| {
            prompts(s, &self.addr).iter().any(|(_, n)| *n == want)
        });
        eprintln!("--- {keys:?}:\n{out}");
        out
    }

    /// Presses Enter on an empty line (no command, the counter stays) and returns the state the
    /// new prompt shows.
    fn prompt_state(&mut self) -> String {
        let m = self.mark();
        self.keys("\r");
        let want = self.count;
        self.wait_for(m, "a fresh prompt", |s| {
            prompts(s, &self.addr).iter().any(|(_, n)| *n == want)
        });
        self.prompts(m).last().unwrap().0.clone()
    }

    /// Waits for the process to exit and returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "paddock cli did not exit; transcript:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts the cli is still running (no crash).
    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "paddock cli exited; transcript:\n{}",
            self.transcript()
        );
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn has_line(s: &str, line: &str) -> bool {
    s.lines().any(|l| l.trim_end() == line)
}

/// zkCli's prompts `[zk: <addr>(<STATE>) <N>] ` in `s`, in order.
fn prompts(s: &str, addr: &str) -> Vec<(String, u32)> {
    let head = format!("[zk: {addr}(");
    let mut found = vec![];
    let mut rest = s;
    while let Some(i) = rest.find(&head) {
        rest = &rest[i + head.len()..];
        let parsed = rest.split_once(") ").and_then(|(state, tail)| {
            let (n, _) = tail.split_once("] ")?;
            Some((state.to_string(), n.parse().ok()?))
        });
        if let Some(p) = parsed {
            found.push(p);
        }
    }
    found
}

/// The event lines zkCli's default watcher prints for a session state change.
fn session_event(state: &str) -> String {
    format!("WatchedEvent state:{state} type:None path:null")
}

/// Starts a cli and waits until it is connected and shows its first prompt.
fn connected_cli(addr: &str, timeout_ms: u32) -> Cli {
    let mut cli = Cli::start(addr, timeout_ms);
    let out = cli.wait_line(0, &session_event("SyncConnected"));
    assert!(has_line(&out, &format!("Connecting to {addr}")), "{out}");
    assert!(has_line(&out, "Welcome to ZooKeeper!"), "{out}");
    assert!(has_line(&out, "JLine support is enabled"), "{out}");
    assert!(has_line(&out, "WATCHER::"), "{out}");
    assert_eq!(cli.prompt_state(), "CONNECTED");
    cli
}

#[test]
fn prompt_commands_line_editing_and_history() {
    let srv = Server::start(&[("tickTime", "200")]);
    let addr = srv.addr.to_string();
    let mut cli = connected_cli(&addr, 30000);
    assert_eq!(
        cli.prompts(0).last().unwrap(),
        &("CONNECTED".to_string(), 0)
    );

    // A command runs, and the prompt's counter counts it.
    let out = cli.enter("create /edit-node edit-payload");
    assert!(has_line(&out, "Created /edit-node"), "{out}");
    assert_eq!(
        cli.prompts(0).last().unwrap(),
        &("CONNECTED".to_string(), 1)
    );
    let out = cli.enter("get /edit-node");
    assert!(has_line(&out, "edit-payload"), "{out}");

    // A typo erased with backspace: what runs is the corrected line.
    let out = cli.enter(&format!("get /edit-nodeXY{BACKSPACE}{BACKSPACE}"));
    assert!(has_line(&out, "edit-payload"), "{out}");
    assert!(!out.contains("Node does not exist"), "{out}");

    // The cursor moved back with the arrow keys to insert a missing letter, then to the end
    // to append: "et /edit-nod" becomes "get /edit-node".
    let out = cli.enter(&format!("et /edit-nod{}g{END}e", LEFT.repeat(12)));
    assert!(has_line(&out, "edit-payload"), "{out}");
    assert!(!out.contains("Command not found"), "{out}");

    // Up recalls the previous line; Enter runs it again.
    cli.enter("set /edit-node second");
    let out = cli.enter(&format!("{UP}{UP}"));
    assert!(has_line(&out, "second"), "{out}");

    // `history` lists the commands by number, zkCli's `N - line`, itself included.
    let out = cli.enter("history");
    for (i, l) in [
        "create /edit-node edit-payload",
        "get /edit-node",
        "get /edit-node",
        "get /edit-node",
        "set /edit-node second",
        "get /edit-node",
        "history",
    ]
    .iter()
    .enumerate()
    {
        assert!(has_line(&out, &format!("{i} - {l}")), "{i} - {l}:\n{out}");
    }
    // `redo N` runs command N again.
    cli.enter("set /edit-node third");
    let out = cli.enter("redo 1");
    assert!(has_line(&out, "third"), "{out}");
    let out = cli.enter("redo 99");
    assert!(has_line(&out, "Command index out of range"), "{out}");

    // An unknown command prints zkCli's usage and says so; the shell goes on.
    let out = cli.enter("frobnicate now");
    assert!(
        has_line(
            &out,
            "ZooKeeper -server host:port -client-configuration properties-file cmd args"
        ),
        "{out}"
    );
    assert!(has_line(&out, "\tgetEphemerals path"), "{out}");
    assert!(
        has_line(&out, "Command not found: Command not found frobnicate"),
        "{out}"
    );

    // `quit` ends the session and the process, with status 0.
    let m = cli.mark();
    cli.keys("quit\r");
    let st = cli.wait_exit();
    assert!(st.success(), "quit: {st:?}\n{}", cli.transcript());
    let out = cli.since(m);
    assert!(has_line(&out, &session_event("Closed")), "{out}");
    let next = cli.count + 1;
    assert!(
        prompts(&out, &cli.addr).iter().all(|(_, n)| *n != next),
        "a prompt after quit:\n{out}"
    );
    // The history is kept for the next session.
    let kept = std::fs::read_to_string(cli.home.join(".paddock_cli_history")).unwrap();
    assert!(kept.lines().any(|l| l == "set /edit-node third"), "{kept}");
}

#[test]
fn tab_completes_commands_and_znode_paths() {
    let srv = Server::start(&[("tickTime", "200")]);
    let addr = srv.addr.to_string();
    let mut cli = connected_cli(&addr, 30000);
    cli.enter("create /completion-node");
    cli.enter("create /completion-node/kid kid-data");
    let out = cli.enter("create -e /eph-comp");
    assert!(has_line(&out, "Created /eph-comp"), "{out}");

    // A command name: `getE` has one completion, getEphemerals, which lists this session's
    // ephemeral nodes.
    let m = cli.mark();
    cli.keys("getE\t");
    cli.wait_for(m, "getE completed", |s| s.contains("getEphemerals"));
    let out = cli.enter("");
    assert!(has_line(&out, "[/eph-comp]"), "{out}");
    assert!(!out.contains("Command not found"), "{out}");

    // A znode path, from the children the server lists: first level, then a nested one.
    let m = cli.mark();
    cli.keys("ls /comp\t");
    cli.wait_for(m, "/comp completed", |s| s.contains("/completion-node"));
    let out = cli.enter("");
    assert!(has_line(&out, "[kid]"), "{out}");
    let m = cli.mark();
    cli.keys("get /completion-node/k\t");
    cli.wait_for(m, "/completion-node/k completed", |s| {
        s.contains("/completion-node/kid")
    });
    let out = cli.enter("");
    assert!(has_line(&out, "kid-data"), "{out}");

    // Ctrl-D on an empty line ends the shell as zkCli's does: status 0, and (unlike `quit`)
    // without closing the session first, so no `state:Closed` report.
    let m = cli.mark();
    cli.keys("\x04");
    let st = cli.wait_exit();
    assert!(st.success(), "Ctrl-D: {st:?}\n{}", cli.transcript());
    let out = cli.since(m);
    assert!(!out.contains("state:Closed"), "{out}");
    let kept = std::fs::read_to_string(cli.home.join(".paddock_cli_history")).unwrap();
    assert!(kept.lines().any(|l| l == "create -e /eph-comp"), "{kept}");
}

/// SIGKILL the server under a connected cli, use the cli during the outage, restart the server
/// on the same port and data: the cli reconnects by itself to the same session.
#[test]
fn server_killed_and_restarted_within_session_timeout() {
    let dir = std::env::temp_dir().join(format!("paddock-cli-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = Server::free_port();
    // The default tickTime (2 s) allows the 30 s session timeout asked for (at most 20 ticks).
    let mut srv = Server::start_in(&dir, port, &[]);
    let addr = srv.addr.to_string();
    let mut cli = connected_cli(&addr, 30000);
    let out = cli.enter("create -e /eph-restart alive");
    assert!(has_line(&out, "Created /eph-restart"), "{out}");

    // zkCli: "WATCHER::" and "WatchedEvent state:Disconnected type:None path:null".
    let m = cli.mark();
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(srv);
    let out = cli.wait_line(m, &session_event("Disconnected"));
    assert!(has_line(&out, "WATCHER::"), "{out}");
    cli.assert_running();

    // A command during the outage fails as zkCli's does, and the prompt says CONNECTING.
    let out = cli.enter("get /eph-restart");
    assert!(
        has_line(&out, "KeeperErrorCode = ConnectionLoss for /eph-restart"),
        "{out}"
    );
    let out = cli.enter("ls /");
    assert!(
        has_line(&out, "KeeperErrorCode = ConnectionLoss for /"),
        "{out}"
    );
    assert_eq!(cli.prompts(0).last().unwrap().0, "CONNECTING");
    // Completion asks nothing of an absent server and does not hang the editor.
    let m = cli.mark();
    cli.keys("ls /eph\t");
    std::thread::sleep(Duration::from_millis(200));
    cli.keys(&BACKSPACE.repeat(16));
    cli.wait_for(m, "the line typed during the outage", |s| {
        s.contains("ls /eph")
    });
    assert_eq!(cli.prompt_state(), "CONNECTING");
    cli.assert_running();

    let m = cli.mark();
    let _srv = Server::start_in(&dir, port, &[]);
    cli.wait_line(m, &session_event("SyncConnected"));
    assert_eq!(cli.prompt_state(), "CONNECTED");
    // The same session: its ephemeral node is there and is still its own.
    let out = cli.enter("getEphemerals /");
    assert!(has_line(&out, "[/eph-restart]"), "{out}");
    let out = cli.enter("get /eph-restart");
    assert!(has_line(&out, "alive"), "{out}");

    cli.keys("quit\r");
    assert!(cli.wait_exit().success());
    drop(_srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP relay whose link can be cut: a network partition between the cli and a server that
/// stays up (a restarted ZooKeeper or Paddock revives the sessions it had, so only a partition
/// lets a session expire during an outage).
struct Relay {
    addr: String,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(to: std::net::SocketAddr) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<TcpStream>>> = Default::default();
        let (c, ls) = (cut.clone(), links.clone());
        // Left running when the test ends: it holds nothing but sockets.
        std::thread::spawn(move || {
            for a in l.incoming() {
                let Ok(a) = a else { continue };
                if c.load(Ordering::SeqCst) {
                    // Refused: the connection is closed at once.
                    continue;
                }
                let Ok(b) = TcpStream::connect(to) else {
                    continue;
                };
                let mut v = ls.lock().unwrap();
                v.push(a.try_clone().unwrap());
                v.push(b.try_clone().unwrap());
                for (mut from, mut into) in
                    [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, cut, links }
    }

    fn set_cut(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
        if on {
            for s in self.links.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The session expires while the cli cannot reach the server: zkCli reports `state:Expired`,
/// then answers "Not connected" until `connect` opens a new session.
#[test]
fn session_expired_during_outage() {
    let srv = Server::start(&[("tickTime", "200")]);
    let relay = Relay::start(srv.addr);
    let mut cli = connected_cli(&relay.addr, 2000);
    let out = cli.enter("create -e /eph-expiry x");
    assert!(has_line(&out, "Created /eph-expiry"), "{out}");

    let m = cli.mark();
    relay.set_cut(true);
    cli.wait_line(m, &session_event("Disconnected"));
    let out = cli.enter("get /eph-expiry");
    assert!(
        has_line(&out, "KeeperErrorCode = ConnectionLoss for /eph-expiry"),
        "{out}"
    );
    // The server ends the session after its timeout (the ephemeral node goes with it).
    let deadline = Instant::now() + WAIT;
    while srv.four("dump").contains("/eph-expiry") {
        assert!(Instant::now() < deadline, "the session did not expire");
        std::thread::sleep(Duration::from_millis(100));
    }

    let m = cli.mark();
    relay.set_cut(false);
    let out = cli.wait_line(m, &session_event("Expired"));
    assert!(has_line(&out, "WATCHER::"), "{out}");
    cli.assert_running();
    // zkCli: the prompt shows CLOSED and commands answer "Not connected".
    assert_eq!(cli.prompt_state(), "CLOSED");
    let out = cli.enter("ls /");
    assert!(has_line(&out, "Not connected"), "{out}");

    // `connect` opens a new session to the same server, and commands work again.
    let m = cli.mark();
    cli.enter("connect");
    cli.wait_line(m, &session_event("SyncConnected"));
    assert_eq!(cli.prompt_state(), "CONNECTED");
    let out = cli.enter("ls /");
    assert!(has_line(&out, "[zookeeper]"), "{out}");

    cli.keys("quit\r");
    assert!(cli.wait_exit().success());
}

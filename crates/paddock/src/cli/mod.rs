//! `paddock cli`: a drop-in for ZooKeeper's zkCli.sh (3.8 command set, flags and output), built
//! on paddock-client. Output strings follow ZooKeeperMain and the cli/*Command classes so
//! scripts that parse zkCli's output keep working.

mod format;
mod interactive;
mod quota;

use anyhow::Result;
use format::{err_line, parse_acl, print_stat, split_line, validate_path, USAGE};
use paddock_client::{
    open_acl, Client, CreateMode, Error, ErrorCode, Op, SessionEvent, SessionState, WatchedEvent,
    WatcherType,
};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a command made while disconnected waits for the client to reconnect before it fails
/// with ConnectionLoss: about the Java client's pause between two connection attempts.
const RECONNECT_GRACE: Duration = Duration::from_secs(1);

/// Prints a block of lines at once so watcher output does not split a command's lines.
fn out(s: &str) {
    // One write of the whole text and its newline: stdout writes up to the last newline of
    // each piece it is given, so `writeln!` made two, and rustyline draws its prompt between
    // them from its own thread (a session event arriving as the first prompt is drawn ended
    // up on the prompt's line).
    let mut text = String::with_capacity(s.len() + 1);
    text.push_str(s);
    text.push('\n');
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

struct Shell {
    zk: Option<Client>,
    server: String,
    timeout: Duration,
    read_only: bool,
    print_watches: Arc<AtomicBool>,
    history: BTreeMap<usize, String>,
    count: usize,
    /// The client the path completer uses.
    current: interactive::Current,
    /// The task printing the session's state changes; it ends after the terminal one.
    printer: Option<tokio::task::JoinHandle<()>>,
    /// TLS and SASL to the servers (`-Dzookeeper.client.secure=true`, `zookeeper.ssl.*`,
    /// `-Djava.security.auth.login.config`).
    security: crate::client_props::Security,
}

fn print_event(pw: &AtomicBool, state: &str, ty: &str, path: Option<&str>) {
    if pw.load(Ordering::SeqCst) {
        out(&format!(
            "\nWATCHER::\n\nWatchedEvent state:{state} type:{ty} path:{}",
            path.unwrap_or("null")
        ));
    }
}

fn spawn_oneshot(pw: Arc<AtomicBool>, w: paddock_client::OneshotWatch) {
    tokio::spawn(async move {
        if let Some(ev) = w.changed().await {
            print_watched(&pw, &ev);
        }
    });
}

fn print_watched(pw: &AtomicBool, ev: &WatchedEvent) {
    print_event(pw, "SyncConnected", ev.type_name(), Some(&ev.path));
}

impl Shell {
    fn connect(&mut self) -> Result<(), Error> {
        if let Some(old) = self.zk.take() {
            if !old.state().is_terminal() {
                let rt = tokio::runtime::Handle::current();
                tokio::task::block_in_place(|| rt.block_on(old.close()));
            }
        }
        let builder = Client::builder()
            .session_timeout(self.timeout)
            .read_only(self.read_only);
        let zk = self.security.apply(builder).start(&self.server)?;
        let mut events = zk.events();
        let pw = self.print_watches.clone();
        self.printer = Some(tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                let s = match e {
                    SessionEvent::State(SessionState::Connecting) | SessionEvent::PresumedLost => {
                        continue
                    }
                    SessionEvent::State(s) => s,
                };
                print_event(&pw, s.keeper_state_name(), "None", None);
                if s.is_terminal() {
                    break;
                }
            }
        }));
        *self.current.lock().expect("current client") = Some(zk.clone());
        self.zk = Some(zk);
        Ok(())
    }

    /// zkCli's prompt: `[zk: host:port(STATE) N] `.
    fn prompt(&self) -> String {
        // The names of ZooKeeper.States, which zkCli's prompt shows.
        let st = match self.zk.as_ref().map(|z| z.state()) {
            Some(SessionState::Connected) => "CONNECTED",
            Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
            Some(SessionState::AuthFailed) => "AUTH_FAILED",
            Some(s) if s.is_terminal() => "CLOSED",
            _ => "CONNECTING",
        };
        format!("[zk: {}({st}) {}] ", self.server, self.count)
    }

    /// Closes the session on the way out. zkCli reports `state:Closed` after `quit` (the
    /// printer is let finish before the process exits), but not at the end of its input or of
    /// a command given on the command line, where it exits without closing.
    async fn close(&mut self, report: bool) {
        let alive = self.alive();
        // Only the Closed our own close causes goes unreported: a session that already ended
        // (AuthFailed, Expired) has its event queued for the printer, which must still print
        // it, or whether the user learns why depends on which task runs first.
        if !report && alive.is_some() {
            self.print_watches.store(false, Ordering::SeqCst);
        }
        if let Some(zk) = alive {
            zk.close().await;
        }
        if let Some(p) = self.printer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
        }
    }

    fn alive(&self) -> Option<Client> {
        self.zk
            .as_ref()
            .filter(|z| !z.state().is_terminal())
            .cloned()
    }

    /// Runs one line; returns false on quit.
    async fn execute(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        // History keeps the line as typed (trailing blanks included), as zkCli does.
        self.history.insert(self.count, line.to_string());
        let go = self.process(line).await;
        self.count += 1;
        go
    }

    async fn process(&mut self, line: &str) -> bool {
        let args = split_line(line);
        let Some(cmd) = args.first().cloned() else {
            return true;
        };
        match cmd.as_str() {
            "quit" => {
                self.close(true).await;
                return false;
            }
            "redo" => {
                let n: Option<usize> = args.get(1).and_then(|a| a.parse().ok());
                match n.and_then(|n| self.history.get(&n).cloned()) {
                    Some(l) if !l.starts_with("redo") => {
                        self.history.insert(self.count, l.clone());
                        return Box::pin(self.process(&l)).await;
                    }
                    Some(_) => out("No redoing redos"),
                    None => out("Command index out of range"),
                }
                return true;
            }
            "history" => {
                let start = self.count.saturating_sub(10);
                for i in start..=self.count {
                    if let Some(l) = self.history.get(&i) {
                        out(&format!("{i} - {l}"));
                    }
                }
                return true;
            }
            "printwatches" => match args.get(1).map(String::as_str) {
                Some("on") => self.print_watches.store(true, Ordering::SeqCst),
                Some("off") => self.print_watches.store(false, Ordering::SeqCst),
                _ => out(&format!(
                    "printwatches is {}",
                    if self.print_watches.load(Ordering::SeqCst) {
                        "on"
                    } else {
                        "off"
                    }
                )),
            },
            "connect" => {
                if let Some(s) = args.get(1) {
                    self.server = s.clone();
                }
                if let Err(e) = self.connect() {
                    out(&e.to_string());
                }
                return true;
            }
            _ => {}
        }
        let Some(zk) = self.alive() else {
            out("Not connected");
            return true;
        };
        if cmd == "printwatches" {
            return true;
        }
        if let Err(usage) = self.command(&zk, &cmd, &args[1..]).await {
            match usage {
                Some(u) => out(u),
                None => {
                    out(USAGE);
                    out(&format!("Command not found: Command not found {cmd}"));
                }
            }
        }
        true
    }

    /// Runs a server command. `Err(Some(usage))`: bad arguments; `Err(None)`: unknown command.
    async fn command(
        &mut self,
        zk: &Client,
        cmd: &str,
        args: &[String],
    ) -> Result<(), Option<&'static str>> {
        let usage = format::usage(cmd).ok_or(None)?;
        let o = format::Opts::parse(args, format::flags(cmd)).map_err(|_| Some(usage))?;
        // zkCli's request fails with ConnectionLoss as soon as the client's next attempt to
        // reach a server fails; paddock-client instead keeps a request made while disconnected
        // until it reconnects, which would hang the shell for as long as the outage lasts. So
        // give the client a moment to reconnect, then fail the command without sending it.
        let local = matches!(cmd, "version" | "close" | "addauth")
            || (cmd == "removewatches" && o.has('l'));
        if !local && !zk.state().is_connected() {
            if let Err(e) = zk.wait_connected(RECONNECT_GRACE).await {
                // A session that ended meanwhile reports why (SessionExpired, AuthFailed).
                let e = match e {
                    Error::Timeout => Error::Code(ErrorCode::ConnectionLoss),
                    e => e,
                };
                let p = o.pos.first().filter(|p| p.starts_with('/'));
                out(&err_line(&e, p.map_or("", |p| p.as_str())));
                return Ok(());
            }
        }
        let pw = self.print_watches.clone();
        let path = |i: usize| -> Result<String, Option<&'static str>> {
            o.pos.get(i).cloned().ok_or(Some(usage))
        };
        macro_rules! check_path {
            ($p:expr) => {
                if let Err(m) = validate_path(&$p) {
                    out(&m);
                    return Ok(());
                }
            };
        }
        macro_rules! try_zk {
            ($e:expr, $p:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => {
                        out(&err_line(&e, &$p));
                        return Ok(());
                    }
                }
            };
        }
        match cmd {
            "version" => out(
                "ZooKeeper CLI version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
            ),
            "whoami" => {
                let who = try_zk!(zk.who_am_i().await, "");
                out("Auth scheme: User");
                for c in who {
                    out(&format!("{}: {}", c.auth_scheme, c.user));
                }
            }
            "ls" => {
                let p = path(0)?;
                check_path!(p);
                if o.has('R') {
                    let mut queue = std::collections::VecDeque::from([p.clone()]);
                    let mut all = vec![];
                    while let Some(n) = queue.pop_front() {
                        let mut c = try_zk!(zk.list_children(&n).await, n);
                        c.sort();
                        for ch in c {
                            queue.push_back(if n == "/" {
                                format!("/{ch}")
                            } else {
                                format!("{n}/{ch}")
                            });
                        }
                        all.push(n);
                    }
                    for n in all {
                        out(&n);
                    }
                    return Ok(());
                }
                let (mut c, st) = if o.has('w') {
                    let (c, st, w) = try_zk!(zk.list_children_w(&p).await, p);
                    spawn_oneshot(pw, w);
                    (c, st)
                } else {
                    let l = try_zk!(zk.list_children2(&p).await, p);
                    (l.children, l.stat)
                };
                c.sort();
                out(&format!("[{}]", c.join(", ")));
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "get" => {
                let p = path(0)?;
                check_path!(p);
                let (d, st) = if o.has('w') {
                    let (d, st, w) = try_zk!(zk.get_data_raw_w(&p).await, p);
                    spawn_oneshot(pw, w);
                    (d, st)
                } else {
                    try_zk!(zk.get_data_raw(&p).await, p)
                };
                match d {
                    Some(d) => out(&String::from_utf8_lossy(&d)),
                    None => out("null"),
                }
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "stat" => {
                let p = path(0)?;
                check_path!(p);
                let st = if o.has('w') {
                    let (st, w) = try_zk!(zk.exists_w(&p).await, p);
                    spawn_oneshot(pw, w);
                    st
                } else {
                    try_zk!(zk.exists(&p).await, p)
                };
                match st {
                    Some(st) => print_stat(&st),
                    None => out(&format!("Node does not exist: {p}")),
                }
            }
            "set" => {
                let p = path(0)?;
                let data = path(1)?;
                check_path!(p);
                let v = o.num('v').unwrap_or(-1) as i32;
                let st = try_zk!(zk.set_data(&p, data.as_bytes(), v).await, p);
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "create" => {
                let p = path(0)?;
                let ttl = o.num('t');
                let (s, e, c) = (o.has('s'), o.has('e'), o.has('c'));
                if c && (s || e) {
                    out("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.");
                    return Ok(());
                }
                if let Some(t) = ttl {
                    if e {
                        out("TTLs cannot be used with Ephemeral znodes");
                        return Ok(());
                    }
                    if c {
                        out("TTLs cannot be used with Container znodes");
                        return Ok(());
                    }
                    if t <= 0 || t > 0xFF_FFFF_FFFF {
                        out("ttl must be positive and cannot be larger than: 1099511627775");
                        return Ok(());
                    }
                }
                let mode = match (ttl.is_some(), c, e, s) {
                    (true, _, _, true) => CreateMode::PersistentSequentialWithTtl,
                    (true, ..) => CreateMode::PersistentWithTtl,
                    (_, true, ..) => CreateMode::Container,
                    (_, _, true, true) => CreateMode::EphemeralSequential,
                    (_, _, true, false) => CreateMode::Ephemeral,
                    (_, _, false, true) => CreateMode::PersistentSequential,
                    _ => CreateMode::Persistent,
                };
                if !(s && p.ends_with('/') && p.len() > 1) {
                    check_path!(p);
                }
                let acl = match o.pos.get(2) {
                    Some(a) => parse_acl(a),
                    None => open_acl(),
                };
                let data = o.pos.get(1).map(|d| d.as_bytes());
                match zk.create_full(&p, data, acl, mode, ttl.unwrap_or(-1)).await {
                    Ok((created, _)) => out(&format!("Created {created}")),
                    Err(Error::Code(ErrorCode::InvalidAcl)) => {
                        out(&format!("KeeperErrorCode = InvalidACL for {p}"));
                        out(&format!("Acl is not valid : {p}"));
                    }
                    Err(e) => out(&err_line(&e, &p)),
                }
            }
            "delete" => {
                let p = path(0)?;
                check_path!(p);
                let v = o.num('v').unwrap_or(-1) as i32;
                try_zk!(zk.delete(&p, v).await, p);
            }
            "deleteall" => {
                let p = path(0)?;
                check_path!(p);
                let batch = o.num('b').unwrap_or(1000).max(1) as usize;
                // Breadth-first, then delete deepest first, in multi batches.
                let mut order = vec![];
                let mut queue = std::collections::VecDeque::from([p.clone()]);
                while let Some(n) = queue.pop_front() {
                    let c = try_zk!(zk.list_children(&n).await, n);
                    for ch in c {
                        queue.push_back(if n == "/" {
                            format!("/{ch}")
                        } else {
                            format!("{n}/{ch}")
                        });
                    }
                    order.push(n);
                }
                order.reverse();
                for chunk in order.chunks(batch) {
                    let ops = chunk
                        .iter()
                        .map(|n| Op::Delete {
                            path: n.clone(),
                            version: -1,
                        })
                        .collect();
                    if let Err(e) = zk.multi(ops).await {
                        out(&err_line(&e, &p));
                        return Ok(());
                    }
                }
            }
            "getAcl" => {
                let p = path(0)?;
                check_path!(p);
                let (acl, st) = try_zk!(zk.get_acl(&p).await, p);
                for a in acl {
                    out(&format!(
                        "'{},'{}\n: {}",
                        a.id.scheme,
                        a.id.id,
                        format::perm_string(a.perms)
                    ));
                }
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "setAcl" => {
                let p = path(0)?;
                let a = path(1)?;
                check_path!(p);
                let acl = parse_acl(&a);
                let v = o.num('v').unwrap_or(-1) as i32;
                if o.has('R') {
                    let mut queue = std::collections::VecDeque::from([p.clone()]);
                    while let Some(n) = queue.pop_front() {
                        try_zk!(zk.set_acl(&n, acl.clone(), v).await, n);
                        let c = try_zk!(zk.list_children(&n).await, n);
                        for ch in c {
                            queue.push_back(if n == "/" {
                                format!("/{ch}")
                            } else {
                                format!("{n}/{ch}")
                            });
                        }
                    }
                    return Ok(());
                }
                let st = try_zk!(zk.set_acl(&p, acl, v).await, p);
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "getAllChildrenNumber" => {
                let p = path(0)?;
                check_path!(p);
                let n = try_zk!(zk.get_all_children_number(&p).await, p);
                out(&n.to_string());
            }
            "getEphemerals" => {
                let p = o.pos.first().cloned().unwrap_or_else(|| "/".into());
                check_path!(p);
                let e = try_zk!(zk.get_ephemerals(&p).await, p);
                out(&format!("[{}]", e.join(", ")));
            }
            "sync" => {
                let p = path(0)?;
                check_path!(p);
                match zk.sync(&p).await {
                    Ok(_) => out("Sync is OK"),
                    Err(e) => out(&format!(
                        "Sync has failed rc={}",
                        e.code().map(|c| c.code()).unwrap_or(-1)
                    )),
                }
            }
            "addauth" => {
                let scheme = path(0)?;
                let auth = o.pos.get(1).cloned().unwrap_or_default();
                if let Err(e) = zk.add_auth(&scheme, auth.as_bytes()) {
                    out(&err_line(&e, ""));
                    return Ok(());
                }
                // Let a refusal arrive before the next command, as the Java client's does
                // (while disconnected the auth waits for the reconnect, as in zkCli).
                if zk.state().is_connected() {
                    let _ = zk.sync("/").await;
                }
            }
            "close" => zk.close().await,
            "config" => {
                let (d, st) = try_zk!(
                    zk.get_data_raw("/zookeeper/config").await,
                    "/zookeeper/config"
                );
                out(&String::from_utf8_lossy(&d.unwrap_or_default()));
                if o.has('s') {
                    print_stat(&st);
                }
            }
            "reconfig" => {
                let join = o.val('a').unwrap_or_default();
                let leave = o.val('r').unwrap_or_default();
                let members = o.val('m').unwrap_or_default();
                let v = o.num('v').unwrap_or(-1);
                match zk.reconfig(&join, &leave, &members, v).await {
                    Ok((d, _)) => out(&format!(
                        "Committed new configuration:\n{}",
                        String::from_utf8_lossy(&d)
                    )),
                    Err(e) => out(&err_line(&e, "")),
                }
            }
            "addWatch" => {
                let p = path(0)?;
                let recursive = match o.val('m').as_deref() {
                    // zkCli 3.8's usage says the default is PERSISTENT_RECURSIVE, but it
                    // adds a PERSISTENT watch: scripts rely on what it does.
                    Some("PERSISTENT_RECURSIVE") => true,
                    None | Some("PERSISTENT") => false,
                    Some(_) => return Err(Some(usage)),
                };
                check_path!(p);
                let mut w = try_zk!(zk.add_watch(&p, recursive).await, p);
                tokio::spawn(async move {
                    while let Some(ev) = w.next().await {
                        print_watched(&pw, &ev);
                    }
                });
            }
            "removewatches" => {
                let p = path(0)?;
                check_path!(p);
                let kind = if o.has('c') {
                    WatcherType::Children
                } else if o.has('d') {
                    WatcherType::Data
                } else {
                    WatcherType::Any
                };
                let r = if o.has('l') {
                    zk.remove_watches_locally(&p, kind).await
                } else {
                    zk.remove_watches(&p, kind).await
                };
                try_zk!(r, p);
            }
            "listquota" => quota::listquota(zk, &path(0)?).await,
            "setquota" => {
                let p = path(0)?;
                let (f, v) = ['n', 'b', 'N', 'B']
                    .into_iter()
                    .find_map(|f| o.num(f).map(|v| (f, v)))
                    .ok_or(Some(usage))?;
                quota::setquota(zk, f, v, &p).await
            }
            "delquota" => {
                let p = path(0)?;
                let f = ['n', 'b', 'N', 'B'].into_iter().find(|f| o.has(*f));
                quota::delquota(zk, f, &p).await
            }
            _ => return Err(None),
        }
        Ok(())
    }
}

/// Entry point: `paddock cli [-server host:port] [-timeout ms] [-r] [-waitforconnection] [cmd args]`.
pub fn main(args: &[String]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: &[String]) -> Result<()> {
    let mut server = "localhost:2181".to_string();
    let mut timeout = Duration::from_secs(30);
    let mut read_only = false;
    let mut wait = false;
    let mut props = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-server" | "--server" if i + 1 < args.len() => {
                server = args[i + 1].clone();
                i += 2;
            }
            "-timeout" | "--timeout" if i + 1 < args.len() => {
                timeout = Duration::from_millis(args[i + 1].parse().unwrap_or(30000));
                i += 2;
            }
            "-r" => {
                read_only = true;
                i += 1;
            }
            "-waitforconnection" => {
                wait = true;
                i += 1;
            }
            "-client-configuration" if i + 1 < args.len() => i += 2,
            a if crate::client_props::parse(a).is_some() => {
                props.extend(crate::client_props::parse(a));
                i += 1;
            }
            _ => break,
        }
    }
    let rest: Vec<String> = args[i..].to_vec();
    out(&format!("Connecting to {server}"));
    let mut sh = Shell {
        zk: None,
        server,
        timeout,
        read_only,
        print_watches: Arc::new(AtomicBool::new(true)),
        history: BTreeMap::new(),
        count: 0,
        current: Default::default(),
        printer: None,
        security: match crate::client_props::Security::from_props(&crate::client_props::collect(
            &props,
        )) {
            Ok(t) => t,
            Err(e) => {
                out(&e.to_string());
                std::process::exit(1);
            }
        },
    };
    if let Err(e) = sh.connect() {
        out(&e.to_string());
        std::process::exit(1);
    }
    if wait {
        if let Some(zk) = &sh.zk {
            if zk.wait_connected(timeout).await.is_err() {
                out("Timeout waiting for connection");
                std::process::exit(1);
            }
        }
    }
    if !rest.is_empty() {
        if let Some(zk) = &sh.zk {
            let _ = zk.wait_connected(timeout).await;
        }
        let line = rest
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("\"{a}\"")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        sh.execute(&line).await;
        sh.close(false).await;
        return Ok(());
    }
    out("Welcome to ZooKeeper!");
    if std::io::stdin().is_terminal() {
        // Line editing, history and completion: zkCli says so with jline.
        out("JLine support is enabled");
        let prompt = Arc::new(std::sync::Mutex::new(sh.prompt()));
        let (mut rx, reader) = interactive::spawn_reader(sh.current.clone(), prompt.clone());
        while let Some((line, done)) = rx.recv().await {
            let go = sh.execute(&line).await;
            *prompt.lock().expect("prompt") = sh.prompt();
            let _ = done.send(go);
            if !go {
                break;
            }
        }
        // The reader saves the history as it ends (after `quit` or Ctrl-D): wait for it.
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    } else {
        // Plain stdin (scripts, pipes): no prompt, no echo, as zkCli without jline.
        out("JLine support is disabled");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for l in std::io::stdin().lock().lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            if !sh.execute(&line).await {
                break;
            }
        }
    }
    sh.close(false).await;
    Ok(())
}

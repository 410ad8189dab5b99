//! `paddock lock`: run a command while holding a distributed lock (the recipes' fair `Mutex`).
//!
//! The command runs only once the lock is held, with the lock's fencing token in
//! `PADDOCK_LOCK_TOKEN` (hand it to whatever the lock protects, so a deposed holder's late
//! writes can be refused). If the lock is lost (the session expired or is presumed lost, or
//! someone deleted the lock node) the command gets `--signal` at once, and SIGKILL after
//! `--grace` milliseconds. `paddock lock` exits with the command's status (128 + the signal
//! number for a command killed by a signal, as shells report it).

use anyhow::{bail, Context, Result};
use clap::Parser;
use paddock_client::Client;
use paddock_recipes::mutex::{LockLost, Mutex};
use paddock_recipes::Connection;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use tokio::process::Command;
use tracing::{info, warn};

/// Command-line options of `paddock lock`.
#[derive(Parser, Debug)]
#[command(
    name = "paddock lock",
    about = "Run a command while holding a distributed lock; stop it if the lock is lost",
    after_help = "The command gets PADDOCK_LOCK_TOKEN (the fencing token: the zxid that \
                  created the lock node) and PADDOCK_LOCK_NODE. Exit status: the command's \
                  (128+N if killed by signal N); 1 if the lock could not be taken. Single-dash \
                  long options (-server) work as well."
)]
struct LockArgs {
    /// The lock's znode (created when missing); contenders queue under it.
    path: String,
    /// Servers to connect to: host:port,host:port,...
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// Session timeout asked of the ensemble, in milliseconds.
    #[arg(long = "session-timeout", default_value_t = 10000)]
    session_timeout: u64,
    /// Give up (exit 1) if the lock is not held within this many milliseconds.
    #[arg(long)]
    wait: Option<u64>,
    /// The signal sent to the command when the lock is lost (name or number).
    #[arg(long, default_value = "TERM")]
    signal: String,
    /// Milliseconds between that signal and SIGKILL.
    #[arg(long, default_value_t = 5000)]
    grace: u64,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// A signal number from a name (TERM, SIGTERM) or a number.
fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("signal number {n} out of range");
    }
    let name = s.trim_start_matches("SIG").to_ascii_uppercase();
    Ok(match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        _ => bail!("unknown signal {s:?} (use a name such as TERM or a number)"),
    })
}

/// Entry point: `paddock lock <path> [--server ...] [options] -- <command...>`.
pub fn main(args: &[String]) -> Result<()> {
    let mut argv = vec!["paddock lock".to_string()];
    // -server as --server: one rule for every subcommand (paddock bench has it too).
    argv.extend(crate::argv::normalise(args));
    let args = LockArgs::parse_from(argv);
    if !args.path.starts_with('/') || args.path.len() < 2 || args.path.ends_with('/') {
        bail!("the lock path must be an absolute znode path such as /app/lock");
    }
    let signal = parse_signal(&args.signal)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(run(args, signal))?;
    // Leave through process::exit only after the runtime is gone (children are reaped).
    drop(rt);
    std::process::exit(code);
}

async fn run(args: LockArgs, signal: i32) -> Result<i32> {
    let builder = Client::builder().session_timeout(Duration::from_millis(args.session_timeout));
    let security = crate::client_props::Security::from_props(&crate::client_props::collect(&[]))?;
    let client = security
        .apply(builder)
        .connect(&args.server)
        .await
        .with_context(|| format!("cannot connect to {}", args.server))?;
    let mutex = Mutex::new(client.clone(), &args.path);
    let token = match args.wait {
        Some(ms) => match mutex.try_acquire(Duration::from_millis(ms)).await? {
            Some(t) => t,
            None => {
                client.close().await;
                bail!("lock {} not acquired within {ms} ms", args.path);
            }
        },
        None => {
            info!(path = %args.path, "waiting for the lock");
            mutex.acquire().await?
        }
    };
    let node = mutex.node().unwrap_or_default();
    info!(path = %args.path, %node, %token, "lock acquired; starting the command");
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("PADDOCK_LOCK_TOKEN", token.0.to_string())
        .env("PADDOCK_LOCK_NODE", &node)
        .spawn()
        .with_context(|| format!("cannot start {:?}", args.command[0]))?;
    let pid = child.id().map(|p| p as i32);
    let mut monitor = mutex.monitor();
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal as sig, SignalKind};
        (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?)
    };
    let status = loop {
        tokio::select! {
            st = child.wait() => break st?,
            why = mutex.lost() => {
                if why == LockLost::NotHeld {
                    // Cannot happen while we hold it; do not spin.
                    break child.wait().await?;
                }
                warn!(reason = ?why, signal, "lock lost: stopping the command");
                break stop(&mut child, pid, signal, Duration::from_millis(args.grace)).await?;
            }
            c = monitor.changed() => match c {
                Connection::Suspended => warn!("disconnected; the lock is held until the session is presumed lost"),
                Connection::Connected => info!("reconnected; lock still held"),
                // `mutex.lost()` reports it (and says why).
                Connection::Lost => {}
            },
            _ = term.recv() => forward(pid, libc::SIGTERM),
            _ = int.recv() => forward(pid, libc::SIGINT),
        }
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    info!(code, "command ended; releasing the lock");
    if mutex.is_held() {
        if let Err(e) = mutex.release().await {
            warn!(error = %e, "could not release the lock (its session ends anyway)");
        }
    }
    client.close().await;
    Ok(code)
}

fn forward(pid: Option<i32>, sig: i32) {
    if let Some(p) = pid {
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        unsafe {
            libc::kill(p, sig);
        }
    }
}

/// Sends `signal`, waits `grace`, then SIGKILL; returns how the command ended.
async fn stop(
    child: &mut tokio::process::Child,
    pid: Option<i32>,
    signal: i32,
    grace: Duration,
) -> Result<std::process::ExitStatus> {
    forward(pid, signal);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(st) => Ok(st?),
        Err(_) => {
            warn!(
                grace_ms = grace.as_millis() as u64,
                "the command outlived its grace period: SIGKILL"
            );
            let _ = child.kill().await;
            Ok(child.wait().await?)
        }
    }
}

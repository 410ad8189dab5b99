//! The controller's hooks: shell commands run through `sh -c`, with a time limit.

use std::time::Duration;
use tokio::process::Command;
use tracing::{info, warn};

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Exited with status 0.
    Ok,
    /// Exited non-zero, was killed by a signal, or could not be started.
    Failed(String),
    /// Ran past the time limit and was killed.
    TimedOut,
}

impl HookOutcome {
    pub fn ok(&self) -> bool {
        *self == HookOutcome::Ok
    }
}

/// Runs `cmd` through `sh -c` with extra environment variables; its output goes to ours.
/// A hook that outlives `limit` is killed: a controller stuck in a hook cannot react to
/// anything, and a fence that hangs has not fenced.
pub async fn run(name: &str, cmd: &str, env: &[(&str, String)], limit: Duration) -> HookOutcome {
    info!(hook = name, command = cmd, "running hook");
    run_quiet(name, cmd, env, limit).await
}

/// `run` without the log line, for the health check that runs every second.
pub async fn run_quiet(
    name: &str,
    cmd: &str,
    env: &[(&str, String)],
    limit: Duration,
) -> HookOutcome {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            warn!(hook = name, error = %e, "cannot start hook");
            return HookOutcome::Failed(format!("cannot start: {e}"));
        }
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => HookOutcome::Ok,
        Ok(Ok(status)) => {
            warn!(hook = name, %status, "hook failed");
            HookOutcome::Failed(status.to_string())
        }
        Ok(Err(e)) => {
            warn!(hook = name, error = %e, "hook failed");
            HookOutcome::Failed(e.to_string())
        }
        Err(_) => {
            let _ = child.kill().await;
            warn!(
                hook = name,
                limit_ms = limit.as_millis() as u64,
                "hook timed out; killed"
            );
            HookOutcome::TimedOut
        }
    }
}

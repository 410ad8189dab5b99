//! `paddock elect`: an active/standby failover controller in the shape of Hadoop's ZKFC.
//!
//! One controller runs next to each instance of a service; at most one instance is active.
//!
//! - `<path>/lock`, an ephemeral node holding the controller's id, decides who is active. Its
//!   czxid is the active's fencing token (`PADDOCK_FENCING_TOKEN` for the on-active hook).
//! - `<path>/breadcrumb`, a persistent node, names the last controller that went active. A
//!   controller that wins the lock and finds a breadcrumb naming someone else fences that one
//!   first (the fence hook, with `PADDOCK_FENCE_TARGET`): the old active may have lost its
//!   session without knowing it and still be serving. If fencing fails the winner does not go
//!   active: it gives the lock back and tries again later.
//! - The active stays active through a short disconnection (like ZKFC's neutral mode: its lock
//!   may well survive) and stops as soon as its client presumes the session lost, before the
//!   ensemble can have expired it and let another controller win (up to the network delay of
//!   the last answer; fencing covers that sliver).
//! - A failing health check gives up the lock and leaves the breadcrumb: the service is in an
//!   unknown state, so whoever wins next fences it. A clean exit (SIGTERM, SIGINT) runs the
//!   on-standby hook, removes the breadcrumb and the lock: nothing to fence.

mod hooks;

use anyhow::{bail, Context, Result};
use clap::Parser;
use paddock_client::{open_acl, Client, CreateMode, Error as ClientError, ErrorCode, Stat};
use paddock_recipes::nodes::{ensure_path, retry_raw};
use paddock_recipes::{Connection, RecipeError, SessionMonitor};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Command-line options of `paddock elect`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock elect",
    about = "Active/standby failover controller: run hooks as this instance becomes active or standby",
    after_help = "Hooks run through `sh -c`. Environment: PADDOCK_ELECT_ID, PADDOCK_ELECT_PATH; \
                  the on-active hook also gets PADDOCK_FENCING_TOKEN, the fence hook \
                  PADDOCK_FENCE_TARGET (the old active's id). Single-dash long options \
                  (-server) work as well."
)]
pub struct ElectArgs {
    /// The election's znode (created when missing); holds `lock` and `breadcrumb`.
    pub path: String,
    /// Servers to connect to: host:port,host:port,...
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    /// This controller's identity, written into the lock and the breadcrumb.
    #[arg(long)]
    pub id: String,
    /// Makes the local instance active.
    #[arg(long = "on-active")]
    pub on_active: String,
    /// Makes the local instance standby.
    #[arg(long = "on-standby")]
    pub on_standby: String,
    /// Fences the old active named by PADDOCK_FENCE_TARGET; must exit 0 only if it is fenced.
    #[arg(long)]
    pub fence: String,
    /// Checks the local instance's health (exit 0: healthy); none means always healthy.
    #[arg(long)]
    pub health: Option<String>,
    /// Session timeout asked of the ensemble, in milliseconds.
    #[arg(long = "session-timeout", default_value_t = 5000)]
    pub session_timeout: u64,
    /// Milliseconds between health checks.
    #[arg(long = "health-interval", default_value_t = 1000)]
    pub health_interval: u64,
    /// Milliseconds to wait before trying again after a failed fence or activation.
    #[arg(long = "retry-delay", default_value_t = 1000)]
    pub retry_delay: u64,
    /// Milliseconds a hook may run before it is killed (and counts as failed).
    #[arg(long = "hook-timeout", default_value_t = 30000)]
    pub hook_timeout: u64,
}

/// What the controller is doing, as logged on every transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Standby,
    Fencing,
    Active,
    Unhealthy,
    Stopped,
}

/// Why a session's run ended.
enum SessionEnd {
    /// The session is lost (expired, closed, presumed lost): start a new one.
    Lost,
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// What an attempt to go active came to.
enum Attempt {
    /// Not active (anymore); go round the election loop again.
    Again,
    End(SessionEnd),
}

struct Controller {
    args: ElectArgs,
    lock: String,
    crumb: String,
    state: State,
    healthy: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
    /// TLS and SASL to the servers (CLIENT_JVMFLAGS: `-Dzookeeper.client.secure=true`, ...).
    security: crate::client_props::Security,
}

/// Entry point: `paddock elect <path> --server ... --id ... --on-active ... --on-standby ...
/// --fence ... [--health ...] [--session-timeout ms]`.
pub fn main(args: &[String]) -> Result<()> {
    let mut argv = vec!["paddock elect".to_string()];
    // -server as --server: one rule for every subcommand (paddock bench has it too).
    argv.extend(crate::argv::normalise(args));
    let args = ElectArgs::parse_from(argv);
    if !args.path.starts_with('/') || args.path.len() < 2 || args.path.ends_with('/') {
        bail!("the election path must be an absolute znode path such as /app/election");
    }
    if args.id.is_empty() {
        bail!("--id must not be empty");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: ElectArgs) -> Result<()> {
    let security = crate::client_props::Security::from_props(&crate::client_props::collect(&[]))?;
    let (shut_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = shut_tx.send(true);
    });
    let healthy = start_health_checks(&args).await;
    let mut ctl = Controller {
        lock: format!("{}/lock", args.path),
        crumb: format!("{}/breadcrumb", args.path),
        args,
        state: State::Init,
        healthy,
        shutdown,
        security,
    };
    info!(id = %ctl.args.id, path = %ctl.args.path, server = %ctl.args.server, "controller starting");
    loop {
        let Some(client) = ctl.connect().await else {
            break;
        };
        let end = ctl.session(&client).await;
        match end {
            Ok(SessionEnd::Shutdown) => {
                ctl.stop(&client).await;
                break;
            }
            Ok(SessionEnd::Lost) => {
                warn!(
                    session = format_args!("0x{:x}", client.session_id()),
                    "session lost; starting a new one"
                );
                let _ = tokio::time::timeout(Duration::from_secs(1), client.close()).await;
            }
            Err(e) => {
                ctl.step_down("a fatal error").await;
                let _ = tokio::time::timeout(Duration::from_secs(1), client.close()).await;
                return Err(e);
            }
        }
    }
    ctl.set_state(State::Stopped, "shut down");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the controller can still be killed; it just cannot exit
        // cleanly. Never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
}

/// Runs the health command every interval; the receiver holds the latest verdict. The first
/// check is done before returning, so the controller never joins on an unknown health.
async fn start_health_checks(args: &ElectArgs) -> watch::Receiver<bool> {
    let Some(cmd) = args.health.clone() else {
        // Always healthy: nothing will ever send (`until` treats that as never changing).
        return watch::channel(true).1;
    };
    let limit = Duration::from_millis(args.hook_timeout);
    let every = Duration::from_millis(args.health_interval.max(10));
    let first = hooks::run_quiet("health", &cmd, &[], limit).await.ok();
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        let mut last = first;
        loop {
            tokio::time::sleep(every).await;
            let ok = hooks::run_quiet("health", &cmd, &[], limit).await.ok();
            if ok != last {
                if ok {
                    info!("health check passes again");
                } else {
                    warn!("health check failed");
                }
                last = ok;
            }
            if tx.send(ok).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits until the flag is `want`. The `Ref` that `wait_for` returns holds the channel's read
/// lock: kept across an await, it would block the sender (on this very thread) for good, so it
/// is dropped here. A channel whose sender is gone never resolves.
async fn until(rx: &mut watch::Receiver<bool>, want: bool) {
    let reached = rx.wait_for(|v| *v == want).await.is_ok();
    if !reached {
        std::future::pending::<()>().await;
    }
}

/// Whether `e` carries code `c`. `Error::code` maps a closed client to SESSIONEXPIRED, so
/// `is_code(e, SessionExpired)` also covers a session this process closed.
fn is_code(e: &ClientError, c: ErrorCode) -> bool {
    e.code() == Some(c)
}

fn lost_or(e: RecipeError) -> Result<SessionEnd> {
    match e {
        RecipeError::SessionLost => Ok(SessionEnd::Lost),
        other => Err(other.into()),
    }
}

impl Controller {
    fn set_state(&mut self, to: State, why: &str) {
        if self.state != to {
            info!(from = ?self.state, to = ?to, reason = why, "state change");
            self.state = to;
        }
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn hook_limit(&self) -> Duration {
        Duration::from_millis(self.args.hook_timeout)
    }

    fn base_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PADDOCK_ELECT_ID", self.args.id.clone()),
            ("PADDOCK_ELECT_PATH", self.args.path.clone()),
        ]
    }

    /// A new connected session, or None on shutdown. Retries as long as it takes.
    async fn connect(&mut self) -> Option<Client> {
        loop {
            if self.shutting_down() {
                return None;
            }
            let builder =
                Client::builder().session_timeout(Duration::from_millis(self.args.session_timeout));
            let built = self.security.apply(builder).start(&self.args.server);
            let client = match built {
                Ok(c) => c,
                Err(e) => {
                    error!(error = %e, "bad --server");
                    return None;
                }
            };
            let wait = Duration::from_millis(self.args.session_timeout.max(1000));
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                r = client.wait_connected(wait) => match r {
                    Ok(()) => {
                        info!(
                            session = format_args!("0x{:x}", client.session_id()),
                            server = client.current_server().unwrap_or_default(),
                            "connected"
                        );
                        return Some(client);
                    }
                    Err(e) => {
                        warn!(error = %e, "no session yet; trying again");
                        client.close().await;
                    }
                },
                _ = until(&mut shutdown, true) => {
                    client.close().await;
                    return None;
                }
            }
        }
    }

    /// Sleeps, unless shutdown comes first (then returns false).
    async fn pause(&self, d: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = until(&mut shutdown, true) => false,
        }
    }

    /// One session: join the election, serve as standby or active, until the session is lost
    /// or the controller shuts down.
    async fn session(&mut self, client: &Client) -> Result<SessionEnd> {
        let mut mon = SessionMonitor::new(client);
        if let Err(e) = ensure_path(client, &self.args.path).await {
            return lost_or(e);
        }
        // Whether the last pass ended watching someone else's lock: the first pass that does
        // (in this session, or after being active or unhealthy) is logged, so an operator (or
        // the HA demo) sees when this controller stands ready to take over.
        let mut watching: Option<String> = None;
        loop {
            if self.shutting_down() {
                return Ok(SessionEnd::Shutdown);
            }
            if mon.is_lost() {
                return Ok(SessionEnd::Lost);
            }
            if !*self.healthy.borrow() {
                watching = None;
                if let Some(end) = self.wait_healthy(&mut mon).await {
                    return Ok(end);
                }
                continue;
            }
            let id = self.args.id.clone();
            match client
                .create(&self.lock, id.as_bytes(), open_acl(), CreateMode::Ephemeral)
                .await
            {
                Ok((_, stat)) => {
                    watching = None;
                    match self.go_active(client, &mut mon, stat).await? {
                        Attempt::Again => continue,
                        Attempt::End(end) => return Ok(end),
                    }
                }
                Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
                Err(e) if is_code(&e, ErrorCode::ConnectionLoss) => {
                    // The create may have applied: the ownership check below tells.
                    if !mon.reconnected().await {
                        return Ok(SessionEnd::Lost);
                    }
                }
                Err(e) if is_code(&e, ErrorCode::SessionExpired) => return Ok(SessionEnd::Lost),
                Err(e) => return Err(e).context(format!("cannot create {}", self.lock)),
            }
            // The lock exists (or may): whose is it?
            let (data, stat, watch) = match client.get_data_w(&self.lock).await {
                Ok(x) => x,
                Err(e) if is_code(&e, ErrorCode::NoNode) => continue,
                Err(e) if is_code(&e, ErrorCode::ConnectionLoss) => {
                    if !mon.reconnected().await {
                        return Ok(SessionEnd::Lost);
                    }
                    continue;
                }
                Err(e) if is_code(&e, ErrorCode::SessionExpired) => return Ok(SessionEnd::Lost),
                Err(e) => return Err(e).context(format!("cannot read {}", self.lock)),
            };
            if stat.ephemeral_owner == client.session_id() {
                // Ours: the create's reply was lost.
                watching = None;
                match self.go_active(client, &mut mon, stat).await? {
                    Attempt::Again => continue,
                    Attempt::End(end) => return Ok(end),
                }
            }
            let holder = String::from_utf8_lossy(&data).into_owned();
            self.enter_standby(&format!("{holder} is active")).await;
            if watching.as_deref() != Some(holder.as_str()) {
                info!(active = %holder, session = format_args!("0x{:x}", client.session_id()), "standing by");
                watching = Some(holder);
            }
            let mut healthy = self.healthy.clone();
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = watch.changed() => {}
                _ = until(&mut healthy, false) => {}
                _ = until(&mut shutdown, true) => return Ok(SessionEnd::Shutdown),
                c = mon.changed() => match c {
                    Connection::Lost => return Ok(SessionEnd::Lost),
                    Connection::Suspended => info!("disconnected; still standby"),
                    Connection::Connected => {}
                },
            }
        }
    }

    /// Out of the election until the health check passes again.
    async fn wait_healthy(&mut self, mon: &mut SessionMonitor) -> Option<SessionEnd> {
        if self.state == State::Active {
            self.step_down("the health check failed").await;
        }
        self.set_state(State::Unhealthy, "the health check fails: not taking part");
        let mut healthy = self.healthy.clone();
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                _ = until(&mut healthy, true) => return None,
                _ = until(&mut shutdown, true) => return Some(SessionEnd::Shutdown),
                c = mon.changed() => if c == Connection::Lost {
                    return Some(SessionEnd::Lost);
                },
            }
        }
    }

    async fn enter_standby(&mut self, why: &str) {
        if matches!(self.state, State::Standby) {
            return;
        }
        let was_active = self.state == State::Active;
        self.set_state(State::Standby, why);
        let env = self.base_env();
        let out = hooks::run("on-standby", &self.args.on_standby, &env, self.hook_limit()).await;
        if !out.ok() && was_active {
            warn!("the on-standby hook failed; the next active will fence this instance");
        }
    }

    /// Stops acting as active: runs the on-standby hook. The breadcrumb stays, so whoever is
    /// active next fences this instance unless it exits cleanly.
    async fn step_down(&mut self, why: &str) {
        if self.state == State::Active || self.state == State::Fencing {
            warn!(reason = why, "stepping down");
            self.enter_standby(why).await;
        }
    }

    /// Holding the lock: fence the old active if the breadcrumb names one, leave our own
    /// breadcrumb, run the on-active hook, then stay active until something ends it.
    async fn go_active(
        &mut self,
        client: &Client,
        mon: &mut SessionMonitor,
        lock: Stat,
    ) -> Result<Attempt> {
        let token = lock.czxid;
        self.set_state(State::Fencing, "won the lock");
        let crumb = match retry_raw(client, || client.get_data(&self.crumb)).await {
            Ok(Ok((data, stat))) => Some((data, stat.version)),
            Ok(Err(e)) if is_code(&e, ErrorCode::NoNode) => None,
            Ok(Err(e)) => return Err(e).context(format!("cannot read {}", self.crumb)),
            Err(e) => return lost_or(e).map(Attempt::End),
        };
        if let Some((old, _)) = &crumb {
            if old.as_slice() != self.args.id.as_bytes() {
                let target = String::from_utf8_lossy(old).into_owned();
                info!(target = %target, "fencing the old active");
                let mut env = self.base_env();
                env.push(("PADDOCK_FENCE_TARGET", target.clone()));
                let out = hooks::run("fence", &self.args.fence, &env, self.hook_limit()).await;
                if !out.ok() {
                    warn!(target = %target, outcome = ?out, "fencing failed: not going active; giving the lock back");
                    return self.give_back(client, mon, &lock).await;
                }
                info!(target = %target, "old active fenced");
            }
        }
        // The session may have been lost while fencing: then the lock may be someone else's.
        if mon.is_lost() {
            return Ok(Attempt::End(SessionEnd::Lost));
        }
        let id = self.args.id.clone();
        let wrote = match &crumb {
            Some((_, version)) => client
                .set_data(&self.crumb, id.as_bytes(), *version)
                .await
                .map(|_| ()),
            None => client
                .create(
                    &self.crumb,
                    id.as_bytes(),
                    open_acl(),
                    CreateMode::Persistent,
                )
                .await
                .map(|_| ()),
        };
        if let Err(e) = wrote {
            // BADVERSION or NODEEXISTS: another controller wrote the breadcrumb after we read
            // it (it believed it held the lock). CONNECTIONLOSS: unknown. Either way the
            // breadcrumb is not known to be ours: start over rather than go active.
            warn!(error = %e, "could not write the breadcrumb; starting over");
            if is_code(&e, ErrorCode::SessionExpired) {
                return Ok(Attempt::End(SessionEnd::Lost));
            }
            return self.give_back(client, mon, &lock).await;
        }
        let mut env = self.base_env();
        env.push(("PADDOCK_FENCING_TOKEN", format!("{token}")));
        let out = hooks::run("on-active", &self.args.on_active, &env, self.hook_limit()).await;
        if !out.ok() {
            warn!(outcome = ?out, "the on-active hook failed; giving the lock back");
            self.state = State::Active; // so that step_down runs the on-standby hook
            self.step_down("the on-active hook failed").await;
            return self.give_back(client, mon, &lock).await;
        }
        self.set_state(State::Active, &format!("fencing token 0x{token:x}"));
        self.stay_active(client, mon).await
    }

    /// Deletes our lock node (if it is still ours) and waits the retry delay.
    async fn give_back(
        &mut self,
        client: &Client,
        mon: &mut SessionMonitor,
        lock: &Stat,
    ) -> Result<Attempt> {
        if self.state != State::Standby {
            self.set_state(State::Standby, "gave the lock back");
        }
        match retry_raw(client, || client.delete(&self.lock, lock.version)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if is_code(&e, ErrorCode::NoNode) || is_code(&e, ErrorCode::BadVersion) => {}
            Ok(Err(e)) => return Err(e).context(format!("cannot delete {}", self.lock)),
            Err(e) => return lost_or(e).map(Attempt::End),
        }
        if !self
            .pause(Duration::from_millis(self.args.retry_delay))
            .await
        {
            return Ok(Attempt::End(SessionEnd::Shutdown));
        }
        if mon.is_lost() {
            return Ok(Attempt::End(SessionEnd::Lost));
        }
        Ok(Attempt::Again)
    }

    /// Active until the lock goes, the health check fails, the session is presumed lost, or
    /// the controller shuts down.
    async fn stay_active(&mut self, client: &Client, mon: &mut SessionMonitor) -> Result<Attempt> {
        loop {
            let watch = match client.exists_w(&self.lock).await {
                Ok((Some(stat), w)) if stat.ephemeral_owner == client.session_id() => Some(w),
                Ok(_) => None,
                Err(e) if is_code(&e, ErrorCode::ConnectionLoss) => {
                    // Stay active while suspended; decide once reconnected or lost.
                    if !mon.reconnected().await {
                        self.step_down("session presumed lost").await;
                        return Ok(Attempt::End(SessionEnd::Lost));
                    }
                    continue;
                }
                Err(e) if is_code(&e, ErrorCode::SessionExpired) => {
                    self.step_down("session expired").await;
                    return Ok(Attempt::End(SessionEnd::Lost));
                }
                Err(e) => {
                    self.step_down("cannot watch the lock").await;
                    return Err(e).context(format!("cannot watch {}", self.lock));
                }
            };
            let Some(watch) = watch else {
                self.step_down("the lock node is gone or not ours").await;
                return Ok(Attempt::Again);
            };
            let mut healthy = self.healthy.clone();
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = watch.changed() => continue,
                _ = until(&mut healthy, false) => {
                    self.step_down("the health check failed").await;
                    let stat = client.exists(&self.lock).await.ok().flatten();
                    if let Some(stat) = stat.filter(|s| s.ephemeral_owner == client.session_id()) {
                        return self.give_back(client, mon, &stat).await;
                    }
                    return Ok(Attempt::Again);
                }
                _ = until(&mut shutdown, true) => return Ok(Attempt::End(SessionEnd::Shutdown)),
                c = mon.changed() => match c {
                    Connection::Suspended => {
                        warn!("disconnected; staying active until the session is presumed lost")
                    }
                    Connection::Connected => info!("reconnected; still active"),
                    Connection::Lost => {
                        self.step_down("session presumed lost").await;
                        return Ok(Attempt::End(SessionEnd::Lost));
                    }
                },
            }
        }
    }

    /// Clean exit: if active, run the on-standby hook, remove our breadcrumb (nobody needs to
    /// fence an instance that stood down by itself) and the lock; then close the session.
    async fn stop(&mut self, client: &Client) {
        if self.state == State::Active || self.state == State::Fencing {
            self.enter_standby("shutting down").await;
            let limit = Duration::from_secs(5);
            if let Ok(Ok((data, stat))) =
                tokio::time::timeout(limit, client.get_data(&self.crumb)).await
            {
                if data.as_slice() == self.args.id.as_bytes() {
                    match tokio::time::timeout(limit, client.delete(&self.crumb, stat.version))
                        .await
                    {
                        Ok(Ok(())) => info!("breadcrumb removed"),
                        other => warn!(outcome = ?other, "could not remove the breadcrumb"),
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    }
}

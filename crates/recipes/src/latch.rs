//! A leader latch (the shape of Curator's `LeaderLatch`): join an election once and stay in
//! it; at any time the participant is leader or not, and is told when that changes.
//!
//! Each participant keeps a protected ephemeral sequential node `..latch-<seq>` (data: its id)
//! under the latch's node. The lowest one leads; every other participant watches only the node
//! just ahead of its own, the leader watches its own node. A background task follows this and
//! the session.
//!
//! # Policy on suspended and lost connections
//!
//! - **Lost** (session expired, closed, or presumed lost): leadership is reported lost
//!   ([`LatchLoss::Session`]) and the latch ends in [`LatchState::SessionLost`]; a new latch on
//!   a new client is needed to take part again.
//! - **Suspended**: with [`LatchOptions::lose_on_suspended`] (the default, like Curator's
//!   standard policy) leadership is reported lost at once ([`LatchLoss::Suspended`]), since the
//!   session may expire unseen and someone else take over. If the connection comes back with
//!   the session alive and the node still first, leadership is reported gained again with the
//!   same token (nobody else can have held it meanwhile). With `lose_on_suspended(false)`,
//!   leadership is kept through suspensions and only a loss ends it.
//! - The leader's node deleted by someone else: leadership is reported lost
//!   ([`LatchLoss::NodeDeleted`]) and the participant queues again with a new node.
//!
//! The [`FencingToken`] of a leadership is the czxid of the leader's node: it grows from one
//! leader to the next.
//!
//! # Example
//!
//! Lead whenever elected, step down whenever leadership is reported lost:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{LatchEvent, LeaderLatch};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let latch = LeaderLatch::start(client.clone(), "/app/latch", "node-a").await?;
//! let mut events = latch.subscribe();
//! loop {
//!     // Fails with SessionLost once the session is lost: a new latch on a new client is needed.
//!     let token = latch.await_leadership().await?;
//!     println!("leading with token {token}");
//!     // Lead until this leadership is reported lost (suspended, session lost, node deleted).
//!     loop {
//!         if let LatchEvent::Lost { token: t, why } = events.recv().await? {
//!             if t == token {
//!                 println!("stepping down: {why:?}");
//!                 break;
//!             }
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! After a suspension the same token can come back (the node stayed first and the session
//! survived): `await_leadership` then returns it again.

use crate::connection::{Connection, SessionMonitor};
use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{create_protected, delete_quietly, join, retry_raw, FencingToken};
use crate::sequential::Kind;
use paddock_client::{Client, CreateMode, Error as ClientError, ErrorCode};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

const LATCH_PREFIX: &str = "latch-";

/// Where a latch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatchState {
    /// Taking part, not leading.
    Follower,
    /// Leading, with this token.
    Leader(FencingToken),
    /// Closed by [`LeaderLatch::close`] (or dropped).
    Closed,
    /// The session is lost; the latch takes no further part.
    SessionLost,
    /// An error the latch cannot work around (an ACL refusal, ...); it takes no further part.
    Failed(RecipeError),
}

/// Why leadership was reported lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchLoss {
    /// The connection was suspended (with [`LatchOptions::lose_on_suspended`]).
    Suspended,
    /// The session was lost.
    Session,
    /// The leader's node was deleted by someone else.
    NodeDeleted,
    /// The latch was closed.
    Closed,
    /// The latch failed (see [`LatchState::Failed`]).
    Failed,
}

/// A change of leadership, as [`LeaderLatch::subscribe`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchEvent {
    /// Became leader, with this token.
    Gained(FencingToken),
    /// Stopped being leader.
    Lost {
        /// The token of the leadership that ended.
        token: FencingToken,
        /// Why.
        why: LatchLoss,
    },
}

/// How a latch behaves.
#[derive(Debug, Clone)]
pub struct LatchOptions {
    id: String,
    lose_on_suspended: bool,
}

impl LatchOptions {
    /// A participant named `id` (written into its node).
    pub fn new(id: &str) -> LatchOptions {
        LatchOptions {
            id: id.to_string(),
            lose_on_suspended: true,
        }
    }

    /// Whether a suspended connection ends leadership (default on).
    pub fn lose_on_suspended(mut self, on: bool) -> LatchOptions {
        self.lose_on_suspended = on;
        self
    }
}

/// A participant of a leader latch; see the [module documentation](self).
#[derive(Debug)]
pub struct LeaderLatch {
    state: watch::Receiver<LatchState>,
    events: broadcast::Sender<LatchEvent>,
    /// Receiving since the start, for the first `subscribe` call.
    first_rx: std::sync::Mutex<Option<broadcast::Receiver<LatchEvent>>>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LeaderLatch {
    /// Joins the latch under `path` as `id`, losing leadership on suspension.
    pub async fn start(client: Client, path: &str, id: &str) -> Result<LeaderLatch> {
        LeaderLatch::start_with(client, path, LatchOptions::new(id)).await
    }

    /// Joins the latch under `path`; returns once this participant's node exists.
    pub async fn start_with(client: Client, path: &str, opts: LatchOptions) -> Result<LeaderLatch> {
        let monitor = SessionMonitor::new(&client);
        let monitor_for_loss = Some(SessionMonitor::new(&client));
        let first = enqueue(&client, path, &opts.id).await?;
        let (state_tx, state) = watch::channel(LatchState::Follower);
        // The first subscriber gets this receiver, made before the runner starts, so it sees
        // even a `Gained` sent before `subscribe` was called.
        let (events, first_rx) = broadcast::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let runner = Runner {
            client,
            dir: path.to_string(),
            opts,
            node: Some(first),
            state: state_tx,
            events: events.clone(),
            monitor,
            monitor_for_loss,
        };
        let task = tokio::spawn(runner.run(stop_rx));
        Ok(LeaderLatch {
            state,
            events,
            first_rx: std::sync::Mutex::new(Some(first_rx)),
            stop,
            task: Some(task),
        })
    }

    /// Whether this participant leads now.
    pub fn has_leadership(&self) -> bool {
        matches!(*self.state.borrow(), LatchState::Leader(_))
    }

    /// The token of the current leadership, if leading.
    pub fn token(&self) -> Option<FencingToken> {
        match *self.state.borrow() {
            LatchState::Leader(t) => Some(t),
            _ => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> LatchState {
        self.state.borrow().clone()
    }

    /// Leadership changes: the first call's receiver has every change since the latch started
    /// (nothing is missed between `start` and `subscribe`), later calls' from the moment of
    /// the call. A receiver that falls more than 64 events behind misses the oldest
    /// (`Lagged`); [`LeaderLatch::state`] is always current.
    pub fn subscribe(&self) -> broadcast::Receiver<LatchEvent> {
        let first = self.first_rx.lock().map(|mut f| f.take()).unwrap_or(None);
        first.unwrap_or_else(|| self.events.subscribe())
    }

    /// Waits until leading; `SessionLost` or `NotHeld` if the latch ends first.
    pub async fn await_leadership(&self) -> Result<FencingToken> {
        let mut rx = self.state.clone();
        let state = match rx.wait_for(|s| *s != LatchState::Follower).await {
            Ok(s) => s.clone(),
            Err(_) => LatchState::Closed,
        };
        match state {
            LatchState::Leader(t) => Ok(t),
            LatchState::SessionLost => Err(RecipeError::SessionLost),
            LatchState::Failed(e) => Err(e),
            _ => Err(RecipeError::NotHeld("the latch is closed")),
        }
    }

    /// [`LeaderLatch::await_leadership`] for at most `wait`; `None` on timeout.
    pub async fn await_leadership_for(&self, wait: Duration) -> Result<Option<FencingToken>> {
        match tokio::time::timeout(wait, self.await_leadership()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Leaves the latch: deletes the node (reporting leadership lost if leading) and waits for
    /// the background task to finish.
    pub async fn close(mut self) -> Result<()> {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        match self.state() {
            LatchState::Failed(e) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for LeaderLatch {
    /// A dropped latch leaves in the background.
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Creates a participant node; its full path and token.
async fn enqueue(client: &Client, dir: &str, id: &str) -> Result<(String, FencingToken)> {
    let (path, stat) = create_protected(
        client,
        dir,
        LATCH_PREFIX,
        id.as_bytes(),
        CreateMode::EphemeralSequential,
    )
    .await?;
    Ok((path, FencingToken(stat.czxid)))
}

/// What one look at the queue found.
enum Look {
    /// Our node is gone.
    Gone,
    /// First in line; the watch is on our own node.
    First(paddock_client::OneshotWatch),
    /// Behind someone; the watch is on the node ahead.
    Behind(paddock_client::OneshotWatch),
    /// The node ahead went away before the watch was set: look again.
    Again,
}

/// The background task of one latch.
struct Runner {
    client: Client,
    dir: String,
    opts: LatchOptions,
    node: Option<(String, FencingToken)>,
    state: watch::Sender<LatchState>,
    events: broadcast::Sender<LatchEvent>,
    monitor: SessionMonitor,
    monitor_for_loss: Option<SessionMonitor>,
}

impl Runner {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // Apart from the one `follow` uses: a presumed loss must end leadership even while
        // `follow` waits for a reply that only a reconnect can bring.
        let mut session = self.monitor_for_loss.take();
        let lost = async {
            match session.as_mut() {
                Some(m) => m.lost().await,
                None => std::future::pending().await,
            }
        };
        let end = tokio::select! {
            _ = lost => (LatchState::SessionLost, LatchLoss::Session),
            r = self.follow() => match r {
                Err(RecipeError::SessionLost) => (LatchState::SessionLost, LatchLoss::Session),
                Err(e) => {
                    tracing::warn!(dir = %self.dir, error = %e, "leader latch failed");
                    (LatchState::Failed(e), LatchLoss::Failed)
                }
                Ok(()) => unreachable!("follow only ends with an error"),
            },
            _ = stop.wait_for(|s| *s) => (LatchState::Closed, LatchLoss::Closed),
        };
        self.set(end.0, end.1);
        if end.1 != LatchLoss::Session {
            if let Some((node, _)) = self.node.take() {
                if let Err(e) = delete_quietly(&self.client, &node).await {
                    tracing::debug!(%node, error = %e, "latch node not deleted");
                }
            }
        }
    }

    /// Publishes a state, with the leadership events it implies.
    fn set(&self, new: LatchState, why: LatchLoss) {
        let old = self.state.send_replace(new.clone());
        let mut events = Vec::new();
        if let LatchState::Leader(token) = old {
            if new != old {
                events.push(LatchEvent::Lost { token, why });
            }
        }
        if let LatchState::Leader(token) = new {
            if new != old {
                events.push(LatchEvent::Gained(token));
            }
        }
        for ev in events {
            tracing::info!(id = %self.opts.id, ?ev, "leadership changed");
            let _ = self.events.send(ev);
        }
    }

    /// Follows the queue and the session until the session is lost or something fails.
    async fn follow(&mut self) -> Result<()> {
        loop {
            if self.monitor.is_lost() {
                return Err(RecipeError::SessionLost);
            }
            let (node, token) = match self.node.clone() {
                Some(n) => n,
                None => {
                    let n = enqueue(&self.client, &self.dir, &self.opts.id).await?;
                    self.node = Some(n.clone());
                    n
                }
            };
            let watch = match self.look(&node).await? {
                Look::Again => continue,
                Look::Gone => {
                    tracing::debug!(%node, "latch node deleted; queueing again");
                    self.node = None;
                    self.set(LatchState::Follower, LatchLoss::NodeDeleted);
                    continue;
                }
                Look::First(w) => {
                    self.set(LatchState::Leader(token), LatchLoss::Failed);
                    w
                }
                Look::Behind(w) => {
                    self.set(LatchState::Follower, LatchLoss::Failed);
                    w
                }
            };
            tokio::select! {
                _ = watch.changed() => {}
                c = self.monitor.changed() => match c {
                    Connection::Lost => return Err(RecipeError::SessionLost),
                    Connection::Suspended if self.opts.lose_on_suspended => {
                        self.set(LatchState::Follower, LatchLoss::Suspended);
                        if !self.monitor.reconnected().await {
                            return Err(RecipeError::SessionLost);
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// Where `node` stands in the queue, with the watch to wait on.
    async fn look(&self, node: &str) -> Result<Look> {
        let client = &self.client;
        let kids = match retry_raw(client, || client.list_children(&self.dir)).await? {
            Ok(k) => k,
            Err(ClientError::Code(ErrorCode::NoNode)) => return Ok(Look::Gone),
            Err(e) => return Err(from_client(e)),
        };
        let queue = Kind::Exclusive(LATCH_PREFIX).queue(&kids);
        let name = node.rsplit('/').next().unwrap_or_default();
        let Some(idx) = queue.iter().position(|c| c == name) else {
            return Ok(Look::Gone);
        };
        let (target, first) = match idx.checked_sub(1) {
            None => (node.to_string(), true),
            Some(p) => (join(&self.dir, &queue[p]), false),
        };
        match retry_raw(client, || client.get_data_w(&target)).await? {
            Ok((_, _, w)) if first => Ok(Look::First(w)),
            Ok((_, _, w)) => Ok(Look::Behind(w)),
            Err(ClientError::Code(ErrorCode::NoNode)) if first => Ok(Look::Gone),
            Err(ClientError::Code(ErrorCode::NoNode)) => Ok(Look::Again),
            Err(e) => Err(from_client(e)),
        }
    }
}

//! Waiting on watches and following reconnects, shared by the watch-driven recipes (barriers,
//! queues, caches, two-phase commit).

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{join, retry_raw};
use paddock_client::{
    Client, Error as ClientError, ErrorCode, OneshotWatch, SessionEvent, SessionState, WatchedEvent,
};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;

/// ZooKeeper's watch event types (`Watcher.Event.EventType`), as the client delivers them.
pub(crate) mod event {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
}

/// Waits for a one-shot watch until `deadline` (none: for ever). `Ok(None)` on timeout;
/// `SessionLost` when the session ends first (the client drops every watch then). A watch
/// survives a disconnection: the client restores it on reconnect, and the server fires it at
/// once if the node changed meanwhile.
pub(crate) async fn await_watch(
    watch: OneshotWatch,
    deadline: Option<Instant>,
) -> Result<Option<WatchedEvent>> {
    let fired = async {
        match watch.changed().await {
            Some(ev) => Ok(Some(ev)),
            None => Err(RecipeError::SessionLost),
        }
    };
    match deadline {
        None => fired.await,
        Some(d) => tokio::time::timeout_at(d, fired).await.unwrap_or(Ok(None)),
    }
}

/// What [`Reconnects::next`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reconnect {
    /// Connected again after a disconnection (or events were missed): state held from reads
    /// and watches may be stale, re-read it.
    Reconnected,
    /// The session is gone (expired, closed, authentication failed).
    Lost,
}

/// Reports every reconnection of a session from its creation on. Unlike
/// [`crate::SessionMonitor::changed`] it never folds a quick Disconnected+Connected pair into
/// "no change": a cache must resync after each, however short.
pub(crate) struct Reconnects {
    events: broadcast::Receiver<SessionEvent>,
    client: Client,
}

impl Reconnects {
    /// Follows `client` from now on (past events, such as the first Connected, are skipped).
    pub(crate) fn new(client: &Client) -> Reconnects {
        let mut events = client.events();
        while !matches!(
            events.try_recv(),
            Err(TryRecvError::Empty | TryRecvError::Closed)
        ) {}
        Reconnects {
            events,
            client: client.clone(),
        }
    }

    /// The next reconnection or the end of the session.
    pub(crate) async fn next(&mut self) -> Reconnect {
        loop {
            if self.client.state().is_terminal() {
                return Reconnect::Lost;
            }
            match self.events.recv().await {
                Ok(SessionEvent::State(s)) if s.is_terminal() => return Reconnect::Lost,
                Ok(SessionEvent::State(SessionState::Connected))
                | Ok(SessionEvent::State(SessionState::ConnectedReadOnly)) => {
                    return Reconnect::Reconnected
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return Reconnect::Reconnected,
                Err(RecvError::Closed) => return Reconnect::Lost,
            }
        }
    }
}

/// Deletes `path` and everything below it, retrying across reconnects; nodes already gone
/// (or deleted concurrently) are fine.
pub(crate) async fn delete_tree(client: &Client, path: &str) -> Result<()> {
    let children = match retry_raw(client, || client.list_children(path)).await? {
        Ok(c) => c,
        Err(ClientError::Code(ErrorCode::NoNode)) => return Ok(()),
        Err(e) => return Err(from_client(e)),
    };
    for c in children {
        Box::pin(delete_tree(client, &join(path, &c))).await?;
    }
    match retry_raw(client, || client.delete(path, -1)).await? {
        Ok(()) | Err(ClientError::Code(ErrorCode::NoNode)) => Ok(()),
        // A child appeared meanwhile: take it too.
        Err(ClientError::Code(ErrorCode::NotEmpty)) => Box::pin(delete_tree(client, path)).await,
        Err(e) => Err(from_client(e)),
    }
}

/// The deadline `within` from now, if any.
pub(crate) fn deadline(within: Option<std::time::Duration>) -> Option<Instant> {
    within.map(|d| Instant::now() + d)
}

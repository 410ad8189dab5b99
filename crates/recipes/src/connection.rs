//! What a recipe needs to know about its session: connected, suspended or lost.
//!
//! The client reports states (Connected, Disconnected, Expired, ...) and, while no server is
//! reachable for a whole session timeout, `SessionEvent::PresumedLost`. Recipes fold these
//! into three conditions, the way Curator's `ConnectionState` does:
//!
//! - **Connected**: requests go through; ephemeral nodes are known to exist.
//! - **Suspended**: the connection dropped. The session (and its ephemeral nodes) may still be
//!   alive, and the client is reconnecting. A lock holder must not start new work that relies
//!   on the lock; it may resume if the connection comes back in time.
//! - **Lost**: the session expired, was closed, or has been unreachable for a whole session
//!   timeout. Every ephemeral node of the session must be presumed deleted: another process may
//!   already hold the lock. Stop acting on it at once.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{Connection, SessionMonitor};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let mut monitor = SessionMonitor::new(&client);
//! loop {
//!     match monitor.changed().await {
//!         Connection::Suspended => println!("suspended: pause work that needs the session"),
//!         Connection::Connected => println!("connected again: resume"),
//!         Connection::Lost => break,
//!     }
//! }
//! println!("session lost: drop everything it held and start over on a new client");
//! # Ok(())
//! # }
//! ```

use paddock_client::{Client, SessionEvent, SessionState};
use tokio::sync::broadcast::{self, error::RecvError};

/// The condition of a recipe's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connected to a server (read-write or read-only).
    Connected,
    /// Disconnected; the client is reconnecting and the session may still be alive.
    Suspended,
    /// The session is gone or presumed gone. Terminal for this monitor.
    Lost,
}

impl Connection {
    fn of(state: SessionState) -> Connection {
        match state {
            SessionState::Connected | SessionState::ConnectedReadOnly => Connection::Connected,
            SessionState::Connecting | SessionState::Disconnected => Connection::Suspended,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => {
                Connection::Lost
            }
        }
    }
}

/// Follows a client's session and reports [`Connection`] changes.
///
/// Create it before the operation it guards: it reports only what happens after its creation
/// (plus the current state).
#[derive(Debug)]
pub struct SessionMonitor {
    client: Client,
    events: broadcast::Receiver<SessionEvent>,
    current: Connection,
}

impl SessionMonitor {
    /// Starts following `client`'s session.
    pub fn new(client: &Client) -> SessionMonitor {
        let events = client.events();
        SessionMonitor {
            current: Connection::of(client.state()),
            client: client.clone(),
            events,
        }
    }

    /// The condition as of the last event seen (and the client's current state).
    pub fn current(&mut self) -> Connection {
        self.drain();
        self.current
    }

    /// Whether the session is lost (see [`Connection::Lost`]).
    pub fn is_lost(&mut self) -> bool {
        self.current() == Connection::Lost
    }

    fn apply(&mut self, ev: SessionEvent) {
        if self.current == Connection::Lost {
            return;
        }
        self.current = match ev {
            SessionEvent::PresumedLost => Connection::Lost,
            SessionEvent::State(s) => Connection::of(s),
        };
    }

    fn drain(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(ev) => self.apply(ev),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.current = self.current.max_with(Connection::of(self.client.state()))
                }
                Err(_) => break,
            }
        }
        if Connection::of(self.client.state()) == Connection::Lost {
            self.current = Connection::Lost;
        }
    }

    /// Waits for the next change of condition and returns the new one. Once lost, returns
    /// `Lost` at once.
    pub async fn changed(&mut self) -> Connection {
        self.drain();
        let before = self.current;
        if before == Connection::Lost {
            return before;
        }
        loop {
            match self.events.recv().await {
                Ok(ev) => self.apply(ev),
                Err(RecvError::Lagged(_)) => self.current = Connection::of(self.client.state()),
                // The client is dropped: nothing will ever be reported again.
                Err(RecvError::Closed) => self.current = Connection::Lost,
            }
            if Connection::of(self.client.state()) == Connection::Lost {
                self.current = Connection::Lost;
            }
            if self.current != before {
                return self.current;
            }
        }
    }

    /// Waits until the session is lost.
    pub async fn lost(&mut self) {
        while self.changed().await != Connection::Lost {}
    }

    /// Waits until connected again; `false` if the session was lost instead.
    pub async fn reconnected(&mut self) -> bool {
        loop {
            match self.current() {
                Connection::Connected => return true,
                Connection::Lost => return false,
                Connection::Suspended => {
                    self.changed().await;
                }
            }
        }
    }
}

impl Connection {
    /// After missed events: Lost is sticky, anything else takes the fresh state.
    fn max_with(self, fresh: Connection) -> Connection {
        if self == Connection::Lost {
            self
        } else {
            fresh
        }
    }
}

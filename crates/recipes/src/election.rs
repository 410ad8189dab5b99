//! Leader election by taking turns (the shape of Curator's `LeaderSelector`): wait for
//! leadership, run the leader's work, relinquish, and optionally queue again.
//!
//! Participants queue on a fair [`Mutex`] under the election's node; its nodes carry each
//! participant's id, so anyone can ask who leads ([`LeaderSelector::leader`]). Leadership is
//! held exactly while the work future runs:
//!
//! - the work returns: leadership is relinquished (the node deleted) and, with
//!   [`LeaderSelector::requeue`], the participant queues again at the back;
//! - the lock is **lost** (session expired, closed or presumed lost, or the node deleted by
//!   someone else): the work future is dropped at once, so it cannot go on acting as leader;
//! - the connection is **suspended**: by default the work is dropped as well, because another
//!   participant may become leader should the session expire while we cannot hear about it
//!   (Curator's default policy). With [`LeaderSelector::cancel_on_suspended`]`(false)` the work
//!   keeps running through a suspension and is stopped only on a loss.
//!
//! Each term has a [`FencingToken`] (the czxid of the leader's node), larger than every earlier
//! term's: pass it to whatever the leader writes to, so a deposed leader's late writes are
//! refused.
//!
//! # Example
//!
//! One term of leadership, and what ended it:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::{FencingToken, LeaderSelector, TermEnd};
//! # async fn run_scheduler(_token: FencingToken) {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let selector = LeaderSelector::new(client.clone(), "/app/election", "scheduler-1");
//! println!("current leader: {:?}", selector.leader().await?);
//! let end = selector
//!     .lead(|term| async move {
//!         // Runs only while leading; dropped at once on suspension or loss.
//!         run_scheduler(term.token()).await
//!     })
//!     .await?;
//! match end {
//!     TermEnd::Done => println!("work finished, leadership handed on"),
//!     TermEnd::Suspended => println!("connection suspended: work stopped, may queue again"),
//!     TermEnd::Lost(why) => println!("leadership lost ({why:?}): another leader may be active"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! With `.requeue(true)`, [`LeaderSelector::run`] leads term after term and returns
//! [`SessionLost`](crate::RecipeError::SessionLost) once the session is lost: connect
//! again and start a new selector.

use crate::connection::Connection;
use crate::error::{from_client, RecipeError, Result};
use crate::mutex::{LockLost, Mutex};
use crate::nodes::{join, retry_raw, FencingToken};
use crate::sequential::{Kind, LOCK_PREFIX};
use paddock_client::{Client, Error as ClientError, ErrorCode};
use std::future::Future;

/// One term of leadership, handed to the leader's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    token: FencingToken,
    node: String,
}

impl Leadership {
    /// The fencing token of this term.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// The leader's node.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// How a term ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermEnd {
    /// The work finished and leadership was handed on.
    Done,
    /// The connection was suspended and the work was stopped (see
    /// [`LeaderSelector::cancel_on_suspended`]).
    Suspended,
    /// Leadership was lost: the node was deleted, or the session lost.
    Lost(LockLost),
}

/// A participant of a leader election; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct LeaderSelector {
    client: Client,
    dir: String,
    id: String,
    requeue: bool,
    cancel_on_suspended: bool,
}

impl LeaderSelector {
    /// A participant named `id` in the election under `path`. Does not queue yet.
    pub fn new(client: Client, path: &str, id: &str) -> LeaderSelector {
        LeaderSelector {
            client,
            dir: path.to_string(),
            id: id.to_string(),
            requeue: false,
            cancel_on_suspended: true,
        }
    }

    /// Queue again after each term that ends with the work done or suspended (default off:
    /// [`LeaderSelector::run`] leads once).
    pub fn requeue(mut self, on: bool) -> LeaderSelector {
        self.requeue = on;
        self
    }

    /// Stop the work when the connection is suspended (default on).
    pub fn cancel_on_suspended(mut self, on: bool) -> LeaderSelector {
        self.cancel_on_suspended = on;
        self
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for leadership, runs `work` as leader and relinquishes: one term.
    pub async fn lead<F, Fut>(&self, work: F) -> Result<TermEnd>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut lock = Mutex::non_reentrant(self.client.clone(), &self.dir);
        lock.set_data(self.id.as_bytes().to_vec());
        let mut monitor = lock.monitor();
        let token = lock.acquire().await?;
        let node = lock.node().unwrap_or_default();
        tracing::info!(id = %self.id, %token, "took leadership");
        let cancel_on_suspended = self.cancel_on_suspended;
        let suspended = async {
            if !cancel_on_suspended {
                return std::future::pending().await;
            }
            // Lost is the lock's report; here only a suspension ends the term.
            while monitor.current() != Connection::Suspended {
                if monitor.changed().await == Connection::Lost {
                    std::future::pending::<()>().await;
                }
            }
        };
        let end = tokio::select! {
            _ = work(Leadership { token, node }) => TermEnd::Done,
            why = lock.lost() => TermEnd::Lost(why),
            _ = suspended => TermEnd::Suspended,
        };
        tracing::info!(id = %self.id, %token, ?end, "leadership ended");
        lock.release().await?;
        Ok(end)
    }

    /// Leads once, or with [`LeaderSelector::requeue`] again and again, calling `work` for
    /// each term. Returns after the single term (requeue off), or with `SessionLost` when the
    /// session is lost; a term lost to a deleted node is followed by another when requeuing.
    pub async fn run<F, Fut>(&self, mut work: F) -> Result<TermEnd>
    where
        F: FnMut(Leadership) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let end = self.lead(&mut work).await?;
            if end == TermEnd::Lost(LockLost::Session) {
                return Err(RecipeError::SessionLost);
            }
            if !self.requeue {
                return Ok(end);
            }
        }
    }

    /// The ids of the participants in queue order, the leader first.
    pub async fn participants(&self) -> Result<Vec<String>> {
        let client = &self.client;
        let kids = match retry_raw(client, || client.list_children(&self.dir)).await? {
            Ok(k) => k,
            Err(ClientError::Code(ErrorCode::NoNode)) => return Ok(Vec::new()),
            Err(e) => return Err(from_client(e)),
        };
        let mut ids = Vec::new();
        for name in Kind::Exclusive(LOCK_PREFIX).queue(&kids) {
            let path = join(&self.dir, &name);
            match retry_raw(client, || client.get_data(&path)).await? {
                Ok((data, _)) => ids.push(String::from_utf8_lossy(&data).into_owned()),
                // Left between the listing and the read.
                Err(ClientError::Code(ErrorCode::NoNode)) => {}
                Err(e) => return Err(from_client(e)),
            }
        }
        Ok(ids)
    }

    /// The id of the current leader, if anybody leads.
    pub async fn leader(&self) -> Result<Option<String>> {
        Ok(self.participants().await?.into_iter().next())
    }
}

//! A double barrier (ZooKeeper's recipe, Curator's `DistributedDoubleBarrier`): members
//! [`enter`](DoubleBarrier::enter) together once `n` of them are in, and
//! [`leave`](DoubleBarrier::leave) together once all of them are done.
//!
//! Layout under the barrier path: one ephemeral node per member (a random name, so a create
//! whose reply was lost is recognised by its NODEEXISTS on the retry) and a persistent
//! `ready` node, created by the member that finds `n` members present.
//!
//! - `enter` returns only once `ready` exists, i.e. once `n` members had their node at the
//!   same time: nobody passes enter before `n` have entered.
//! - `leave` follows the recipe: the member with the lowest name waits for every other member
//!   to delete its node, then deletes its own; every other member deletes its own node and waits
//!   for the lowest one. So nobody passes leave before every member has left. The last ones out
//!   delete `ready`, so the path can serve another round once everyone has left (starting a new
//!   round while members of the old one are still leaving is not supported).
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: reads and creates are retried after the reconnect; the member node (an
//!   ephemeral) lives on with the session, and restored watches fire for what changed meanwhile.
//! - **Lost**: the member node is gone with the session, so the other members no longer count
//!   this one: `enter`/`leave` return [`RecipeError::SessionLost`]. The others may then pass
//!   `leave` without it (the recipe cannot tell a crashed member from one that left).
//!
//! # Example
//!
//! Each of three workers runs this; nobody computes before all three are in, nobody goes on
//! before all three are done:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::DoubleBarrier;
//! # async fn compute() {}
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let round = DoubleBarrier::new(&client, "/app/barriers/round", 3)?;
//! // Timeout: this member is taken out again, so it does not count.
//! round.enter_within(Duration::from_secs(60)).await?;
//! compute().await;
//! round.leave().await?;
//! # Ok(())
//! # }
//! ```
//!
//! `SessionLost` from `enter` or `leave` means this member no longer counts: the others may pass
//! without it.

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{create_if_missing, delete_quietly, ensure_path, join, retry, retry_raw};
use crate::watching::{await_watch, deadline};
use paddock_client::{Client, CreateMode, Error as ClientError, ErrorCode};
use std::time::Duration;
use tokio::time::Instant;

const READY: &str = "ready";

/// One member's handle on a double barrier.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    client: Client,
    dir: String,
    n: usize,
    name: String,
}

impl DoubleBarrier {
    /// A member of the barrier at `path` for `n` members. Fails with `Invalid` if `n` is 0.
    pub fn new(client: &Client, path: &str, n: usize) -> Result<DoubleBarrier> {
        if n == 0 {
            return Err(RecipeError::Invalid("a double barrier needs n >= 1".into()));
        }
        Ok(DoubleBarrier {
            client: client.clone(),
            dir: path.to_string(),
            n,
            name: format!("m-{:016x}", rand::random::<u64>()),
        })
    }

    /// This member's node.
    pub fn member_path(&self) -> String {
        join(&self.dir, &self.name)
    }

    /// Enters: registers this member and waits until `n` members are in.
    pub async fn enter(&self) -> Result<()> {
        self.enter_inner(None).await
    }

    /// Like [`DoubleBarrier::enter`], giving up after `within` with [`RecipeError::Timeout`]
    /// (the member node is removed again then, so it does not count).
    pub async fn enter_within(&self, within: Duration) -> Result<()> {
        let r = self.enter_inner(deadline(Some(within))).await;
        if matches!(r, Err(RecipeError::Timeout)) {
            delete_quietly(&self.client, &self.member_path()).await?;
        }
        r
    }

    async fn enter_inner(&self, until: Option<Instant>) -> Result<()> {
        let c = &self.client;
        ensure_path(c, &self.dir).await?;
        let ready = join(&self.dir, READY);
        create_if_missing(c, &self.member_path(), &[], CreateMode::Ephemeral).await?;
        loop {
            // Watch `ready` before counting: a ready created right after the count still wakes us.
            let (stat, watch) = retry(c, || c.exists_w(&ready)).await?;
            if stat.is_some() {
                return Ok(());
            }
            if self.members().await?.len() >= self.n {
                create_if_missing(c, &ready, &[], CreateMode::Persistent).await?;
                return Ok(());
            }
            if await_watch(watch, until).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
    }

    /// Leaves: deletes this member's node and waits until every member has left.
    pub async fn leave(&self) -> Result<()> {
        self.leave_inner(None).await
    }

    /// Like [`DoubleBarrier::leave`], giving up after `within` with [`RecipeError::Timeout`].
    pub async fn leave_within(&self, within: Duration) -> Result<()> {
        self.leave_inner(deadline(Some(within))).await
    }

    async fn leave_inner(&self, until: Option<Instant>) -> Result<()> {
        let c = &self.client;
        loop {
            let members = self.members().await?;
            let Some(lowest) = members.first() else { break };
            let highest = members.last().expect("not empty");
            let ours = members.contains(&self.name);
            if members.len() == 1 && ours {
                delete_quietly(c, &self.member_path()).await?;
                break;
            }
            // The lowest member goes last: it waits for the highest other one to go. Everyone
            // else leaves at once and waits for the lowest, which goes only when alone.
            let wait_on = if *lowest == self.name {
                highest.clone()
            } else {
                if ours {
                    delete_quietly(c, &self.member_path()).await?;
                }
                lowest.clone()
            };
            let path = join(&self.dir, &wait_on);
            let (stat, watch) = retry(c, || c.exists_w(&path)).await?;
            if stat.is_some() && await_watch(watch, until).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
        // Everyone is out: reset for a next round (every leaver tries; one succeeds).
        delete_quietly(c, &join(&self.dir, READY)).await
    }

    /// The member names present now, sorted.
    async fn members(&self) -> Result<Vec<String>> {
        let c = &self.client;
        let mut kids = match retry_raw(c, || c.list_children(&self.dir)).await? {
            Ok(k) => k,
            Err(ClientError::Code(ErrorCode::NoNode)) => Vec::new(),
            Err(e) => return Err(from_client(e)),
        };
        kids.retain(|k| k != READY);
        kids.sort();
        Ok(kids)
    }
}

//! Two-phase commit (ZooKeeper's recipe): a [`Coordinator`] proposes a transaction to named
//! participants, each [`Participant`] votes, the coordinator decides and publishes the outcome.
//!
//! Layout: `<base>/<tx id>` holds the proposal; it has one child per participant (empty until
//! the participant votes `commit` or `abort` into it) and, once decided, an `outcome` child
//! holding `commit` or `abort`. All are persistent, so a transaction survives any session.
//!
//! - The coordinator creates the transaction and every participant node in one multi: a
//!   participant never sees a half-made transaction.
//! - [`Transaction::decide`] watches the votes and decides **commit** only when every
//!   participant voted commit, **abort** as soon as one votes abort, or when the deadline
//!   passes first. The outcome node is created once (NODEEXISTS: an outcome was already
//!   decided, by an earlier coordinator, and that one stands), so every participant sees the
//!   same outcome.
//! - A participant votes once: its vote is written at version 0 (the empty node's version), so
//!   a second, different vote fails instead of changing the first.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: every call waits for the reconnect and carries on; watches on votes and on
//!   the outcome are restored and fire for what happened meanwhile. A create or vote whose reply
//!   was lost is recognised on the retry (the node exists / holds the same vote).
//! - **Lost**: nothing is lost on the server (persistent nodes); calls on the dead session fail
//!   with [`RecipeError::SessionLost`]. A new coordinator can [`Transaction::open`] the
//!   transaction and decide it; a participant can read the outcome from a new session.
//!
//! # Example
//!
//! The coordinator and one participant, in one program for brevity (each participant is
//! usually a process of its own):
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::two_phase::{Outcome, Vote};
//! use paddock_recipes::{Coordinator, Participant};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let tx = Coordinator::new(&client, "/app/2pc")
//!     .begin("tx-42", &["db", "search"], b"rename user 7")
//!     .await?;
//!
//! let db = Participant::new(&client, "/app/2pc", "tx-42", "db");
//! let proposal = db.proposal(Duration::from_secs(10)).await?;
//! println!("db votes on {}", String::from_utf8_lossy(&proposal));
//! db.vote(Vote::Commit).await?;
//! // ... "search" votes from its own process ...
//!
//! let decision = tx.decide(Duration::from_secs(30)).await?; // abort if a vote is missing
//! println!("decided: {decision:?}");
//! match db.outcome(Duration::from_secs(30)).await? {
//!     Outcome::Commit => println!("db applies the change"),
//!     Outcome::Abort => println!("db drops the change"),
//! }
//! tx.remove().await?;
//! # Ok(())
//! # }
//! ```

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{ensure_path, is_connection_loss, join, retry, retry_raw, wait_reconnected};
use crate::watching::{await_watch, delete_tree};
use paddock_client::{open_acl, Client, CreateMode, Error as ClientError, ErrorCode, Op};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const OUTCOME: &str = "outcome";

/// A participant's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Ready to commit.
    Commit,
    /// Cannot commit.
    Abort,
}

/// The outcome of a transaction, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every participant voted commit in time.
    Commit,
    /// A participant voted abort, or not everyone voted in time.
    Abort,
}

/// Why the coordinator decided as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every participant voted commit.
    Committed,
    /// This participant voted abort.
    AbortedBy(String),
    /// The deadline passed with these participants not having voted.
    TimedOut(Vec<String>),
    /// The transaction already had an outcome (decided by an earlier coordinator).
    AlreadyDecided(Outcome),
}

impl Decision {
    /// The published outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Committed => Outcome::Commit,
            Decision::AlreadyDecided(o) => *o,
            _ => Outcome::Abort,
        }
    }
}

fn vote_bytes(v: Vote) -> &'static [u8] {
    match v {
        Vote::Commit => b"commit",
        Vote::Abort => b"abort",
    }
}

fn parse_vote(data: &[u8]) -> Option<Vote> {
    match data {
        b"commit" => Some(Vote::Commit),
        b"abort" => Some(Vote::Abort),
        _ => None,
    }
}

fn parse_outcome(path: &str, data: &[u8]) -> Result<Outcome> {
    match parse_vote(data) {
        Some(Vote::Commit) => Ok(Outcome::Commit),
        Some(Vote::Abort) => Ok(Outcome::Abort),
        None => Err(RecipeError::Corrupt {
            path: path.to_string(),
            why: "outcome is neither commit nor abort".into(),
        }),
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == OUTCOME {
        return Err(RecipeError::Invalid(format!("{what} {name:?}")));
    }
    Ok(())
}

/// Starts transactions under a base path.
#[derive(Debug, Clone)]
pub struct Coordinator {
    client: Client,
    base: String,
}

impl Coordinator {
    /// A coordinator of transactions under `base`.
    pub fn new(client: &Client, base: &str) -> Coordinator {
        Coordinator {
            client: client.clone(),
            base: base.to_string(),
        }
    }

    /// Proposes transaction `id` with `proposal` to `participants`. Fails with NODEEXISTS
    /// if a transaction `id` exists already.
    pub async fn begin(
        &self,
        id: &str,
        participants: &[&str],
        proposal: &[u8],
    ) -> Result<Transaction> {
        check_name("transaction id", id)?;
        if participants.is_empty() {
            return Err(RecipeError::Invalid(
                "a transaction needs participants".into(),
            ));
        }
        for p in participants {
            check_name("participant", p)?;
        }
        let c = &self.client;
        ensure_path(c, &self.base).await?;
        let path = join(&self.base, id);
        let mut ops = vec![create_op(&path, proposal)];
        ops.extend(participants.iter().map(|p| create_op(&join(&path, p), b"")));
        loop {
            match c.multi(ops.clone()).await {
                Ok(_) => break,
                Err(e) if is_connection_loss(&e) => {
                    wait_reconnected(c).await?;
                    // Did it go through? Then the node holds our proposal and participants.
                    if let Ok((data, _)) = retry_raw(c, || c.get_data(&path)).await? {
                        let kids = retry(c, || c.list_children(&path)).await?;
                        if data == proposal
                            && participants.iter().all(|p| kids.iter().any(|k| k == p))
                        {
                            break;
                        }
                        return Err(RecipeError::Client(ErrorCode::NodeExists.into()));
                    }
                }
                Err(e) => return Err(from_client(e)),
            }
        }
        Ok(Transaction {
            client: c.clone(),
            path,
            participants: participants.iter().map(|p| p.to_string()).collect(),
        })
    }
}

fn create_op(path: &str, data: &[u8]) -> Op {
    Op::Create {
        path: path.to_string(),
        data: data.to_vec(),
        acl: open_acl(),
        mode: CreateMode::Persistent,
        ttl: -1,
    }
}

/// The coordinator's handle on one transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    client: Client,
    path: String,
    participants: Vec<String>,
}

impl Transaction {
    /// Opens an existing transaction (to decide it after the coordinator that began it died).
    pub async fn open(client: &Client, base: &str, id: &str) -> Result<Transaction> {
        let path = join(base, id);
        let mut participants = retry(client, || client.list_children(&path)).await?;
        participants.retain(|p| p != OUTCOME);
        participants.sort();
        Ok(Transaction {
            client: client.clone(),
            path,
            participants,
        })
    }

    /// The transaction's node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits for the votes (at most `within`), decides, and publishes the outcome.
    pub async fn decide(&self, within: Duration) -> Result<Decision> {
        let until = Instant::now() + within;
        let decision = match self.collect(until).await? {
            Some(d) => d,
            None => return self.read_outcome().await.map(Decision::AlreadyDecided),
        };
        let outcome = decision.outcome();
        let out = join(&self.path, OUTCOME);
        let c = &self.client;
        match retry_raw(c, || {
            c.create(
                &out,
                vote_bytes_of(outcome),
                open_acl(),
                CreateMode::Persistent,
            )
        })
        .await?
        {
            Ok(_) => Ok(decision),
            Err(ClientError::Code(ErrorCode::NodeExists)) => {
                // Ours after a lost reply, or an earlier coordinator's: the node decides.
                let stands = self.read_outcome().await?;
                Ok(if stands == outcome {
                    decision
                } else {
                    Decision::AlreadyDecided(stands)
                })
            }
            Err(e) => Err(from_client(e)),
        }
    }

    /// Watches the votes until they decide, or the deadline passes. `None` if an outcome was
    /// published meanwhile.
    async fn collect(&self, until: Instant) -> Result<Option<Decision>> {
        let c = &self.client;
        let (poke, mut poked) = mpsc::unbounded_channel::<()>();
        let out = join(&self.path, OUTCOME);
        loop {
            if retry(c, || c.exists(&out)).await?.is_some() {
                return Ok(None);
            }
            let mut missing = Vec::new();
            for p in &self.participants {
                let node = join(&self.path, p);
                let (data, _, w) = match retry_raw(c, || c.get_data_w(&node)).await? {
                    Ok(r) => r,
                    // A participant node deleted: it can never vote commit.
                    Err(ClientError::Code(ErrorCode::NoNode)) => {
                        return Ok(Some(Decision::AbortedBy(p.clone())))
                    }
                    Err(e) => return Err(from_client(e)),
                };
                match parse_vote(&data) {
                    Some(Vote::Abort) => return Ok(Some(Decision::AbortedBy(p.clone()))),
                    Some(Vote::Commit) => {}
                    None => {
                        missing.push(p.clone());
                        let poke = poke.clone();
                        w.on_event(move |_| {
                            let _ = poke.send(());
                        });
                    }
                }
            }
            if missing.is_empty() {
                return Ok(Some(Decision::Committed));
            }
            tokio::select! {
                _ = poked.recv() => {}
                _ = tokio::time::sleep_until(until) => return Ok(Some(Decision::TimedOut(missing))),
                lost = wait_lost(c) => return Err(lost),
            }
        }
    }

    async fn read_outcome(&self) -> Result<Outcome> {
        let out = join(&self.path, OUTCOME);
        let (data, _) = retry(&self.client, || self.client.get_data(&out)).await?;
        parse_outcome(&out, &data)
    }

    /// Deletes the transaction's nodes (once every participant has read the outcome).
    pub async fn remove(&self) -> Result<()> {
        delete_tree(&self.client, &self.path).await
    }
}

fn vote_bytes_of(o: Outcome) -> &'static [u8] {
    vote_bytes(match o {
        Outcome::Commit => Vote::Commit,
        Outcome::Abort => Vote::Abort,
    })
}

/// Resolves with `SessionLost` when the client's session ends (the vote watches die with it).
async fn wait_lost(c: &Client) -> RecipeError {
    let mut states = c.state_watcher();
    let _ = states.wait_for(|s| s.is_terminal()).await;
    RecipeError::SessionLost
}

/// One participant's side of a transaction.
#[derive(Debug, Clone)]
pub struct Participant {
    client: Client,
    tx: String,
    name: String,
}

impl Participant {
    /// Participant `name` of transaction `id` under `base`.
    pub fn new(client: &Client, base: &str, id: &str, name: &str) -> Participant {
        Participant {
            client: client.clone(),
            tx: join(base, id),
            name: name.to_string(),
        }
    }

    /// Waits (at most `within`) for the transaction to be proposed and returns the proposal.
    pub async fn proposal(&self, within: Duration) -> Result<Vec<u8>> {
        let c = &self.client;
        let until = Instant::now() + within;
        loop {
            if let Ok((data, _)) = retry_raw(c, || c.get_data(&self.tx)).await? {
                return Ok(data);
            }
            let (stat, w) = retry(c, || c.exists_w(&self.tx)).await?;
            if stat.is_none() && await_watch(w, Some(until)).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
    }

    /// Votes. Voting again the same way is fine; changing a vote fails with `Invalid`.
    /// `NotHeld` if this participant is not part of the transaction.
    pub async fn vote(&self, vote: Vote) -> Result<()> {
        let c = &self.client;
        let node = join(&self.tx, &self.name);
        match retry_raw(c, || c.set_data(&node, vote_bytes(vote), 0)).await? {
            Ok(_) => Ok(()),
            Err(ClientError::Code(ErrorCode::NoNode)) => Err(RecipeError::NotHeld("participant")),
            Err(ClientError::Code(ErrorCode::BadVersion)) => {
                // Already voted (maybe this very vote, whose reply was lost).
                let (data, _) = retry(c, || c.get_data(&node)).await?;
                if parse_vote(&data) == Some(vote) {
                    Ok(())
                } else {
                    Err(RecipeError::Invalid(format!(
                        "{} already voted otherwise",
                        self.name
                    )))
                }
            }
            Err(e) => Err(from_client(e)),
        }
    }

    /// Waits (at most `within`) for the outcome.
    pub async fn outcome(&self, within: Duration) -> Result<Outcome> {
        let c = &self.client;
        let out = join(&self.tx, OUTCOME);
        let until = Instant::now() + within;
        loop {
            let (stat, w) = retry(c, || c.exists_w(&out)).await?;
            if stat.is_some() {
                let (data, _) = retry(c, || c.get_data(&out)).await?;
                return parse_outcome(&out, &data);
            }
            if await_watch(w, Some(until)).await?.is_none() {
                return Err(RecipeError::Timeout);
            }
        }
    }
}

//! Group membership: each member is an ephemeral node `<group>/<name>` carrying the member's
//! data; the group is whoever has a node now.
//!
//! - [`Group::join`] creates the member node; [`Membership::leave`] (or the end of the
//!   session) deletes it. Names are unique: joining under a name another session holds fails
//!   with the client's NODEEXISTS.
//! - [`Group::members`] lists the members now; [`Group::watch`] gives a [`MembershipWatch`],
//!   a stream of member sets, each different from the one before. Changes that come and go
//!   between two reads may be folded together (watches report that *something* changed).
//!   Member data is read when a member appears; later data changes are not watched.
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: a member stays in the group as long as its session lives. A join whose
//!   reply was lost is recognised after the reconnect (the node exists with this session as its
//!   owner). Watchers wait for the reconnect; their child watch is restored and fires for
//!   members that came or went meanwhile.
//! - **Lost**: the member node is gone with the session (for everyone else too, once the server
//!   expires it). [`Membership::lost`] resolves then; join again on a new session. Watches on a
//!   dead session end with [`RecipeError::SessionLost`].
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::Group;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let workers = Group::new(&client, "/app/workers");
//! let me = workers.join("worker-1", b"10.0.0.5:8080").await?;
//! let mut changes = workers.watch().await?;
//! println!("members: {:?}", changes.next().await?.keys());
//! tokio::select! {
//!     members = changes.next() => println!("members now: {:?}", members?.keys()),
//!     // Our node is gone with the session: join again on a new session.
//!     _ = me.lost() => return Err("membership lost with the session".into()),
//! }
//! me.leave().await?;
//! # Ok(())
//! # }
//! ```

use crate::connection::SessionMonitor;
use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{ensure_path, is_connection_loss, join, retry, retry_raw, wait_reconnected};
use crate::watching::await_watch;
use paddock_client::{open_acl, Client, CreateMode, Error as ClientError, ErrorCode, OneshotWatch};
use std::collections::BTreeMap;

/// The members of a group: name -> data.
pub type Members = BTreeMap<String, Vec<u8>>;

/// A group in a directory node.
#[derive(Debug, Clone)]
pub struct Group {
    client: Client,
    dir: String,
}

/// One member's place in a group, held while the member node exists.
#[derive(Debug)]
pub struct Membership {
    client: Client,
    path: String,
    name: String,
}

impl Group {
    /// The group under `dir` (created on the first join or watch).
    pub fn new(client: &Client, dir: &str) -> Group {
        Group {
            client: client.clone(),
            dir: dir.to_string(),
        }
    }

    /// The group's directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Joins under `name` with `data`.
    pub async fn join(&self, name: &str, data: &[u8]) -> Result<Membership> {
        if name.is_empty() || name.contains('/') {
            return Err(RecipeError::Invalid(format!("member name {name:?}")));
        }
        let c = &self.client;
        let path = join(&self.dir, name);
        let mut after_loss = false;
        loop {
            match c
                .create(&path, data, open_acl(), CreateMode::Ephemeral)
                .await
            {
                Ok(_) => break,
                Err(ClientError::Code(ErrorCode::NoNode)) => ensure_path(c, &self.dir).await?,
                Err(ClientError::Code(ErrorCode::NodeExists)) => {
                    // After a lost reply the node may be our own create.
                    let owner = retry(c, || c.exists(&path))
                        .await?
                        .map(|s| s.ephemeral_owner);
                    match owner {
                        Some(o) if after_loss && o == c.session_id() => break,
                        Some(_) => return Err(RecipeError::Client(ErrorCode::NodeExists.into())),
                        None => {} // gone meanwhile: try again
                    }
                }
                Err(e) if is_connection_loss(&e) => {
                    wait_reconnected(c).await?;
                    after_loss = true;
                }
                Err(e) => return Err(from_client(e)),
            }
        }
        Ok(Membership {
            client: c.clone(),
            path,
            name: name.to_string(),
        })
    }

    /// The members now.
    pub async fn members(&self) -> Result<Members> {
        Ok(read_members(&self.client, &self.dir, false).await?.0)
    }

    /// A stream of the group's member sets, starting with the current one.
    pub async fn watch(&self) -> Result<MembershipWatch> {
        ensure_path(&self.client, &self.dir).await?;
        Ok(MembershipWatch {
            client: self.client.clone(),
            dir: self.dir.clone(),
            last: None,
            pending: None,
        })
    }
}

/// Lists `dir`'s children and their data (children gone between the two reads are skipped),
/// with a child watch if asked for. A missing directory is an empty group.
async fn read_members(
    c: &Client,
    dir: &str,
    watch: bool,
) -> Result<(Members, Option<OneshotWatch>)> {
    let (names, w) = if watch {
        match retry_raw(c, || c.list_children_w(dir)).await? {
            Ok((n, _, w)) => (n, Some(w)),
            Err(ClientError::Code(ErrorCode::NoNode)) => {
                ensure_path(c, dir).await?;
                return Box::pin(read_members(c, dir, watch)).await;
            }
            Err(e) => return Err(from_client(e)),
        }
    } else {
        match retry_raw(c, || c.list_children(dir)).await? {
            Ok(n) => (n, None),
            Err(ClientError::Code(ErrorCode::NoNode)) => (Vec::new(), None),
            Err(e) => return Err(from_client(e)),
        }
    };
    let mut members = Members::new();
    for name in names {
        let path = join(dir, &name);
        match retry_raw(c, || c.get_data(&path)).await? {
            Ok((data, _)) => {
                members.insert(name, data);
            }
            Err(ClientError::Code(ErrorCode::NoNode)) => {}
            Err(e) => return Err(from_client(e)),
        }
    }
    Ok((members, w))
}

impl Membership {
    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client whose session holds the membership.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The member node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Replaces the member's data (watchers of the group do not see data changes).
    pub async fn set_data(&self, data: &[u8]) -> Result<()> {
        let c = &self.client;
        match retry_raw(c, || c.set_data(&self.path, data, -1)).await? {
            Ok(_) => Ok(()),
            Err(ClientError::Code(ErrorCode::NoNode)) => Err(RecipeError::NotHeld("membership")),
            Err(e) => Err(from_client(e)),
        }
    }

    /// Leaves the group (deletes the member node).
    pub async fn leave(self) -> Result<()> {
        crate::nodes::delete_quietly(&self.client, &self.path).await
    }

    /// Resolves when the membership is lost with the session (expired, closed, or presumed
    /// lost after a whole session timeout without a server).
    pub async fn lost(&self) {
        SessionMonitor::new(&self.client).lost().await
    }
}

/// A stream of a group's member sets (see [`Group::watch`]).
#[derive(Debug)]
pub struct MembershipWatch {
    client: Client,
    dir: String,
    last: Option<Members>,
    pending: Option<OneshotWatch>,
}

impl MembershipWatch {
    /// The next member set different from the last one returned (the first call returns the
    /// current set). Cancel-safe: dropping the future only costs a re-read on the next call.
    pub async fn next(&mut self) -> Result<Members> {
        loop {
            if let Some(w) = self.pending.take() {
                await_watch(w, None).await?;
            }
            let (members, w) = read_members(&self.client, &self.dir, true).await?;
            self.pending = w;
            if self.last.as_ref() != Some(&members) {
                self.last = Some(members.clone());
                return Ok(members);
            }
        }
    }

    /// The last member set returned.
    pub fn last(&self) -> Option<&Members> {
        self.last.as_ref()
    }
}

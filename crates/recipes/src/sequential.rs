//! The queue behind the mutex, the read/write lock and the elections: every contender creates a
//! protected ephemeral sequential node in one directory and waits, watching exactly one earlier
//! node, until a [`Kind`]'s rule says it is its turn.
//!
//! Watching one predecessor (not the directory) keeps a release from waking every waiter: the
//! "herd effect" ZooKeeper's own lock recipe avoids.

use crate::connection::SessionMonitor;
use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{
    create_protected, delete_quietly, join, retry_raw, sorted_by_sequence, strip_protection,
    FencingToken,
};
use paddock_client::{Client, CreateMode, Error as ClientError, ErrorCode};
use tokio::time::Instant;

/// Name prefix of exclusive lock nodes.
pub(crate) const LOCK_PREFIX: &str = "lock-";
/// Name prefix of read-lock nodes.
pub(crate) const READ_PREFIX: &str = "read-";
/// Name prefix of write-lock nodes.
pub(crate) const WRITE_PREFIX: &str = "write-";

/// Which rule decides a contender's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// First in line holds it; nodes named `<prefix><seq>`.
    Exclusive(&'static str),
    /// Shares with other readers; waits for every earlier writer.
    Read,
    /// Waits for every earlier node, reader or writer.
    Write,
}

impl Kind {
    /// The prefix of this contender's own nodes.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Exclusive(p) => p,
            Kind::Read => READ_PREFIX,
            Kind::Write => WRITE_PREFIX,
        }
    }

    /// The contenders of this lock among `children`, in sequence order.
    pub(crate) fn queue(self, children: &[String]) -> Vec<String> {
        match self {
            Kind::Exclusive(p) => sorted_by_sequence(children, p),
            Kind::Read | Kind::Write => sorted_by_sequence(children, "")
                .into_iter()
                .filter(|c| {
                    let bare = strip_protection(c);
                    bare.starts_with(READ_PREFIX) || bare.starts_with(WRITE_PREFIX)
                })
                .collect(),
        }
    }

    /// `None` when the contender at `idx` of `queue` holds the lock, else the one node it must
    /// wait for. A reader waits only for the nearest earlier writer: when that one goes, any
    /// writer before it is found on the next look.
    pub(crate) fn blocker(self, queue: &[String], idx: usize) -> Option<String> {
        match self {
            Kind::Exclusive(_) | Kind::Write => idx.checked_sub(1).map(|p| queue[p].clone()),
            Kind::Read => queue[..idx]
                .iter()
                .rev()
                .find(|c| strip_protection(c).starts_with(WRITE_PREFIX))
                .cloned(),
        }
    }
}

/// A contender's node that is deleted if the contender gives up without saying so (its future
/// dropped, an error): a node left behind would hold the lock for nobody until the session
/// ends. The delete runs on a task; it waits for a reconnect if need be, and gives up when the
/// session is lost (the server removes the node then).
#[derive(Debug)]
pub(crate) struct NodeGuard {
    client: Client,
    path: Option<String>,
}

impl NodeGuard {
    pub(crate) fn new(client: &Client, path: String) -> NodeGuard {
        NodeGuard {
            client: client.clone(),
            path: Some(path),
        }
    }

    /// The node's path.
    pub(crate) fn path(&self) -> &str {
        self.path.as_deref().unwrap_or_default()
    }

    /// Keeps the node: the caller owns it now.
    pub(crate) fn disarm(mut self) -> String {
        self.path.take().unwrap_or_default()
    }

    /// Deletes the node now and waits for it.
    pub(crate) async fn delete(mut self) -> Result<()> {
        match self.path.take() {
            Some(p) => delete_quietly(&self.client, &p).await,
            None => Ok(()),
        }
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            delete_in_background(&self.client, path);
        }
    }
}

/// Deletes `path` on a task, if a runtime is there to run it.
pub(crate) fn delete_in_background(client: &Client, path: String) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let client = client.clone();
        rt.spawn(async move {
            if let Err(e) = delete_quietly(&client, &path).await {
                tracing::debug!(%path, error = %e, "abandoned node not deleted");
            }
        });
    }
}

/// A node that got its turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entered {
    /// Full path of the contender's node.
    pub path: String,
    /// Its czxid.
    pub token: FencingToken,
}

/// Creates this contender's node in `dir` and waits for its turn. `Ok(None)` when `deadline`
/// passed first (the node is deleted before returning). On `SessionLost` nothing is deleted
/// (the server does that), except by a background attempt should the session come back.
pub(crate) async fn enter(
    client: &Client,
    dir: &str,
    kind: Kind,
    data: &[u8],
    deadline: Option<Instant>,
) -> Result<Option<Entered>> {
    // Created first, so a loss during the create is seen.
    let mut monitor = SessionMonitor::new(client);
    if monitor.is_lost() {
        return Err(RecipeError::SessionLost);
    }
    let (path, stat) = create_protected(
        client,
        dir,
        kind.prefix(),
        data,
        CreateMode::EphemeralSequential,
    )
    .await?;
    let guard = NodeGuard::new(client, path);
    let name = guard
        .path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let token = FencingToken(stat.czxid);
    let waited = wait_turn(client, dir, kind, &name, &mut monitor);
    let outcome = match deadline {
        Some(d) => match tokio::time::timeout_at(d, waited).await {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!(%dir, %name, "gave up waiting for the lock");
                guard.delete().await?;
                return Ok(None);
            }
        },
        None => waited.await,
    };
    // On an error the guard deletes the node behind the caller's back (see NodeGuard).
    outcome?;
    Ok(Some(Entered {
        path: guard.disarm(),
        token,
    }))
}

/// Waits until `name`'s turn in `dir`.
async fn wait_turn(
    client: &Client,
    dir: &str,
    kind: Kind,
    name: &str,
    monitor: &mut SessionMonitor,
) -> Result<()> {
    loop {
        let children = match retry_raw(client, || client.list_children(dir)).await? {
            Ok(c) => c,
            Err(ClientError::Code(ErrorCode::NoNode)) => Vec::new(),
            Err(e) => return Err(from_client(e)),
        };
        let queue = kind.queue(&children);
        let Some(idx) = queue.iter().position(|c| c == name) else {
            if monitor.is_lost() {
                return Err(RecipeError::SessionLost);
            }
            return Err(RecipeError::NotHeld("the waiting node was deleted"));
        };
        let Some(blocker) = kind.blocker(&queue, idx) else {
            return Ok(());
        };
        let blocker = join(dir, &blocker);
        // getData, not exists: a watch on a node already gone would stay registered for good.
        let watch = match retry_raw(client, || client.get_data_w(&blocker)).await? {
            Ok((_, _, w)) => w,
            Err(ClientError::Code(ErrorCode::NoNode)) => continue,
            Err(e) => return Err(from_client(e)),
        };
        tracing::trace!(%name, %blocker, "waiting for predecessor");
        tokio::select! {
            // Deleted (or the session ended, then the next read says so): look again.
            _ = watch.changed() => {}
            _ = monitor.lost() => return Err(RecipeError::SessionLost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn blockers() {
        let q = names(&[
            "read-0000000001",
            "write-0000000002",
            "read-0000000003",
            "read-0000000004",
            "write-0000000005",
        ]);
        assert_eq!(Kind::Read.blocker(&q, 0), None);
        assert_eq!(
            Kind::Read.blocker(&q, 3).as_deref(),
            Some("write-0000000002")
        );
        assert_eq!(
            Kind::Write.blocker(&q, 1).as_deref(),
            Some("read-0000000001")
        );
        assert_eq!(
            Kind::Write.blocker(&q, 4).as_deref(),
            Some("read-0000000004")
        );
        let l = names(&["lock-0000000001", "lock-0000000002"]);
        assert_eq!(Kind::Exclusive(LOCK_PREFIX).blocker(&l, 0), None);
        assert_eq!(
            Kind::Exclusive(LOCK_PREFIX).blocker(&l, 1).as_deref(),
            Some("lock-0000000001")
        );
        let mixed = names(&["write-0000000003", "other", "read-0000000001"]);
        assert_eq!(
            Kind::Read.queue(&mixed),
            names(&["read-0000000001", "write-0000000003"])
        );
    }
}

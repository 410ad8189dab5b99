//! Node helpers every recipe shares: parents on demand, sequential nodes that survive a lost
//! create reply, sequence numbers, and retrying reads across a reconnect.

use crate::connection::SessionMonitor;
use crate::error::{from_client, RecipeError, Result};
use paddock_client::{open_acl, Client, CreateMode, Error as ClientError, ErrorCode, Stat};
use std::future::Future;

/// The fencing token of a lock or leadership: the zxid of the transaction that created the
/// holder's node (its `czxid`). Tokens only grow from one holder to the next, so a resource
/// that remembers the highest token it has seen can refuse a deposed holder's late writes.
///
/// # Example
///
/// The check belongs to the protected resource, not to the lock holder:
///
/// ```
/// use paddock_recipes::FencingToken;
///
/// struct Store {
///     highest: Option<FencingToken>,
/// }
///
/// impl Store {
///     fn write(&mut self, token: FencingToken, _data: &[u8]) -> Result<(), &'static str> {
///         if self.highest.is_some_and(|h| token < h) {
///             return Err("stale fencing token: a newer holder has written");
///         }
///         self.highest = Some(token);
///         Ok(())
///     }
/// }
///
/// let mut store = Store { highest: None };
/// store.write(FencingToken(0x200), b"new holder").unwrap();
/// // A holder paused since before 0x200 was handed out wakes up and writes: refused.
/// assert!(store.write(FencingToken(0x100), b"old holder").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub i64);

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// The parent of `path` ("/" for a top-level node); `None` for "/" itself.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" || !path.starts_with('/') {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// `dir` joined with a child name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether a client error is CONNECTIONLOSS: the request may or may not have been applied.
pub(crate) fn is_connection_loss(e: &ClientError) -> bool {
    e.code() == Some(ErrorCode::ConnectionLoss)
}

/// Creates `path` and its missing ancestors as empty persistent nodes; existing ones are fine.
pub async fn ensure_path(client: &Client, path: &str) -> Result<()> {
    if path == "/" {
        return Ok(());
    }
    // Most of the time the path exists: one round trip.
    if retry(client, || client.exists(path)).await?.is_some() {
        return Ok(());
    }
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        create_if_missing(client, &at, &[], CreateMode::Persistent).await?;
    }
    Ok(())
}

/// Creates a node unless it exists; true when this call created it. Retries across reconnects
/// (a create whose reply was lost shows up as NODEEXISTS on the retry, counted as not created).
pub async fn create_if_missing(
    client: &Client,
    path: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<bool> {
    loop {
        match client.create(path, data, open_acl(), mode).await {
            Ok(_) => return Ok(true),
            Err(ClientError::Code(ErrorCode::NodeExists)) => return Ok(false),
            Err(e) if is_connection_loss(&e) => wait_reconnected(client).await?,
            Err(e) => return Err(from_client(e)),
        }
    }
}

/// Waits until the client is connected again after a CONNECTIONLOSS; `SessionLost` if the
/// session is lost meanwhile.
pub(crate) async fn wait_reconnected(client: &Client) -> Result<()> {
    if SessionMonitor::new(client).reconnected().await {
        // The state may say connected before the client has seen its connection go: give
        // the session task its turn, so that a retry loop never spins without yielding.
        tokio::task::yield_now().await;
        Ok(())
    } else {
        Err(RecipeError::SessionLost)
    }
}

/// Runs an idempotent request, retrying it after every CONNECTIONLOSS until the session is
/// lost. Other errors are returned as they are.
pub async fn retry<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, ClientError>>,
{
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if is_connection_loss(&e) => wait_reconnected(client).await?,
            Err(e) => return Err(from_client(e)),
        }
    }
}

/// Like [`retry`], keeping the client error so callers can match on codes such as NONODE.
pub async fn retry_raw<T, F, Fut>(
    client: &Client,
    mut op: F,
) -> Result<std::result::Result<T, ClientError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, ClientError>>,
{
    loop {
        match op().await {
            Err(e) if is_connection_loss(&e) => wait_reconnected(client).await?,
            Err(ClientError::Closed) | Err(ClientError::Code(ErrorCode::SessionExpired)) => {
                return Err(RecipeError::SessionLost)
            }
            other => return Ok(other),
        }
    }
}

/// The sequence number a sequential create appended to `name` (its last ten digits).
pub fn sequence_of(name: &str) -> Option<u64> {
    let tail = name.get(name.len().checked_sub(10)?..)?;
    if tail.bytes().all(|b| b.is_ascii_digit()) {
        tail.parse().ok()
    } else {
        None
    }
}

/// The names among `children` that start with `prefix` (after the protection tag, if any) and
/// carry a sequence number, ordered by it.
pub fn sorted_by_sequence(children: &[String], prefix: &str) -> Vec<String> {
    let mut v: Vec<(u64, String)> = children
        .iter()
        .filter(|c| strip_protection(c).starts_with(prefix))
        .filter_map(|c| sequence_of(c).map(|s| (s, c.clone())))
        .collect();
    v.sort();
    v.into_iter().map(|(_, c)| c).collect()
}

/// The tag that marks a node as made by one create call of one session: `_p_<session>-<nonce>-`.
/// After a CONNECTIONLOSS on a sequential create the recipe finds its node by this tag instead
/// of creating a second one (which, for a lock, would wait on itself forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection(String);

impl Protection {
    /// A fresh tag for one create by `client`'s session.
    pub fn new(client: &Client) -> Protection {
        Protection(format!(
            "_p_{:016x}-{:016x}-",
            client.session_id(),
            rand::random::<u64>()
        ))
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.0
    }

    /// The session id written in a protected name, if it is one.
    pub fn session_of(name: &str) -> Option<i64> {
        let rest = name.strip_prefix("_p_")?;
        let hex = rest.get(..16)?;
        u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
    }
}

/// `name` without its protection tag.
pub fn strip_protection(name: &str) -> &str {
    match name.strip_prefix("_p_") {
        // _p_ + 16 hex + '-' + 16 hex + '-'
        Some(rest) if rest.len() >= 34 && rest.as_bytes()[16] == b'-' => &rest[34..],
        _ => name,
    }
}

/// Creates a protected sequential (or plain) node `dir/<tag><prefix>` and returns its full
/// path and Stat, creating `dir` when missing. When the reply is lost to a CONNECTIONLOSS it
/// looks for the node by its tag once reconnected, and only creates again if there is none.
pub async fn create_protected(
    client: &Client,
    dir: &str,
    prefix: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<(String, Stat)> {
    let tag = Protection::new(client);
    let path = join(dir, &format!("{}{prefix}", tag.tag()));
    loop {
        match client.create(&path, data, open_acl(), mode).await {
            Ok(r) => return Ok(r),
            Err(ClientError::Code(ErrorCode::NoNode)) => ensure_path(client, dir).await?,
            Err(e) if is_connection_loss(&e) => {
                wait_reconnected(client).await?;
                if let Some(found) = find_protected(client, dir, &tag).await? {
                    return Ok(found);
                }
            }
            Err(e) => return Err(from_client(e)),
        }
    }
}

/// The node of `dir` carrying `tag`, with its Stat, if one exists.
pub async fn find_protected(
    client: &Client,
    dir: &str,
    tag: &Protection,
) -> Result<Option<(String, Stat)>> {
    let children = match retry_raw(client, || client.list_children(dir)).await? {
        Ok(c) => c,
        Err(ClientError::Code(ErrorCode::NoNode)) => return Ok(None),
        Err(e) => return Err(from_client(e)),
    };
    for c in children {
        if c.starts_with(tag.tag()) {
            let path = join(dir, &c);
            if let Some(stat) = retry(client, || client.exists(&path)).await? {
                return Ok(Some((path, stat)));
            }
        }
    }
    Ok(None)
}

/// Deletes a node, retrying across reconnects; a node already gone is fine.
pub async fn delete_quietly(client: &Client, path: &str) -> Result<()> {
    match retry_raw(client, || client.delete(path, -1)).await? {
        Ok(()) | Err(ClientError::Code(ErrorCode::NoNode)) => Ok(()),
        Err(e) => Err(from_client(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_and_protection() {
        assert_eq!(sequence_of("lock-0000000042"), Some(42));
        assert_eq!(sequence_of("lock-00000042"), None);
        assert_eq!(sequence_of("x"), None);
        let name = "_p_00000000000000ff-0123456789abcdef-lock-0000000007";
        assert_eq!(strip_protection(name), "lock-0000000007");
        assert_eq!(Protection::session_of(name), Some(255));
        assert_eq!(strip_protection("lock-0000000001"), "lock-0000000001");
        let kids: Vec<String> = vec![
            "_p_0000000000000001-0000000000000000-lock-0000000003".into(),
            "lock-0000000001".into(),
            "other-0000000000".into(),
            "lock-0000000002".into(),
        ];
        let sorted = sorted_by_sequence(&kids, "lock-");
        assert_eq!(sorted.len(), 3);
        assert!(sorted[0].ends_with("01") && sorted[2].ends_with("03"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(join("/", "a"), "/a");
    }
}

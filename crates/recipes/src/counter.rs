//! An atomic counter by compare-and-set on the node's version (Curator's
//! `DistributedAtomicLong` in its optimistic mode).
//!
//! Every change reads the node (value and version) and writes the new value *at that
//! version*; if another writer got in between the server answers BADVERSION and the change is
//! retried on the fresh value. So concurrent [`Counter::add`]s never lose an update.
//!
//! The data is the value in decimal (readable with any ZooKeeper tool), followed on a second
//! line by the nonces of the last few writes. Those make a write whose reply was lost
//! (CONNECTIONLOSS) decidable: after the reconnect the counter looks for its nonce, and neither
//! applies the change twice nor drops it. If more than [`HISTORY`] other writes happened during
//! the disconnection the outcome is unknowable and the call fails with the client's
//! CONNECTIONLOSS error (see [`RecipeError::is_connection_loss`]).
//!
//! # Connection loss and session loss
//!
//! - **Suspended**: calls wait for the reconnect and carry on (see above for a lost reply).
//! - **Lost**: the counter (a persistent node) is unaffected; calls fail with
//!   [`RecipeError::SessionLost`]. A write sent just before may or may not have been applied.
//!
//! # Example
//!
//! ```no_run
//! # use std::time::Duration;
//! # use paddock_client::Client;
//! use paddock_recipes::Counter;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("127.0.0.1:2181", Duration::from_secs(10)).await?;
//! let hits = Counter::new(&client, "/app/counters/hits");
//! let now = hits.increment().await?; // never loses a concurrent update
//!
//! // A change of your own, only if nobody wrote in between:
//! let read = hits.get_versioned().await?;
//! if !hits.try_set(read.value * 2, &read).await? {
//!     println!("someone else wrote first; read again");
//! }
//!
//! match hits.add(10).await {
//!     Ok(v) => println!("{now} -> {v}"),
//!     // Too many writes during a disconnection to tell whether ours was applied.
//!     Err(e) if e.is_connection_loss() => println!("outcome unknown: {e}"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```

use crate::error::{from_client, RecipeError, Result};
use crate::nodes::{ensure_path, is_connection_loss, parent, retry_raw, wait_reconnected};
use paddock_client::{open_acl, Client, CreateMode, Error as ClientError, ErrorCode};

/// How many write nonces the node keeps to resolve lost replies.
pub const HISTORY: usize = 8;

/// The counter's value and the node version it was read at: what [`Counter::try_set`]
/// compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: i64,
    /// The node's version; -1 when the node does not exist yet (value 0).
    pub version: i32,
    /// The write nonces read with it (carried into the next write).
    nonces: Vec<u64>,
}

/// A counter at one path. A missing node counts as 0 and is created by the first write.
#[derive(Debug, Clone)]
pub struct Counter {
    client: Client,
    path: String,
}

struct Content {
    value: i64,
    nonces: Vec<u64>,
}

fn decode(path: &str, data: &[u8]) -> Result<Content> {
    let corrupt = |why: &str| RecipeError::Corrupt {
        path: path.to_string(),
        why: why.to_string(),
    };
    let text = std::str::from_utf8(data).map_err(|_| corrupt("not UTF-8"))?;
    let (value, rest) = text.split_once('\n').unwrap_or((text, ""));
    let value = if value.trim().is_empty() {
        0
    } else {
        value.trim().parse().map_err(|_| corrupt("not a number"))?
    };
    let nonces = rest
        .split_whitespace()
        .filter_map(|n| u64::from_str_radix(n, 16).ok())
        .collect();
    Ok(Content { value, nonces })
}

fn encode(value: i64, nonces: &[u64]) -> Vec<u8> {
    let list: Vec<String> = nonces.iter().map(|n| format!("{n:016x}")).collect();
    format!("{value}\n{}", list.join(" ")).into_bytes()
}

impl Counter {
    /// The counter at `path`.
    pub fn new(client: &Client, path: &str) -> Counter {
        Counter {
            client: client.clone(),
            path: path.to_string(),
        }
    }

    async fn read(&self) -> Result<(Content, i32)> {
        let c = &self.client;
        match retry_raw(c, || c.get_data(&self.path)).await? {
            Ok((data, stat)) => Ok((decode(&self.path, &data)?, stat.version)),
            Err(ClientError::Code(ErrorCode::NoNode)) => Ok((
                Content {
                    value: 0,
                    nonces: Vec::new(),
                },
                -1,
            )),
            Err(e) => Err(from_client(e)),
        }
    }

    /// The value and the version it was read at.
    pub async fn get_versioned(&self) -> Result<Versioned> {
        let (content, version) = self.read().await?;
        Ok(Versioned {
            value: content.value,
            version,
            nonces: content.nonces,
        })
    }

    /// The value now.
    pub async fn get(&self) -> Result<i64> {
        Ok(self.get_versioned().await?.value)
    }

    /// Writes `value` if the node is still as `read` (by [`Counter::get_versioned`]) found it.
    /// True if written, false if another write came first.
    pub async fn try_set(&self, value: i64, read: &Versioned) -> Result<bool> {
        self.write(value, read.version, read.nonces.clone()).await
    }

    /// Sets `value` if the counter holds `expected`; true if set.
    pub async fn compare_and_set(&self, expected: i64, value: i64) -> Result<bool> {
        loop {
            let (content, version) = self.read().await?;
            if content.value != expected {
                return Ok(false);
            }
            if self.write(value, version, content.nonces).await? {
                return Ok(true);
            }
        }
    }

    /// Sets the value whatever it was.
    pub async fn set(&self, value: i64) -> Result<()> {
        self.update(|_| value).await.map(|_| ())
    }

    /// Adds `delta` (wrapping) and returns the new value.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        self.update(|v| v.wrapping_add(delta)).await
    }

    /// Adds one and returns the new value.
    pub async fn increment(&self) -> Result<i64> {
        self.add(1).await
    }

    /// Subtracts one and returns the new value.
    pub async fn decrement(&self) -> Result<i64> {
        self.add(-1).await
    }

    /// Applies `f` to the value by compare-and-set until it sticks; returns the value written.
    pub async fn update(&self, f: impl Fn(i64) -> i64) -> Result<i64> {
        loop {
            let (content, version) = self.read().await?;
            let next = f(content.value);
            if self.write(next, version, content.nonces).await? {
                return Ok(next);
            }
        }
    }

    /// One compare-and-set: writes `value` at `version` (create when -1). False when another
    /// write came first. A lost reply is resolved by looking for this write's nonce.
    async fn write(&self, value: i64, version: i32, mut nonces: Vec<u64>) -> Result<bool> {
        let c = &self.client;
        let nonce = rand::random::<u64>();
        nonces.push(nonce);
        if nonces.len() > HISTORY {
            nonces.drain(..nonces.len() - HISTORY);
        }
        let data = encode(value, &nonces);
        loop {
            let sent = if version < 0 {
                c.create(&self.path, &data, open_acl(), CreateMode::Persistent)
                    .await
                    .map(|_| ())
            } else {
                c.set_data(&self.path, &data, version).await.map(|_| ())
            };
            match sent {
                Ok(()) => return Ok(true),
                Err(ClientError::Code(ErrorCode::BadVersion | ErrorCode::NodeExists)) => {
                    return Ok(false)
                }
                Err(ClientError::Code(ErrorCode::NoNode)) if version < 0 => {
                    if let Some(p) = parent(&self.path) {
                        ensure_path(c, p).await?;
                    }
                }
                // Deleted since the read: start over from a missing node.
                Err(ClientError::Code(ErrorCode::NoNode)) => return Ok(false),
                Err(e) if is_connection_loss(&e) => {
                    wait_reconnected(c).await?;
                    let (now, now_version) = self.read().await?;
                    if now.nonces.contains(&nonce) {
                        return Ok(true);
                    }
                    if now_version == version {
                        continue; // not applied, and nobody else wrote: send it again
                    }
                    // Our write would have made version `version + 1` (0 for a create, -1):
                    // its nonce is still in the history while at most HISTORY writes
                    // (counting ours) came after the version we read.
                    if now_version - version > HISTORY as i32 {
                        return Err(RecipeError::Client(e));
                    }
                    return Ok(false);
                }
                Err(e) => return Err(from_client(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips() {
        let c = decode("/c", &encode(-42, &[1, 0xabc])).unwrap();
        assert_eq!(c.value, -42);
        assert_eq!(c.nonces, vec![1, 0xabc]);
        assert_eq!(decode("/c", b"").unwrap().value, 0);
        assert_eq!(decode("/c", b"17").unwrap().value, 17);
        assert!(decode("/c", b"x").is_err());
    }
}

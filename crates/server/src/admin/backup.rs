//! The AdminServer's `snapshot` command, as ZooKeeper 3.9 has it: a backup of the whole tree
//! in ZooKeeper's snapshot format, streamed to the caller, with its zxid in the `last_zxid`
//! header. Only for an identity with every permission on `/` (a backup holds every znode,
//! whatever its ACL), at most once per `admin.rateLimiterIntervalInMS`, and not at all with
//! `admin.snapshot.enabled=false`.
//!
//! ZooKeeper's is a fuzzy snapshot. Paddock's is exact at its zxid: the tree is walked off the
//! core a chunk at a time while writes go on, the core hands over every transaction it applies
//! meanwhile, and replaying those over the walk gives the tree as it was at the zxid the walk
//! ended on (the same repair a fuzzy snapshot gets from the log at start-up). So a backup
//! restores into exactly one state the ensemble was in.

use super::http::{ask, json, respond, Body};
use crate::msg::{BackupStart, CoreMsg};
use crate::storage::zk_snapshot;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use paddock_tree::snapshot::SnapshotLoader;
use paddock_tree::DataTree;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// One command per interval, as ZooKeeper's RateLimiter(1, interval).
#[derive(Debug, Default)]
pub struct Limiter {
    last: Mutex<Option<Instant>>,
}

impl Limiter {
    pub fn allow(&self, interval: Duration) -> bool {
        let mut last = self.last.lock();
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < interval) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[derive(Debug, thiserror::Error)]
enum BackupError {
    #[error("the server's tree was replaced during the backup (it synced from a new leader); take it again")]
    Replaced,
    #[error("the walk met {0} without its parent; take the backup again")]
    Walk(String),
    #[error(
        "the transactions applied during the walk do not reach its end (0x{have:x} of 0x{want:x})"
    )]
    Short { have: i64, want: i64 },
    #[error("encoding the snapshot: {0}")]
    Encode(#[from] std::io::Error),
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, &json!({ "command": "snapshot", "error": msg }))
}

/// `GET /commands/snapshot[?streaming=false]`.
pub(super) async fn snapshot(
    args: &HashMap<String, String>,
    auth: paddock_tree::AuthInfo,
    core: &tokio::sync::mpsc::Sender<CoreMsg>,
    cfg: &crate::config::Config,
    limiter: &Limiter,
) -> Response<Body> {
    if !cfg.admin.snapshot_enabled {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the snapshot command is off (admin.snapshot.enabled=false)",
        );
    }
    let start = match ask(core, |reply| CoreMsg::Backup { auth, reply }).await {
        None => {
            return respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the server is stopping\n",
            )
        }
        Some(Err(reply)) => {
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::FORBIDDEN);
            return json(status, &serde_json::Value::Object(reply.body));
        }
        Some(Ok(start)) => start,
    };
    // After the identity is checked, as ZooKeeper's servlet checks it before the command.
    if !limiter.allow(Duration::from_millis(cfg.admin.rate_limit_ms)) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "one snapshot per admin.rateLimiterIntervalInMS",
        );
    }
    // ZooKeeper's Boolean.parseBoolean: "true" in any case is true, anything else false.
    let streaming = args
        .get("streaming")
        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let began = Instant::now();
    let built = tokio::task::spawn_blocking(move || build(start)).await;
    let (zxid, nodes, replayed, bytes) = match built {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            warn!(error = %e, "backup failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    info!(
        zxid = format_args!("0x{zxid:x}"),
        nodes,
        replayed,
        bytes = bytes.len(),
        ms = began.elapsed().as_millis() as u64,
        "backup taken"
    );
    let size = bytes.len();
    let mut r = if streaming {
        respond(StatusCode::OK, "application/octet-stream", bytes)
    } else {
        json(
            StatusCode::OK,
            &json!({ "command": "snapshot", "error": null }),
        )
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("0x{zxid:x}")) {
        h.insert("last_zxid", v);
    }
    h.insert("snapshot_size", HeaderValue::from(size));
    r
}

/// Walks the tree, replays what was applied meanwhile, and encodes the result: its zxid, its
/// node count, the transactions replayed and the snapshot's bytes.
fn build(start: BackupStart) -> Result<(i64, usize, usize, Vec<u8>), BackupError> {
    let (tree, replayed) = exact_tree(start)?;
    let bytes = zk_snapshot::encode(&tree, Vec::new())?;
    Ok((tree.last_zxid(), tree.node_count(), replayed, bytes))
}

/// The tree exact at the zxid the walk ended on, and how many transactions were replayed
/// over the walk.
fn exact_tree(start: BackupStart) -> Result<(DataTree, usize), BackupError> {
    let mut loader = SnapshotLoader::new();
    for &(id, timeout) in &start.sessions {
        loader.session(id, timeout);
    }
    let mut cursor = start.cursor;
    let mut chunk = Vec::with_capacity(crate::core::WALK_CHUNK);
    let end = loop {
        chunk.clear();
        let (more, last) = start
            .tree
            .read_chunk(start.generation, |t| {
                let more = t.snapshot_chunk(&mut cursor, crate::core::WALK_CHUNK, &mut chunk);
                (more, t.last_zxid())
            })
            .ok_or(BackupError::Replaced)?;
        for n in &chunk {
            loader
                .node(n)
                .map_err(|_| BackupError::Walk(n.path.clone()))?;
        }
        if !more {
            break last;
        }
    };
    let mut tree = loader.finish(start.zxid);
    let mut replayed = 0;
    // Every transaction applied by the time the walk's last chunk was read is in the channel
    // already: the core sends each as it applies it, and the walk reads between its rounds.
    for t in start.txns.try_iter() {
        if t.zxid > end {
            break;
        }
        // Replay tolerates what the fuzzy walk already saw.
        let _ = tree.apply(&t);
        replayed += 1;
    }
    if tree.last_zxid() != end {
        return Err(BackupError::Short {
            have: tree.last_zxid(),
            want: end,
        });
    }
    Ok((tree, replayed))
}

//! The AdminServer's `restore` (ZooKeeper 3.9's `POST /commands/restore`, body: a snapshot as
//! the `snapshot` command streams it, or any ZooKeeper snapshot file, compressed or not).
//! Permission-checked (ALL on `/`), rate-limited and switched by `admin.restore.enabled` as
//! in ZooKeeper; the tree is then proposed by the leader to the whole ensemble
//! (core/restore.rs). The body is read and loaded off the core.

use super::backup::Limiter;
use super::http::{ask, json, Body};
use crate::msg::CoreMsg;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use paddock_tree::RestoreImage;
use serde_json::json;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The largest body taken: a restore is one transaction, which the log holds up to
/// `codec::MAX_TXN_BYTES`, and a snapshot file is about as large as its image.
pub(super) const MAX_BODY: usize = 2 * paddock_tree::codec::MAX_TXN_BYTES;

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, &json!({ "command": "restore", "error": msg }))
}

/// Refused before the body is read: switched off, a caller without the right, or a server
/// that takes no restore now (not the leader, one already on its way).
pub(super) async fn precheck(
    auth: &paddock_tree::AuthInfo,
    core: &tokio::sync::mpsc::Sender<CoreMsg>,
    cfg: &crate::config::Config,
    limiter: &Limiter,
) -> Option<Response<Body>> {
    if !cfg.admin.restore_enabled {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the restore command is off (admin.restore.enabled=false)",
        ));
    }
    let auth = auth.clone();
    match ask(core, |reply| CoreMsg::MayRestore { auth, reply }).await {
        None => {
            return Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is stopping",
            ))
        }
        Some(Some(r)) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
            return Some(json(status, &serde_json::Value::Object(r.body)));
        }
        Some(None) => {}
    }
    if !limiter.allow(Duration::from_millis(cfg.admin.rate_limit_ms)) {
        return Some(error(
            StatusCode::TOO_MANY_REQUESTS,
            "one restore per admin.rateLimiterIntervalInMS",
        ));
    }
    None
}

/// Reads a refused request's body and drops it, up to `MAX_BODY` and for at most 30 s.
pub(super) async fn drain(mut body: hyper::body::Incoming) {
    use http_body_util::BodyExt;
    let mut left = MAX_BODY;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        let n = frame.data_ref().map_or(0, |d| d.len());
        if n >= left {
            return;
        }
        left -= n;
    }
}

/// Loads the backup and hands it to the core to propose; answers once it is applied on this
/// server (the leader), with the zxid it was applied at.
pub(super) async fn restore(
    body: Bytes,
    auth: paddock_tree::AuthInfo,
    core: &tokio::sync::mpsc::Sender<CoreMsg>,
) -> Response<Body> {
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "no backup in the request body (POST the file `snapshot` gave)",
        );
    }
    let began = Instant::now();
    let loaded = tokio::task::spawn_blocking(move || {
        // The body's buffer is taken over, not copied, when nothing else holds it.
        let tree = crate::storage::zk_import::load_backup(Vec::from(body))?;
        let image = RestoreImage::of_tree(&tree);
        let len = paddock_tree::codec::encoded_restore_len(&image);
        Ok::<_, crate::storage::zk_import::ImportError>((tree, image, len))
    })
    .await;
    let (tree, image, len) = match loaded {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            warn!(error = %e, "a restore's backup does not load");
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the backup does not load: {e}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if len > paddock_tree::codec::MAX_TXN_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the backup's tree takes {len} bytes as one transaction, more than the {} an \
                 online restore can carry: stop the servers and use `paddock restore FILE --to \
                 DATADIR` on each (docs/migration.md)",
                paddock_tree::codec::MAX_TXN_BYTES
            ),
        );
    }
    info!(
        backup_zxid = format_args!("0x{:x}", image.zxid),
        nodes = image.nodes.len(),
        bytes = len,
        ms = began.elapsed().as_millis() as u64,
        "a restore's backup loaded"
    );
    let (image, base) = (Box::new(image), Box::new(crate::msg::LoadedTree(tree)));
    match ask(core, |reply| CoreMsg::Restore {
        auth,
        image,
        base,
        reply,
    })
    .await
    {
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server stopped before the restore was applied here; compare `hash` with the \
             backup before trying again",
        ),
        Some(r) => json(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            &serde_json::Value::Object(r.body),
        ),
    }
}

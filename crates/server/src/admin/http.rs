//! HTTP for the AdminServer and the Prometheus endpoint (hyper, HTTP/1.1): listeners, TLS
//! (HTTPS with the `ssl.quorum.*` keystore, as ZooKeeper's Jetty server; optionally on the
//! same port as HTTP), the caller's identities, and routing to the core.

use crate::config::{ClientAuth, Config};
use crate::msg::{AdminRequest, CoreMsg};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use paddock_proto::Id;
use paddock_tree::AuthInfo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

pub(super) type Body = Full<Bytes>;

/// How a listener takes connections.
#[derive(Clone)]
enum Scheme {
    Http,
    Https(tokio_rustls::TlsAcceptor),
    /// Either, told apart by the first byte.
    Both(tokio_rustls::TlsAcceptor),
}

/// What a request is served with.
struct Ctx {
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreMsg>,
    /// The Prometheus endpoint rather than the AdminServer.
    metrics: bool,
    /// Where plain HTTP under portUnification is counted (`insecure_admin_count`).
    counts: Option<Arc<crate::metrics::Metrics>>,
    /// The `snapshot` command's rate limit, and the `restore` command's.
    backups: super::backup::Limiter,
    restores: super::backup::Limiter,
}

/// Errors that keep the AdminServer from starting (the server goes on without it, as
/// ZooKeeper's does).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {err}")]
    Bind {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("HTTPS with the ssl.quorum.* keystore: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Starts the AdminServer if `admin.enableServer`; a port that is taken or a keystore that
/// does not load is logged and the server goes on without it (as ZooKeeper's).
pub async fn start_admin(
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreMsg>,
    counts: Arc<crate::metrics::Metrics>,
) {
    if !cfg.admin.enabled {
        return;
    }
    let a = &cfg.admin;
    let addr = SocketAddr::new(a.address, a.port);
    let scheme = match admin_scheme(&cfg) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "the AdminServer is not started");
            return;
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(err) => {
            warn!(error = %HttpError::Bind { addr, err }, "the AdminServer is not started (admin.serverPort, admin.enableServer=false)");
            return;
        }
    };
    info!(
        %addr,
        https = !matches!(scheme, Scheme::Http),
        url = %a.command_url,
        "AdminServer listening"
    );
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        core,
        metrics: false,
        counts: Some(counts),
        backups: Default::default(),
        restores: Default::default(),
    });
    tokio::spawn(accept_loop(listener, scheme, ctx));
}

/// Starts the Prometheus endpoint when `metricsProvider.className` names it. Unlike the
/// AdminServer, a port that cannot be had stops the server: ZooKeeper fails to start then.
pub async fn start_metrics(
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreMsg>,
) -> Result<Option<SocketAddr>, HttpError> {
    if !cfg.metrics.prometheus {
        return Ok(None);
    }
    let addr = SocketAddr::new(cfg.metrics.host, cfg.metrics.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| HttpError::Bind { addr, err })?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(addr = %bound, "Prometheus metrics at /metrics");
    let ctx = Arc::new(Ctx {
        cfg,
        core,
        metrics: true,
        counts: None,
        backups: Default::default(),
        restores: Default::default(),
    });
    tokio::spawn(accept_loop(listener, Scheme::Http, ctx));
    Ok(Some(bound))
}

fn admin_scheme(cfg: &Config) -> Result<Scheme, HttpError> {
    let a = &cfg.admin;
    if !a.force_https && !a.port_unification {
        return Ok(Scheme::Http);
    }
    let mut keys = cfg.quorum_tls.keys.clone();
    // A browser shows no certificate: one is asked for (an x509 identity) when there is a
    // truststore to check it with, never required.
    keys.client_auth = if keys.trust_store.location.is_some() {
        ClientAuth::Want
    } else {
        ClientAuth::None
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&keys)?);
    Ok(if a.force_https {
        Scheme::Https(acceptor)
    } else {
        Scheme::Both(acceptor)
    })
}

async fn accept_loop(listener: TcpListener, scheme: Scheme, ctx: Arc<Ctx>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (scheme, ctx) = (scheme.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, scheme, ctx).await {
                debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    scheme: Scheme,
    ctx: Arc<Ctx>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = stream.set_nodelay(true);
    let tls = match scheme {
        Scheme::Http => None,
        Scheme::Https(a) => Some(a),
        Scheme::Both(a) => {
            let mut first = [0u8; 1];
            let n = tokio::time::timeout(idle(&ctx), stream.peek(&mut first)).await??;
            let tls = n == 1 && crate::tls::starts_tls(first[0]);
            if let (false, Some(m)) = (tls, &ctx.counts) {
                m.off_core
                    .insecure_admin_count
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tls.then_some(a)
        }
    };
    match tls {
        None => serve(stream, peer, None, ctx).await,
        Some(a) => {
            let s = tokio::time::timeout(idle(&ctx), a.accept(stream)).await??;
            let subject = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::x509::subject_rfc2253(c));
            serve(s, peer, subject, ctx).await
        }
    }
}

fn idle(ctx: &Ctx) -> Duration {
    Duration::from_millis(ctx.cfg.admin.idle_timeout_ms.max(1))
}

async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    subject: Option<String>,
    ctx: Arc<Ctx>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let subject = Arc::new(subject);
    let idle = idle(&ctx);
    let service = hyper::service::service_fn(move |req| {
        let (ctx, subject) = (ctx.clone(), subject.clone());
        async move { Ok::<_, std::convert::Infallible>(route(req, peer, &subject, &ctx).await) }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}

pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    subject: &Option<String>,
    ctx: &Ctx,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let console = !ctx.metrics
        && (path == "/"
            || path == "/index.html"
            || path == "/favicon.ico"
            || path.starts_with("/console.")
            || path.starts_with("/api/"));
    let write = console && path == "/api/write";
    let base = ctx.cfg.admin.command_url.as_str();
    // ZooKeeper 3.9's one POST command.
    let restore = !console
        && !ctx.metrics
        && path
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(super::find)
            .is_some_and(|c| c.names[0] == "restore");
    if restore {
        if req.method() != Method::POST {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "restore takes a POST with the backup as its body\n",
            );
        }
        let auth = identities(&req, peer, subject, &ctx.cfg);
        let refused = super::restore::precheck(&auth, &ctx.core, &ctx.cfg, &ctx.restores).await;
        if let Some(r) = refused {
            // Read to its end, unkept, before the answer: a client still sending its body
            // when the connection closes sees a broken pipe instead of why it was refused.
            super::restore::drain(req.into_body()).await;
            return r;
        }
        let body = match http_body_util::Limited::new(req.into_body(), super::restore::MAX_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain",
                    format!("the backup could not be read whole: {e}\n"),
                )
            }
        };
        return super::restore::restore(body, auth, &ctx.core).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD && !write {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET is served\n",
        );
    }
    if console {
        let auth = identities(&req, peer, subject, &ctx.cfg);
        let digest = digest_credentials(&req).map(str::to_owned);
        if let Some(r) = super::console::route(req, auth, digest, &ctx.cfg, &ctx.core).await {
            return r;
        }
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    }
    if ctx.metrics {
        return if path == "/metrics" {
            scrape(ctx).await
        } else {
            respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                "metrics are at /metrics\n",
            )
        };
    }
    if path == base || path == format!("{base}/") {
        return command_index(base);
    }
    let Some(name) = path
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|n| !n.is_empty() && !n.contains('/'))
    else {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("not found: the commands are under {base}\n"),
        );
    };
    let args = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let auth = identities(&req, peer, subject, &ctx.cfg);
    run_command(name, args, auth, ctx).await
}

/// The links ZooKeeper's AdminServer lists at its command URL.
fn command_index(base: &str) -> Response<Body> {
    let mut names: Vec<&str> = super::COMMANDS.iter().map(|c| c.names[0]).collect();
    names.sort_unstable();
    let html: String = names
        .iter()
        .map(|n| format!("<a href=\"{base}/{n}\">{n}</a>\n<br/>\n"))
        .collect();
    respond(StatusCode::OK, "text/html", html)
}

/// Who calls: the address (a trusted proxy's `X-Forwarded-For` client, otherwise the peer's
/// own: a header anyone can send must not pick the `ip` identity, CVE-2024-51504), the
/// `Authorization: digest user:password` identity, and a TLS client certificate's subject.
fn identities(
    req: &Request<Incoming>,
    peer: SocketAddr,
    subject: &Option<String>,
    cfg: &Config,
) -> AuthInfo {
    let mut ip = peer.ip();
    if cfg.admin.trusted_proxies.contains(&ip) {
        if let Some(client) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            ip = client;
        }
    }
    let mut auth = AuthInfo::for_ip(&ip.to_string());
    if let Some(cred) = digest_credentials(req) {
        if let Some(id) = paddock_tree::digest_id(cred) {
            if cfg.is_super_digest(&id) {
                auth.add(Id::new("super", ""));
            }
            auth.add(Id::new("digest", id));
        }
    }
    if let Some(dn) = subject {
        if cfg.is_super_x509(dn) {
            auth.add(Id::new("super", dn.as_str()));
        }
        auth.add(Id::new("x509", dn.as_str()));
    }
    auth
}

/// The `user:password` of an `Authorization: digest user:password` header.
fn digest_credentials(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("digest").then(|| rest.trim())
        })
}

pub(super) async fn ask<T>(
    core: &mpsc::Sender<CoreMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> CoreMsg,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    core.send(msg(tx)).await.ok()?;
    rx.await.ok()
}

async fn run_command(
    name: &str,
    args: std::collections::HashMap<String, String>,
    auth: AuthInfo,
    ctx: &Ctx,
) -> Response<Body> {
    let Some(spec) = super::find(name) else {
        // ZooKeeper answers an unknown command with 200 and the error in the body.
        let body = serde_json::json!({
            "command": name,
            "error": format!("Unknown command: {name}"),
        });
        return json(StatusCode::OK, &body);
    };
    let command = spec.names[0];
    if command == "snapshot" {
        return super::backup::snapshot(&args, auth, &ctx.core, &ctx.cfg, &ctx.backups).await;
    }
    let req = AdminRequest {
        command,
        args,
        auth,
        needs_admin: spec.sensitive,
        needs_server: spec.needs_server,
    };
    let Some(reply) = ask(&ctx.core, |reply| CoreMsg::Admin { req, reply }).await else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the server is stopping\n",
        );
    };
    let mut body = reply.body;
    if reply.status == 200 && body.get("error").is_some_and(|e| e.is_null()) {
        add_disk_figures(command, &mut body, &ctx.cfg).await;
    }
    json(
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        &serde_json::Value::Object(body),
    )
}

/// The figures that read the disk, taken off the async threads: directory sizes (`dirs`,
/// `server_stats`, `stats`) and the last snapshot.
async fn add_disk_figures(
    command: &str,
    body: &mut serde_json::Map<String, serde_json::Value>,
    cfg: &Config,
) {
    use serde_json::json;
    let (data, logs) = (cfg.data_dir.clone(), cfg.data_log_dir.clone());
    match command {
        "dirs" | "server_stats" | "stats" => {
            let sizes = tokio::task::spawn_blocking(move || {
                (
                    crate::fourlw::dir_size(&data),
                    crate::fourlw::dir_size(&logs),
                )
            })
            .await
            .unwrap_or((0, 0));
            if command == "dirs" {
                body.insert("datadir_size".into(), json!(sizes.0));
                body.insert("logdir_size".into(), json!(sizes.1));
            } else if let Some(s) = body.get_mut("server_stats").and_then(|s| s.as_object_mut()) {
                s.insert("data_dir_size".into(), json!(sizes.0));
                s.insert("log_dir_size".into(), json!(sizes.1));
            }
        }
        "last_snapshot" => {
            let last = tokio::task::spawn_blocking(move || last_snapshot(&data))
                .await
                .ok()
                .flatten();
            let (zxid, at) = last.unwrap_or((-1, -1));
            body.insert("zxid".into(), json!(format!("{:x}", zxid)));
            body.insert("timestamp".into(), json!(at));
        }
        _ => {}
    }
}

/// The newest snapshot's zxid and modification time (seconds since the epoch).
fn last_snapshot(data_dir: &std::path::Path) -> Option<(i64, i64)> {
    let fs = crate::storage::fs::real();
    let dir = crate::storage::snap_dir(data_dir);
    let (zxid, path) = crate::storage::list_by_zxid(&fs, &dir, "snap.")
        .ok()?
        .pop()?;
    let at = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    Some((zxid, at))
}

pub(super) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    respond(status, "application/json", text)
}

async fn scrape(ctx: &Ctx) -> Response<Body> {
    let Some(mut samples) = ask(&ctx.core, |reply| CoreMsg::Scrape { reply }).await else {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the server is stopping\n",
        );
    };
    if ctx.cfg.metrics.export_process_info {
        crate::metrics::process::samples(&mut samples);
    }
    respond(
        StatusCode::OK,
        crate::metrics::prometheus::CONTENT_TYPE,
        crate::metrics::prometheus::render(&samples),
    )
}

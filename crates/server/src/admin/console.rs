//! The web console, served by the AdminServer at `/`: one page (console/index.html, its
//! script and style, compiled into the binary), which reads the AdminServer's commands and
//! two endpoints of its own:
//!
//! - `GET /api/node?path=/x&offset=0&limit=100`: a znode's data, Stat, ACL, the caller's
//!   permissions on it and a page of its children (the core reads the tree; a million
//!   children cost one page, not the list);
//! - `POST /api/write` (JSON: `op` create, set, delete or setacl, `path`, `data`, `version`,
//!   `acl`): done through a real client session on this server's client port, authenticated
//!   with the caller's `Authorization: digest` credentials, or, for a viewer who showed a
//!   client certificate over HTTPS, with that certificate's `x509` identity (a one-time grant
//!   the core hands the session, `CoreMsg::ConsoleGrant`: the console holds no key of the
//!   viewer's), so ACLs, quotas, auditing and replication apply exactly as for any client.
//!   Without either it is refused: the console is read-only until the viewer logs in.

use crate::config::Config;
use crate::msg::{BrowseRequest, CoreMsg};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use paddock_client::{Acl, Client, CreateMode, Id};
use paddock_tree::AuthInfo;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
const ICON: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>\
<rect width='16' height='16' rx='3' fill='#2f6f9f'/></svg>";

/// A write's body is a znode's data and a little more.
const MAX_BODY: usize = 2 << 20;

/// Serves the console's files and endpoints; `None` for any other path.
pub async fn route(
    req: Request<Incoming>,
    auth: AuthInfo,
    digest: Option<String>,
    cfg: &Config,
    core: &mpsc::Sender<CoreMsg>,
) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path().to_owned();
    let file =
        |ct: &'static str, body: &'static str| Some(super::http::respond(StatusCode::OK, ct, body));
    match path.as_str() {
        "/" | "/index.html" => file("text/html; charset=utf-8", INDEX),
        "/console.js" => file("text/javascript; charset=utf-8", SCRIPT),
        "/console.css" => file("text/css; charset=utf-8", STYLE),
        "/favicon.ico" => file("image/svg+xml", ICON),
        "/api/node" => Some(node(&req, auth, core).await),
        "/api/write" => Some(write(req, auth, digest, cfg, core).await),
        _ => None,
    }
}

fn reply(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    super::http::json(status, &v)
}

async fn node(
    req: &Request<Incoming>,
    auth: AuthInfo,
    core: &mpsc::Sender<CoreMsg>,
) -> Response<Full<Bytes>> {
    let q: std::collections::HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let browse = BrowseRequest {
        path: q.get("path").cloned().unwrap_or_else(|| "/".into()),
        offset: num("offset", 0),
        limit: num("limit", 100),
        auth,
    };
    match super::http::ask(core, |reply| CoreMsg::Browse { req: browse, reply }).await {
        Some(r) => reply(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            Value::Object(r.body),
        ),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "stopping"}),
        ),
    }
}

/// Why a console write was not done.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("log in to edit: the console is read-only without credentials")]
    NotLoggedIn,
    #[error("only POST writes")]
    Method,
    #[error("the request body: {0}")]
    Body(String),
    #[error("{0}")]
    Bad(String),
    #[error("the console edits through the plaintext client port, and this server has none")]
    NoClientPort,
    #[error("{0}")]
    Client(#[from] paddock_client::Error),
    #[error("the server is stopping")]
    CoreGone,
}

impl WriteError {
    fn status(&self) -> StatusCode {
        use paddock_client::{Error, ErrorCode};
        match self {
            WriteError::NotLoggedIn => StatusCode::UNAUTHORIZED,
            WriteError::Method => StatusCode::METHOD_NOT_ALLOWED,
            WriteError::Body(_) | WriteError::Bad(_) => StatusCode::BAD_REQUEST,
            WriteError::NoClientPort | WriteError::CoreGone => StatusCode::SERVICE_UNAVAILABLE,
            WriteError::Client(Error::Code(ErrorCode::NoAuth | ErrorCode::AuthFailed)) => {
                StatusCode::FORBIDDEN
            }
            WriteError::Client(Error::Code(ErrorCode::NoNode)) => StatusCode::NOT_FOUND,
            WriteError::Client(Error::Code(
                ErrorCode::NodeExists | ErrorCode::BadVersion | ErrorCode::NotEmpty,
            )) => StatusCode::CONFLICT,
            WriteError::Client(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

async fn write(
    req: Request<Incoming>,
    auth: AuthInfo,
    digest: Option<String>,
    cfg: &Config,
    core: &mpsc::Sender<CoreMsg>,
) -> Response<Full<Bytes>> {
    match do_write(req, auth, digest, cfg, core).await {
        Ok(v) => reply(StatusCode::OK, v),
        Err(e) => reply(e.status(), json!({"error": e.to_string()})),
    }
}

/// Who the console's session acts as.
enum Login {
    Digest(String),
    /// A client certificate's subject.
    Certificate(String),
}

async fn do_write(
    req: Request<Incoming>,
    auth: AuthInfo,
    digest: Option<String>,
    cfg: &Config,
    core: &mpsc::Sender<CoreMsg>,
) -> Result<Value, WriteError> {
    if req.method() != hyper::Method::POST {
        return Err(WriteError::Method);
    }
    let login = match digest {
        Some(d) => Login::Digest(d),
        None => auth
            .ids
            .iter()
            .find(|i| i.scheme == "x509")
            .map(|i| Login::Certificate(i.id.clone()))
            .ok_or(WriteError::NotLoggedIn)?,
    };
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| WriteError::Body(e.to_string()))?
        .to_bytes();
    let w: Value = serde_json::from_slice(&body).map_err(|e| WriteError::Body(e.to_string()))?;
    let text = |k: &str| w.get(k).and_then(Value::as_str);
    let path = text("path").ok_or_else(|| WriteError::Bad("no path".into()))?;
    let version = w.get("version").and_then(Value::as_i64).unwrap_or(-1) as i32;
    let data = text("data").unwrap_or("").as_bytes().to_vec();
    if cfg.client_port == 0 {
        return Err(WriteError::NoClientPort);
    }
    let ip = match cfg.client_port_address {
        ip if ip.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let addr = std::net::SocketAddr::new(ip, cfg.client_port).to_string();
    let client = Client::builder()
        .session_timeout(Duration::from_secs(10))
        .connect(&addr)
        .await?;
    let result = async {
        match &login {
            Login::Digest(credentials) => client.add_auth("digest", credentials.as_bytes())?,
            Login::Certificate(subject) => {
                let token = grant(core, subject).await?;
                client.add_auth(crate::core::CONSOLE_SCHEME, token.as_bytes())?;
            }
        }
        match text("op") {
            Some("create") => {
                let acl = match w.get("acl") {
                    Some(a) => parse_acl(a)?,
                    None => paddock_client::open_acl(),
                };
                let (p, _) = client
                    .create(path, &data, acl, CreateMode::Persistent)
                    .await?;
                Ok(json!({"path": p}))
            }
            Some("set") => {
                let st = client.set_data(path, &data, version).await?;
                Ok(json!({"path": path, "version": st.version}))
            }
            Some("delete") => {
                client.delete(path, version).await?;
                Ok(json!({"path": path}))
            }
            Some("setacl") => {
                let acl = parse_acl(w.get("acl").unwrap_or(&Value::Null))?;
                let st = client.set_acl(path, acl, version).await?;
                Ok(json!({"path": path, "aversion": st.aversion}))
            }
            other => Err(WriteError::Bad(format!(
                "op {other:?} is not create, set, delete or setacl"
            ))),
        }
    }
    .await;
    client.close().await;
    result
}

/// Asks the core for a one-time grant of `subject`'s x509 identity: the token to
/// authenticate the console's session with.
async fn grant(core: &mpsc::Sender<CoreMsg>, subject: &str) -> Result<String, WriteError> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let (reply, answer) = tokio::sync::oneshot::channel();
    core.send(CoreMsg::ConsoleGrant {
        token: token.clone(),
        subject: subject.to_owned(),
        reply,
    })
    .await
    .map_err(|_| WriteError::CoreGone)?;
    answer.await.map_err(|_| WriteError::CoreGone)?;
    Ok(token)
}

/// `[{"scheme": "digest", "id": "user:hash", "perms": "cdrwa"}, ...]`
fn parse_acl(v: &Value) -> Result<Vec<Acl>, WriteError> {
    let items = v
        .as_array()
        .ok_or_else(|| WriteError::Bad("acl must be a list".into()))?;
    let mut out = Vec::new();
    for it in items {
        let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or("");
        let mut perms = 0;
        for c in s("perms").chars() {
            perms |= paddock_proto::perms::from_letter(c)
                .ok_or_else(|| WriteError::Bad(format!("'{c}' is not a permission")))?;
        }
        out.push(Acl {
            perms,
            id: Id::new(s("scheme"), s("id")),
        });
    }
    if out.is_empty() {
        return Err(WriteError::Bad("an ACL needs an entry".into()));
    }
    Ok(out)
}

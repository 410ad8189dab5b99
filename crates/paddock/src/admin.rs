//! `paddock admin <command>`: runs an AdminServer command on each listed server and prints
//! the JSON it answers, or a table with `--table`.

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Where the AdminServers are and how to speak to them (`paddock admin`, `paddock backup`).
#[derive(clap::Args, Debug)]
pub(crate) struct Target {
    /// The AdminServers, host:port,... (admin.serverPort, 8080 by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub server: String,
    /// Authenticate as a digest user (user:password): ADMIN on / for the commands that need
    /// it, ALL on / for a backup.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub digest: Option<String>,
    /// Speak HTTPS (admin.forceHttps or admin.portUnification).
    #[arg(long)]
    pub https: bool,
    /// The CA certificates (PEM) that vouch for the servers' certificates, with --https.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<std::path::PathBuf>,
    /// The command URL (admin.commandURL).
    #[arg(long, default_value = "/commands")]
    pub url: String,
}

impl Target {
    /// The servers listed, and the TLS connector with --https.
    pub fn open(&self) -> Result<(Vec<String>, Option<tokio_rustls::TlsConnector>)> {
        let servers = crate::argv::servers(&self.server)?;
        let tls = if self.https {
            Some(tls_connector(self.cacert.as_deref())?)
        } else {
            None
        };
        Ok((servers, tls))
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "paddock admin",
    about = "Run an AdminServer command (ZooKeeper 3.8's names: mntr, srvr, stat, conf, cons, dump, ...) and print its JSON"
)]
struct Args {
    /// The command, by its name or short name; `paddock admin list` lists them.
    command: String,
    /// The command's arguments, as name=value (e.g. traceMask=0).
    args: Vec<String>,
    /// Print a table instead of JSON.
    #[arg(long)]
    table: bool,
    #[command(flatten)]
    target: Target,
    /// How long to wait for each server, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout: u64,
    /// transfer-leadership: the server to hand over to (without it: the best voter, or the
    /// server asked if it is a follower).
    #[arg(long)]
    to: Option<u64>,
}

pub fn main(args: &[String]) -> Result<()> {
    let a = Args::try_parse_from(
        std::iter::once("paddock admin".to_owned()).chain(crate::argv::normalise(args)),
    )
    .unwrap_or_else(|e| e.exit());
    let (servers, tls) = a.target.open()?;
    let command = if a.command == "list" {
        String::new()
    } else {
        a.command.clone()
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(to) = a.to {
        query.append_pair("to", &to.to_string());
    }
    for arg in &a.args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| anyhow!("'{arg}' is not name=value"))?;
        query.append_pair(k, v);
    }
    let query = query.finish();
    let path = match (command.is_empty(), query.is_empty()) {
        (true, _) => a.target.url.clone(),
        (false, true) => format!("{}/{command}", a.target.url),
        (false, false) => format!("{}/{command}?{query}", a.target.url),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_millis(a.timeout.max(1));
    let transfer = matches!(
        command.as_str(),
        "transfer_leadership" | "transfer-leadership" | "ydld"
    );
    let leader_before = if transfer {
        leader_of(&rt, &servers[0], &a, tls.clone())
    } else {
        None
    };
    // All servers at once: an ensemble's answers should describe one moment.
    let answers: Vec<(String, Result<(u16, String)>)> = rt.block_on(async {
        let asks: Vec<_> = servers
            .iter()
            .map(|s| {
                let (s, path, tls, digest) = (
                    s.clone(),
                    path.clone(),
                    tls.clone(),
                    a.target.digest.clone(),
                );
                tokio::spawn(async move {
                    let r = tokio::time::timeout(timeout, get(&s, &path, tls, digest.as_deref()))
                        .await
                        .unwrap_or_else(|_| Err(anyhow!("no answer within {timeout:?}")));
                    (s, r)
                })
            })
            .collect();
        let mut out = Vec::new();
        for (h, s) in asks.into_iter().zip(&servers) {
            out.push(h.await.unwrap_or_else(|e| (s.clone(), Err(anyhow!("{e}")))));
        }
        out
    });
    let mut failed = false;
    let multiple = answers.len() > 1;
    for (server, r) in answers {
        match r {
            Err(e) => {
                failed = true;
                eprintln!("{server}: {e:#}");
            }
            Ok((status, body)) => {
                if command.is_empty() {
                    // The index is HTML links: print the names.
                    for name in body
                        .split("\">")
                        .skip(1)
                        .filter_map(|s| s.split('<').next())
                    {
                        println!("{name}");
                    }
                    continue;
                }
                let v: Value = serde_json::from_str(&body)
                    .with_context(|| format!("{server}: not JSON (HTTP {status})"))?;
                let error = v.get("error").and_then(|e| e.as_str()).map(str::to_owned);
                if multiple {
                    println!("== {server}");
                }
                if a.table {
                    print!("{}", table(&v));
                } else {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                if let Some(e) = error {
                    failed = true;
                    eprintln!("{server}: {e} (HTTP {status})");
                }
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    if transfer {
        wait_for_handover(&rt, &servers[0], &a, tls, leader_before);
    }
    Ok(())
}

/// The leader the server knows (`leader` command), if any.
fn leader_of(
    rt: &tokio::runtime::Runtime,
    server: &str,
    a: &Args,
    tls: Option<tokio_rustls::TlsConnector>,
) -> Option<i64> {
    let path = format!("{}/leader", a.target.url);
    rt.block_on(get(server, &path, tls, a.target.digest.as_deref()))
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .and_then(|v| v.get("leader_id").and_then(Value::as_i64))
        .filter(|l| *l >= 0)
}

/// After a transfer was started: waits until the server asked names another leader than
/// before (the one asked for, with --to), and says which; exit 1 if none within --timeout.
fn wait_for_handover(
    rt: &tokio::runtime::Runtime,
    server: &str,
    a: &Args,
    tls: Option<tokio_rustls::TlsConnector>,
    before: Option<i64>,
) {
    let deadline = std::time::Instant::now() + Duration::from_millis(a.timeout.max(1));
    loop {
        let now = leader_of(rt, server, a, tls.clone());
        let done = match (a.to, now) {
            (Some(t), Some(l)) => l == t as i64,
            (None, Some(l)) => Some(l) != before,
            _ => false,
        };
        if let (true, Some(l)) = (done, now) {
            eprintln!("leader is now server {l}");
            return;
        }
        if std::time::Instant::now() >= deadline {
            eprintln!("no new leader within {} ms", a.timeout);
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tls_connector(cacert: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let path = cacert.ok_or_else(|| anyhow!("--https needs --cacert <PEM>"))?;
    for c in rustls_pki_types::CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
    {
        roots
            .add(c.with_context(|| format!("reading {}", path.display()))?)
            .context("a CA certificate rustls does not take")?;
    }
    // ring, as everywhere in Paddock (see crates/server/src/tls.rs).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

async fn get(
    server: &str,
    path: &str,
    tls: Option<tokio_rustls::TlsConnector>,
    digest: Option<&str>,
) -> Result<(u16, String)> {
    let a = fetch(server, path, tls, digest).await?;
    Ok((a.status, String::from_utf8_lossy(&a.body).into_owned()))
}

/// An AdminServer's answer whole: status, headers, body.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// GETs `path` from an AdminServer (HTTPS with `tls`; `digest` as `Authorization: digest
/// user:password`).
pub(crate) async fn fetch(
    server: &str,
    path: &str,
    tls: Option<tokio_rustls::TlsConnector>,
    digest: Option<&str>,
) -> Result<Answer> {
    request(server, hyper::Method::GET, path, Bytes::new(), tls, digest).await
}

/// Sends one request to an AdminServer, as `fetch`, with a method and body of its own.
pub(crate) async fn request(
    server: &str,
    method: hyper::Method,
    path: &str,
    body: Bytes,
    tls: Option<tokio_rustls::TlsConnector>,
    digest: Option<&str>,
) -> Result<Answer> {
    let stream = tokio::net::TcpStream::connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let host = server
        .rsplit_once(':')
        .map_or(server, |(h, _)| h)
        .trim_matches(['[', ']']);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, server);
    if let Some(d) = digest {
        req = req.header(hyper::header::AUTHORIZATION, format!("digest {d}"));
    }
    let req = req.body(Full::new(body))?;
    match tls {
        None => send(TokioIo::new(stream), req).await,
        Some(c) => {
            let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| anyhow!("{host}: {e}"))?;
            let s = c.connect(name, stream).await.context("TLS handshake")?;
            send(TokioIo::new(s), req).await
        }
    }
}

async fn send<S>(io: TokioIo<S>, req: hyper::Request<Full<Bytes>>) -> Result<Answer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A command's answer as a table: one `name value` line per figure (nested objects as
/// dotted names), and lists of objects (connections, observers) as tables of their own.
fn table(v: &Value) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut lists: Vec<(String, Vec<Map<String, Value>>)> = Vec::new();
    if let Value::Object(m) = v {
        flatten("", m, &mut rows, &mut lists);
    }
    let mut out = String::new();
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (k, val) in &rows {
        out.push_str(&format!("{k:<w$}  {val}\n"));
    }
    for (name, items) in lists {
        out.push_str(&format!("\n{name}:\n"));
        let mut cols: Vec<String> = Vec::new();
        for it in &items {
            for k in it.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
        let cells: Vec<Vec<String>> = items
            .iter()
            .map(|it| {
                cols.iter()
                    .map(|c| it.get(c).map_or(String::new(), scalar))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].len())
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |vals: &[String]| {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        out.push_str(&line(&cols));
        out.push('\n');
        for r in &cells {
            out.push_str(&line(r));
            out.push('\n');
        }
    }
    out
}

fn flatten(
    prefix: &str,
    m: &Map<String, Value>,
    rows: &mut Vec<(String, String)>,
    lists: &mut Vec<(String, Vec<Map<String, Value>>)>,
) {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, rows, lists),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                lists.push((
                    key,
                    items
                        .iter()
                        .filter_map(|i| i.as_object().cloned())
                        .collect(),
                ));
            }
            other => rows.push((key, scalar(other))),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(","),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_flattens_and_lists() {
        let v: Value = serde_json::json!({
            "command": "stats",
            "error": null,
            "server_stats": {"packets_sent": 4, "server_state": "leader"},
            "connections": [{"remote_socket_address": "1.2.3.4:5", "packets_sent": 2}],
            "digests": [],
        });
        let t = table(&v);
        let row = |k: &str| {
            t.lines()
                .find(|l| l.split_whitespace().next() == Some(k))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        };
        assert_eq!(
            row("server_stats.packets_sent").as_deref(),
            Some("4"),
            "{t}"
        );
        assert_eq!(row("error").as_deref(), Some("-"), "{t}");
        assert_eq!(row("digests").as_deref(), Some("[]"), "{t}");
        assert!(t.contains("connections:\n"), "{t}");
        assert!(t.contains("1.2.3.4:5"), "{t}");
    }
}

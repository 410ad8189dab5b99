//! `paddock bench compare`: starts Paddock and Apache ZooKeeper 3.8 with equivalent settings,
//! runs the same workloads on each in alternating rounds (A B A B ...), and reports medians and
//! Paddock/ZooKeeper ratios, plus memory per znode and restart time.

use crate::args::CompareArgs;
use crate::conn::Conn;
use crate::memory::{self, MemoryParams, MemoryResult};
use crate::report::{self, json_str, render};
use crate::svg::{self, Panel};
use crate::workload::{self, Params, Target, Workload, WorkloadResult};
use anyhow::{bail, Context, Result};
use paddock_proto::op;
use paddock_testkit::paddock::{Output, Standalone};
use paddock_testkit::zookeeper;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The two systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This project's server.
    Paddock,
    /// Apache ZooKeeper 3.8 from Debian.
    ZooKeeper,
}

impl Kind {
    /// Label in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Paddock => "paddock",
            Kind::ZooKeeper => "zookeeper",
        }
    }
}

/// How servers are started (shared by both kinds where it applies).
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The paddock binary.
    pub paddock_bin: PathBuf,
    /// Directory holding zookeeper.jar and its dependencies.
    pub zk_jars: PathBuf,
    /// JVM heap (-Xmx).
    pub zk_heap: String,
    /// forceSync on both.
    pub force_sync: bool,
    /// TLS on both (`--tls`): the directory with ca.pem and server.pem.
    pub tls_dir: Option<PathBuf>,
}

impl ServerSpec {
    /// The JVM options ZooKeeper runs with, as stated in reports.
    pub fn jvm_opts(&self) -> Vec<String> {
        vec![
            format!("-Xmx{}", self.zk_heap),
            "-XX:+UseG1GC".into(),
            "-Djava.awt.headless=true".into(),
        ]
    }

    /// The zoo.cfg lines both servers share (besides ports and directories).
    pub fn common_cfg(&self) -> Vec<String> {
        vec![
            "tickTime=2000".into(),
            format!("forceSync={}", if self.force_sync { "yes" } else { "no" }),
            "4lw.commands.whitelist=*".into(),
            "maxClientCnxns=0".into(),
            // The same accept queue for both: ZooKeeper's default (the JVM's 50) drops
            // connections when thousands arrive at once, and each is retried a second later.
            "clientPortListenBacklog=1024".into(),
        ]
        .into_iter()
        .chain(self.tls_dir.iter().flat_map(|d| tls_cfg(d)))
        .collect()
    }
}

/// The zoo.cfg lines that give a server TLS on its client port, the same for both kinds: one
/// port for TLS and plaintext (so readiness checks stay plaintext four-letter words), PEM
/// stores, client certificates required, ZooKeeper on its Netty connection factory (TLS needs
/// it).
fn tls_cfg(dir: &Path) -> Vec<String> {
    vec![
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
        "client.portUnification=true".into(),
        format!("ssl.keyStore.location={}", dir.join("server.pem").display()),
        "ssl.keyStore.type=PEM".into(),
        format!("ssl.trustStore.location={}", dir.join("ca.pem").display()),
        "ssl.trustStore.type=PEM".into(),
        "ssl.clientAuth=need".into(),
        // ZooKeeper's Netty factory closes TLS connections without an x509 provider.
        "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider".into(),
    ]
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl in
/// `dir` (ca.pem, server.pem and client.pem: key and chain in one file), and returns the bench
/// client's connector.
pub fn make_tls(dir: &Path) -> Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    std::fs::create_dir_all(dir)?;
    let run = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("cannot run openssl")?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=bench CA",
        ],
    ]
    .concat())?;
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "basicConstraints=CA:FALSE"),
    ] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={name}");
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout", &key, "-out", &csr, "-subj", &subj, "-addext", ext,
            ],
        ]
        .concat())?;
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-copy_extensions",
            "copy",
            "-out",
            &crt,
        ])?;
        let key = std::fs::read(dir.join(format!("{name}.key")))?;
        let crt = std::fs::read(dir.join(format!("{name}.crt")))?;
        std::fs::write(dir.join(format!("{name}.pem")), [key, crt].concat())?;
    }
    let ca = dir.join("ca.pem");
    let client = dir.join("client.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca)? {
        roots.add(c?)?;
    }
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&client)?
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&client)?;
    #[allow(deprecated)] // ring, as the server (see crates/server/src/tls.rs)
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)))
}

/// A server process this tool started; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerProc {
    /// Which system.
    pub kind: Kind,
    /// Its client address.
    pub addr: SocketAddr,
    /// Its data directory.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl ServerProc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Kills the server with SIGKILL (nothing flushed, nothing closed) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server: SIGTERM, up to 10 s to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            paddock_testkit::process::terminate(&mut child, Duration::from_secs(10));
        }
    }
}

impl ServerProc {
    /// A workload target of this server alone.
    pub fn target(&self, quiet: bool) -> Target {
        Target {
            servers: vec![self.addr],
            pids: vec![self.pid()],
            label: self.kind.label().into(),
            run_id: workload::new_run_id(),
            quiet,
        }
    }

    /// Stops the server cleanly (SIGTERM), starts it again on the same data and port, and
    /// times from that start until a new session reads `probe` (the restart-to-serving
    /// figure); the restarted server is stopped again.
    pub async fn restart_timed(
        &mut self,
        spec: &ServerSpec,
        probe: &str,
        limit: Duration,
    ) -> Result<Restart> {
        self.stop();
        let t0 = Instant::now();
        let mut again = spawn(self.kind, spec, self.addr.port(), &self.dir)?;
        let restart = match wait_serving(&mut again, probe, limit).await {
            Restart::Serving(_) => Restart::Serving(t0.elapsed().as_secs_f64()),
            other => other,
        };
        again.stop();
        Ok(restart)
    }
}

/// How the memory figure and the scale sweep fill a server: `znodes` children of
/// `value_size` bytes, 1,000 per parent, from 32 sessions with 64 creates in flight each, RSS
/// read 2 s after the last.
pub fn fill_params(znodes: u64, value_size: usize, quiet: bool) -> MemoryParams {
    MemoryParams {
        znodes,
        per_parent: 1000,
        value_size,
        sessions: 32,
        inflight: 64,
        settle: Duration::from_secs(2),
        quiet,
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a server of `kind` on `port` with data in `dir` (not wiped here).
pub fn spawn(kind: Kind, spec: &ServerSpec, port: u16, dir: &Path) -> Result<ServerProc> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let log_path = dir.join("server.log");
    let child = match kind {
        Kind::Paddock => {
            let mut srv = Standalone::new(&spec.paddock_bin, port, dir.join("data"))
                .prop("zookeeper.clientPortAddress", "127.0.0.1")
                .env("PADDOCK_LOG", "warn")
                .output(Output::BothTo(log_path));
            for line in spec.common_cfg() {
                let (key, value) = line.split_once('=').unwrap_or((&line, ""));
                srv = srv.prop(&format!("zookeeper.{key}"), value);
            }
            srv.spawn()?
        }
        Kind::ZooKeeper => {
            zookeeper::require(&spec.zk_jars)?;
            let data = dir.join("data");
            std::fs::create_dir_all(&data)?;
            let mut cfg = format!(
                "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
                data.display()
            );
            for line in spec.common_cfg() {
                cfg.push_str(&line);
                cfg.push('\n');
            }
            std::fs::write(dir.join("zoo.cfg"), cfg)?;
            zookeeper::write_log4j(&dir, "WARN")?;
            let log = paddock_testkit::logs::append(&log_path)?;
            let mut c = zookeeper::java_command(
                &spec.zk_jars,
                &spec.jvm_opts(),
                &dir,
                &dir.join("zoo.cfg"),
            );
            c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
            c.spawn()
                .context("cannot start java (is a JRE installed?)")?
        }
    };
    Ok(ServerProc {
        kind,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
        child: Some(child),
    })
}

/// Sends a four-letter word and returns the answer.
pub async fn four_letter(addr: SocketAddr, word: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(word.as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await??;
    Ok(out)
}

/// Waits until `srv` answers `ruok` and accepts a session (ZooKeeper answers `ruok` a moment
/// before it serves); returns the time it took from now.
pub async fn wait_ready(srv: &mut ServerProc, limit: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if let Ok(a) = four_letter(srv.addr, "ruok").await {
            if a == "imok" {
                if let Ok(Ok(c)) =
                    tokio::time::timeout(Duration::from_secs(5), Conn::connect(srv.addr)).await
                {
                    let _ = c.close().await;
                    return Ok(t0.elapsed());
                }
            }
        }
        check_alive(srv)?;
        if t0.elapsed() > limit {
            bail!(
                "{} on {} did not serve within {:?}; see {}/server.log",
                srv.kind.label(),
                srv.addr,
                limit,
                srv.dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check_alive(srv: &mut ServerProc) -> Result<()> {
    if let Some(c) = srv.child.as_mut() {
        if let Ok(Some(st)) = c.try_wait() {
            bail!(
                "{} exited ({st}); see {}/server.log",
                srv.kind.label(),
                srv.dir.display()
            );
        }
    }
    Ok(())
}

/// How a server came back after a restart on its data.
#[derive(Debug, Clone, PartialEq)]
pub enum Restart {
    /// Serving the populated data this many seconds after the process was started.
    Serving(f64),
    /// It came back without the data (a server with no durability).
    DataLost,
    /// It did not come back; why.
    Failed(String),
}

/// Waits until a new session can read `probe` (the restart-to-serving measure); a server that
/// answers "no node" has come back without its data.
pub async fn wait_serving(srv: &mut ServerProc, probe: &str, limit: Duration) -> Restart {
    let t0 = Instant::now();
    let body = crate::gen::path_watch_body(probe, false);
    loop {
        let attempt = async {
            let mut c = Conn::connect(srv.addr).await?;
            let r = c.call(op::GET_DATA, &body).await?;
            let _ = c.close().await;
            anyhow::Ok(r.head.err)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(0)) => return Restart::Serving(t0.elapsed().as_secs_f64()),
            Ok(Ok(e)) if e == paddock_proto::ErrorCode::NoNode.code() => return Restart::DataLost,
            _ => {}
        }
        if let Err(e) = check_alive(srv) {
            return Restart::Failed(format!("{e:#}"));
        }
        if t0.elapsed() > limit {
            return Restart::Failed(format!(
                "{} did not serve {probe} within {limit:?}",
                srv.kind.label()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The median of some values (mean of the middle two for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Paddock/ZooKeeper, formatted; "-" when either side is missing.
pub fn ratio(p: f64, z: f64) -> String {
    if p.is_finite() && z.is_finite() && z > 0.0 {
        format!("{:.2}x", p / z)
    } else {
        "-".into()
    }
}

/// Medians of one workload on one system over the rounds.
#[derive(Debug, Clone)]
pub struct Med {
    /// Median ops/s.
    pub ops: f64,
    /// Median p50 (ms).
    pub p50: f64,
    /// Median p99 (ms).
    pub p99: f64,
    /// Median p99.9 (ms).
    pub p999: f64,
    /// Median max (ms).
    pub max: f64,
    /// Errors summed over rounds.
    pub errors: u64,
    /// Median client CPU %.
    pub client_cpu: f64,
    /// Median server CPU %.
    pub server_cpu: f64,
    /// Rounds that produced a result.
    pub rounds: usize,
}

/// Medians over the results of one workload on one system.
pub fn medians(rs: &[&WorkloadResult]) -> Option<Med> {
    if rs.is_empty() {
        return None;
    }
    let m = |f: &dyn Fn(&WorkloadResult) -> f64| median(rs.iter().map(|r| f(r)).collect());
    Some(Med {
        ops: m(&|r| r.ops_per_sec),
        p50: m(&|r| r.p50_ns as f64 / 1e6),
        p99: m(&|r| r.p99_ns as f64 / 1e6),
        p999: m(&|r| r.p999_ns as f64 / 1e6),
        max: m(&|r| r.max_ns as f64 / 1e6),
        errors: rs.iter().map(|r| r.errors).sum(),
        client_cpu: m(&|r| r.client_cpu_pct),
        server_cpu: m(&|r| r.server_totals().0),
        rounds: rs.len(),
    })
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "-".into()
    }
}

fn f2(v: f64) -> String {
    if v.is_finite() {
        svg::fmt_value(v)
    } else {
        "-".into()
    }
}

/// A target the table tracks: how a ratio compares with the goal.
fn status(ratio: f64, goal: f64, higher_is_better: bool) -> &'static str {
    if !ratio.is_finite() {
        "-"
    } else if (higher_is_better && ratio >= goal) || (!higher_is_better && ratio <= goal) {
        "met"
    } else {
        "not met"
    }
}

/// Renders rows as a GitHub markdown table.
pub fn markdown(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&r.join(" | "));
        out.push_str(" |\n");
        if i == 0 {
            out.push('|');
            for (c, _) in r.iter().enumerate() {
                out.push_str(if c < 1 { " --- |" } else { " ---: |" });
            }
            out.push('\n');
        }
    }
    out
}

/// Runs the whole comparison.
pub async fn run(a: CompareArgs) -> Result<()> {
    let workloads = Workload::parse_list(&a.workloads)?;
    let force_sync = match a.force_sync.to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" => false,
        other => bail!("--force-sync takes yes or no, not '{other}'"),
    };
    let paddock_bin = match &a.paddock_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let tls_dir = a.tls.then(|| a.work_dir.join("tls"));
    if let Some(d) = &tls_dir {
        crate::conn::use_tls(make_tls(d)?);
    }
    let spec = ServerSpec {
        paddock_bin,
        zk_jars: a.zk_jars.clone(),
        zk_heap: a.zk_heap.clone(),
        force_sync,
        tls_dir,
    };
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let jsonl_path = a.out_dir.join("compare.jsonl");
    let mut jsonl = std::fs::File::create(&jsonl_path)?;
    let started_at = std::time::SystemTime::now();
    let params = comparison_params(a.sessions, a.inflight, a.duration, a.warmup);
    let port_of = |k: Kind| match k {
        Kind::Paddock => a.port,
        Kind::ZooKeeper => a.port + 1,
    };
    let mut all: Vec<(usize, WorkloadResult)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let rounds = a.rounds.max(1);
    let t_all = Instant::now();
    // One server per round and system, or (--fresh-per-workload) one per workload.
    let groups: Vec<Vec<Workload>> = if a.fresh_per_workload {
        workloads.iter().map(|w| vec![*w]).collect()
    } else {
        vec![workloads.clone()]
    };
    for round in 1..=rounds {
        for (kind, group) in [Kind::Paddock, Kind::ZooKeeper]
            .into_iter()
            .flat_map(|k| groups.iter().map(move |g| (k, g)))
        {
            let dir = a.work_dir.join(format!("r{round}-{}", kind.label()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut srv = spawn(kind, &spec, port_of(kind), &dir)?;
            wait_ready(&mut srv, Duration::from_secs(90)).await?;
            eprintln!(
                "round {round}/{rounds}: {} (pid {}) on {}",
                kind.label(),
                srv.pid(),
                srv.addr
            );
            let target = srv.target(a.quiet);
            for &w in group {
                match workload::run_workload(w, &params, &target).await {
                    Ok(r) => {
                        if !a.quiet {
                            eprintln!(
                                "  {:<14} {:>10} ops/s  p99 {:>7} ms  errors {}  client CPU {:.0}%  server CPU {:.0}%",
                                r.workload,
                                report::thousands(r.ops_per_sec),
                                report::ms(r.p99_ns),
                                r.errors,
                                r.client_cpu_pct,
                                r.server_totals().0
                            );
                        }
                        let j = r.to_json();
                        writeln!(jsonl, "{{\"round\":{round},{}", &j[1..])?;
                        all.push((round, r));
                    }
                    Err(e) => {
                        let msg = format!("round {round} {} {}: {e:#}", kind.label(), w.name());
                        eprintln!("  FAILED {msg}");
                        failures.push(msg);
                        check_alive(&mut srv).context("server died during the run")?;
                    }
                }
            }
            srv.stop();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    // Memory per znode and restart-to-serving, once per system.
    let mut mem: Vec<(Kind, Option<MemoryResult>, Option<Restart>)> = Vec::new();
    if a.memory_znodes > 0 {
        for kind in [Kind::Paddock, Kind::ZooKeeper] {
            let dir = a.work_dir.join(format!("mem-{}", kind.label()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut srv = spawn(kind, &spec, port_of(kind), &dir)?;
            wait_ready(&mut srv, Duration::from_secs(90)).await?;
            eprintln!(
                "memory: {} (pid {}) populating {} znodes",
                kind.label(),
                srv.pid(),
                a.memory_znodes
            );
            let mp = fill_params(a.memory_znodes, 100, a.quiet);
            let m = match memory::measure(srv.addr, &[srv.addr], srv.pid(), kind.label(), &mp).await
            {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("memory {}: {e:#}", kind.label()));
                    mem.push((kind, None, None));
                    continue;
                }
            };
            eprintln!(
                "  {:.1} B/znode (RSS {} -> {})",
                m.bytes_per_znode, m.rss_before, m.rss_after
            );
            writeln!(jsonl, "{}", m.to_json())?;
            let restart = srv
                .restart_timed(&spec, &m.probe_path, Duration::from_secs(600))
                .await?;
            match &restart {
                Restart::Serving(secs) => {
                    eprintln!("  restart to serving: {secs:.2} s");
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"restart\",\"label\":{},\"znodes\":{},\"secs\":{}}}",
                        json_str(kind.label()),
                        m.znodes_added,
                        report::json_num(*secs)
                    )?;
                }
                Restart::DataLost => {
                    eprintln!("  restart: came back without its data (not durable)")
                }
                Restart::Failed(e) => failures.push(format!("restart {}: {e}", kind.label())),
            }
            let restart = Some(restart);
            srv.stop();
            let _ = std::fs::remove_dir_all(&dir);
            mem.push((kind, Some(m), restart));
        }
    }
    let total_secs = t_all.elapsed().as_secs_f64();

    // Medians and ratios.
    let pick = |k: Kind, w: Workload| -> Option<Med> {
        let rs: Vec<&WorkloadResult> = all
            .iter()
            .filter(|(_, r)| r.label == k.label() && r.workload == w.name())
            .map(|(_, r)| r)
            .collect();
        medians(&rs)
    };
    let mut wl_rows = vec![vec![
        "workload".to_string(),
        "Paddock ops/s".into(),
        "ZooKeeper ops/s".into(),
        "ratio".into(),
        "Paddock p50 ms".into(),
        "ZK p50 ms".into(),
        "Paddock p99 ms".into(),
        "ZK p99 ms".into(),
        "p99 ratio".into(),
        "Paddock p99.9 ms".into(),
        "ZK p99.9 ms".into(),
        "errors P/ZK".into(),
        "client CPU% P/ZK".into(),
        "server CPU% P/ZK".into(),
    ]];
    let mut chart_ops = Vec::new();
    let mut chart_p99 = Vec::new();
    let nan = f64::NAN;
    for &w in &workloads {
        let p = pick(Kind::Paddock, w);
        let z = pick(Kind::ZooKeeper, w);
        let g = |m: &Option<Med>, f: fn(&Med) -> f64| m.as_ref().map(f).unwrap_or(nan);
        wl_rows.push(vec![
            w.name().to_string(),
            f2(g(&p, |m| m.ops)),
            f2(g(&z, |m| m.ops)),
            ratio(g(&p, |m| m.ops), g(&z, |m| m.ops)),
            f2(g(&p, |m| m.p50)),
            f2(g(&z, |m| m.p50)),
            f2(g(&p, |m| m.p99)),
            f2(g(&z, |m| m.p99)),
            ratio(g(&p, |m| m.p99), g(&z, |m| m.p99)),
            f2(g(&p, |m| m.p999)),
            f2(g(&z, |m| m.p999)),
            format!(
                "{}/{}",
                p.as_ref()
                    .map(|m| m.errors.to_string())
                    .unwrap_or("-".into()),
                z.as_ref()
                    .map(|m| m.errors.to_string())
                    .unwrap_or("-".into())
            ),
            format!(
                "{}/{}",
                pct(g(&p, |m| m.client_cpu)),
                pct(g(&z, |m| m.client_cpu))
            ),
            format!(
                "{}/{}",
                pct(g(&p, |m| m.server_cpu)),
                pct(g(&z, |m| m.server_cpu))
            ),
        ]);
        let fin = |v: f64| if v.is_finite() { Some(v) } else { None };
        chart_ops.push((
            w.name().to_string(),
            vec![fin(g(&p, |m| m.ops)), fin(g(&z, |m| m.ops))],
        ));
        chart_p99.push((
            w.name().to_string(),
            vec![fin(g(&p, |m| m.p99)), fin(g(&z, |m| m.p99))],
        ));
    }

    // The targets the issue tracks.
    let mut t_rows = vec![vec![
        "figure (same run, fsync on)".to_string(),
        "Paddock".into(),
        "ZooKeeper".into(),
        "Paddock/ZK".into(),
        "target".into(),
        "status".into(),
    ]];
    // Paddock came back from a restart without its data: writes are in memory only.
    let not_durable = mem
        .iter()
        .any(|(k, _, r)| *k == Kind::Paddock && matches!(r, Some(Restart::DataLost)));
    let mut target_row =
        |name: String, p: f64, z: f64, unit: &str, goal: f64, higher: bool, write: bool| {
            let r = if z > 0.0 { p / z } else { nan };
            let mut st = status(r, goal, higher).to_string();
            if write && not_durable && st != "-" {
                // An in-memory server against one that fsyncs: the figure does not count yet.
                st.push_str(" (Paddock not durable yet)");
            }
            t_rows.push(vec![
                name,
                if p.is_finite() {
                    format!("{} {unit}", f2(p))
                } else {
                    "-".into()
                },
                if z.is_finite() {
                    format!("{} {unit}", f2(z))
                } else {
                    "-".into()
                },
                ratio(p, z),
                format!("{} {goal}x", if higher { ">=" } else { "<=" }),
                st,
            ]);
        };
    let ops_of = |k, w| pick(k, w).map(|m| m.ops).unwrap_or(nan);
    let p99_of = |k, w| pick(k, w).map(|m| m.p99).unwrap_or(nan);
    for w in [Workload::SetData, Workload::Create100, Workload::Multi] {
        if workloads.contains(&w) {
            target_row(
                format!("write throughput ({})", w.name()),
                ops_of(Kind::Paddock, w),
                ops_of(Kind::ZooKeeper, w),
                "ops/s",
                2.0,
                true,
                true,
            );
        }
    }
    for w in [Workload::GetData, Workload::GetChildren, Workload::Mixed] {
        if workloads.contains(&w) {
            target_row(
                format!("read throughput ({})", w.name()),
                ops_of(Kind::Paddock, w),
                ops_of(Kind::ZooKeeper, w),
                "ops/s",
                2.0,
                true,
                w == Workload::Mixed,
            );
        }
    }
    for w in [
        Workload::SetData,
        Workload::GetData,
        Workload::Create100,
        Workload::Mixed,
        Workload::LatencyWrite,
        Workload::LatencyRead,
    ] {
        if workloads.contains(&w) {
            target_row(
                format!("p99 ({})", w.name()),
                p99_of(Kind::Paddock, w),
                p99_of(Kind::ZooKeeper, w),
                "ms",
                0.5,
                false,
                w.is_write(),
            );
        }
    }
    let mem_of = |k: Kind| mem.iter().find(|(kk, _, _)| *kk == k);
    let (pm, zm) = (mem_of(Kind::Paddock), mem_of(Kind::ZooKeeper));
    if a.memory_znodes > 0 {
        let bpz = |x: Option<&(Kind, Option<MemoryResult>, Option<Restart>)>| {
            x.and_then(|(_, m, _)| m.as_ref())
                .map(|m| m.bytes_per_znode)
                .unwrap_or(nan)
        };
        target_row(
            format!(
                "RSS growth per znode ({} x 100 B, 1,000 per parent, 2 s after)",
                report::thousands(a.memory_znodes as f64)
            ),
            bpz(pm),
            bpz(zm),
            "B",
            0.2,
            false,
            false,
        );
        let restart_of = |x: Option<&(Kind, Option<MemoryResult>, Option<Restart>)>| {
            x.and_then(|(_, _, r)| r.clone())
        };
        let (pr, zr) = (restart_of(pm), restart_of(zm));
        let secs = |r: &Option<Restart>| match r {
            Some(Restart::Serving(s)) => *s,
            _ => nan,
        };
        let cell = |r: &Option<Restart>| match r {
            Some(Restart::Serving(s)) => format!("{s:.2} s"),
            Some(Restart::DataLost) => {
                "not built yet (durability issue): data gone after restart".into()
            }
            Some(Restart::Failed(_)) => "failed (see failures)".into(),
            None => "-".into(),
        };
        let (ps, zs) = (secs(&pr), secs(&zr));
        t_rows.push(vec![
            format!(
                "restart to serving with {} znodes (SIGTERM, start, first read)",
                report::thousands(a.memory_znodes as f64)
            ),
            cell(&pr),
            cell(&zr),
            ratio(ps, zs),
            "<= 0.33x".into(),
            if matches!(pr, Some(Restart::DataLost)) {
                "not built yet".into()
            } else {
                status(if zs > 0.0 { ps / zs } else { nan }, 0.33, false).into()
            },
        ]);
    }
    t_rows.push(vec![
        "three-server ensemble (all workloads)".into(),
        "measured by `bench/ensemble.sh` (section \"Ensembles\")".into(),
        "not run here".into(),
        "-".into(),
        ">= 2x".into(),
        "see the ensemble section".into(),
    ]);
    t_rows.push(vec![
        "ensemble: SIGKILL of the leader to first acknowledged write".into(),
        "measured by `bench/ensemble.sh` (section \"Ensembles\")".into(),
        "not run here".into(),
        "-".into(),
        "< 250 ms".into(),
        "see the ensemble section".into(),
    ]);

    let settings = format!(
        "{rounds} rounds (Paddock then ZooKeeper in each), {} sessions x {} in flight, {} s measured + {} s warm-up per workload, \
         forceSync={} on both, standalone, {}; ZooKeeper 3.8 (Debian) with {}; client: one thread",
        params.sessions,
        params.inflight,
        report::json_num(a.duration.as_secs_f64()),
        report::json_num(a.warmup.as_secs_f64()),
        if force_sync { "yes" } else { "no (NOT durable; labelled: benchmark only)" },
        if a.fresh_per_workload {
            "fresh server per workload"
        } else {
            "fresh server per round, workloads in order on it (the tree grows through them)"
        },
        spec.jvm_opts().join(" "),
    );
    let settings = match git_rev() {
        Some(rev) => format!("{settings}; work tree at {rev}"),
        None => settings,
    };
    let text = format!(
        "\n== Paddock vs Apache ZooKeeper: medians over {rounds} rounds ==\n{settings}\n\n{}\n{}\n{}",
        render(&wl_rows),
        render(&t_rows),
        if failures.is_empty() { String::new() } else { format!("failures:\n  {}\n", failures.join("\n  ")) }
    );
    print!("{text}");

    let chart = svg::chart(
        &format!(
            "Paddock vs Apache ZooKeeper 3.8\nstandalone, forceSync={}, medians of {rounds} rounds{}",
            if force_sync { "yes" } else { "no" },
            if not_durable { "; Paddock writes are in memory only (no durability yet)" } else { "" }
        ),
        &crate::svg::paddock_and_zookeeper(),
        &[
            Panel {
                title: "throughput (ops/s, higher is better)".into(),
                unit: "".into(),
                rows: chart_ops,
            },
            Panel {
                title: "p99 latency (ms, lower is better)".into(),
                unit: "ms".into(),
                rows: chart_p99,
            },
        ],
    );
    std::fs::write(a.out_dir.join("chart.svg"), &chart)?;
    let when = humantime(started_at);
    let md = format!(
        "Run {when}, {total_secs:.0} s in all. {settings}.\n\nCommand: `{}`\n\n\
         ### Per workload (medians; ratio = Paddock/ZooKeeper)\n\n{}\n### Targets\n\n{}\n{}",
        invoked_as(),
        markdown(&wl_rows),
        markdown(&t_rows),
        if failures.is_empty() {
            String::new()
        } else {
            format!("\nFailures:\n\n- {}\n", failures.join("\n- "))
        }
    );
    std::fs::write(a.out_dir.join("summary.md"), &md)?;
    eprintln!(
        "wrote {}, {} and {}",
        jsonl_path.display(),
        a.out_dir.join("summary.md").display(),
        a.out_dir.join("chart.svg").display()
    );
    if let Some(doc) = &a.docs {
        update_docs(doc, &md, &chart)?;
        eprintln!("updated {}", doc.display());
    }
    if !failures.is_empty() {
        bail!("{} step(s) failed (listed above)", failures.len());
    }
    Ok(())
}

/// The command line to show in reports: bench/compare.sh says how it was called.
fn invoked_as() -> String {
    match std::env::var("PADDOCK_BENCH_INVOKED_AS") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => format!(
            "paddock bench compare {}",
            std::env::args().skip(3).collect::<Vec<_>>().join(" ")
        ),
    }
}

/// `git describe --always --dirty` of the current directory, if it is a git work tree.
pub fn git_rev() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}

/// Replaces the results section of `doc` and writes the chart beside it as benchmarks.svg.
fn update_docs(doc: &Path, md: &str, chart: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench-results:begin -->";
    const END: &str = "<!-- bench-results:end -->";
    let text =
        std::fs::read_to_string(doc).with_context(|| format!("cannot read {}", doc.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} lacks the {BEGIN} / {END} markers", doc.display());
    };
    let new = format!("{}{BEGIN}\n{md}\n{}", &text[..b], &text[e..]);
    std::fs::write(doc, new)?;
    let svg_path = doc.with_file_name("benchmarks.svg");
    std::fs::write(svg_path, chart)?;
    Ok(())
}

/// A UTC timestamp like 2026-11-26 14:30 UTC, without a date crate.
pub fn humantime(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The workload parameters of a side-by-side comparison (`compare` and `ensemble`): the
/// defaults of `paddock bench run` with these sessions and times.
pub(crate) fn comparison_params(
    sessions: usize,
    inflight: usize,
    duration: std::time::Duration,
    warmup: std::time::Duration,
) -> Params {
    Params {
        sessions: sessions.max(1),
        inflight: inflight.max(1),
        duration,
        ops: None,
        warmup,
        value_size: 100,
        keys: 1000,
        children: 1000,
        read_ratio: 0.9,
        znodes: 5_000_000,
        per_parent: 1000,
        watch_pairs: 1,
        churners: sessions.clamp(1, 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        assert_eq!(median(vec![f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn ratios_and_status() {
        assert_eq!(ratio(2.0, 1.0), "2.00x");
        assert_eq!(ratio(1.0, 0.0), "-");
        assert_eq!(status(2.5, 2.0, true), "met");
        assert_eq!(status(0.6, 0.5, false), "not met");
        assert_eq!(status(f64::NAN, 0.5, false), "-");
    }

    #[test]
    fn civil_time() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(humantime(t), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn markdown_table() {
        let md = markdown(&[vec!["a".into(), "b".into()], vec!["x".into(), "1".into()]]);
        assert_eq!(md, "| a | b |\n| --- | ---: |\n| x | 1 |\n");
    }
}

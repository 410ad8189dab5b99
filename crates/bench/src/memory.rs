//! `paddock bench memory`: how much a server's RSS grows per znode.

use crate::conn::Conn;
use crate::gen::{Gen, Patched};
use crate::procstat::{rss_bytes, Proc};
use crate::runner::{self, Live, Progress, Tally, Window};
use crate::workload::{create_parents, ensure_node, new_run_id, ROOT};
use anyhow::{bail, Context, Result};
use paddock_proto::{op, CreateMode};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What to populate.
#[derive(Debug, Clone)]
pub struct MemoryParams {
    /// Children to create (parents come on top).
    pub znodes: u64,
    /// Children per parent.
    pub per_parent: u64,
    /// Bytes of data per child.
    pub value_size: usize,
    /// Sessions creating.
    pub sessions: usize,
    /// In flight per session.
    pub inflight: usize,
    /// Wait after the last create before reading RSS.
    pub settle: Duration,
    /// No progress line.
    pub quiet: bool,
}

/// The memory figure of one server.
#[derive(Debug, Clone, Default)]
pub struct MemoryResult {
    /// System under test.
    pub label: String,
    /// PID measured.
    pub pid: u32,
    /// RSS before populating.
    pub rss_before: u64,
    /// RSS `settle` after the last create was acknowledged.
    pub rss_after: u64,
    /// Znodes added: parents plus children.
    pub znodes_added: u64,
    /// (rss_after - rss_before) / znodes_added.
    pub bytes_per_znode: f64,
    /// Seconds spent creating.
    pub populate_secs: f64,
    /// Failed creates.
    pub errors: u64,
    /// Path of one of the created children (for a later read, e.g. after a restart).
    pub probe_path: String,
}

impl MemoryResult {
    /// The result as one JSON line.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"kind\":\"memory\",\"label\":{},\"pid\":{},\"rss_before_bytes\":{},\"rss_after_bytes\":{},\"znodes_added\":{},\"bytes_per_znode\":{:.1},\"populate_secs\":{:.2},\"errors\":{}}}",
            crate::report::json_str(&self.label),
            self.pid,
            self.rss_before,
            self.rss_after,
            self.znodes_added,
            self.bytes_per_znode,
            self.populate_secs,
            self.errors
        )
    }
}

/// Creates `p.znodes` znodes under fresh parents and reports the RSS growth of `pid`.
pub async fn measure(
    server: SocketAddr,
    servers: &[SocketAddr],
    pid: u32,
    label: &str,
    p: &MemoryParams,
) -> Result<MemoryResult> {
    let per_parent = p.per_parent.max(1);
    let parents = p.znodes.div_ceil(per_parent);
    if parents > 999_999 || per_parent > 999_999 {
        bail!("at most 999,999 parents and 999,999 children per parent");
    }
    let mut setup = Conn::connect(server).await.context("setup session")?;
    ensure_node(&mut setup, ROOT).await?;
    let dir = format!("{ROOT}/mem-{}", new_run_id());
    ensure_node(&mut setup, &dir).await?;

    let rss_before = rss_bytes(Proc::Pid(pid))
        .with_context(|| format!("cannot read RSS of PID {pid} (is it running?)"))?;
    let started = Instant::now();

    // Parents first, from the setup session.
    create_parents(&mut setup, &dir, parents).await?;

    // Children from every session, numbers drawn from one shared counter.
    let value = vec![b'm'; p.value_size];
    let tpl = Rc::new(Patched::create(
        op::CREATE,
        &format!("{dir}/p######/c######"),
        &value,
        CreateMode::Persistent as i32,
    ));
    let counter = Rc::new(Cell::new(0u64));
    let now = Instant::now();
    let win = Rc::new(Window {
        warm_end: now,
        end: now + Duration::from_secs(24 * 3600),
        budget: None,
    });
    let live = Rc::new(Live::default());
    let mut handles = Vec::new();
    for i in 0..p.sessions.max(1) {
        let c = Conn::connect(servers[i % servers.len()]).await?;
        let g = Gen::Counted {
            tpl: tpl.clone(),
            counter: counter.clone(),
            limit: p.znodes,
            per_parent: Some(per_parent),
        };
        handles.push(tokio::task::spawn_local(runner::run_session(
            c,
            g,
            p.inflight,
            win.clone(),
            live.clone(),
            &[],
            None,
        )));
    }
    let progress = Progress::start(
        format!("memory {label}"),
        live.clone(),
        win.clone(),
        p.quiet,
    );
    let mut total = Tally::default();
    let mut open = Vec::new();
    for h in handles {
        let (t, c) = h.await.context("session task failed")?;
        total.merge(&t);
        open.extend(c);
    }
    drop(progress);
    let populate_secs = started.elapsed().as_secs_f64();
    for c in open {
        let _ = c.close().await;
    }
    tokio::time::sleep(p.settle).await;
    let rss_after = rss_bytes(Proc::Pid(pid))
        .with_context(|| format!("cannot read RSS of PID {pid} after populating"))?;
    let _ = setup.close().await;
    let znodes_added = parents + p.znodes;
    let errors = total.error_count();
    if errors > 0 {
        tracing::warn!(errors = errors, detail = ?total.errors, "some creates failed; the figure counts only what was asked");
    }
    let last = p.znodes.saturating_sub(1);
    Ok(MemoryResult {
        label: label.to_owned(),
        pid,
        rss_before,
        rss_after,
        znodes_added,
        bytes_per_znode: (rss_after as f64 - rss_before as f64) / znodes_added.max(1) as f64,
        populate_secs,
        errors,
        probe_path: format!("{dir}/p{:06}/c{:06}", last / per_parent, last % per_parent),
    })
}

//! The scale sweep's child-list points (`paddock bench scale --sweeps children`): a fresh
//! server of each kind gets one parent with 10,000, 100,000 or 1,000,000 children, and is
//! measured: the time to make them, RSS, one getChildren of the whole list (one in flight),
//! creates and deletes of more children under that parent, and the getdata workload's p99
//! alone and while another session lists the parent over and over: a long list must not
//! hold up other clients.

use crate::args::ScaleArgs;
use crate::compare::{markdown, ratio, Kind, ServerSpec};
use crate::conn::{Conn, Dial, Handshake, SessionAsk};
use crate::gen;
use crate::procstat::{rss_bytes, Proc};
use crate::report::{self, json_num, json_str};
use crate::scale::{fresh_server, ms_of, series_of};
use crate::svg::LinePanel;
use crate::watch_sweep::spread;
use crate::workload::{self, ensure_node, Workload};
use anyhow::{bail, Context, Result};
use paddock_proto::{op, CreateMode, GetChildrenResponse, Reader, Record};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The parent.
const PARENT: &str = "/paddock-children";

/// Connections that create and delete.
const WRITERS: usize = 8;

/// Children created, then deleted, under the full parent.
const CHURN: usize = 10_000;

/// getChildren calls timed, one at a time.
const LISTS: usize = 10;

/// What one system showed with one number of children.
#[derive(Debug, Clone, Default)]
pub struct ChildFigures {
    /// Seconds to create the children (pipelined over 8 sessions).
    pub fill_secs: f64,
    /// RSS with them.
    pub rss_bytes: u64,
    /// getChildren of the parent, one in flight: the median, ms.
    pub list_p50_ms: f64,
    /// The longest of those, ms.
    pub list_max_ms: f64,
    /// Creates per second of 10,000 more children under the full parent.
    pub creates_per_sec: f64,
    /// Deletes per second of those again.
    pub deletes_per_sec: f64,
    /// getdata's p99 (ms) alone.
    pub getdata_p99_alone_ms: f64,
    /// getdata's p99 (ms) while one more session lists the parent in a loop.
    pub getdata_p99_beside_ms: f64,
    /// Lists answered during that run.
    pub lists_beside: u64,
}

fn child(i: usize) -> String {
    format!("{PARENT}/c-{i:07}")
}

/// A session that accepts replies as large as a list of `n` children.
async fn lister(addr: std::net::SocketAddr, n: usize) -> Result<Conn> {
    let dial = Dial {
        max_frame: 64 + n * 32,
        ..Dial::default()
    };
    match Conn::handshake_with(addr, &SessionAsk::default(), Duration::from_secs(10), dial).await? {
        Handshake::Open(c) => Ok(c),
        _ => bail!("{addr} refused a session"),
    }
}

/// Lists the parent once; returns the children named and the milliseconds taken.
async fn list(c: &mut Conn) -> Result<(usize, f64)> {
    let t0 = Instant::now();
    let r = c
        .call(op::GET_CHILDREN, &gen::path_watch_body(PARENT, false))
        .await?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if r.head.err != 0 {
        bail!("getChildren {PARENT}: error {}", r.head.err);
    }
    let names = GetChildrenResponse::decode(&mut Reader::new(&r.body))?.children;
    Ok((names.len(), ms))
}

/// Gives `n` children to one parent on a fresh server of `kind` and measures it.
pub async fn measure(
    a: &ScaleArgs,
    spec: &ServerSpec,
    kind: Kind,
    n: usize,
    params: &workload::Params,
) -> Result<ChildFigures> {
    let (mut srv, dir) = fresh_server(a, spec, kind, &format!("children-{n}")).await?;
    let addr = srv.addr;
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(Conn::connect(addr).await?);
    }
    ensure_node(&mut writers[0], PARENT).await?;
    let value = vec![b'v'; a.value_size];
    let t0 = Instant::now();
    let creates = (0..n)
        .map(|i| gen::create_body(&child(i), &value, CreateMode::Persistent as i32))
        .collect();
    writers = spread(writers, op::CREATE, creates).await?;
    let fill_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_bytes(Proc::Pid(srv.pid())).unwrap_or(0);
    let mut one = lister(addr, n + CHURN).await?;
    let mut times = Vec::new();
    for _ in 0..LISTS {
        let (names, ms) = list(&mut one).await?;
        if names != n {
            bail!("getChildren named {names} children, not {n}");
        }
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    let (list_p50_ms, list_max_ms) = (times[LISTS / 2], times[LISTS - 1]);
    eprintln!(
        "  {} children made in {fill_secs:.1} s; RSS {} MB; getChildren {list_p50_ms:.1} ms (longest {list_max_ms:.1})",
        report::thousands(n as f64),
        rss >> 20
    );
    let t0 = Instant::now();
    let more = (n..n + CHURN)
        .map(|i| gen::create_body(&child(i), &value, CreateMode::Persistent as i32))
        .collect();
    writers = spread(writers, op::CREATE, more).await?;
    let creates_per_sec = CHURN as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let deletes = (n..n + CHURN)
        .map(|i| {
            paddock_proto::DeleteRequest {
                path: child(i),
                version: -1,
            }
            .to_bytes()
        })
        .collect();
    spread(writers, op::DELETE, deletes).await?;
    let deletes_per_sec = CHURN as f64 / t0.elapsed().as_secs_f64();
    let alone = workload::run_workload(Workload::GetData, params, &srv.target(a.quiet))
        .await
        .context("getdata beside nothing")?;
    // Another session lists the parent over and over while getdata runs.
    let stop = Rc::new(Cell::new(false));
    let lists = Rc::new(Cell::new(0u64));
    let looping = {
        let (stop, lists) = (stop.clone(), lists.clone());
        tokio::task::spawn_local(async move {
            while !stop.get() {
                if list(&mut one).await.is_err() {
                    return;
                }
                lists.set(lists.get() + 1);
            }
        })
    };
    // A target of its own: the first run's keys are still there.
    let beside = workload::run_workload(Workload::GetData, params, &srv.target(a.quiet)).await;
    stop.set(true);
    let _ = looping.await;
    let beside = beside.context("getdata beside a getChildren loop")?;
    let f = ChildFigures {
        fill_secs,
        rss_bytes: rss,
        list_p50_ms,
        list_max_ms,
        creates_per_sec,
        deletes_per_sec,
        getdata_p99_alone_ms: ms_of(alone.p99_ns),
        getdata_p99_beside_ms: ms_of(beside.p99_ns),
        lists_beside: lists.get(),
    };
    eprintln!(
        "  creates {:.0}/s, deletes {:.0}/s under it; getdata p99 {:.2} ms alone, {:.2} ms beside {} lists",
        f.creates_per_sec,
        f.deletes_per_sec,
        f.getdata_p99_alone_ms,
        f.getdata_p99_beside_ms,
        f.lists_beside
    );
    if alone.errors + beside.errors > 0 {
        bail!("getdata had {} errors", alone.errors + beside.errors);
    }
    srv.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(f)
}

/// One JSON line of a point.
pub fn to_json(n: usize, kind: Kind, f: &ChildFigures) -> String {
    format!(
        "{{\"kind\":\"children\",\"children\":{n},\"label\":{},\"fill_secs\":{},\"rss_bytes\":{},\"list_p50_ms\":{},\"list_max_ms\":{},\"creates_per_sec\":{},\"deletes_per_sec\":{},\"getdata_p99_alone_ms\":{},\"getdata_p99_beside_ms\":{},\"lists_beside\":{}}}",
        json_str(kind.label()),
        json_num(f.fill_secs),
        f.rss_bytes,
        json_num(f.list_p50_ms),
        json_num(f.list_max_ms),
        json_num(f.creates_per_sec),
        json_num(f.deletes_per_sec),
        json_num(f.getdata_p99_alone_ms),
        json_num(f.getdata_p99_beside_ms),
        f.lists_beside,
    )
}

/// The markdown table of the child-list points.
pub fn render<'a>(counts: &[u64], get: &dyn Fn(u64, Kind) -> Option<&'a ChildFigures>) -> String {
    let mut rows = vec![vec![
        "children".to_string(),
        "made in s P/ZK".into(),
        "RSS MB P/ZK".into(),
        "getChildren ms P/ZK".into(),
        "ratio".into(),
        "longest ms P/ZK".into(),
        "creates/s under it P/ZK".into(),
        "deletes/s P/ZK".into(),
        "getdata p99 ms alone P/ZK".into(),
        "beside a getChildren loop P/ZK".into(),
        "lists meanwhile P/ZK".into(),
    ]];
    for &n in counts {
        let (fp, fz) = (get(n, Kind::Paddock), get(n, Kind::ZooKeeper));
        let both = |f: &dyn Fn(&ChildFigures) -> String| {
            format!(
                "{} / {}",
                fp.map_or("-".into(), f),
                fz.map_or("-".into(), f)
            )
        };
        rows.push(vec![
            report::thousands(n as f64),
            both(&|f| format!("{:.1}", f.fill_secs)),
            both(&|f| (f.rss_bytes >> 20).to_string()),
            both(&|f| format!("{:.1}", f.list_p50_ms)),
            ratio(
                fp.map_or(f64::NAN, |f| f.list_p50_ms),
                fz.map_or(f64::NAN, |f| f.list_p50_ms),
            ),
            both(&|f| format!("{:.1}", f.list_max_ms)),
            both(&|f| report::thousands(f.creates_per_sec)),
            both(&|f| report::thousands(f.deletes_per_sec)),
            both(&|f| format!("{:.2}", f.getdata_p99_alone_ms)),
            both(&|f| format!("{:.2}", f.getdata_p99_beside_ms)),
            both(&|f| report::thousands(f.lists_beside as f64)),
        ]);
    }
    format!(
        "### Children of one parent (P = Paddock, ZK = ZooKeeper)\n\n{}",
        markdown(&rows)
    )
}

/// The chart panels of the child-list points (x: children).
pub fn panels<'a>(
    counts: &[u64],
    get: &dyn Fn(u64, Kind) -> Option<&'a ChildFigures>,
) -> Vec<LinePanel> {
    let xs: Vec<f64> = counts.iter().map(|&n| n as f64).collect();
    let series = |f: fn(&ChildFigures) -> f64| series_of(counts, get, &|x| Some(f(x)));
    vec![
        LinePanel {
            title: "getChildren of the parent (ms)".into(),
            unit: "ms".into(),
            xs: xs.clone(),
            ys: series(|f| f.list_p50_ms),
        },
        LinePanel {
            title: "creates under it (/s)".into(),
            unit: "".into(),
            xs: xs.clone(),
            ys: series(|f| f.creates_per_sec),
        },
        LinePanel {
            title: "getdata p99 beside a getChildren loop (ms)".into(),
            unit: "ms".into(),
            xs,
            ys: series(|f| f.getdata_p99_beside_ms),
        },
    ]
}

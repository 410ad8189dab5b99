//! The scale sweep's watch points (`paddock bench scale --sweeps watches`): a fresh server of
//! each kind gets that many znodes, one data watch on each, spread over 100 sessions, and is
//! measured: the time to set the watches, RSS per watch, and the time from one setData of
//! every watched znode until every event has arrived. (Many watches on one path are in the
//! session points: every held session watches their common parent.)

use crate::args::ScaleArgs;
use crate::compare::{markdown, ratio, Kind, ServerSpec};
use crate::conn::Conn;
use crate::gen;
use crate::procstat::{rss_bytes, Proc};
use crate::report::{self, json_num, json_str};
use crate::scale::{fresh_server, series_of};
use crate::svg::LinePanel;
use crate::workload::{call_all, ensure_node};
use anyhow::{bail, Result};
use paddock_proto::{event, op, xid, CreateMode, Reader, Record, WatcherEvent};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Sessions the watches are spread over.
pub const WATCHERS: usize = 100;

/// Watched znodes per parent.
const PER_PARENT: usize = 1000;

/// Connections that create, and later change, the znodes.
const WRITERS: usize = 8;

/// The root of the watched znodes.
const ROOT: &str = "/paddock-watched";

/// What one system showed with one number of watches.
#[derive(Debug, Clone, Default)]
pub struct WatchFigures {
    /// Seconds to set every watch (exists with a watch, pipelined from every session).
    pub set_secs: f64,
    /// RSS with the watches set.
    pub rss_bytes: u64,
    /// RSS growth per watch (the znodes were made before the first was set).
    pub bytes_per_watch: f64,
    /// Seconds from the first of one setData per watched znode until every event arrived.
    pub fire_secs: f64,
    /// Events that arrived.
    pub fired: u64,
}

fn path_of(i: usize) -> String {
    format!("{ROOT}/p-{:05}/n-{:07}", i / PER_PARENT, i)
}

/// Sends `bodies` with `opcode` over `conns` at once (each its share, pipelined), and gives
/// the connections back.
pub(crate) async fn spread(
    conns: Vec<Conn>,
    opcode: i32,
    bodies: Vec<Vec<u8>>,
) -> Result<Vec<Conn>> {
    let share = bodies.len().div_ceil(conns.len()).max(1);
    let mut parts = bodies.chunks(share).map(<[Vec<u8>]>::to_vec);
    let mut jobs = tokio::task::JoinSet::new();
    for (k, mut c) in conns.into_iter().enumerate() {
        let part = parts.next().unwrap_or_default();
        jobs.spawn_local(async move {
            let r = call_all(&mut c, opcode, &part, &[]).await;
            (k, c, r)
        });
    }
    let mut back = Vec::new();
    while let Some(done) = jobs.join_next().await {
        let (k, c, r) = done?;
        r?;
        back.push((k, c));
    }
    back.sort_by_key(|(k, _)| *k);
    Ok(back.into_iter().map(|(_, c)| c).collect())
}

/// Counts a watcher session's data-change events and pings while it is idle, until dropped.
async fn count_events(mut conn: Conn, events: Rc<Cell<u64>>) {
    let every = Duration::from_millis(conn.timeout_ms.max(3) as u64 / 3);
    let mut next = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            r = conn.recv() => {
                let Ok(r) = r else { return };
                if r.head.xid == xid::NOTIFICATION {
                    let changed = WatcherEvent::decode(&mut Reader::new(&r.body))
                        .is_ok_and(|ev| ev.event_type == event::NODE_DATA_CHANGED);
                    if changed {
                        events.set(events.get() + 1);
                    }
                }
            }
            _ = tokio::time::sleep_until(next) => {
                conn.push_ping();
                if conn.flush().await.is_err() {
                    return;
                }
                next += every;
            }
        }
    }
}

/// Sets `n` watches on a fresh server of `kind` and measures it.
pub async fn measure(
    a: &ScaleArgs,
    spec: &ServerSpec,
    kind: Kind,
    n: usize,
) -> Result<WatchFigures> {
    let (mut srv, dir) = fresh_server(a, spec, kind, &format!("watches-{n}")).await?;
    let addr: SocketAddr = srv.addr;
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(Conn::connect(addr).await?);
    }
    ensure_node(&mut writers[0], ROOT).await?;
    let parents: Vec<Vec<u8>> = (0..n.div_ceil(PER_PARENT))
        .map(|p| {
            gen::create_body(
                &format!("{ROOT}/p-{p:05}"),
                b"",
                CreateMode::Persistent as i32,
            )
        })
        .collect();
    writers = spread(writers, op::CREATE, parents).await?;
    let value = vec![b'v'; a.value_size];
    let children = (0..n)
        .map(|i| gen::create_body(&path_of(i), &value, CreateMode::Persistent as i32))
        .collect();
    writers = spread(writers, op::CREATE, children).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_bytes(Proc::Pid(srv.pid())).unwrap_or(0);
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        watchers.push(Conn::connect(addr).await?);
    }
    let t0 = Instant::now();
    let exists = (0..n)
        .map(|i| gen::path_watch_body(&path_of(i), true))
        .collect();
    watchers = spread(watchers, op::EXISTS, exists).await?;
    let set_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_bytes(Proc::Pid(srv.pid())).unwrap_or(0);
    let bytes_per_watch = rss.saturating_sub(rss_before) as f64 / n as f64;
    eprintln!(
        "  {} watches set in {set_secs:.2} s; RSS {} MB, {bytes_per_watch:.0} B/watch",
        report::thousands(n as f64),
        rss >> 20
    );
    let events = Rc::new(Cell::new(0u64));
    let mut counters = tokio::task::JoinSet::new();
    for w in watchers {
        counters.spawn_local(count_events(w, events.clone()));
    }
    let t0 = Instant::now();
    let changes = (0..n)
        .map(|i| gen::set_data_body(&path_of(i), b"fired"))
        .collect();
    spread(writers, op::SET_DATA, changes).await?;
    let limit = Duration::from_secs(300);
    while events.get() < n as u64 && t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let fire_secs = t0.elapsed().as_secs_f64();
    let fired = events.get();
    eprintln!("  every watch fired in {fire_secs:.2} s ({fired} events)");
    if fired < n as u64 {
        bail!("only {fired} of {n} watch events arrived within {limit:?}");
    }
    srv.stop();
    counters.abort_all();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(WatchFigures {
        set_secs,
        rss_bytes: rss,
        bytes_per_watch,
        fire_secs,
        fired,
    })
}

/// One JSON line of a point.
pub fn to_json(n: usize, kind: Kind, f: &WatchFigures) -> String {
    format!(
        "{{\"kind\":\"watches\",\"watches\":{n},\"label\":{},\"set_secs\":{},\"rss_bytes\":{},\"bytes_per_watch\":{},\"fire_secs\":{},\"fired\":{}}}",
        json_str(kind.label()),
        json_num(f.set_secs),
        f.rss_bytes,
        json_num(f.bytes_per_watch),
        json_num(f.fire_secs),
        f.fired,
    )
}

/// The markdown table of the watch points.
pub fn render<'a>(counts: &[u64], get: &dyn Fn(u64, Kind) -> Option<&'a WatchFigures>) -> String {
    let mut rows = vec![vec![
        "watches".to_string(),
        "set s P/ZK".into(),
        "watches set /s P/ZK".into(),
        "RSS MB P/ZK".into(),
        "B/watch P/ZK".into(),
        "ratio".into(),
        "every watch fired s P/ZK".into(),
        "events /s P/ZK".into(),
        "ratio".into(),
    ]];
    for &n in counts {
        let (fp, fz) = (get(n, Kind::Paddock), get(n, Kind::ZooKeeper));
        let both = |f: &dyn Fn(&WatchFigures) -> String| {
            format!(
                "{} / {}",
                fp.map_or("-".into(), f),
                fz.map_or("-".into(), f)
            )
        };
        let r = |f: fn(&WatchFigures) -> f64| ratio(fp.map_or(f64::NAN, f), fz.map_or(f64::NAN, f));
        let per_sec = |secs: f64| report::thousands(n as f64 / secs);
        rows.push(vec![
            report::thousands(n as f64),
            both(&|f| format!("{:.2}", f.set_secs)),
            both(&|f| per_sec(f.set_secs)),
            both(&|f| (f.rss_bytes >> 20).to_string()),
            both(&|f| format!("{:.0}", f.bytes_per_watch)),
            r(|f| f.bytes_per_watch),
            both(&|f| format!("{:.2}", f.fire_secs)),
            both(&|f| per_sec(f.fire_secs)),
            r(|f| f.fire_secs),
        ]);
    }
    format!(
        "### Watches ({WATCHERS} sessions, one data watch on each of that many znodes; P = Paddock, ZK = ZooKeeper)\n\n{}",
        markdown(&rows)
    )
}

/// The chart panels of the watch points (x: watches).
pub fn panels<'a>(
    counts: &[u64],
    get: &dyn Fn(u64, Kind) -> Option<&'a WatchFigures>,
) -> Vec<LinePanel> {
    let xs: Vec<f64> = counts.iter().map(|&n| n as f64).collect();
    let series = |f: fn(&WatchFigures) -> f64| series_of(counts, get, &|x| Some(f(x)));
    vec![
        LinePanel {
            title: "set every watch (s)".into(),
            unit: "s".into(),
            xs: xs.clone(),
            ys: series(|f| f.set_secs),
        },
        LinePanel {
            title: "RSS per watch (B)".into(),
            unit: "B".into(),
            xs: xs.clone(),
            ys: series(|f| f.bytes_per_watch),
        },
        LinePanel {
            title: "change every watched znode, every event in (s)".into(),
            unit: "s".into(),
            xs,
            ys: series(|f| f.fire_secs),
        },
    ]
}

//! `paddock bench scale`: Paddock and Apache ZooKeeper 3.8 at growing tree sizes, side by
//! side. At each size both servers start fresh, are filled with that many znodes, then
//! measured: write and read throughput and latency on the full tree, RSS, the snapshots they
//! took while filling, and the time from a restart to serving the tree again. Tables and
//! log-log charts show how each cost grows with the size.
//!
//! Four sweeps: growing trees (`znodes`), growing numbers of held sessions (`sessions`,
//! [`crate::session_sweep`]), of watches (`watches`, [`crate::watch_sweep`]) and of one
//! parent's children (`children`, [`crate::children_sweep`]). The p99 while a snapshot is
//! taken (bench/snapshot-p99.sh) and the SNAP catch-up are not part of it yet.

use crate::args::ScaleArgs;
use crate::children_sweep::{self, ChildFigures};
use crate::compare::{
    comparison_params, fill_params, four_letter, markdown, ratio, spawn, wait_ready, Kind, Restart,
    ServerProc, ServerSpec,
};
use crate::memory;
use crate::report::{self, json_num, json_str};
use crate::session_sweep::{self, SessionFigures};
use crate::svg::{line_chart, LinePanel};
use crate::watch_sweep::{self, WatchFigures};
use crate::workload::{self, Workload, WorkloadResult};
use anyhow::{bail, Context, Result};
use paddock_testkit::fourlw::mntr_value;
use std::io::Write;
use std::time::{Duration, Instant};

/// What one system showed at one size.
#[derive(Debug, Clone)]
struct Figures {
    /// Znodes added (children and their parents).
    znodes: u64,
    populate_secs: f64,
    rss_bytes: u64,
    bytes_per_znode: f64,
    /// The snapshots taken while filling: how many, and the longest (ms), from `mntr`.
    snapshots: Option<(i64, i64)>,
    workloads: Vec<WorkloadResult>,
    restart_secs: f64,
}

/// One system holding one number of sessions: its figures, or why it could not.
struct SessionPoint {
    sessions: u64,
    kind: Kind,
    heap: Option<String>,
    held: Result<SessionFigures, String>,
    /// Not run: the machine's limits do not allow it (not a failure of either server).
    skipped: bool,
}

/// One system with one number of children under one parent: its figures, or why it could not.
struct ChildPoint {
    children: u64,
    kind: Kind,
    held: Result<ChildFigures, String>,
}

/// One system with one number of watches: its figures, or why it could not.
struct WatchPoint {
    watches: u64,
    kind: Kind,
    held: Result<WatchFigures, String>,
}

/// One system at one size: its figures, or why it could not hold the size.
struct Point {
    size: u64,
    kind: Kind,
    heap: Option<String>,
    held: Result<Figures, String>,
}

/// ZooKeeper's heap for `znodes`: 1,536 bytes a znode (it grows by about 1,200) plus 512 MiB,
/// between 1 GiB and 16 GiB, in MiB.
fn auto_heap(znodes: u64) -> String {
    let mib = (znodes * 1536 / (1 << 20) + 512).clamp(1024, 16 * 1024);
    format!("{mib}m")
}

/// Runs the sweep.
pub async fn run(a: ScaleArgs) -> Result<()> {
    let counts = |list: &str| -> Result<Vec<u64>> {
        list.split(',')
            .map(|s| crate::args::parse_count(s).map_err(anyhow::Error::msg))
            .collect()
    };
    let mut sizes: Vec<u64> = if a.smoke {
        vec![100_000]
    } else {
        counts(&a.znodes)?
    };
    let mut held: Vec<u64> = if a.smoke {
        vec![1_000]
    } else {
        counts(&a.held_sessions)?
    };
    let mut watches: Vec<u64> = if a.smoke {
        vec![10_000]
    } else {
        counts(&a.watches)?
    };
    let mut children: Vec<u64> = if a.smoke {
        vec![10_000]
    } else {
        counts(&a.children)?
    };
    let sweeps: Vec<&str> = a.sweeps.split(',').map(str::trim).collect();
    if let Some(bad) = sweeps
        .iter()
        .find(|s| !["znodes", "sessions", "watches", "children"].contains(s))
    {
        bail!("--sweeps takes znodes, sessions, watches and children, not '{bad}'");
    }
    if !sweeps.contains(&"children") {
        children.clear();
    }
    if !sweeps.contains(&"watches") {
        watches.clear();
    }
    if !sweeps.contains(&"znodes") {
        sizes.clear();
    }
    if !sweeps.contains(&"sessions") {
        held.clear();
    }
    let kinds: Vec<Kind> = a
        .systems
        .split(',')
        .map(|s| match s.trim() {
            "paddock" => Ok(Kind::Paddock),
            "zookeeper" | "zk" => Ok(Kind::ZooKeeper),
            other => bail!("--systems takes paddock and zookeeper, not '{other}'"),
        })
        .collect::<Result<_>>()?;
    let workloads = Workload::parse_list(if a.smoke {
        "setdata,getdata"
    } else {
        &a.workloads
    })?;
    let (duration, warmup) = if a.smoke {
        (Duration::from_secs(2), Duration::from_millis(500))
    } else {
        (a.duration, a.warmup)
    };
    let paddock_bin = match &a.paddock_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let mut spec = ServerSpec {
        paddock_bin,
        zk_jars: a.zk_jars.clone(),
        zk_heap: String::new(),
        force_sync: true,
        tls_dir: None,
    };
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let jsonl_path = a.out_dir.join("scale.jsonl");
    let mut jsonl = std::fs::File::create(&jsonl_path)?;
    let started_at = std::time::SystemTime::now();
    let t_all = Instant::now();
    let mut mparams = comparison_params(a.sessions, a.inflight, duration, warmup);
    mparams.value_size = a.value_size;
    let mut points = Vec::new();
    for &size in &sizes {
        for &kind in &kinds {
            let what = format!("{} znodes", report::thousands(size as f64));
            let heap = begin_point(&a, &mut spec, kind, size, &what);
            let held = measure(&a, &spec, kind, size, &workloads, &mparams)
                .await
                .map_err(|e| format!("{e:#}"));
            match &held {
                Ok(f) => {
                    for w in &f.workloads {
                        let j = w.to_json();
                        writeln!(jsonl, "{{\"size\":{size},{}", &j[1..])?;
                    }
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"scale\",\"size\":{size},\"label\":{},\"znodes\":{},\"populate_secs\":{},\"rss_bytes\":{},\"bytes_per_znode\":{},\"snapshots\":{},\"max_snapshot_ms\":{},\"restart_secs\":{}}}",
                        json_str(kind.label()),
                        f.znodes,
                        json_num(f.populate_secs),
                        f.rss_bytes,
                        json_num(f.bytes_per_znode),
                        f.snapshots.map_or(-1, |s| s.0),
                        f.snapshots.map_or(-1, |s| s.1),
                        json_num(f.restart_secs),
                    )?;
                }
                Err(e) => {
                    eprintln!("  could not hold {size} znodes: {e}");
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"scale\",\"size\":{size},\"label\":{},\"failed\":{}}}",
                        json_str(kind.label()),
                        json_str(e)
                    )?;
                }
            }
            points.push(Point {
                size,
                kind,
                heap,
                held,
            });
        }
    }
    let mut session_points = Vec::new();
    for &n in &held {
        for &kind in &kinds {
            let what = format!("{} sessions", report::thousands(n as f64));
            let heap = begin_point(&a, &mut spec, kind, 0, &what);
            if let Err(why) = session_sweep::machine_allows(n as usize) {
                eprintln!("  {why}");
                writeln!(
                    jsonl,
                    "{{\"kind\":\"sessions\",\"sessions\":{n},\"label\":{},\"skipped\":{}}}",
                    json_str(kind.label()),
                    json_str(&why)
                )?;
                session_points.push(SessionPoint {
                    sessions: n,
                    kind,
                    heap,
                    held: Err(why),
                    skipped: true,
                });
                continue;
            }
            let held = session_sweep::measure(&a, &spec, kind, n as usize, &workloads, &mparams)
                .await
                .map_err(|e| format!("{e:#}"));
            match &held {
                Ok(f) => {
                    for w in &f.workloads {
                        let j = w.to_json();
                        writeln!(jsonl, "{{\"sessions\":{n},{}", &j[1..])?;
                    }
                    writeln!(jsonl, "{}", session_sweep::to_json(n as usize, kind, f))?;
                }
                Err(e) => {
                    eprintln!("  could not hold {n} sessions: {e}");
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"sessions\",\"sessions\":{n},\"label\":{},\"failed\":{}}}",
                        json_str(kind.label()),
                        json_str(e)
                    )?;
                }
            }
            session_points.push(SessionPoint {
                sessions: n,
                kind,
                heap,
                held,
                skipped: false,
            });
        }
    }
    let mut watch_points = Vec::new();
    for &n in &watches {
        for &kind in &kinds {
            let what = format!("{} watches", report::thousands(n as f64));
            begin_point(&a, &mut spec, kind, n, &what);
            let held = watch_sweep::measure(&a, &spec, kind, n as usize)
                .await
                .map_err(|e| format!("{e:#}"));
            match &held {
                Ok(f) => writeln!(jsonl, "{}", watch_sweep::to_json(n as usize, kind, f))?,
                Err(e) => {
                    eprintln!("  could not hold {n} watches: {e}");
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"watches\",\"watches\":{n},\"label\":{},\"failed\":{}}}",
                        json_str(kind.label()),
                        json_str(e)
                    )?;
                }
            }
            watch_points.push(WatchPoint {
                watches: n,
                kind,
                held,
            });
        }
    }
    let mut child_points = Vec::new();
    for &n in &children {
        for &kind in &kinds {
            let what = format!("{} children", report::thousands(n as f64));
            begin_point(&a, &mut spec, kind, n, &what);
            let held = children_sweep::measure(&a, &spec, kind, n as usize, &mparams)
                .await
                .map_err(|e| format!("{e:#}"));
            match &held {
                Ok(f) => writeln!(jsonl, "{}", children_sweep::to_json(n as usize, kind, f))?,
                Err(e) => {
                    eprintln!("  could not hold {n} children: {e}");
                    writeln!(
                        jsonl,
                        "{{\"kind\":\"children\",\"children\":{n},\"label\":{},\"failed\":{}}}",
                        json_str(kind.label()),
                        json_str(e)
                    )?;
                }
            }
            child_points.push(ChildPoint {
                children: n,
                kind,
                held,
            });
        }
    }
    let total_secs = t_all.elapsed().as_secs_f64();
    let settings = format!(
        "standalone, forceSync=yes on both; {} sessions x {} in flight, {} s measured + {} s warm-up per workload; \
         znodes of {} B, 1,000 per parent, made by 32 sessions x 64 in flight; ZooKeeper 3.8 (Debian), \
         -XX:+UseG1GC, heap {}; client: one thread",
        mparams.sessions,
        mparams.inflight,
        json_num(duration.as_secs_f64()),
        json_num(warmup.as_secs_f64()),
        a.value_size,
        if a.zk_heap == "auto" {
            "sized per point (1,536 B a znode + 512 MiB, 1-16 GiB)".to_owned()
        } else {
            a.zk_heap.clone()
        }
    );
    let sweep = Sweep {
        points: &points,
        sizes: &sizes,
        sessions: &session_points,
        held: &held,
        watch_points: &watch_points,
        watches: &watches,
        child_points: &child_points,
        children: &children,
        workloads: &workloads,
    };
    let md = render(&sweep, &settings, started_at, total_secs);
    print!("{md}");
    std::fs::write(a.out_dir.join("summary.md"), &md)?;
    std::fs::write(a.out_dir.join("chart.svg"), chart(&sweep))?;
    eprintln!(
        "wrote {}, {} and {}",
        jsonl_path.display(),
        a.out_dir.join("summary.md").display(),
        a.out_dir.join("chart.svg").display()
    );
    let paddock_failed: Vec<String> = points
        .iter()
        .filter(|p| p.kind == Kind::Paddock)
        .filter_map(|p| {
            p.held
                .as_ref()
                .err()
                .map(|e| format!("{} znodes: {e}", p.size))
        })
        .chain(
            session_points
                .iter()
                .filter(|p| p.kind == Kind::Paddock && !p.skipped)
                .filter_map(|p| {
                    p.held
                        .as_ref()
                        .err()
                        .map(|e| format!("{} sessions: {e}", p.sessions))
                }),
        )
        .chain(
            child_points
                .iter()
                .filter(|p| p.kind == Kind::Paddock)
                .filter_map(|p| {
                    p.held
                        .as_ref()
                        .err()
                        .map(|e| format!("{} children: {e}", p.children))
                }),
        )
        .chain(
            watch_points
                .iter()
                .filter(|p| p.kind == Kind::Paddock)
                .filter_map(|p| {
                    p.held
                        .as_ref()
                        .err()
                        .map(|e| format!("{} watches: {e}", p.watches))
                }),
        )
        .collect();
    if !paddock_failed.is_empty() {
        bail!("Paddock failed at: {}", paddock_failed.join("; "));
    }
    if a.smoke {
        let errors: u64 = points
            .iter()
            .filter_map(|p| p.held.as_ref().ok())
            .flat_map(|f| f.workloads.iter().map(|w| w.errors))
            .sum();
        let lost = session_points
            .iter()
            .filter(|p| !p.skipped)
            .any(|p| match &p.held {
                Ok(f) => {
                    let n = p.sessions;
                    f.fired != n
                        || f.shared_fired != n
                        || f.expired > 0
                        || f.ephemerals_after != n
                        || f.fired_after != 2 * n
                }
                Err(_) => true,
            });
        let errors = errors
            + session_points
                .iter()
                .filter_map(|p| p.held.as_ref().ok())
                .flat_map(|f| f.workloads.iter().map(|w| w.errors))
                .sum::<u64>();
        let lost = lost
            || watch_points.iter().any(|p| p.held.is_err())
            || child_points.iter().any(|p| p.held.is_err());
        if errors > 0 || lost || points.iter().any(|p| p.held.is_err()) {
            bail!("the smoke run had errors or lost sessions, ephemerals or watches (see above)");
        }
    }
    Ok(())
}

/// Sets ZooKeeper's heap for a point that holds `znodes` (for `kind` ZooKeeper) and announces
/// the point; returns the heap.
fn begin_point(
    a: &ScaleArgs,
    spec: &mut ServerSpec,
    kind: Kind,
    znodes: u64,
    what: &str,
) -> Option<String> {
    let heap = (kind == Kind::ZooKeeper).then(|| match a.zk_heap.as_str() {
        "auto" => auto_heap(znodes),
        h => h.to_owned(),
    });
    spec.zk_heap = heap.clone().unwrap_or_default();
    eprintln!(
        "{what}: {}{}",
        kind.label(),
        heap.as_ref()
            .map(|h| format!(" (-Xmx{h})"))
            .unwrap_or_default()
    );
    heap
}

/// A fresh server of `kind` for one point (its directory named `name`), serving.
pub(crate) async fn fresh_server(
    a: &ScaleArgs,
    spec: &ServerSpec,
    kind: Kind,
    name: &str,
) -> Result<(ServerProc, std::path::PathBuf)> {
    let dir = a.work_dir.join(format!("{}-{name}", kind.label()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = a.port
        + match kind {
            Kind::Paddock => 0,
            Kind::ZooKeeper => 1,
        };
    let mut srv = spawn(kind, spec, port, &dir)?;
    wait_ready(&mut srv, Duration::from_secs(120)).await?;
    Ok((srv, dir))
}

/// Runs each workload against `target` and prints its line; `at` names the point in errors.
pub(crate) async fn run_workloads(
    workloads: &[Workload],
    params: &workload::Params,
    target: &workload::Target,
    at: &str,
) -> Result<Vec<WorkloadResult>> {
    let mut results = Vec::new();
    for &w in workloads {
        let r = workload::run_workload(w, params, target)
            .await
            .with_context(|| format!("{} {at}", w.name()))?;
        eprintln!(
            "  {:<14} {:>10} ops/s  p99 {:>7} ms  errors {}",
            r.workload,
            report::thousands(r.ops_per_sec),
            report::ms(r.p99_ns),
            r.errors
        );
        results.push(r);
    }
    Ok(results)
}

/// Fills a fresh server of `kind` with `size` znodes and measures it.
async fn measure(
    a: &ScaleArgs,
    spec: &ServerSpec,
    kind: Kind,
    size: u64,
    workloads: &[Workload],
    params: &workload::Params,
) -> Result<Figures> {
    let (mut srv, dir) = fresh_server(a, spec, kind, &size.to_string()).await?;
    let mp = fill_params(size, a.value_size, a.quiet);
    let m = memory::measure(srv.addr, &[srv.addr], srv.pid(), kind.label(), &mp).await?;
    if m.errors > 0 {
        bail!("{} of the creates failed", m.errors);
    }
    eprintln!(
        "  filled in {:.1} s; RSS {} MB, {:.0} B/znode",
        m.populate_secs,
        m.rss_after >> 20,
        m.bytes_per_znode
    );
    let mntr = four_letter(srv.addr, "mntr").await.unwrap_or_default();
    let snapshots =
        mntr_value(&mntr, "zk_cnt_snapshottime").zip(mntr_value(&mntr, "zk_max_snapshottime"));
    let at = format!("at {size} znodes");
    let results = run_workloads(workloads, params, &srv.target(a.quiet), &at).await?;
    let restart_secs = match srv
        .restart_timed(spec, &m.probe_path, Duration::from_secs(1800))
        .await?
    {
        Restart::Serving(s) => s,
        Restart::DataLost => bail!("came back from a restart without its data"),
        Restart::Failed(e) => bail!("restart: {e}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("  restart to serving: {restart_secs:.2} s");
    Ok(Figures {
        znodes: m.znodes_added,
        populate_secs: m.populate_secs,
        rss_bytes: m.rss_after,
        bytes_per_znode: m.bytes_per_znode,
        snapshots,
        workloads: results,
        restart_secs,
    })
}

fn figures(points: &[Point], size: u64, kind: Kind) -> Option<&Figures> {
    points
        .iter()
        .find(|p| p.size == size && p.kind == kind)
        .and_then(|p| p.held.as_ref().ok())
}

fn workload_of(f: Option<&Figures>, w: Workload) -> Option<&WorkloadResult> {
    f.and_then(|f| f.workloads.iter().find(|r| r.workload == w.name()))
}

pub(crate) fn ms_of(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One figure of a sweep's points for a chart: per system (Paddock, then ZooKeeper), its value
/// at each point (`None` where the point was not held).
pub(crate) fn series_of<'a, T: 'a>(
    counts: &[u64],
    get: &dyn Fn(u64, Kind) -> Option<&'a T>,
    f: &dyn Fn(&T) -> Option<f64>,
) -> Vec<Vec<Option<f64>>> {
    [Kind::Paddock, Kind::ZooKeeper]
        .iter()
        .map(|&k| counts.iter().map(|&n| get(n, k).and_then(f)).collect())
        .collect()
}

/// The rows of a workloads-by-size table: per workload and size, both systems side by side.
pub(crate) fn workload_table<'a>(
    axis: &str,
    sizes: &[u64],
    workloads: &[Workload],
    get: &dyn Fn(u64, Kind, Workload) -> Option<&'a WorkloadResult>,
) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "workload".to_string(),
        axis.into(),
        "ops/s P/ZK".into(),
        "ratio".into(),
        "p50 ms P/ZK".into(),
        "p99 ms P/ZK".into(),
        "p99 ratio".into(),
        "p99.9 ms P/ZK".into(),
        "errors P/ZK".into(),
    ]];
    for &w in workloads {
        for &size in sizes {
            let (rp, rz) = (get(size, Kind::Paddock, w), get(size, Kind::ZooKeeper, w));
            let both = |f: &dyn Fn(&WorkloadResult) -> String| {
                format!(
                    "{} / {}",
                    rp.map_or("-".into(), f),
                    rz.map_or("-".into(), f)
                )
            };
            let v =
                |r: Option<&WorkloadResult>, f: fn(&WorkloadResult) -> f64| r.map_or(f64::NAN, f);
            rows.push(vec![
                w.name().to_string(),
                report::thousands(size as f64),
                both(&|r| report::thousands(r.ops_per_sec)),
                ratio(v(rp, |r| r.ops_per_sec), v(rz, |r| r.ops_per_sec)),
                both(&|r| format!("{:.2}", ms_of(r.p50_ns))),
                both(&|r| format!("{:.2}", ms_of(r.p99_ns))),
                ratio(v(rp, |r| ms_of(r.p99_ns)), v(rz, |r| ms_of(r.p99_ns))),
                both(&|r| format!("{:.2}", ms_of(r.p999_ns))),
                both(&|r| r.errors.to_string()),
            ]);
        }
    }
    rows
}

/// Everything one run measured.
struct Sweep<'a> {
    points: &'a [Point],
    sizes: &'a [u64],
    sessions: &'a [SessionPoint],
    held: &'a [u64],
    watch_points: &'a [WatchPoint],
    watches: &'a [u64],
    child_points: &'a [ChildPoint],
    children: &'a [u64],
    workloads: &'a [Workload],
}

impl Sweep<'_> {
    fn child_figures(&self, n: u64, kind: Kind) -> Option<&ChildFigures> {
        self.child_points
            .iter()
            .find(|p| p.children == n && p.kind == kind)
            .and_then(|p| p.held.as_ref().ok())
    }

    fn watch_figures(&self, n: u64, kind: Kind) -> Option<&WatchFigures> {
        self.watch_points
            .iter()
            .find(|p| p.watches == n && p.kind == kind)
            .and_then(|p| p.held.as_ref().ok())
    }

    fn session_figures(&self, n: u64, kind: Kind) -> Option<&SessionFigures> {
        self.sessions
            .iter()
            .find(|p| p.sessions == n && p.kind == kind)
            .and_then(|p| p.held.as_ref().ok())
    }
}

/// The markdown report: settings, one table of costs by size, one of each workload by size,
/// the same for the session points, and what could not be held.
fn render(
    sweep: &Sweep,
    settings: &str,
    started_at: std::time::SystemTime,
    total_secs: f64,
) -> String {
    let Sweep {
        points,
        sizes,
        workloads,
        ..
    } = *sweep;
    let p = Kind::Paddock;
    let z = Kind::ZooKeeper;
    let mut costs = vec![vec![
        "znodes".to_string(),
        "RSS MB P/ZK".into(),
        "B/znode P/ZK".into(),
        "ratio".into(),
        "restart s P/ZK".into(),
        "ratio".into(),
        "snapshots while filling P/ZK (longest ms)".into(),
        "fill s P/ZK".into(),
        "ZK heap".into(),
    ]];
    for &size in sizes {
        let (fp, fz) = (figures(points, size, p), figures(points, size, z));
        let both = |f: &dyn Fn(&Figures) -> String| {
            format!(
                "{} / {}",
                fp.map_or("-".into(), f),
                fz.map_or("-".into(), f)
            )
        };
        let num = |x: Option<&Figures>, f: fn(&Figures) -> f64| x.map_or(f64::NAN, f);
        let heap = points
            .iter()
            .find(|q| q.size == size && q.kind == z)
            .and_then(|q| q.heap.clone())
            .unwrap_or_else(|| "-".into());
        costs.push(vec![
            report::thousands(size as f64),
            both(&|f| (f.rss_bytes >> 20).to_string()),
            both(&|f| format!("{:.0}", f.bytes_per_znode)),
            ratio(
                num(fp, |f| f.bytes_per_znode),
                num(fz, |f| f.bytes_per_znode),
            ),
            both(&|f| format!("{:.2}", f.restart_secs)),
            ratio(num(fp, |f| f.restart_secs), num(fz, |f| f.restart_secs)),
            both(&|f| match f.snapshots {
                Some((n, ms)) if n > 0 => format!("{n} ({ms})"),
                Some(_) => "0".into(),
                None => "?".into(),
            }),
            both(&|f| format!("{:.1}", f.populate_secs)),
            heap,
        ]);
    }
    let loads = workload_table("znodes", sizes, workloads, &|size, kind, w| {
        workload_of(figures(points, size, kind), w)
    });
    let heap_of = |h: &Option<String>| {
        h.as_ref()
            .map(|h| format!(" (-Xmx{h})"))
            .unwrap_or_default()
    };
    let failed: Vec<String> = points
        .iter()
        .filter_map(|q| {
            q.held.as_ref().err().map(|e| {
                format!(
                    "- {} could not hold {} znodes{}: {e}",
                    q.kind.label(),
                    report::thousands(q.size as f64),
                    heap_of(&q.heap)
                )
            })
        })
        .chain(sweep.child_points.iter().filter_map(|q| {
            q.held.as_ref().err().map(|e| {
                format!(
                    "- {} could not hold {} children: {e}",
                    q.kind.label(),
                    report::thousands(q.children as f64)
                )
            })
        }))
        .chain(sweep.watch_points.iter().filter_map(|q| {
            q.held.as_ref().err().map(|e| {
                format!(
                    "- {} could not hold {} watches: {e}",
                    q.kind.label(),
                    report::thousands(q.watches as f64)
                )
            })
        }))
        .chain(sweep.sessions.iter().filter_map(|q| {
            q.held.as_ref().err().map(|e| {
                format!(
                    "- {} {} {} sessions{}: {e}",
                    q.kind.label(),
                    if q.skipped {
                        "was not given"
                    } else {
                        "could not hold"
                    },
                    report::thousands(q.sessions as f64),
                    heap_of(&q.heap)
                )
            })
        }))
        .collect();
    let znode_tables = if sizes.is_empty() {
        String::new()
    } else {
        format!(
            "### Costs by tree size (P = Paddock, ZK = ZooKeeper; ratio = Paddock/ZooKeeper)\n\n{}\n\
             ### Workloads on the full tree\n\n{}\n",
            markdown(&costs),
            markdown(&loads)
        )
    };
    let session_tables = if sweep.held.is_empty() {
        String::new()
    } else {
        let heaps: Vec<String> = sweep
            .sessions
            .iter()
            .filter_map(|q| q.heap.clone())
            .collect();
        format!(
            "{}\nZooKeeper's heap at these points: {}.\n\n",
            session_sweep::render(sweep.held, workloads, &|n, k| sweep.session_figures(n, k)),
            heaps.first().map_or("-".into(), |h| format!("-Xmx{h}"))
        )
    };
    let settings = match crate::compare::git_rev() {
        Some(rev) => format!("{settings}; work tree at {rev}"),
        None => settings.to_owned(),
    };
    let watch_tables = if sweep.watches.is_empty() {
        String::new()
    } else {
        format!(
            "{}\n",
            watch_sweep::render(sweep.watches, &|n, k| sweep.watch_figures(n, k))
        )
    };
    let child_tables = if sweep.children.is_empty() {
        String::new()
    } else {
        format!(
            "{}\n",
            children_sweep::render(sweep.children, &|n, k| sweep.child_figures(n, k))
        )
    };
    format!(
        "Run {}, {total_secs:.0} s in all. {settings}.\n\nCommand: `paddock bench scale {}`\n\n\
         {znode_tables}{session_tables}{watch_tables}{child_tables}{}",
        crate::compare::humantime(started_at),
        std::env::args().skip(3).collect::<Vec<_>>().join(" "),
        if failed.is_empty() {
            String::new()
        } else {
            format!("\nNot held on this machine:\n\n{}\n", failed.join("\n"))
        }
    )
}

/// Log-log charts of each figure against the tree size, then against the sessions held.
fn chart(sweep: &Sweep) -> String {
    let Sweep {
        points,
        sizes,
        workloads,
        ..
    } = *sweep;
    let xs: Vec<f64> = sizes.iter().map(|&s| s as f64).collect();
    let kinds = [Kind::Paddock, Kind::ZooKeeper];
    let series_of = |f: &dyn Fn(&Figures) -> Option<f64>| -> Vec<Vec<Option<f64>>> {
        kinds
            .iter()
            .map(|&k| {
                sizes
                    .iter()
                    .map(|&s| figures(points, s, k).and_then(f))
                    .collect()
            })
            .collect()
    };
    let mut panels = Vec::new();
    for &w in workloads {
        panels.push(LinePanel {
            title: format!("{} throughput (ops/s)", w.name()),
            unit: "".into(),
            xs: xs.clone(),
            ys: series_of(&|f| {
                f.workloads
                    .iter()
                    .find(|r| r.workload == w.name())
                    .map(|r| r.ops_per_sec)
            }),
        });
        panels.push(LinePanel {
            title: format!("{} p99 (ms)", w.name()),
            unit: "ms".into(),
            xs: xs.clone(),
            ys: series_of(&|f| {
                f.workloads
                    .iter()
                    .find(|r| r.workload == w.name())
                    .map(|r| ms_of(r.p99_ns))
            }),
        });
    }
    panels.push(LinePanel {
        title: "RSS (MB)".into(),
        unit: "MB".into(),
        xs: xs.clone(),
        ys: series_of(&|f| Some((f.rss_bytes >> 20) as f64)),
    });
    panels.push(LinePanel {
        title: "restart to serving (s)".into(),
        unit: "s".into(),
        xs: xs.clone(),
        ys: series_of(&|f| Some(f.restart_secs)),
    });
    panels.push(LinePanel {
        title: "longest snapshot while filling (ms)".into(),
        unit: "ms".into(),
        xs: xs.clone(),
        ys: series_of(&|f| f.snapshots.filter(|s| s.0 > 0).map(|s| s.1 as f64)),
    });
    panels.push(LinePanel {
        title: "time to fill (s)".into(),
        unit: "s".into(),
        xs,
        ys: series_of(&|f| Some(f.populate_secs)),
    });
    if sizes.is_empty() {
        panels.clear();
    }
    panels.extend(session_sweep::panels(sweep.held, workloads, &|n, k| {
        sweep.session_figures(n, k)
    }));
    panels.extend(watch_sweep::panels(sweep.watches, &|n, k| {
        sweep.watch_figures(n, k)
    }));
    panels.extend(children_sweep::panels(sweep.children, &|n, k| {
        sweep.child_figures(n, k)
    }));
    line_chart(
        "Paddock vs Apache ZooKeeper 3.8 at scale (log-log; standalone, forceSync=yes)",
        &crate::svg::paddock_and_zookeeper(),
        &panels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_grows_with_the_tree_within_bounds() {
        assert_eq!(auto_heap(100_000), "1024m");
        assert_eq!(auto_heap(1_000_000), "1976m");
        assert_eq!(auto_heap(10_000_000), "15160m");
        assert_eq!(auto_heap(100_000_000), "16384m");
    }

    fn held(rss_mb: u64, restart: f64, ops: f64) -> Result<Figures, String> {
        Ok(Figures {
            znodes: 100_100,
            populate_secs: 2.0,
            rss_bytes: rss_mb << 20,
            bytes_per_znode: 200.0,
            snapshots: Some((1, 40)),
            workloads: vec![WorkloadResult {
                workload: "setdata".into(),
                ops_per_sec: ops,
                p99_ns: 2_000_000,
                ..Default::default()
            }],
            restart_secs: restart,
        })
    }

    #[test]
    fn the_report_puts_both_systems_side_by_side_and_names_what_was_not_held() {
        let points = vec![
            Point {
                size: 100_000,
                kind: Kind::Paddock,
                heap: None,
                held: held(40, 0.2, 100_000.0),
            },
            Point {
                size: 100_000,
                kind: Kind::ZooKeeper,
                heap: Some("1024m".into()),
                held: held(200, 2.0, 50_000.0),
            },
            Point {
                size: 10_000_000,
                kind: Kind::Paddock,
                heap: None,
                held: held(2000, 2.0, 90_000.0),
            },
            Point {
                size: 10_000_000,
                kind: Kind::ZooKeeper,
                heap: Some("15160m".into()),
                held: Err("OutOfMemoryError".into()),
            },
        ];
        let sizes = [100_000, 10_000_000];
        let sweep = Sweep {
            points: &points,
            sizes: &sizes,
            sessions: &[],
            held: &[],
            watch_points: &[],
            watches: &[],
            child_points: &[],
            children: &[],
            workloads: &[Workload::SetData],
        };
        let md = render(&sweep, "s", std::time::SystemTime::now(), 1.0);
        assert!(md.contains("| 100,000 | 40 / 200 |"), "{md}");
        assert!(md.contains("0.10x"), "the restart ratio: {md}");
        assert!(
            md.contains("| setdata | 100,000 | 100,000 / 50,000 | 2.00x |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- zookeeper could not hold 10,000,000 znodes (-Xmx15160m): OutOfMemoryError"
            ),
            "{md}"
        );
        let svg = chart(&sweep);
        assert!(svg.contains("Paddock: 2,000 MB at 10,000,000"), "{svg}");
    }
}

//! `paddock bench scale`: Paddock and Apache ZooKeeper 3.8 at growing tree sizes, side by
//! side. At each size both servers start fresh, are filled with that many znodes, then
//! measured: write and read throughput and latency on the full tree, RSS, the snapshots they
//! took while filling, and the time from a restart to serving the tree again. Tables and
//! log-log charts show how each cost grows with the size.
//!
//! Measured so far: the znode sweep. The session, watch and child-list sweeps, the
//! p99 while a snapshot is taken and the SNAP catch-up are not part of it yet.

use crate::args::ScaleArgs;
use crate::compare::{
    comparison_params, fill_params, four_letter, markdown, ratio, spawn, wait_ready, Kind, Restart,
    ServerSpec,
};
use crate::memory;
use crate::report::{self, json_num, json_str};
use crate::svg::{line_chart, LinePanel};
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
    let sizes: Vec<u64> = if a.smoke {
        vec![100_000]
    } else {
        a.znodes
            .split(',')
            .map(|s| crate::args::parse_count(s).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?
    };
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
            let heap = (kind == Kind::ZooKeeper).then(|| match a.zk_heap.as_str() {
                "auto" => auto_heap(size),
                h => h.to_owned(),
            });
            spec.zk_heap = heap.clone().unwrap_or_default();
            eprintln!(
                "{} znodes: {}{}",
                report::thousands(size as f64),
                kind.label(),
                heap.as_ref()
                    .map(|h| format!(" (-Xmx{h})"))
                    .unwrap_or_default()
            );
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
    let md = render(
        &points, &sizes, &workloads, &settings, started_at, total_secs,
    );
    print!("{md}");
    std::fs::write(a.out_dir.join("summary.md"), &md)?;
    std::fs::write(
        a.out_dir.join("chart.svg"),
        chart(&points, &sizes, &workloads),
    )?;
    eprintln!(
        "wrote {}, {} and {}",
        jsonl_path.display(),
        a.out_dir.join("summary.md").display(),
        a.out_dir.join("chart.svg").display()
    );
    let paddock_failed: Vec<String> = points
        .iter()
        .filter(|p| p.kind == Kind::Paddock)
        .filter_map(|p| p.held.as_ref().err().map(|e| format!("{}: {e}", p.size)))
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
        if errors > 0 || points.iter().any(|p| p.held.is_err()) {
            bail!("the smoke run had errors (see above)");
        }
    }
    Ok(())
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
    let dir = a.work_dir.join(format!("{}-{size}", kind.label()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = a.port
        + match kind {
            Kind::Paddock => 0,
            Kind::ZooKeeper => 1,
        };
    let mut srv = spawn(kind, spec, port, &dir)?;
    wait_ready(&mut srv, Duration::from_secs(120)).await?;
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
    let target = srv.target(a.quiet);
    let mut results = Vec::new();
    for &w in workloads {
        let r = workload::run_workload(w, params, &target)
            .await
            .with_context(|| format!("{} at {size} znodes", w.name()))?;
        eprintln!(
            "  {:<14} {:>10} ops/s  p99 {:>7} ms  errors {}",
            r.workload,
            report::thousands(r.ops_per_sec),
            report::ms(r.p99_ns),
            r.errors
        );
        results.push(r);
    }
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

fn ms_of(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The markdown report: settings, one table of costs by size, one of each workload by size,
/// and what could not be held.
fn render(
    points: &[Point],
    sizes: &[u64],
    workloads: &[Workload],
    settings: &str,
    started_at: std::time::SystemTime,
    total_secs: f64,
) -> String {
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
    let mut loads = vec![vec![
        "workload".to_string(),
        "znodes".into(),
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
            let (rp, rz) = (
                workload_of(figures(points, size, p), w),
                workload_of(figures(points, size, z), w),
            );
            let both = |f: &dyn Fn(&WorkloadResult) -> String| {
                format!(
                    "{} / {}",
                    rp.map_or("-".into(), f),
                    rz.map_or("-".into(), f)
                )
            };
            let v =
                |r: Option<&WorkloadResult>, f: fn(&WorkloadResult) -> f64| r.map_or(f64::NAN, f);
            loads.push(vec![
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
    let failed: Vec<String> = points
        .iter()
        .filter_map(|q| {
            q.held.as_ref().err().map(|e| {
                format!(
                    "- {} could not hold {} znodes{}: {e}",
                    q.kind.label(),
                    report::thousands(q.size as f64),
                    q.heap
                        .as_ref()
                        .map(|h| format!(" (-Xmx{h})"))
                        .unwrap_or_default()
                )
            })
        })
        .collect();
    let settings = match crate::compare::git_rev() {
        Some(rev) => format!("{settings}; work tree at {rev}"),
        None => settings.to_owned(),
    };
    format!(
        "Run {}, {total_secs:.0} s in all. {settings}.\n\nCommand: `paddock bench scale {}`\n\n\
         ### Costs by tree size (P = Paddock, ZK = ZooKeeper; ratio = Paddock/ZooKeeper)\n\n{}\n\
         ### Workloads on the full tree\n\n{}\n{}",
        crate::compare::humantime(started_at),
        std::env::args().skip(3).collect::<Vec<_>>().join(" "),
        markdown(&costs),
        markdown(&loads),
        if failed.is_empty() {
            String::new()
        } else {
            format!("\nNot held on this machine:\n\n{}\n", failed.join("\n"))
        }
    )
}

/// Log-log charts of each figure against the tree size.
fn chart(points: &[Point], sizes: &[u64], workloads: &[Workload]) -> String {
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
    line_chart(
        "Paddock vs Apache ZooKeeper 3.8 by tree size (log-log; standalone, forceSync=yes)",
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
        let md = render(
            &points,
            &sizes,
            &[Workload::SetData],
            "s",
            std::time::SystemTime::now(),
            1.0,
        );
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
        let svg = chart(&points, &sizes, &[Workload::SetData]);
        assert!(svg.contains("Paddock: 2,000 MB at 10,000,000"), "{svg}");
    }
}

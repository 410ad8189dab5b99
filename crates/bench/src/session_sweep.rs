//! The scale sweep's session points (`paddock bench scale --sweeps sessions`): a fresh
//! server of each kind holds 1,000, 10,000 or 50,000 idle sessions, each with one ephemeral
//! znode and one data watch ([`crate::held`]), and is measured with them: the time to open
//! them, RSS per session, the workloads (their own 32 sessions) beside them, the time for a
//! change to every session's znode to reach every watch, the time for one change of a path
//! all of them watch to reach them all, and, after a SIGKILL and restart,
//! the time until every session is back with none expired, its ephemeral and its watch kept.

use crate::args::ScaleArgs;
use crate::compare::{spawn, Kind, ServerSpec};
use crate::conn::Conn;
use crate::held::{Fleet, PARENT};
use crate::procstat::{rss_bytes, Proc};
use crate::report::{self, json_num, json_str};
use crate::scale::{fresh_server, ms_of, run_workloads, series_of, workload_table};
use crate::svg::LinePanel;
use crate::workload::{self, Workload, WorkloadResult};
use anyhow::{bail, Result};
use paddock_proto::{op, Reader, Record, Stat};
use std::time::{Duration, Instant};

/// Open files a point needs beyond its sessions (the workloads' sessions, logs, slack).
const SPARE_FILES: u64 = 2_048;

/// What one system showed holding one number of sessions.
#[derive(Debug, Clone, Default)]
pub struct SessionFigures {
    /// Seconds to open every session with its ephemeral znode and watch (256 at a time).
    pub open_secs: f64,
    /// RSS with the sessions held.
    pub rss_bytes: u64,
    /// RSS growth per session held.
    pub bytes_per_session: f64,
    /// The workloads, run beside the held sessions.
    pub workloads: Vec<WorkloadResult>,
    /// Seconds from the first of one setData per session's znode until every watch fired.
    pub fire_secs: f64,
    /// Watch events that arrived for it (the sessions, when none is lost).
    pub fired: u64,
    /// Seconds from one setData of the parent, which every session watches, until every
    /// session had its event.
    pub shared_secs: f64,
    /// Events that arrived for it.
    pub shared_fired: u64,
    /// Seconds from the server's SIGKILL until every session was back (its restart included).
    pub back_secs: f64,
    /// Sessions the restarted server said had expired.
    pub expired: u64,
    /// The ephemeral znodes left after the restart.
    pub ephemerals_after: u64,
    /// Watch events after the restart for a second change of every session's znode and of
    /// the parent: both of every session's watches, when none is lost.
    pub fired_after: u64,
}

/// Raises this process's open-file limit (inherited by the servers it starts) to `want`,
/// or as far as it goes; returns the soft limit in force.
pub fn raise_open_files(want: u64) -> u64 {
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        // Root may raise the hard limit too; anyone may raise the soft one to the hard one.
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want.max(lim.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        let soft = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            return lim.rlim_max;
        }
        lim.rlim_cur
    }
}

/// Whether this machine lets a process hold `n` sessions (raising the open-file limit as far
/// as it goes); why not, if not. Both the bench and the server need that many descriptors.
pub fn machine_allows(n: usize) -> Result<(), String> {
    let need = n as u64 + SPARE_FILES;
    let limit = raise_open_files(need);
    if limit < need {
        return Err(format!(
            "not run: {} sessions need {} open files per process and this machine allows {} \
             (its hard limit, which this process may not raise)",
            report::thousands(n as f64),
            report::thousands(need as f64),
            report::thousands(limit as f64)
        ));
    }
    Ok(())
}

/// Holds `n` sessions on a fresh server of `kind` and measures it.
pub async fn measure(
    a: &ScaleArgs,
    spec: &ServerSpec,
    kind: Kind,
    n: usize,
    workloads: &[Workload],
    params: &workload::Params,
) -> Result<SessionFigures> {
    machine_allows(n).map_err(anyhow::Error::msg)?;
    let (mut srv, dir) = fresh_server(a, spec, kind, &format!("sessions-{n}")).await?;
    let port = srv.addr.port();
    let rss_before = rss_bytes(Proc::Pid(srv.pid())).unwrap_or(0);
    let t0 = Instant::now();
    let fleet = Fleet::open(srv.addr, n).await?;
    let open_secs = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_bytes(Proc::Pid(srv.pid())).unwrap_or(0);
    eprintln!(
        "  {} sessions open in {open_secs:.1} s; RSS {} MB, {:.0} B/session",
        report::thousands(n as f64),
        rss >> 20,
        rss.saturating_sub(rss_before) as f64 / n as f64
    );
    let at = format!("beside {n} sessions");
    let results = run_workloads(workloads, params, &srv.target(a.quiet), &at).await?;
    let watch_limit = Duration::from_secs(120);
    let (fire_secs, fired) = fleet.fire(srv.addr, watch_limit).await?;
    eprintln!("  every watch fired in {fire_secs:.2} s ({fired} events)");
    let (shared_secs, shared_fired) = fleet.fire_shared(srv.addr, watch_limit).await?;
    eprintln!(
        "  one change seen by every session watching it in {shared_secs:.3} s ({shared_fired} events)"
    );
    if fleet.connected() != n as u64 {
        bail!(
            "{} of {n} sessions connected before the kill",
            fleet.connected()
        );
    }
    let killed = Instant::now();
    srv.kill();
    // Every session sees its connection drop before the server is back.
    while fleet.connected() > 0 && killed.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    srv = spawn(kind, spec, port, &dir)?;
    if !fleet.settled(Duration::from_secs(300)).await {
        bail!(
            "after the restart only {} of {n} sessions came back within 300 s ({} expired)",
            fleet.connected(),
            fleet.expired()
        );
    }
    let back_secs = killed.elapsed().as_secs_f64();
    let expired = fleet.expired();
    let ephemerals_after = children_of(srv.addr, PARENT).await?;
    let (_, own_after) = fleet.fire(srv.addr, watch_limit).await?;
    let (_, shared_after) = fleet.fire_shared(srv.addr, watch_limit).await?;
    let fired_after = own_after + shared_after;
    eprintln!(
        "  SIGKILL to every session back: {back_secs:.2} s; {expired} expired, {ephemerals_after} ephemerals and {fired_after} watches kept"
    );
    // The server closes first, so that the connections' TIME_WAIT is on its side and the
    // next point's clients find their ports free.
    srv.stop();
    drop(fleet);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(SessionFigures {
        open_secs,
        rss_bytes: rss,
        bytes_per_session: rss.saturating_sub(rss_before) as f64 / n as f64,
        workloads: results,
        fire_secs,
        fired,
        shared_secs,
        shared_fired,
        back_secs,
        expired,
        ephemerals_after,
        fired_after,
    })
}

/// The number of children of `path`, from a new session's exists.
async fn children_of(addr: std::net::SocketAddr, path: &str) -> Result<u64> {
    let mut c = Conn::connect(addr).await?;
    let r = c
        .call(op::EXISTS, &crate::gen::path_watch_body(path, false))
        .await?;
    let _ = c.close().await;
    if r.head.err != 0 {
        bail!("exists {path}: error {}", r.head.err);
    }
    Ok(Stat::decode(&mut Reader::new(&r.body))?.num_children as u64)
}

/// One JSON line of a point.
pub fn to_json(n: usize, kind: Kind, f: &SessionFigures) -> String {
    format!(
        "{{\"kind\":\"sessions\",\"sessions\":{n},\"label\":{},\"open_secs\":{},\"rss_bytes\":{},\"bytes_per_session\":{},\"fire_secs\":{},\"fired\":{},\"shared_secs\":{},\"shared_fired\":{},\"back_secs\":{},\"expired\":{},\"ephemerals_after\":{},\"fired_after\":{}}}",
        json_str(kind.label()),
        json_num(f.open_secs),
        f.rss_bytes,
        json_num(f.bytes_per_session),
        json_num(f.fire_secs),
        f.fired,
        json_num(f.shared_secs),
        f.shared_fired,
        json_num(f.back_secs),
        f.expired,
        f.ephemerals_after,
        f.fired_after,
    )
}

/// The markdown of the session points: costs by sessions held, then the workloads beside
/// them. `get` gives one system's figures at one point.
pub fn render<'a>(
    counts: &[u64],
    workloads: &[Workload],
    get: &dyn Fn(u64, Kind) -> Option<&'a SessionFigures>,
) -> String {
    let mut costs = vec![vec![
        "sessions".to_string(),
        "open s P/ZK".into(),
        "RSS MB P/ZK".into(),
        "B/session P/ZK".into(),
        "ratio".into(),
        "every watch fired s P/ZK".into(),
        "ratio".into(),
        "one path, all its watches fired ms P/ZK".into(),
        "ratio".into(),
        "SIGKILL to all back s P/ZK".into(),
        "ratio".into(),
        "expired P/ZK".into(),
        "ephemerals kept P/ZK".into(),
        "watches kept (2 a session) P/ZK".into(),
    ]];
    for &n in counts {
        let (fp, fz) = (get(n, Kind::Paddock), get(n, Kind::ZooKeeper));
        let both = |f: &dyn Fn(&SessionFigures) -> String| {
            format!(
                "{} / {}",
                fp.map_or("-".into(), f),
                fz.map_or("-".into(), f)
            )
        };
        let r = |f: fn(&SessionFigures) -> f64| {
            crate::compare::ratio(fp.map_or(f64::NAN, f), fz.map_or(f64::NAN, f))
        };
        costs.push(vec![
            report::thousands(n as f64),
            both(&|f| format!("{:.2}", f.open_secs)),
            both(&|f| (f.rss_bytes >> 20).to_string()),
            both(&|f| format!("{:.0}", f.bytes_per_session)),
            r(|f| f.bytes_per_session),
            both(&|f| format!("{:.2}", f.fire_secs)),
            r(|f| f.fire_secs),
            both(&|f| format!("{:.1}", f.shared_secs * 1e3)),
            r(|f| f.shared_secs),
            both(&|f| format!("{:.2}", f.back_secs)),
            r(|f| f.back_secs),
            both(&|f| f.expired.to_string()),
            both(&|f| report::thousands(f.ephemerals_after as f64)),
            both(&|f| report::thousands(f.fired_after as f64)),
        ]);
    }
    let loads = workload_table("sessions held", counts, workloads, &|n, kind, w| {
        get(n, kind).and_then(|f| f.workloads.iter().find(|r| r.workload == w.name()))
    });
    format!(
        "### Sessions held (each with an ephemeral znode, a data watch on it and one on their common parent; P = Paddock, ZK = ZooKeeper)\n\n{}\n\
         ### Workloads beside the held sessions\n\n{}",
        crate::compare::markdown(&costs),
        crate::compare::markdown(&loads)
    )
}

/// The chart panels of the session points (x: sessions held).
pub fn panels<'a>(
    counts: &[u64],
    workloads: &[Workload],
    get: &dyn Fn(u64, Kind) -> Option<&'a SessionFigures>,
) -> Vec<LinePanel> {
    let xs: Vec<f64> = counts.iter().map(|&n| n as f64).collect();
    let series = |f: &dyn Fn(&SessionFigures) -> Option<f64>| series_of(counts, get, f);
    let mut panels = Vec::new();
    for &w in workloads {
        let of =
            move |f: &SessionFigures| f.workloads.iter().find(|r| r.workload == w.name()).cloned();
        panels.push(LinePanel {
            title: format!("{} throughput (ops/s) by sessions held", w.name()),
            unit: "".into(),
            xs: xs.clone(),
            ys: series(&|f| of(f).map(|r| r.ops_per_sec)),
        });
        panels.push(LinePanel {
            title: format!("{} p99 (ms) by sessions held", w.name()),
            unit: "ms".into(),
            xs: xs.clone(),
            ys: series(&|f| of(f).map(|r| ms_of(r.p99_ns))),
        });
    }
    panels.push(LinePanel {
        title: "RSS (MB) by sessions held".into(),
        unit: "MB".into(),
        xs: xs.clone(),
        ys: series(&|f| Some((f.rss_bytes >> 20) as f64)),
    });
    panels.push(LinePanel {
        title: "open every session (s)".into(),
        unit: "s".into(),
        xs: xs.clone(),
        ys: series(&|f| Some(f.open_secs)),
    });
    panels.push(LinePanel {
        title: "every watch fired (s)".into(),
        unit: "s".into(),
        xs: xs.clone(),
        ys: series(&|f| Some(f.fire_secs)),
    });
    panels.push(LinePanel {
        title: "one change, every session watching it told (ms)".into(),
        unit: "ms".into(),
        xs: xs.clone(),
        ys: series(&|f| Some(f.shared_secs * 1e3)),
    });
    panels.push(LinePanel {
        title: "SIGKILL to every session back (s)".into(),
        unit: "s".into(),
        xs,
        ys: series(&|f| Some(f.back_secs)),
    });
    panels
}

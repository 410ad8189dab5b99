//! `paddock bench ensemble`: a Paddock ensemble and an Apache ZooKeeper 3.8 ensemble on this
//! machine, configured alike, one after the other in one run:
//!
//! 1. throughput with 3 voters: workloads with sessions spread over all servers;
//! 2. the same with 3 voters + 2 observers;
//! 3. failover: SIGKILL of the leader while one client per server writes synchronously; the
//!    time to each client's next acknowledged write (`crate::failover`), over several rounds,
//!    the killed server restarted and the ensemble whole again between rounds.
//!
//! Only one ensemble runs at a time. Figures are reported per system with Paddock/ZooKeeper
//! ratios; results go to `<out-dir>/ensemble.jsonl` and `<out-dir>/summary.md`.

use crate::args::EnsembleArgs;
use crate::cluster::{Cluster, ClusterSpec, Role};
use crate::compare::{self, markdown, median, ratio, Kind};
use crate::failover::{self, FailoverParams, RoundOutcome};
use crate::report::{self, json_str, render};
use crate::workload::{self, Params, Target, Workload, WorkloadResult};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Server layouts of the throughput phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Voters,
    WithObservers,
}

/// One workload result with what it ran on.
struct Row {
    layout: Layout,
    kind: Kind,
    result: WorkloadResult,
    /// Server CPU of the leader (% of one core).
    leader_cpu: f64,
}

/// Paddock's and ZooKeeper's failover rounds.
struct FailoverRuns {
    kind: Kind,
    rounds: Vec<RoundOutcome>,
}

fn layout_name(l: Layout, a: &EnsembleArgs) -> String {
    match l {
        Layout::Voters => format!("{} voters", a.voters),
        Layout::WithObservers => format!("{} voters + {} observers", a.voters, a.observers),
    }
}

/// Applies `--smoke`: Paddock only, short, one failover round with a 10 s limit.
fn smoke_settings(a: &mut EnsembleArgs) {
    a.systems = "paddock".into();
    a.rounds = 1;
    a.duration = Duration::from_secs(2);
    a.warmup = Duration::from_millis(500);
    a.observer_workloads = "setdata,getdata".into();
    a.failover_rounds = 1;
    a.failover_limit = Duration::from_secs(10);
    a.start_limit = Duration::from_secs(20);
    a.settle = Duration::ZERO;
    a.prewarm = Duration::ZERO;
}

fn parse_systems(s: &str) -> Result<Vec<Kind>> {
    let mut out = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(match p.to_ascii_lowercase().as_str() {
            "paddock" => Kind::Paddock,
            "zookeeper" | "zk" => Kind::ZooKeeper,
            other => bail!("unknown system '{other}' (paddock, zookeeper)"),
        });
    }
    if out.is_empty() {
        bail!("--systems names no system");
    }
    Ok(out)
}

fn invoked_as() -> String {
    match std::env::var("PADDOCK_BENCH_INVOKED_AS") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => format!(
            "paddock bench ensemble {}",
            std::env::args().skip(3).collect::<Vec<_>>().join(" ")
        ),
    }
}

/// Runs the whole ensemble benchmark.
pub async fn run(mut a: EnsembleArgs) -> Result<()> {
    if a.smoke {
        smoke_settings(&mut a);
    }
    let systems = parse_systems(&a.systems)?;
    let voter_wl = if a.workloads.trim().is_empty() {
        Vec::new()
    } else {
        Workload::parse_list(&a.workloads)?
    };
    let observer_wl = if a.observer_workloads.trim().is_empty() || a.observers == 0 {
        Vec::new()
    } else {
        Workload::parse_list(&a.observer_workloads)?
    };
    let force_sync = match a.force_sync.to_ascii_lowercase().as_str() {
        "yes" | "true" => true,
        "no" | "false" => false,
        other => bail!("--force-sync takes yes or no, not '{other}'"),
    };
    let paddock_bin = match &a.paddock_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let jvm_opts = vec![
        format!("-Xmx{}", a.zk_heap),
        "-XX:+UseG1GC".to_string(),
        "-Djava.awt.headless=true".to_string(),
    ];
    let spec_for = |kind: Kind, observers: usize, dir: PathBuf| ClusterSpec {
        kind,
        voters: a.voters,
        observers,
        port_base: match kind {
            Kind::Paddock => a.port,
            Kind::ZooKeeper => a.port + 100,
        },
        dir,
        tick_ms: a.tick_time,
        init_limit: a.init_limit,
        sync_limit: a.sync_limit,
        force_sync,
        paddock_bin: paddock_bin.clone(),
        paddock_log: a.paddock_log.clone(),
        zk_jars: a.zk_jars.clone(),
        jvm_opts: jvm_opts.clone(),
        extra: a.set.clone(),
    };
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let jsonl_path = a.out_dir.join("ensemble.jsonl");
    let mut jsonl = std::fs::File::create(&jsonl_path)?;
    let params = crate::compare::comparison_params(a.sessions, a.inflight, a.duration, a.warmup);
    let started_at = std::time::SystemTime::now();
    let load_at_start = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let t_all = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut kept_dirs: Vec<PathBuf> = Vec::new();

    // 1 and 2: throughput, per round, layout and system (one ensemble at a time).
    let layouts: Vec<(Layout, &Vec<Workload>)> = [
        (Layout::Voters, &voter_wl),
        (Layout::WithObservers, &observer_wl),
    ]
    .into_iter()
    .filter(|(_, w)| !w.is_empty())
    .collect();
    for round in 1..=a.rounds.max(1) {
        for &(layout, wls) in &layouts {
            for &kind in &systems {
                let observers = if layout == Layout::WithObservers {
                    a.observers
                } else {
                    0
                };
                let dir = a.work_dir.join(format!(
                    "r{round}-{}-{}",
                    if observers > 0 { "observers" } else { "voters" },
                    kind.label()
                ));
                let name = format!(
                    "round {round}: {} {}",
                    kind.label(),
                    layout_name(layout, &a)
                );
                let mut cluster = Cluster::create(spec_for(kind, observers, dir))?;
                cluster.start_all()?;
                let (leader, took) = match cluster.wait_whole(a.start_limit).await {
                    Ok(x) => x,
                    Err(e) => {
                        failures.push(format!("{name}: {e:#}"));
                        eprintln!("  FAILED {name}: {e:#}");
                        cluster.stop_all();
                        kept_dirs.push(cluster.spec.dir.clone());
                        continue;
                    }
                };
                let leader_pid = cluster.pid(leader).unwrap_or(0);
                eprintln!(
                    "{name}: whole after {:.1} s, leader server {leader} (pid {leader_pid}); connect string {}",
                    took.as_secs_f64(),
                    cluster.connect_string()
                );
                writeln!(
                    jsonl,
                    "{{\"kind\":\"ensemble_start\",\"label\":{},\"layout\":{},\"round\":{round},\"secs\":{},\"leader\":{leader}}}",
                    json_str(kind.label()),
                    json_str(&layout_name(layout, &a)),
                    report::json_num(took.as_secs_f64())
                )?;
                // `--targets followers`: the leader takes no session of the workloads.
                let servers: Vec<_> = cluster
                    .addrs()
                    .into_iter()
                    .filter(|s| a.targets == "all" || *s != cluster.addr(leader))
                    .collect();
                let target = Target {
                    servers,
                    pids: cluster.pids(),
                    label: kind.label().into(),
                    run_id: workload::new_run_id(),
                    quiet: a.quiet,
                };
                let mut broken = false;
                if !a.prewarm.is_zero() {
                    let warm = Params {
                        duration: a.prewarm / 2,
                        warmup: Duration::ZERO,
                        ..params.clone()
                    };
                    // Its own znodes: the measured workloads create theirs afresh.
                    let warm_target = Target {
                        run_id: workload::new_run_id(),
                        quiet: true,
                        ..target.clone()
                    };
                    for w in [Workload::SetData, Workload::GetData] {
                        if let Err(e) = workload::run_workload(w, &warm, &warm_target).await {
                            let msg = format!("{name} pre-warm {}: {e:#}", w.name());
                            eprintln!("  FAILED {msg}");
                            failures.push(msg);
                            broken = true;
                        }
                    }
                }
                for &w in wls {
                    match workload::run_workload(w, &params, &target).await {
                        Ok(r) => {
                            let leader_cpu = r
                                .servers
                                .iter()
                                .find(|u| u.pid == leader_pid)
                                .map_or(f64::NAN, |u| u.cpu_pct);
                            if !a.quiet {
                                eprintln!(
                                    "  {:<12} {:>9} ops/s  p99 {:>7} ms  errors {}  server CPU {:.0}% (leader {:.0}%)  client CPU {:.0}%",
                                    r.workload,
                                    report::thousands(r.ops_per_sec),
                                    report::ms(r.p99_ns),
                                    r.errors,
                                    r.server_totals().0,
                                    leader_cpu,
                                    r.client_cpu_pct
                                );
                            }
                            if a.smoke && (r.errors > 0 || r.ops == 0) {
                                failures.push(format!(
                                    "{name} {}: {} ops, {} errors {:?}",
                                    r.workload, r.ops, r.errors, r.error_detail
                                ));
                            }
                            let j = r.to_json();
                            writeln!(
                                jsonl,
                                "{{\"round\":{round},\"layout\":{},\"leader_cpu_pct\":{},{}",
                                json_str(&layout_name(layout, &a)),
                                report::json_num(leader_cpu),
                                &j[1..]
                            )?;
                            rows.push(Row {
                                layout,
                                kind,
                                result: r,
                                leader_cpu,
                            });
                        }
                        Err(e) => {
                            let msg = format!("{name} {}: {e:#}", w.name());
                            eprintln!("  FAILED {msg}");
                            failures.push(msg);
                            broken = true;
                            if let Err(e) = cluster.check_alive() {
                                failures.push(format!("{name}: {e:#}"));
                                break;
                            }
                        }
                    }
                }
                // The leader should not have changed under load.
                let roles = cluster.roles().await;
                if roles.get(&leader).map(|r| r.as_ref().ok()) != Some(Some(&Role::Leader)) {
                    let msg = format!(
                        "{name}: after the workloads server {leader} is no longer the leader: {roles:?}"
                    );
                    eprintln!("  NOTE {msg}");
                    failures.push(msg);
                    broken = true;
                }
                if let Err(e) = cluster.check_alive() {
                    failures.push(format!("{name}: {e:#}"));
                    broken = true;
                }
                if broken {
                    eprintln!("{}", cluster.log_tails(15));
                }
                cluster.stop_all();
                if broken || a.keep {
                    kept_dirs.push(cluster.spec.dir.clone());
                } else {
                    cluster.remove_dirs();
                }
            }
        }
    }

    // 3: failover.
    let fp = FailoverParams {
        attempt_timeout: Duration::from_secs(2),
        retry_pause: a.retry_pause,
        limit: a.failover_limit,
        session_timeout_ms: a.session_timeout.as_millis() as i32,
        warm_writes: 20,
        ..FailoverParams::default()
    };
    let mut fo_runs: Vec<FailoverRuns> = Vec::new();
    if a.failover_rounds > 0 {
        for &kind in &systems {
            let name = format!("failover: {}", kind.label());
            let dir = a.work_dir.join(format!("failover-{}", kind.label()));
            let mut cluster = Cluster::create(spec_for(kind, 0, dir))?;
            cluster.start_all()?;
            let mut runs = FailoverRuns {
                kind,
                rounds: Vec::new(),
            };
            let mut broken = false;
            let mut whole = cluster.wait_whole(a.start_limit).await;
            let run_dir = format!("{}/failover-{}", workload::ROOT, workload::new_run_id());
            for round in 1..=a.failover_rounds {
                let leader = match &whole {
                    Ok((leader, took)) => {
                        eprintln!(
                            "{name} round {round}/{}: whole after {:.1} s, leader server {leader} (pid {})",
                            a.failover_rounds,
                            took.as_secs_f64(),
                            cluster.pid(*leader).unwrap_or(0)
                        );
                        *leader
                    }
                    Err(e) => {
                        let msg = format!("{name} round {round}: {e:#}");
                        eprintln!("  FAILED {msg}");
                        failures.push(msg);
                        broken = true;
                        break;
                    }
                };
                if round > 1 && !a.settle.is_zero() {
                    tokio::time::sleep(a.settle).await;
                }
                let servers = cluster.addrs();
                let idx = servers
                    .iter()
                    .position(|s| *s == cluster.addr(leader))
                    .expect("leader among the servers");
                let outcome =
                    failover::run_round(&servers, idx, &run_dir, &fp, || cluster.kill(leader))
                        .await;
                match outcome {
                    Ok(o) => {
                        eprintln!("  {}", o.describe());
                        writeln!(jsonl, "{}", o.to_json(kind.label(), round))?;
                        if !o.ok() {
                            let msg = format!(
                                "{name} round {round}: a client's write was not acknowledged within {:?} of the SIGKILL of the leader:\n  {}",
                                a.failover_limit,
                                o.describe()
                            );
                            eprintln!("  FAILED {msg}");
                            failures.push(msg);
                            broken = true;
                        }
                        runs.rounds.push(o);
                    }
                    Err(e) => {
                        let msg = format!("{name} round {round}: {e:#}");
                        eprintln!("  FAILED {msg}");
                        failures.push(msg);
                        broken = true;
                    }
                }
                if let Err(e) = cluster.check_alive() {
                    failures.push(format!("{name} round {round}: {e:#}"));
                    broken = true;
                }
                if broken {
                    eprintln!("{}", cluster.log_tails(25));
                    break;
                }
                // Restart the killed server; the next round starts once the ensemble is whole.
                for id in cluster.ids() {
                    if !cluster.running().contains(&id) {
                        cluster.start(id)?;
                    }
                }
                whole = cluster.wait_whole(a.start_limit).await;
                if round == a.failover_rounds {
                    if let Err(e) = &whole {
                        let msg = format!("{name}: not whole again after the last round: {e:#}");
                        eprintln!("  FAILED {msg}");
                        failures.push(msg);
                        broken = true;
                    }
                }
            }
            cluster.stop_all();
            if broken || a.keep {
                kept_dirs.push(cluster.spec.dir.clone());
            } else {
                cluster.remove_dirs();
            }
            fo_runs.push(runs);
        }
    }
    let total_secs = t_all.elapsed().as_secs_f64();

    // The report.
    let settings = format!(
        "{} round(s) of throughput (a fresh ensemble per round, system and layout, one ensemble at a time, \
         {} s of unmeasured setData+getData on it first); \
         {} sessions x {} in flight spread over {} of the layout, {} s measured + {} s warm-up per workload; \
         tickTime={} initLimit={} syncLimit={} forceSync={}{} on both; servers on 127.0.0.N; \
         ZooKeeper 3.8 (Debian) with {}; {} failover round(s) per system; machine: {} CPUs, load {} at the start",
        a.rounds.max(1),
        report::json_num(a.prewarm.as_secs_f64()),
        params.sessions,
        params.inflight,
        if a.targets == "all" {
            "every server"
        } else {
            "the followers"
        },
        report::json_num(a.duration.as_secs_f64()),
        report::json_num(a.warmup.as_secs_f64()),
        a.tick_time,
        a.init_limit,
        a.sync_limit,
        if force_sync { "yes" } else { "no (NOT durable)" },
        a.set.iter().map(|l| format!(" {l}")).collect::<String>(),
        jvm_opts.join(" "),
        a.failover_rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_at_start,
    );
    let settings = match compare::git_rev() {
        Some(rev) => format!("{settings}; work tree at {rev}"),
        None => settings,
    };
    let tp_rows = throughput_table(&rows, &layouts, &a);
    let fo_rows = failover_table(&fo_runs);
    let mut details = String::new();
    for r in &fo_runs {
        for (i, o) in r.rounds.iter().enumerate() {
            details.push_str(&format!(
                "- {} round {}: {}\n",
                r.kind.label(),
                i + 1,
                o.describe().replace("\n    ", "\n    - ")
            ));
        }
    }
    print!(
        "\n== Ensembles: Paddock vs Apache ZooKeeper ==\n{settings}\n\n{}\n{}\n{}",
        render(&tp_rows),
        if fo_rows.len() > 1 {
            render(&fo_rows)
        } else {
            String::new()
        },
        if failures.is_empty() {
            String::new()
        } else {
            format!("failures:\n  {}\n", failures.join("\n  "))
        }
    );
    let md = format!(
        "Run {}, {total_secs:.0} s in all. {settings}.\n\nCommand: `{}`\n\n\
         #### Throughput (ratio = Paddock/ZooKeeper; CPU = % of one core, summed over the servers)\n\n{}\n\
         #### Failover: SIGKILL of the leader to the first acknowledged write issued after it\n\n{}\n\
         Rounds:\n\n{}{}",
        compare::humantime(started_at),
        invoked_as(),
        markdown(&tp_rows),
        if fo_rows.len() > 1 {
            markdown(&fo_rows)
        } else {
            "(not run)\n".into()
        },
        details,
        if failures.is_empty() {
            String::new()
        } else {
            format!("\nFailures:\n\n- {}\n", failures.join("\n- "))
        }
    );
    std::fs::write(a.out_dir.join("summary.md"), &md)?;
    eprintln!(
        "wrote {} and {} ({total_secs:.0} s)",
        jsonl_path.display(),
        a.out_dir.join("summary.md").display()
    );
    if !kept_dirs.is_empty() {
        eprintln!(
            "server directories kept (zoo.cfg, server.log / zookeeper.log): {}",
            kept_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !failures.is_empty() {
        bail!("{} step(s) failed (listed above)", failures.len());
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    if v.is_finite() {
        crate::svg::fmt_value(v)
    } else {
        "-".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "-".into()
    }
}

/// Medians over rounds per (workload, layout, system), Paddock beside ZooKeeper.
fn throughput_table(
    rows: &[Row],
    layouts: &[(Layout, &Vec<Workload>)],
    a: &EnsembleArgs,
) -> Vec<Vec<String>> {
    let mut out = vec![vec![
        "workload".to_string(),
        "servers".into(),
        "Paddock ops/s".into(),
        "ZooKeeper ops/s".into(),
        "ratio".into(),
        "Paddock p99 ms".into(),
        "ZK p99 ms".into(),
        "server CPU% P/ZK".into(),
        "leader CPU% P/ZK".into(),
        "server CPU us/op P/ZK".into(),
        "client CPU% P/ZK".into(),
        "errors P/ZK".into(),
    ]];
    let mut order: Vec<(Workload, Layout)> = Vec::new();
    for (l, wls) in layouts {
        for w in wls.iter() {
            order.push((*w, *l));
        }
    }
    // Workload-major, so the observer row sits under the voters row.
    order.sort_by_key(|(w, l)| (*w, *l == Layout::WithObservers));
    for (w, l) in order {
        let pick = |k: Kind| -> Vec<&Row> {
            rows.iter()
                .filter(|r| r.kind == k && r.layout == l && r.result.workload == w.name())
                .collect()
        };
        let m = |rs: &[&Row], f: &dyn Fn(&Row) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let (p, z) = (pick(Kind::Paddock), pick(Kind::ZooKeeper));
        let ops = |rs: &[&Row]| m(rs, &|r| r.result.ops_per_sec);
        let p99 = |rs: &[&Row]| m(rs, &|r| r.result.p99_ns as f64 / 1e6);
        let cpu = |rs: &[&Row]| m(rs, &|r| r.result.server_totals().0);
        let lcpu = |rs: &[&Row]| m(rs, &|r| r.leader_cpu);
        let ccpu = |rs: &[&Row]| m(rs, &|r| r.result.client_cpu_pct);
        let us_op = |rs: &[&Row]| {
            m(rs, &|r| {
                if r.result.ops_per_sec > 0.0 {
                    r.result.server_totals().0 / 100.0 / r.result.ops_per_sec * 1e6
                } else {
                    f64::NAN
                }
            })
        };
        let errs = |rs: &[&Row]| {
            if rs.is_empty() {
                "-".to_string()
            } else {
                rs.iter().map(|r| r.result.errors).sum::<u64>().to_string()
            }
        };
        out.push(vec![
            w.name().to_string(),
            layout_name(l, a),
            fmt_num(ops(&p)),
            fmt_num(ops(&z)),
            ratio(ops(&p), ops(&z)),
            fmt_num(p99(&p)),
            fmt_num(p99(&z)),
            format!("{}/{}", pct(cpu(&p)), pct(cpu(&z))),
            format!("{}/{}", pct(lcpu(&p)), pct(lcpu(&z))),
            format!("{}/{}", pct(us_op(&p)), pct(us_op(&z))),
            format!("{}/{}", pct(ccpu(&p)), pct(ccpu(&z))),
            format!("{}/{}", errs(&p), errs(&z)),
        ]);
    }
    out
}

/// Median (min-max) of each failover figure, Paddock beside ZooKeeper.
fn failover_table(runs: &[FailoverRuns]) -> Vec<Vec<String>> {
    let mut out = vec![vec![
        "figure (ms, median (min-max))".to_string(),
        "Paddock".into(),
        "ZooKeeper".into(),
        "ratio of medians".into(),
    ]];
    let of = |k: Kind| runs.iter().find(|r| r.kind == k);
    type Pick = fn(&RoundOutcome) -> Vec<Option<Duration>>;
    let figures: [(&str, Pick); 4] = [
        ("client on the killed leader", |o| {
            o.clients
                .iter()
                .filter(|c| c.on_leader)
                .map(|c| c.t1)
                .collect()
        }),
        ("clients on the surviving followers", |o| {
            o.clients
                .iter()
                .filter(|c| !c.on_leader)
                .map(|c| c.t1)
                .collect()
        }),
        (
            "every client written again (slowest client of the round)",
            |o| vec![o.all_clients()],
        ),
        (
            "a survivor's srvr says leader (server side, polled every 10 ms)",
            |o| vec![o.new_leader.map(|(_, d)| d)],
        ),
    ];
    if runs.is_empty() {
        return out;
    }
    for (name, f) in figures {
        let cell = |k: Kind| -> (String, f64) {
            let Some(r) = of(k) else {
                return ("not run".into(), f64::NAN);
            };
            let vals: Vec<Option<Duration>> = r.rounds.iter().flat_map(f).collect();
            let got: Vec<Duration> = vals.iter().flatten().copied().collect();
            let missing = vals.len() - got.len();
            match failover::stats_ms(&got) {
                Some((med, min, max)) => (
                    format!(
                        "{med:.0} ({min:.0}-{max:.0}), n={}{}",
                        got.len(),
                        if missing > 0 {
                            format!(", {missing} never")
                        } else {
                            String::new()
                        }
                    ),
                    med,
                ),
                None => (
                    if vals.is_empty() {
                        "-".into()
                    } else {
                        format!("never ({missing} of {})", vals.len())
                    },
                    f64::NAN,
                ),
            }
        };
        let (p, pv) = cell(Kind::Paddock);
        let (z, zv) = cell(Kind::ZooKeeper);
        out.push(vec![name.to_string(), p, z, ratio(pv, zv)]);
    }
    // How the clients' sessions came through.
    let sessions = |k: Kind| -> String {
        let Some(r) = of(k) else {
            return "not run".into();
        };
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &r.rounds {
            for c in &o.clients {
                *count.entry(c.session.name()).or_default() += 1;
            }
        }
        count
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push(vec![
        "client sessions after the failover".into(),
        sessions(Kind::Paddock),
        sessions(Kind::ZooKeeper),
        "-".into(),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn smoke_is_short_and_paddock_only() {
        let mut a = EnsembleArgs::try_parse_from(["ensemble", "--smoke"]).unwrap();
        smoke_settings(&mut a);
        assert_eq!(parse_systems(&a.systems).unwrap(), vec![Kind::Paddock]);
        assert_eq!(a.failover_rounds, 1);
        assert_eq!(a.failover_limit, Duration::from_secs(10));
        assert!(a.prewarm.is_zero());
        assert!(parse_systems("paddock,zk").is_ok());
        assert!(parse_systems("etcd").is_err());
    }
}

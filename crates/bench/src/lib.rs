//! `paddock bench`: a pipelined load generator for any ZooKeeper-compatible server, and a
//! side-by-side comparison of Paddock with Apache ZooKeeper.
//!
//! The client runs on one thread (a current-thread tokio runtime): sessions are tasks, each
//! keeps K requests in flight, requests are pre-encoded with paddock-proto and copied into a
//! per-session buffer that is written with one call, and replies are parsed in place.

#![warn(missing_docs)]

pub mod args;
pub mod children_sweep;
pub mod cluster;
pub mod compare;
pub mod conn;
pub mod ensemble;
pub mod failover;
pub mod gen;
pub mod held;
pub mod hist;
pub mod memory;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod scale;
pub mod session_sweep;
pub mod svg;
pub mod watch_sweep;
pub mod workload;

use anyhow::{Context, Result};
use args::{CompareArgs, EnsembleArgs, FailoverArgs, MemoryArgs, RunArgs, ScaleArgs};
use clap::Parser;
use std::io::Write;
use workload::{Params, Target, Workload};

const USAGE: &str =
    "usage: paddock bench [run] [options]      run workloads against --server (see --help)
       paddock bench memory [options]     RSS growth per znode of --pid after populating
       paddock bench compare [options]    Paddock against Apache ZooKeeper 3.8, side by side
       paddock bench ensemble [options]   ensembles of both side by side: throughput, observers, failover
       paddock bench failover [options]   SIGKILL the leader of a running ensemble; time to the next write
       paddock bench scale [options]      both side by side at growing tree sizes (100k, 1m, 10m znodes)
                                          held sessions (1k, 10k, 50k), watches (10k, 1m),
                                          children of one parent (10k, 100k, 1m)
       paddock bench workloads            list the workloads";

/// Entry point of `paddock bench <args>`, with long flags spelled `--x` (the paddock binary
/// rewrites zkCli's `-x` spelling before calling this).
pub fn main(args: &[String]) -> Result<()> {
    let (sub, rest) = match args.first().map(String::as_str) {
        Some("run") => ("run", &args[1..]),
        Some("memory") => ("memory", &args[1..]),
        Some("compare") => ("compare", &args[1..]),
        Some("ensemble") => ("ensemble", &args[1..]),
        Some("failover") => ("failover", &args[1..]),
        Some("scale") => ("scale", &args[1..]),
        Some("workloads") => {
            for w in Workload::ALL {
                println!("{:<14} {}", w.name(), w.describe());
            }
            return Ok(());
        }
        Some("help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => ("run", args),
    };
    let argv = std::iter::once(format!("paddock bench {sub}")).chain(rest.iter().cloned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    match sub {
        "memory" => {
            let a = MemoryArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, run_memory(a))
        }
        "compare" => {
            let a = CompareArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, compare::run(a))
        }
        "scale" => {
            let a = ScaleArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, scale::run(a))
        }
        "ensemble" => {
            let a = EnsembleArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, ensemble::run(a))
        }
        "failover" => {
            let a = FailoverArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, failover::run_standalone(a))
        }
        _ => {
            let a = RunArgs::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            local.block_on(&rt, run_workloads(a)).map(|_| ())
        }
    }
}

/// Builds workload parameters from run arguments.
pub fn params_from(a: &RunArgs) -> Params {
    Params {
        sessions: a.sessions.max(1),
        inflight: a.inflight.max(1),
        duration: a.duration,
        ops: a.ops,
        warmup: a.warmup,
        value_size: a.value_size,
        keys: a.keys,
        children: a.children,
        read_ratio: a.read_ratio,
        znodes: a.znodes,
        per_parent: a.per_parent,
        watch_pairs: a.watch_pairs,
        churners: a.churners.unwrap_or(a.sessions.min(16)),
    }
}

/// `paddock bench [run]`: runs the chosen workloads and prints the table and JSON lines.
pub async fn run_workloads(a: RunArgs) -> Result<Vec<workload::WorkloadResult>> {
    let workloads = Workload::parse_list(&a.workloads)?;
    let target = Target {
        servers: args::parse_servers(&a.target.server)?,
        pids: args::parse_pids(&a.target.pids)?,
        label: a.target.label.clone(),
        run_id: workload::new_run_id(),
        quiet: a.quiet,
    };
    let p = params_from(&a);
    let mut results = Vec::new();
    let mut json_file = match &a.json {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => None,
    };
    for w in workloads {
        let r = workload::run_workload(w, &p, &target)
            .await
            .with_context(|| format!("workload {} against {}", w.name(), a.target.server))?;
        if let Some(f) = json_file.as_mut() {
            writeln!(f, "{}", r.to_json())?;
        }
        if !a.quiet && a.format != "json" {
            eprintln!(
                "{:<14} {:>10} ops/s  p99 {} ms  errors {}  client CPU {:.0}%",
                r.workload,
                report::thousands(r.ops_per_sec),
                report::ms(r.p99_ns),
                r.errors,
                r.client_cpu_pct
            );
        }
        results.push(r);
    }
    if a.format != "json" {
        print!("{}", report::table(&results));
    }
    if a.format != "table" {
        for r in &results {
            println!("{}", r.to_json());
        }
    }
    Ok(results)
}

/// `paddock bench memory`.
async fn run_memory(a: MemoryArgs) -> Result<()> {
    let servers = args::parse_servers(&a.target.server)?;
    let pids = args::parse_pids(&a.target.pids)?;
    let pid = *pids
        .first()
        .context("--pid is required: the server process whose RSS to measure")?;
    let p = memory::MemoryParams {
        znodes: a.znodes,
        per_parent: a.per_parent,
        value_size: a.value_size,
        sessions: a.sessions,
        inflight: a.inflight,
        settle: a.settle,
        quiet: a.quiet,
    };
    let r = memory::measure(servers[0], &servers, pid, &a.target.label, &p).await?;
    println!(
        "rss_before, rss_after ({:.0} s after), growth per znode",
        a.settle.as_secs_f64()
    );
    println!(
        "{} B, {} B, {:.1} B/znode   ({} znodes added: {} children of {} B + parents; populated in {:.1} s; {} errors)",
        r.rss_before,
        r.rss_after,
        r.bytes_per_znode,
        r.znodes_added,
        a.znodes,
        a.value_size,
        r.populate_secs,
        r.errors
    );
    println!("{}", r.to_json());
    if let Some(path) = &a.json {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{}", r.to_json())?;
    }
    Ok(())
}

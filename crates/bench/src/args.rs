//! Command-line arguments of `paddock bench`. ZooKeeper's tools spell long flags with one dash
//! (`-server host:port`); the paddock binary rewrites those to two dashes (its
//! `argv::normalise`, one rule for every subcommand) before they reach clap here.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// A zoo.cfg line given on the command line: `KEY=VALUE`, one line, with a key.
pub fn parse_cfg_line(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() && !s.contains('\n') => Ok(s.trim().to_string()),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

/// Parses a duration: `5` or `5s` (seconds, fractions allowed), `250ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (try 5s or 250ms)"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("'{s}' is not a duration (try 5s or 250ms)"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Parses a count with an optional k/m suffix or underscores: `1000000`, `1_000_000`, `1m`, `100k`.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace(['_', ','], "").to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix('k') {
        (n.to_owned(), 1_000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n.to_owned(), 1_000_000)
    } else {
        (t.clone(), 1)
    };
    num.parse::<u64>()
        .map(|v| v * mult)
        .map_err(|_| format!("'{s}' is not a count (try 1000000 or 1m)"))
}

/// Parses a size in bytes: `100`, `1k`/`1KiB` (1024), `1m` (1 MiB).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = if let Some(n) = t.strip_suffix('k') {
        (n, 1024)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 1024 * 1024)
    } else {
        (t, 1)
    };
    num.trim()
        .parse::<usize>()
        .map(|v| v * mult)
        .map_err(|_| format!("'{s}' is not a size (try 100 or 1k)"))
}

/// Resolves a ZooKeeper connect string `host:port,host:port[/chroot]` (a chroot is refused).
pub fn parse_servers(s: &str) -> Result<Vec<SocketAddr>> {
    if s.contains('/') {
        bail!("a chroot in the connect string is not supported by paddock bench: '{s}'");
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let with_port = if part.contains(':') {
            part.to_owned()
        } else {
            format!("{part}:2181")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve server address '{part}'"))?
            .next()
            .with_context(|| format!("'{part}' resolved to no address"))?;
        out.push(addr);
    }
    if out.is_empty() {
        bail!("no server address given (use --server host:port[,host:port...])");
    }
    Ok(out)
}

/// Parses `--pid 12,34` (and repeated `--pid`) into PIDs.
pub fn parse_pids(v: &[String]) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for s in v {
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.push(
                p.parse()
                    .with_context(|| format!("'{p}' is not a process id"))?,
            );
        }
    }
    Ok(out)
}

/// Options shared by every mode that talks to servers.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Connect string: host:port[,host:port...]; sessions are spread over the servers.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    /// PIDs of the server processes, for their CPU and RSS (comma list or repeated).
    #[arg(long = "pid")]
    pub pids: Vec<String>,
    /// Name of the system under test, carried into the report (e.g. paddock, zookeeper).
    #[arg(long, default_value = "server")]
    pub label: String,
}

/// `paddock bench [run] ...`: run workloads and report.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench",
    about = "Load generator for ZooKeeper-compatible servers",
    after_help = "Other modes:\n  paddock bench memory --server H:P --pid PID [--znodes 1000000 --per-parent 1000 --value-size 100]\n  paddock bench compare [--rounds 3 --duration 5s ...]   (Paddock against Apache ZooKeeper 3.8)\n  paddock bench workloads                              (list the workloads)\nFlags may be spelled with one dash or two (-server = --server)."
)]
pub struct RunArgs {
    /// Where to connect and what to watch.
    #[command(flatten)]
    pub target: Target,
    /// Comma list of workloads, or `all` (see `paddock bench workloads`).
    #[arg(long, alias = "workload", default_value = "all")]
    pub workloads: String,
    /// Sessions (connections) driving load.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Measured time per workload (after warm-up).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Stop after this many measured operations instead of after --duration.
    #[arg(long, value_parser = parse_count)]
    pub ops: Option<u64>,
    /// Unmeasured warm-up time per workload.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Value size for setData, getData, mixed, multi and populate.
    #[arg(long, value_parser = parse_size, default_value = "100")]
    pub value_size: usize,
    /// Distinct znodes read and written by getData, setData, mixed and multi.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Children of the node listed by getchildren.
    #[arg(long, default_value_t = 1000)]
    pub children: usize,
    /// Fraction of reads in the mixed workload (0..1).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Most znodes the populate workload creates (it also stops at --duration).
    #[arg(long, value_parser = parse_count, default_value = "100000")]
    pub znodes: u64,
    /// Children per parent in populate.
    #[arg(long, default_value_t = 1000)]
    pub per_parent: u64,
    /// Exists-watch/setData session pairs in the watch workload.
    #[arg(long, default_value_t = 1)]
    pub watch_pairs: usize,
    /// Concurrent session churners in the ephemeral workload (default: --sessions, at most 16).
    #[arg(long)]
    pub churners: Option<usize>,
    /// Also write the JSON lines to this file (appending).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Output on stdout: table, json or both.
    #[arg(long, default_value = "both")]
    pub format: String,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `paddock bench memory ...`: RSS growth per znode.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench memory",
    about = "Measure server RSS growth per znode"
)]
pub struct MemoryArgs {
    /// Where to connect and what to watch.
    #[command(flatten)]
    pub target: Target,
    /// Znodes to create (children; parents come on top).
    #[arg(long, value_parser = parse_count, default_value = "1000000")]
    pub znodes: u64,
    /// Children per parent.
    #[arg(long, default_value_t = 1000)]
    pub per_parent: u64,
    /// Bytes of data per znode.
    #[arg(long, value_parser = parse_size, default_value = "100")]
    pub value_size: usize,
    /// Sessions creating znodes.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Wait after populating before reading RSS.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub settle: Duration,
    /// Also write the result as a JSON line to this file (appending).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `paddock bench compare ...`: Paddock against Apache ZooKeeper, side by side.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench compare",
    about = "Paddock against Apache ZooKeeper 3.8, same workloads, alternating rounds"
)]
pub struct CompareArgs {
    /// Both servers serve TLS (NettyServerCnxnFactory for ZooKeeper; client.portUnification on
    /// the client port, client certificates required) and every bench connection speaks it;
    /// the certificates are made with openssl in the work directory.
    #[arg(long)]
    pub tls: bool,
    /// Rounds; each runs every workload on Paddock then on ZooKeeper (A B A B ...).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Comma list of workloads, or `all`.
    #[arg(long, default_value = "all")]
    pub workloads: String,
    /// Sessions per workload.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Measured time per workload and round.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Warm-up per workload and round.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// forceSync on both servers: yes (default) or no (labelled everywhere).
    #[arg(long, default_value = "yes")]
    pub force_sync: String,
    /// First of the client ports used (the next few are used too).
    #[arg(long, default_value_t = 23181)]
    pub port: u16,
    /// ZooKeeper's JVM heap (-Xms and -Xmx).
    #[arg(long, default_value = "2g")]
    pub zk_heap: String,
    /// Znodes for the memory and restart figures (0 skips them).
    #[arg(long, value_parser = parse_count, default_value = "1000000")]
    pub memory_znodes: u64,
    /// The paddock binary to benchmark (default: this executable).
    #[arg(long)]
    pub paddock_bin: Option<PathBuf>,
    /// Where ZooKeeper's jars are (Debian's `zookeeper` package).
    #[arg(long, default_value = "/usr/share/java")]
    pub zk_jars: PathBuf,
    /// Scratch directory for data directories and logs.
    #[arg(long, default_value = "/tmp/paddock-bench-compare")]
    pub work_dir: PathBuf,
    /// Where to write results: JSON lines, the markdown table and the SVG chart.
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
    /// Also rewrite the results section of this markdown file (between the
    /// `<!-- bench-results:begin -->` and `<!-- bench-results:end -->` markers) and put the
    /// chart beside it as benchmarks.svg.
    #[arg(long)]
    pub docs: Option<PathBuf>,
    /// Start a fresh server for every workload instead of once per round (by default the
    /// tree grows through the workloads, and later writes pay for snapshots of it).
    #[arg(long)]
    pub fresh_per_workload: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `paddock bench ensemble ...`: three-server ensembles of Paddock and ZooKeeper side by side.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench ensemble",
    about = "Paddock and Apache ZooKeeper 3.8 ensembles side by side: throughput with 3 voters, \
             with 3 voters + observers, and the time from a SIGKILL of the leader to the next \
             acknowledged write"
)]
pub struct EnsembleArgs {
    /// Quick check for CI: Paddock only, 1 round, 2 s workloads, 1 failover round; fails on
    /// any error (no leader, a workload error, a write not acknowledged 10 s after the kill).
    #[arg(long)]
    pub smoke: bool,
    /// Systems to run, comma list: paddock, zookeeper.
    #[arg(long, default_value = "paddock,zookeeper")]
    pub systems: String,
    /// Rounds of the throughput workloads (a fresh ensemble per round, system and layout).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Unmeasured load (setData, then getData) on every fresh ensemble before its workloads,
    /// so the JVMs have compiled their hot paths (both systems get it).
    #[arg(long, value_parser = parse_duration, default_value = "6s")]
    pub prewarm: Duration,
    /// Workloads against the three voters (comma list; see `paddock bench workloads`).
    #[arg(long, default_value = "setdata,getdata,mixed,create-100")]
    pub workloads: String,
    /// Workloads against voters + observers (empty: skip that layout).
    #[arg(long, default_value = "setdata,getdata,mixed,create-100")]
    pub observer_workloads: String,
    /// Voters.
    #[arg(long, default_value_t = 3)]
    pub voters: usize,
    /// Observers added for the observer layout.
    #[arg(long, default_value_t = 2)]
    pub observers: usize,
    /// Sessions per workload, spread over every server of the layout.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Measured time per workload.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Warm-up per workload.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Failover rounds per system (0 skips failover); the killed server is restarted and the
    /// ensemble is whole again between rounds.
    #[arg(long, default_value_t = 5)]
    pub failover_rounds: usize,
    /// A failover round fails if a client's write is not acknowledged this long after the kill.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub failover_limit: Duration,
    /// Failover clients: pause after every server refused them once.
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub retry_pause: Duration,
    /// Failover clients: session timeout asked for.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub session_timeout: Duration,
    /// Quiet time once the ensemble is whole again, before the next failover round.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub settle: Duration,
    /// How long an ensemble may take to elect a leader and serve.
    #[arg(long, value_parser = parse_duration, default_value = "90s")]
    pub start_limit: Duration,
    /// zoo.cfg tickTime (ms), initLimit and syncLimit, for both systems.
    #[arg(long, default_value_t = 2000)]
    pub tick_time: u64,
    /// zoo.cfg initLimit.
    #[arg(long, default_value_t = 10)]
    pub init_limit: u32,
    /// zoo.cfg syncLimit.
    #[arg(long, default_value_t = 5)]
    pub sync_limit: u32,
    /// forceSync on both: yes (default) or no.
    #[arg(long, default_value = "yes")]
    pub force_sync: String,
    /// A zoo.cfg line for both systems' servers, KEY=VALUE (repeatable), e.g.
    /// `--set localSessionsEnabled=true`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_cfg_line)]
    pub set: Vec<String>,
    /// Which servers the throughput workloads' sessions go to: all, or followers (every
    /// server but the leader).
    #[arg(long, default_value = "all", value_parser = ["all", "followers"])]
    pub targets: String,
    /// Paddock servers use ports PORT+N (client), PORT+20+N (quorum), PORT+40+N (election)
    /// on 127.0.0.N; ZooKeeper's the same from PORT+100.
    #[arg(long, default_value_t = 23400)]
    pub port: u16,
    /// ZooKeeper's JVM heap (-Xmx).
    #[arg(long, default_value = "512m")]
    pub zk_heap: String,
    /// PADDOCK_LOG of the Paddock servers.
    #[arg(long, default_value = "info")]
    pub paddock_log: String,
    /// The paddock binary to run as servers (default: this executable).
    #[arg(long)]
    pub paddock_bin: Option<PathBuf>,
    /// Where ZooKeeper's jars are (Debian's `zookeeper` package).
    #[arg(long, default_value = "/usr/share/java")]
    pub zk_jars: PathBuf,
    /// Scratch directory for the servers' data and logs (kept when something fails).
    #[arg(long, default_value = "/tmp/paddock-bench-ensemble")]
    pub work_dir: PathBuf,
    /// Where to write ensemble.jsonl and summary.md.
    #[arg(long, default_value = "bench/results/ensemble")]
    pub out_dir: PathBuf,
    /// Keep the servers' directories after a successful run.
    #[arg(long)]
    pub keep: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `paddock bench failover ...`: one SIGKILL of the leader of a running ensemble.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench failover",
    about = "SIGKILL the leader of a running ensemble (found with srvr) while one client per \
             server writes synchronously; print each client's time to its next acknowledged write"
)]
pub struct FailoverArgs {
    /// The ensemble (connect string; `--pid` lists the same servers' pids in the same order).
    #[command(flatten)]
    pub target: Target,
    /// A client's write not acknowledged this long after the kill fails the run.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub limit: Duration,
    /// Pause after every server refused a client once.
    #[arg(long, value_parser = parse_duration, default_value = "20ms")]
    pub retry_pause: Duration,
    /// Limit of one connection attempt.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub attempt_timeout: Duration,
    /// Session timeout asked for.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub session_timeout: Duration,
    /// A planned leadership transfer (the `ydld` four-letter word, which the servers'
    /// 4lw.commands.whitelist must allow) instead of a SIGKILL.
    #[arg(long)]
    pub transfer: bool,
    /// Writing clients (0: one per server), spread over the servers.
    #[arg(long, default_value_t = 0)]
    pub clients: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_long_flags() {
        // The zkCli spelling (-server, -sessions) is the binary's to rewrite: see
        // crates/paddock/src/argv.rs.
        let argv = [
            "bench",
            "--server",
            "127.0.0.1:1,127.0.0.1:2",
            "--sessions=4",
            "--duration",
            "2",
        ];
        let a = RunArgs::try_parse_from(s(&argv)).unwrap();
        assert_eq!(a.target.server, "127.0.0.1:1,127.0.0.1:2");
        assert_eq!(a.sessions, 4);
        assert_eq!(a.duration, Duration::from_secs(2));
        assert_eq!(parse_servers(&a.target.server).unwrap().len(), 2);
    }

    #[test]
    fn defaults() {
        let a = RunArgs::try_parse_from(s(&["bench"])).unwrap();
        assert_eq!(a.sessions, 32);
        assert_eq!(a.workloads, "all");
        assert_eq!(a.value_size, 100);
        assert!(a.ops.is_none());
    }

    #[test]
    fn memory_args() {
        let a = MemoryArgs::try_parse_from(s(&[
            "memory",
            "--server",
            "127.0.0.1:5",
            "--pid",
            "42",
            "--znodes",
            "1m",
            "--per-parent",
            "1000",
            "--value-size",
            "100",
        ]))
        .unwrap();
        assert_eq!(a.znodes, 1_000_000);
        assert_eq!(parse_pids(&a.target.pids).unwrap(), vec![42]);
        assert_eq!(a.settle, Duration::from_secs(2));
    }

    #[test]
    fn compare_args() {
        let a = CompareArgs::try_parse_from(s(&["compare", "--rounds", "5", "--force-sync", "no"]))
            .unwrap();
        assert_eq!(a.rounds, 5);
        assert_eq!(a.force_sync, "no");
        assert_eq!(a.memory_znodes, 1_000_000);
        assert!(CompareArgs::try_parse_from(s(&["compare", "--rounds", "x"])).is_err());
    }

    #[test]
    fn ensemble_and_failover_args() {
        let a = EnsembleArgs::try_parse_from(s(&["ensemble", "--smoke"])).unwrap();
        assert!(a.smoke);
        assert_eq!(a.failover_rounds, 5);
        assert_eq!(a.zk_heap, "512m");
        assert_eq!(a.tick_time, 2000);
        let f = FailoverArgs::try_parse_from(s(&[
            "failover",
            "--server",
            "127.0.0.1:1,127.0.0.2:1",
            "--pid",
            "3,4",
            "--limit",
            "10s",
        ]))
        .unwrap();
        assert_eq!(parse_pids(&f.target.pids).unwrap(), vec![3, 4]);
        assert_eq!(f.limit, Duration::from_secs(10));
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_count("1_000_000").unwrap(), 1_000_000);
        assert_eq!(parse_count("100k").unwrap(), 100_000);
        assert!(parse_count("lots").is_err());
        assert_eq!(parse_pids(&s(&["1,2", "3"])).unwrap(), vec![1, 2, 3]);
        assert!(parse_servers("h:1/chroot").is_err());
        assert_eq!(parse_servers("127.0.0.1").unwrap()[0].port(), 2181);
    }
}

/// `paddock bench scale ...`: how Paddock's and ZooKeeper's costs grow with the tree.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "paddock bench scale",
    about = "Paddock and Apache ZooKeeper 3.8 side by side at growing tree sizes: write and read \
             throughput and latency, RSS, snapshot time and restart-to-serving time at each size"
)]
pub struct ScaleArgs {
    /// Quick check for CI: the smallest point of each sweep only (100,000 znodes, 1,000
    /// sessions, 10,000 watches, 10,000 children), 2 s workloads; fails on any error.
    #[arg(long)]
    pub smoke: bool,
    /// Which sweeps to run, comma list: znodes (growing trees), sessions (growing numbers of
    /// held sessions), watches (growing numbers of watches over 100 sessions), children
    /// (growing child lists of one parent).
    #[arg(long, default_value = "znodes,sessions,watches,children")]
    pub sweeps: String,
    /// Tree sizes, comma list (znodes of `--value-size` bytes, 1,000 per parent).
    #[arg(long, default_value = "100k,1m,10m")]
    pub znodes: String,
    /// Sessions held for the session sweep, comma list; each holds an ephemeral znode and a
    /// data watch; 5,000 connect from each loopback address (127.1.0.1, 127.1.0.2, ...).
    #[arg(long, default_value = "1k,10k,50k")]
    pub held_sessions: String,
    /// Watches for the watch sweep, comma list: one data watch on each of that many znodes,
    /// spread over 100 sessions.
    #[arg(long, default_value = "10k,1m")]
    pub watches: String,
    /// Children of one parent for the child-list sweep, comma list.
    #[arg(long, default_value = "10k,100k,1m")]
    pub children: String,
    /// Systems to run, comma list: paddock, zookeeper.
    #[arg(long, default_value = "paddock,zookeeper")]
    pub systems: String,
    /// Workloads measured on the populated tree, comma list.
    #[arg(long, default_value = "setdata,getdata,latency-write")]
    pub workloads: String,
    /// Measured time per workload.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Warm-up per workload.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Sessions per workload.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// Bytes of data per znode.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// ZooKeeper's JVM heap: `auto` sizes it for each point (1,536 bytes a znode plus 512 MiB,
    /// at least 1 GiB, at most 16 GiB), or one size for all (e.g. 8g).
    #[arg(long, default_value = "auto")]
    pub zk_heap: String,
    /// First of the client ports used.
    #[arg(long, default_value_t = 24181)]
    pub port: u16,
    /// The paddock binary to benchmark (default: this executable).
    #[arg(long)]
    pub paddock_bin: Option<PathBuf>,
    /// Where ZooKeeper's jars are (Debian's `zookeeper` package).
    #[arg(long, default_value = "/usr/share/java")]
    pub zk_jars: PathBuf,
    /// Scratch directory for data directories and logs.
    #[arg(long, default_value = "/tmp/paddock-bench-scale")]
    pub work_dir: PathBuf,
    /// Where to write results: JSON lines, the markdown tables and the SVG chart.
    #[arg(long, default_value = "bench/results/scale")]
    pub out_dir: PathBuf,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

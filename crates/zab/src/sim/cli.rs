//! `paddock sim --seeds N [--seed S]`: runs seeds S, S+1, ..., S+N-1 and ends with
//! `seeds: N, violations: V`. A failing seed prints the command that replays it and its trace.

use crate::config::Bugs;
use crate::sim::run::{run_seed, Options, Report};
use std::time::Instant;

/// Bad command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    /// A flag needs a value.
    #[error("{0} needs a value")]
    Missing(String),
    /// A value does not parse.
    #[error("bad value for {0}: {1}")]
    Bad(String, String),
    /// Unknown flag.
    #[error("unknown option {0}")]
    Unknown(String),
}

/// Parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// Number of seeds.
    pub seeds: u64,
    /// First seed.
    pub seed: u64,
    /// Run options.
    pub opts: Options,
    /// One line per seed.
    pub verbose: bool,
    /// Print the trace even for passing seeds.
    pub trace: bool,
    /// Trace lines kept for a failing seed.
    pub trace_lines: usize,
    bug_names: Vec<String>,
}

/// Usage text.
pub const USAGE: &str = "usage: paddock sim --seeds N [--seed S] [--voters V] [--observers O] [--reconfig P] \
[--ticks T] [--liveness-ticks T] [--bug NAME]... [--trace] [--trace-lines L] [--no-durability-check] [--storm] [--verbose]
  (--reconfig P: a reconfiguration asked of the leader with probability P per tick)
  runs seeds S..S+N (S defaults to 1); the seed picks the ensemble and the fault mix
  (--storm: every fault on at once instead).
  bugs (test-only): ack-before-fsync, newleader-ack-before-durable, commit-without-quorum, apply-uncommitted,
    sync-without-quorum";

/// Parses the arguments after `sim`.
pub fn parse(args: &[String]) -> Result<Args, ArgError> {
    let mut a = Args {
        seeds: 1,
        seed: 1,
        opts: Options::default(),
        verbose: false,
        trace: false,
        trace_lines: 5000,
        bug_names: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag.trim_start_matches('-');
        let mut val = |n: &str| -> Result<String, ArgError> {
            it.next()
                .cloned()
                .ok_or_else(|| ArgError::Missing(n.to_string()))
        };
        fn num<T: std::str::FromStr>(n: &str, v: String) -> Result<T, ArgError> {
            v.parse().map_err(|_| ArgError::Bad(n.to_string(), v))
        }
        match name {
            "seeds" => a.seeds = num(name, val(name)?)?,
            "seed" => a.seed = num(name, val(name)?)?,
            "voters" | "nodes" => a.opts.voters = Some(num(name, val(name)?)?),
            "observers" => a.opts.observers = Some(num(name, val(name)?)?),
            "ticks" | "steps" => a.opts.safety_ticks = num(name, val(name)?)?,
            "liveness-ticks" => a.opts.liveness_ticks = num(name, val(name)?)?,
            "trace-lines" => a.trace_lines = num(name, val(name)?)?,
            "bug" => {
                let b = val(name)?;
                if !a.opts.bugs.set(&b) {
                    return Err(ArgError::Bad("bug".into(), b));
                }
                a.bug_names.push(b);
            }
            "verbose" | "v" => a.verbose = true,
            "trace" => a.trace = true,
            "no-durability-check" => a.opts.durability_check = false,
            "storm" => a.opts.storm = true,
            "reconfig" => a.opts.reconfig = Some(num(name, val(name)?)?),
            _ => return Err(ArgError::Unknown(flag.clone())),
        }
    }
    if let Some(v) = a.opts.voters {
        if v == 0 {
            return Err(ArgError::Bad("voters".into(), "0".into()));
        }
    }
    Ok(a)
}

impl Args {
    /// The command that replays one seed exactly.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut s = format!("paddock sim --seeds 1 --seed {seed}");
        if let Some(v) = self.opts.voters {
            s += &format!(" --voters {v}");
        }
        if let Some(o) = self.opts.observers {
            s += &format!(" --observers {o}");
        }
        let d = Options::default();
        if self.opts.safety_ticks != d.safety_ticks {
            s += &format!(" --ticks {}", self.opts.safety_ticks);
        }
        if self.opts.liveness_ticks != d.liveness_ticks {
            s += &format!(" --liveness-ticks {}", self.opts.liveness_ticks);
        }
        if !self.opts.durability_check {
            s += " --no-durability-check";
        }
        if let Some(p) = self.opts.reconfig {
            s += &format!(" --reconfig {p}");
        }
        if self.opts.storm {
            s += " --storm";
        }
        for b in &self.bug_names {
            s += &format!(" --bug {b}");
        }
        s
    }
}

fn describe(r: &Report) -> String {
    let s = &r.setup;
    format!(
        "seed {}: {} voters + {} observers, counter {} bits, window {}, {} clients; {} steps, {} committed, {} epochs, {} crashes, {} snaps, {} disk diffs, {} truncs, {} acked writes, {} syncs, {} session touches, {} leadership transfers, {}/{} reconfigurations committed/asked",
        r.seed,
        s.voters,
        s.observers,
        s.counter_bits,
        s.window,
        s.clients,
        r.steps,
        r.committed,
        r.epochs,
        r.stats.crashes,
        r.stats.snaps,
        r.stats.disk_diffs,
        r.stats.truncs,
        r.stats.acked_writes,
        r.stats.syncs,
        r.stats.session_touches,
        r.stats.transfers,
        r.stats.reconfigs,
        r.stats.reconfigs_asked
    )
}

/// Runs the command; returns the process exit code (0 only if no violation).
pub fn main(args: &[String]) -> i32 {
    if args
        .iter()
        .any(|a| matches!(a.as_str(), "--help" | "-h" | "help"))
    {
        println!("{USAGE}");
        return 0;
    }
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("paddock sim: {e}\n{USAGE}");
            return 2;
        }
    };
    let start = Instant::now();
    let mut violations = 0u64;
    for seed in a.seed..a.seed.saturating_add(a.seeds) {
        let mut opts = a.opts.clone();
        if a.trace {
            opts.trace_lines = a.trace_lines;
        }
        let r = run_seed(seed, &opts);
        if a.verbose {
            println!("{}", describe(&r));
        }
        if let Some(v) = r.violation.clone() {
            violations += 1;
            // Re-run with the trace on: the run is deterministic, so it is the same run.
            let r = if r.trace.is_empty() {
                let mut o = a.opts.clone();
                o.trace_lines = a.trace_lines.max(1);
                run_seed(seed, &o)
            } else {
                r
            };
            println!("VIOLATION seed {seed}: {v}");
            println!("  {}", describe(&r));
            println!("  faults: {:?}", r.setup.faults);
            println!("  replay: {}", a.replay_command(seed));
            println!(
                "--- trace of seed {seed} (last {} lines) ---",
                r.trace.len()
            );
            for line in &r.trace {
                println!("{line}");
            }
            println!("--- end of trace; replay: {} ---", a.replay_command(seed));
        } else if a.trace {
            for line in &r.trace {
                println!("{line}");
            }
        }
    }
    println!(
        "ran {} seeds in {:.1}s",
        a.seeds,
        start.elapsed().as_secs_f64()
    );
    println!("seeds: {}, violations: {violations}", a.seeds);
    if violations > 0 {
        1
    } else {
        0
    }
}

/// Runs seeds `first..first+n`; returns the first failing report, if any.
pub fn first_failure(first: u64, n: u64, opts: &Options) -> Option<Report> {
    (first..first + n)
        .map(|s| run_seed(s, opts))
        .find(|r| r.violation.is_some())
}

/// Planted-bug switches by name (for tests and the CLI).
pub fn bugs(names: &[&str]) -> Bugs {
    let mut b = Bugs::default();
    for n in names {
        assert!(b.set(n), "unknown bug {n}");
    }
    b
}

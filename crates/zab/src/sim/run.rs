//! One seed, end to end: a safety phase with faults, then a liveness phase.

use crate::config::Bugs;
use crate::sim::checkers::liveness::Progress;
use crate::sim::checkers::Violation;
use crate::sim::faults::{Faults, TICK};
use crate::sim::rng::Rng;
use crate::sim::world::{Setup, Stats, World};

/// What to run. `None` fields are chosen by the seed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Voters (3..=7 by seed).
    pub voters: Option<usize>,
    /// Observers (0..=2 by seed).
    pub observers: Option<usize>,
    /// Ticks of the safety phase.
    pub safety_ticks: u64,
    /// Tick budget of the liveness phase.
    pub liveness_ticks: u64,
    /// Planted bugs.
    pub bugs: Bugs,
    /// Trace lines to keep (0: none).
    pub trace_lines: usize,
    /// Per-step durability check on (see `Setup::durability_check`).
    pub durability_check: bool,
    /// Every fault on at once instead of the seed's swarm mix.
    pub storm: bool,
    /// Probability per tick of a reconfiguration asked of the leader, instead of the seed's.
    pub reconfig: Option<f64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            voters: None,
            observers: None,
            safety_ticks: 400,
            liveness_ticks: 400,
            bugs: Bugs::default(),
            trace_lines: 0,
            durability_check: true,
            reconfig: None,
            storm: false,
        }
    }
}

/// Result of one seed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The world's setup (derived from the seed).
    pub setup: Setup,
    /// First violation, if any.
    pub violation: Option<Violation>,
    /// Statistics.
    pub stats: Stats,
    /// Committed transactions.
    pub committed: usize,
    /// Epochs with an established leader.
    pub epochs: usize,
    /// Steps.
    pub steps: u64,
    /// Trace (only if asked).
    pub trace: Vec<String>,
}

/// The world a seed describes (swarm: the seed picks the ensemble and the fault mix).
pub fn setup_for(seed: u64, opts: &Options) -> Setup {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let voters = opts
        .voters
        .unwrap_or_else(|| rng.pick(&[3, 3, 4, 5, 5, 6, 7]));
    let observers = opts.observers.unwrap_or_else(|| rng.pick(&[0, 0, 1, 2]));
    let counter_bits = rng.pick(&[32, 32, 32, 4, 6]);
    let window = rng.pick(&[2, 8, 64, 1000]);
    let mut faults = Faults::swarm(&mut rng);
    if opts.storm {
        faults = Faults::storm();
    }
    let clients = rng.range(2, 5) as usize;
    if let Some(p) = opts.reconfig {
        faults.reconfig = p;
    }
    if !opts.storm {
        faults.transfer = Rng::new(seed ^ 0x7472_616e_7366_6572).pick(&[0.0, 0.0, 0.01, 0.05]);
        faults.reconfig = opts.reconfig.unwrap_or_else(|| {
            Rng::new(seed ^ 0x7265_636f_6e66_6967).pick(&[0.0, 0.0, 0.005, 0.02])
        });
    }
    Setup {
        seed,
        voters,
        observers,
        counter_bits,
        window,
        faults,
        clients,
        bugs: opts.bugs,
        trace_lines: opts.trace_lines,
        durability_check: opts.durability_check,
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, opts: &Options) -> Report {
    let setup = setup_for(seed, opts);
    let mut w = World::new(setup.clone());
    // Safety phase: faults on.
    w.start_chaos();
    w.run_ticks(opts.safety_ticks);
    // Liveness phase: heal, then require recovery and new commits within the budget.
    if w.violation.is_none() {
        w.heal_all();
        let target = w.order.len() as u64;
        let from = w.stats.acked_writes;
        let end = w.time + opts.liveness_ticks * TICK;
        loop {
            if w.violation.is_some() || !w.step() || w.time > end {
                break;
            }
            if progress(&w, target, from).done() {
                break;
            }
        }
        if w.violation.is_none() {
            if let Err(e) = progress(&w, target, from).check(opts.liveness_ticks) {
                w.fail("liveness", e);
            }
        }
    }
    if w.violation.is_none() {
        w.check_history();
    }
    Report {
        seed,
        setup,
        violation: w.violation.clone(),
        stats: w.stats.clone(),
        committed: w.order.len(),
        epochs: w.epochs(),
        steps: w.steps,
        trace: w.trace.into_iter().collect(),
    }
}

fn progress(w: &World, target: u64, from: u64) -> Progress {
    Progress {
        up: w.nodes.iter().filter(|n| n.node.is_some()).count(),
        nodes: w.nodes.len(),
        serving: w.nodes.iter().filter(|n| n.serving()).count(),
        leader: w.leader().is_some(),
        min_applied: w.nodes.iter().map(|n| n.sm.len).min().unwrap_or(0),
        target,
        new_acks: w.stats.acked_writes - from,
    }
}

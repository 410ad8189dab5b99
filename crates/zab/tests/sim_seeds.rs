//! Random seeds through the simulator: faults on (safety phase), then healed (liveness
//! phase). `cargo test --release -p paddock-zab` runs 5,800 seeds here, and the seeds that once
//! found a bug.

use paddock_zab::sim::run::{run_seed, Options};

fn run_range(first: u64, n: u64, opts: &Options) {
    // The simulator is meant for release builds (CI runs it so); a debug build, which also
    // checks every node's invariants after each step, runs a tenth of the seeds.
    let n = if cfg!(debug_assertions) {
        n.div_ceil(10)
    } else {
        n
    };
    let mut failures = Vec::new();
    for seed in first..first + n {
        let r = run_seed(seed, opts);
        if let Some(v) = r.violation {
            failures.push(format!(
                "seed {seed}: {v}\n  replay: paddock sim --seeds 1 --seed {seed}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn swarm_seeds_1_to_2000() {
    run_range(1, 2000, &Options::default());
}

#[test]
fn swarm_seeds_2001_to_4000() {
    run_range(2001, 2000, &Options::default());
}

/// Seeds that once found a bug, each named for it.
#[test]
fn regression_seeds() {
    // Two leaders picked epoch 1 from different quorums; one learner's ACKEPOCH counted for
    // both, and the second truncated what the first had committed.
    run_range(122_060, 1, &Options::default());
}

#[test]
fn long_runs_500_seeds_of_3000_ticks() {
    let opts = Options {
        safety_ticks: 3000,
        ..Options::default()
    };
    run_range(50_001, 500, &opts);
}

#[test]
fn seven_voters_two_observers_300_seeds() {
    let opts = Options {
        voters: Some(7),
        observers: Some(2),
        safety_ticks: 1000,
        ..Options::default()
    };
    run_range(10_001, 300, &opts);
}

/// Reconfigurations asked often (the swarm seeds ask for them on half the seeds, rarely):
/// voters become observers and back, the leader among them, under every other fault.
#[test]
fn reconfig_500_seeds() {
    run_range(30_001, 500, &three_voters_two_observers_reconfiguring());
}

/// Three voters and two observers, a reconfiguration asked with probability 0.05 per tick,
/// 1,000 ticks: the mix `paddock sim --voters 3 --observers 2 --reconfig 0.05 --ticks 1000`.
fn three_voters_two_observers_reconfiguring() -> Options {
    Options {
        reconfig: Some(0.05),
        voters: Some(3),
        observers: Some(2),
        safety_ticks: 1000,
        ..Options::default()
    }
}

/// Seeds that found bugs while reconfiguration was built: among them a snapshot installed
/// over a log holding an uncommitted reconfiguration below it activated that
/// reconfiguration, (1,082,154) a deposed leader took a newer configuration from a
/// notification and gathered a quorum of its new voters for its own proposals, and
/// (1,009,595) a rollover never finished once its quorum had changed.
#[test]
fn reconfig_regression_seeds() {
    let opts = Options {
        reconfig: Some(0.05),
        ..Options::default()
    };
    for seed in [196, 202, 3011, 3203, 3549, 3930] {
        run_range(seed, 1, &opts);
    }
    let opts = Options {
        reconfig: Some(0.03),
        ..Options::default()
    };
    run_range(1_082_154, 1, &opts);
    // A rollover waiting on a follower that a reconfiguration then made an observer.
    run_range(1_009_595, 1, &opts);
    run_range(3_001_453, 1, &three_voters_two_observers_reconfiguring());
}

#[test]
fn storm_500_seeds() {
    let opts = Options {
        storm: true,
        safety_ticks: 1000,
        ..Options::default()
    };
    run_range(20_001, 500, &opts);
}

#[test]
fn same_seed_same_run() {
    let opts = Options {
        trace_lines: 100_000,
        ..Options::default()
    };
    let a = run_seed(42, &opts);
    let b = run_seed(42, &opts);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.trace, b.trace);
}

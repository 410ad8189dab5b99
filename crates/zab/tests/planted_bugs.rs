//! The checks bite: each planted bug is caught within the CI seed budget.

use paddock_zab::sim::cli::{bugs, first_failure};
use paddock_zab::sim::run::Options;

/// Seeds each planted-bug test may use.
const BUDGET: u64 = 300;

fn caught(bug: &str, durability_check: bool, budget: u64) -> String {
    let opts = Options {
        bugs: bugs(&[bug]),
        durability_check,
        ..Options::default()
    };
    let r = first_failure(1, budget, &opts)
        .unwrap_or_else(|| panic!("planted bug {bug} not caught within {budget} seeds"));
    let v = r.violation.expect("failure");
    eprintln!("{bug}: caught at seed {} by {}", r.seed, v);
    v.checker.to_string()
}

#[test]
fn ack_before_fsync_is_caught() {
    caught("ack-before-fsync", true, BUDGET);
}

#[test]
fn newleader_ack_before_durable_is_caught() {
    caught("newleader-ack-before-durable", true, BUDGET);
}

#[test]
fn commit_without_quorum_is_caught() {
    caught("commit-without-quorum", true, BUDGET);
}

#[test]
fn apply_uncommitted_is_caught() {
    caught("apply-uncommitted", true, BUDGET);
}

/// With the per-step durability check off, the damage itself shows: divergent applied
/// prefixes, lost acknowledged writes, stale syncs or an ensemble that cannot recover.
#[test]
fn damage_is_caught_without_the_durability_check() {
    for bug in [
        "ack-before-fsync",
        "commit-without-quorum",
        "apply-uncommitted",
    ] {
        let checker = caught(bug, false, 2000);
        assert_ne!(checker, "committed_never_lost");
    }
}

//! Runs sequences against both servers in lockstep and compares their transcripts step by step.

use super::gen::Gen;
use super::norm::NotifZxid;
use super::ops::Op;
use super::side::Side;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The first step at which the servers disagreed.
pub struct Mismatch {
    pub seed: u64,
    /// The environment that replays it.
    pub replay: String,
    pub step: usize,
    pub op: String,
    pub zookeeper: Vec<String>,
    pub paddock: Vec<String>,
    /// The operations before it, to read the report without replaying.
    pub history: Vec<String>,
}

impl Settings {
    /// The environment variables that replay `seed` with these settings.
    fn replay(&self, seed: u64) -> String {
        let mut env = format!("DIFF_SEED={seed} DIFF_STEPS={}", self.steps);
        if !self.avoid.is_empty() {
            env += &format!(" DIFF_AVOID={}", self.avoid.join(","));
        }
        env
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "=== MISMATCH seed={} step={}", self.seed, self.step)?;
        writeln!(
            f,
            "replay: {} cargo test --release -p paddock --test differential -- --ignored --nocapture",
            self.replay
        )?;
        writeln!(f, "steps before it:")?;
        for h in &self.history {
            writeln!(f, "  {h}")?;
        }
        writeln!(f, "op: {}", self.op)?;
        let n = self.zookeeper.len().max(self.paddock.len());
        for i in 0..n {
            let z = self.zookeeper.get(i).map_or("<nothing>", |s| s.as_str());
            let p = self.paddock.get(i).map_or("<nothing>", |s| s.as_str());
            let mark = if z == p { " " } else { "!" };
            writeln!(f, "{mark} zookeeper: {z}")?;
            if z != p {
                writeln!(f, "{mark} paddock:   {p}")?;
            }
        }
        Ok(())
    }
}

/// What every sequence of a run shares.
pub struct Settings {
    /// Random steps per sequence.
    pub steps: usize,
    /// Kinds of operation the generator leaves out.
    pub avoid: Vec<String>,
}

/// Runs one sequence; `Ok(steps)` when every step matched. Counts the kinds of operation run.
pub fn run_sequence(
    seed: u64,
    settings: &Settings,
    zk_addr: SocketAddr,
    pd_addr: SocketAddr,
    kinds: &mut BTreeMap<String, usize>,
) -> Result<usize, Box<Mismatch>> {
    let mut zk = Side::new(zk_addr, NotifZxid::Minus1);
    let mut pd = Side::new(pd_addr, NotifZxid::FiringTxn);
    let mut history = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        lockstep(seed, settings, &mut zk, &mut pd, &mut history, kinds)
    }));
    let result = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Box::new(Mismatch {
                seed,
                replay: settings.replay(seed),
                step: history.len(),
                op: "(the tester panicked)".into(),
                zookeeper: vec![format!("panic: {msg}")],
                paddock: vec![],
                history: history.clone(),
            }))
        }
    };
    if result.is_err() {
        // Leave no session behind to expire into the next sequence.
        let _ = catch_unwind(AssertUnwindSafe(|| zk.shutdown()));
        let _ = catch_unwind(AssertUnwindSafe(|| pd.shutdown()));
    }
    result
}

fn lockstep(
    seed: u64,
    settings: &Settings,
    zk: &mut Side,
    pd: &mut Side,
    history: &mut Vec<String>,
    kinds: &mut BTreeMap<String, usize>,
) -> Result<usize, Box<Mismatch>> {
    let mut gen = Gen::new(seed, settings.steps, &settings.avoid);
    let mut n = 0;
    while let Some(op) = gen.next(&zk.view(), zk.zxids_seen()) {
        let (a, b) = match op {
            Op::Expire { slot } => expire(slot, zk, pd),
            _ => (zk.run(&op), pd.run(&op)),
        };
        if a != b {
            return Err(Box::new(Mismatch {
                seed,
                replay: settings.replay(seed),
                step: n,
                op: op.describe(),
                zookeeper: a,
                paddock: b,
                history: history.clone(),
            }));
        }
        *kinds.entry(op.kind()).or_default() += 1;
        gen.learn(zk.take_created());
        pd.take_created();
        history.push(format!("{n}: {}", op.describe()));
        n += 1;
    }
    Ok(n)
}

/// Lets one session expire on both servers at once (halving the wait), keeping the others
/// alive meanwhile. Done when both servers have closed its connection and applied its close.
fn expire(slot: usize, zk: &mut Side, pd: &mut Side) -> (Vec<String>, Vec<String>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let before = (zk.applied_zxid(), pd.applied_zxid());
    zk.freeze(slot);
    pd.freeze(slot);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut zk_closed, mut pd_closed) = (false, false);
    while !(zk_closed && pd_closed) && Instant::now() < deadline {
        zk.keep_alive(&mut a);
        pd.keep_alive(&mut b);
        let poll = Duration::from_millis(50);
        zk_closed = zk_closed || zk.frozen_closed(slot, poll);
        pd_closed = pd_closed || pd.frozen_closed(slot, poll);
    }
    // ZooKeeper closes an idle connection on its own clock, which may run ahead of the
    // session's close transaction: wait until each server applied that transaction too, or
    // the next step's replies would carry a zxid from before it on one side only.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !(zk.applied_zxid() > before.0 && pd.applied_zxid() > before.1)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    zk.expired(slot, zk_closed, &mut a);
    pd.expired(slot, pd_closed, &mut b);
    zk.finish(true, &mut a);
    pd.finish(true, &mut b);
    (a, b)
}

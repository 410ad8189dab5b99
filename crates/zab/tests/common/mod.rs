//! Helpers shared by the scenario tests: building a calm world, running it until it settles,
//! scripted writes, and the convergence check that ends each scenario.
#![allow(dead_code)] // each test binary uses its own subset

use paddock_zab::sim::history::Outcome;
use paddock_zab::sim::world::{Setup, World};
use paddock_zab::{LearnerMsg, Message, Node, ServerId, Zxid};

pub fn world(voters: usize, observers: usize) -> World {
    world_with(Setup {
        trace_lines: 20_000,
        ..Setup::scenario(voters, observers)
    })
}

pub fn world_with(setup: Setup) -> World {
    World::new(setup)
}

/// Panics with the trace if a checker fired.
pub fn ok(w: &World) {
    if let Some(v) = &w.violation {
        let trace: Vec<&str> = w.trace.iter().map(|s| s.as_str()).collect();
        panic!(
            "{v}\n--- trace (last lines) ---\n{}",
            trace[trace.len().saturating_sub(300)..].join("\n")
        );
    }
}

pub fn dump(w: &World) -> String {
    let trace: Vec<&str> = w.trace.iter().map(|s| s.as_str()).collect();
    trace[trace.len().saturating_sub(200)..].join("\n")
}

pub fn node(w: &World, id: ServerId) -> &Node {
    w.node(id).unwrap_or_else(|| panic!("n{id} is down"))
}

pub fn all_up_serving(w: &World) -> bool {
    w.nodes
        .iter()
        .filter(|n| n.node.is_some())
        .all(|n| n.serving())
}

/// Runs until an established leader exists and every running node serves; returns the leader.
pub fn settle(w: &mut World) -> ServerId {
    assert!(
        w.run_until(300, |w| w.leader().is_some() && all_up_serving(w)),
        "no stable leader"
    );
    ok(w);
    w.leader().expect("leader")
}

/// A write through `id`, run until it completes; its zxid if acknowledged.
pub fn write(w: &mut World, id: ServerId) -> Option<Zxid> {
    let op = w.submit_write(id, None);
    w.run_until(100, |w| w.history[op].complete.is_some());
    ok(w);
    match w.history[op].outcome {
        Outcome::Ok(z) => Some(z),
        _ => None,
    }
}

/// Everything up, every node serves and has applied the whole committed order; histories check.
pub fn converge(w: &mut World) {
    w.filter = None;
    w.net.heal();
    for i in 0..w.nodes.len() {
        let id = w.nodes[i].id;
        w.restart(id);
        w.stall_disk(id, false);
    }
    let ok_now = w.run_until(600, |w| {
        all_up_serving(w)
            && w.leader().is_some()
            && w.nodes.iter().all(|n| n.sm.len as usize == w.order.len())
    });
    ok(w);
    if !ok_now {
        let trace: Vec<&str> = w.trace.iter().map(|s| s.as_str()).collect();
        let states: Vec<String> = w
            .nodes
            .iter()
            .map(|n| match &n.node {
                Some(x) => format!(
                    "n{} {:?} serving={} applied={} sm={} log={}",
                    n.id,
                    x.role(),
                    x.is_serving(),
                    x.applied(),
                    n.sm.len,
                    x.last_logged()
                ),
                None => format!("n{} down", n.id),
            })
            .collect();
        panic!(
            "ensemble did not converge: order {} {:?}\n{}",
            w.order.len(),
            states,
            trace[trace.len().saturating_sub(150)..].join("\n")
        );
    }
    // and new writes still commit
    let l = w.leader().expect("leader");
    assert!(write(w, l).is_some(), "write after convergence failed");
    w.check_history();
    ok(w);
}

pub fn is_learner_msg(m: &Message, f: impl Fn(&LearnerMsg) -> bool) -> bool {
    matches!(m, Message::Learner { msg, .. } if f(msg))
}

pub fn followers(w: &World, l: ServerId) -> Vec<ServerId> {
    (1..=w.setup.voters as u64).filter(|&id| id != l).collect()
}

//! Named scenarios, hand-scripted on the simulator: one per bug class of ZooKeeper's sync
//! phase, plus rollover, observers, ordering during sync, truncation and quorum loss.

use paddock_zab::sim::history::{OpKind, Outcome};
use paddock_zab::sim::world::{Setup, World};
use paddock_zab::{
    Bugs, LearnerMsg, Message, Node, Recovered, RecoveryError, RoleKind, ServerId, Txn, Zxid,
};
use std::cell::RefCell;
use std::rc::Rc;

mod common;
use common::*;

/// ZOOKEEPER-1549: a learner that receives, in a DIFF, transactions the new leader has not yet
/// committed must not apply them (nor snapshot them) before they are committed.
#[test]
fn sync_diff_of_uncommitted_txns_is_not_applied_zk1549() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    for _ in 0..3 {
        write(&mut w, l).expect("write");
    }
    let f = followers(&w, l);
    let (a, b) = (f[0], f[1]);
    // x reaches only the leader's log
    w.net.blocked.insert((l, a));
    w.net.blocked.insert((l, b));
    w.submit_write(l, None);
    w.run_ticks(1);
    let x = node(&w, l).last_logged();
    assert!(x > node(&w, l).commit());
    w.crash(b);
    w.net.heal();
    // the old leader wins again (longest log) and DIFFs x to a; its NEWLEADER ack never arrives
    w.filter = Some(Box::new(move |from, to, m| {
        !(from == a
            && to == l
            && is_learner_msg(m, |m| matches!(m, LearnerMsg::AckNewLeader { .. })))
    }));
    assert!(
        w.run_until(200, |w| w.node(a).is_some_and(|n| n.last_logged() >= x)),
        "a never got x"
    );
    ok(&w);
    assert!(node(&w, a).applied() < x, "uncommitted DIFF txn applied");
    w.run_ticks(2);
    assert!(node(&w, a).applied() < x, "uncommitted DIFF txn applied");
    w.crash(l);
    w.filter = None;
    converge(&mut w);
}

/// ZOOKEEPER-2355: a follower that fails after logging a proposal but before its COMMIT must,
/// after restart, apply it (the ephemeral of a closeSession must go away everywhere).
#[test]
fn follower_failing_mid_proposal_applies_it_after_restart_zk2355() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l)[0];
    w.filter = Some(Box::new(move |from, to, m| {
        !(from == l && to == f && is_learner_msg(m, |m| matches!(m, LearnerMsg::Commit { .. })))
    }));
    let p = write(&mut w, l).expect("committed by the leader and the other follower");
    assert!(
        w.run_until(50, |w| w.nodes[w.idx(f)].disk.holds(p)),
        "f never logged p"
    );
    assert!(node(&w, f).applied() < p);
    w.crash(f);
    w.filter = None;
    w.restart(f);
    converge(&mut w);
    assert!(node(&w, f).applied() >= p);
}

/// ZOOKEEPER-3642: the leader crashes after sending a SNAP and before NEWLEADER. The learner
/// holds a committed snapshot but not the new epoch; the ensemble must recover without loss.
#[test]
fn leader_crash_after_snap_before_newleader_zk3642() {
    let mut w = world_with(Setup {
        window: 2,
        trace_lines: 20_000,
        ..Setup::scenario(3, 0)
    });
    let l = settle(&mut w);
    let f = followers(&w, l)[0];
    w.crash(f);
    for _ in 0..10 {
        write(&mut w, l).expect("write");
    }
    // the leader's log no longer reaches back to f: f needs a snapshot
    w.run_ticks(1);
    assert!(w.snapshot_and_purge(l));
    w.filter = Some(Box::new(move |from, to, m| {
        !(from == l && to == f && is_learner_msg(m, |m| matches!(m, LearnerMsg::NewLeader { .. })))
    }));
    w.restart(f);
    let fi = w.idx(f);
    assert!(
        w.run_until(100, |w| w.stats.snaps >= 1 && w.nodes[fi].sm.len >= 10),
        "no snapshot sync\n{}",
        dump(&w)
    );
    ok(&w);
    let epoch_before = node(&w, f).current_epoch();
    w.run_ticks(1);
    w.crash(l);
    w.filter = None;
    assert!(
        node(&w, f).current_epoch() == epoch_before,
        "f acted on a NEWLEADER it never got"
    );
    converge(&mut w);
}

/// Builds the ZOOKEEPER-3911 situation: a learner receives a DIFF carrying a transaction only
/// the leader holds, and its disk stalls before the DIFF is durable. Returns (world, leader,
/// learner, x).
fn zk3911_setup(bugs: Bugs) -> (World, ServerId, ServerId, Zxid) {
    let mut w = world_with(Setup {
        bugs,
        trace_lines: 20_000,
        ..Setup::scenario(3, 0)
    });
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l);
    let (a, b) = (f[0], f[1]);
    w.crash(a);
    w.net.blocked.insert((l, b));
    w.submit_write(l, None);
    w.run_ticks(1);
    let x = node(&w, l).last_logged();
    w.crash(b);
    w.net.heal();
    // let the old leader lose its quorum and step down, so that a new epoch syncs the learner
    assert!(w.run_until(50, |w| w
        .node(l)
        .is_some_and(|n| n.role() != RoleKind::Leading)));
    w.stall_disk_on = Some((
        a,
        Box::new(|m| is_learner_msg(m, |m| matches!(m, LearnerMsg::Sync { .. }))),
    ));
    w.restart(a);
    assert!(
        w.run_until(200, |w| w.node(a).is_some_and(|n| n.last_logged() >= x)),
        "no DIFF"
    );
    (w, l, a, x)
}

/// ZOOKEEPER-3911: NEWLEADER is acknowledged only once the synced history is durable, so the
/// leader cannot commit a transaction that only it holds durably.
#[test]
fn newleader_ack_waits_for_durable_diff_zk3911() {
    let (mut w, l, a, x) = zk3911_setup(Bugs::default());
    w.run_ticks(10);
    ok(&w);
    assert!(
        node(&w, l).established_epoch().is_none(),
        "established on a non-durable DIFF"
    );
    assert!(node(&w, a).commit() < x);
    w.stall_disk(a, false);
    converge(&mut w);
}

/// The same situation with the planted bug: the checkers catch it.
#[test]
fn newleader_ack_before_durable_is_caught_zk3911() {
    let bugs = Bugs {
        newleader_ack_before_durable: true,
        ..Bugs::default()
    };
    let (mut w, _l, _a, _x) = zk3911_setup(bugs);
    w.run_ticks(10);
    let v = w.violation.clone().expect("planted bug not caught");
    assert_eq!(v.checker, "committed_never_lost");
}

/// ZOOKEEPER-4646 / 4785: currentEpoch and NEWLEADER. A learner that crashes after NEWLEADER
/// but before its current epoch is durable has not acknowledged it, and restarts consistent.
#[test]
fn crash_between_newleader_and_durable_current_epoch_zk4646_zk4785() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l);
    let (a, b) = (f[0], f[1]);
    w.crash(a);
    for _ in 0..3 {
        write(&mut w, l).expect("write");
    }
    w.crash(b);
    // the leader steps down (no quorum) and is re-elected with a only
    assert!(w.run_until(50, |w| w
        .node(l)
        .is_some_and(|n| n.role() != RoleKind::Leading)));
    w.stall_disk_on = Some((
        a,
        Box::new(|m| is_learner_msg(m, |m| matches!(m, LearnerMsg::NewLeader { .. }))),
    ));
    w.restart(a);
    let ai = w.idx(a);
    assert!(
        w.run_until(200, |w| w.nodes[ai].disk_stalled),
        "a never got NEWLEADER"
    );
    w.run_ticks(5);
    ok(&w);
    assert!(
        node(&w, l).established_epoch().is_none(),
        "NEWLEADER acked before durable"
    );
    let new_epoch = node(&w, a).current_epoch();
    w.crash(a);
    w.restart(a);
    assert!(node(&w, a).current_epoch() <= new_epoch);
    converge(&mut w);
}

/// ZOOKEEPER-4925: a node whose log has a hole refuses to start, rather than voting as if its
/// history were complete.
#[test]
fn log_with_a_hole_refuses_to_start_zk4925() {
    let cfg = paddock_zab::Config::new(1, vec![1, 2, 3], vec![]);
    let t = |e, c| Txn {
        zxid: Zxid::new(e, c),
        payload: Default::default(),
    };
    let rec = Recovered {
        accepted_epoch: 2,
        current_epoch: 2,
        snapshot_zxid: Zxid::ZERO,
        log: vec![t(1, 1), t(1, 3)],
    };
    let err = Node::recover(cfg.clone(), rec, 1).expect_err("hole accepted");
    assert!(matches!(err, RecoveryError::Hole { .. }));
    let rec = Recovered {
        accepted_epoch: 2,
        current_epoch: 2,
        snapshot_zxid: Zxid::new(1, 1),
        log: vec![t(1, 2), t(2, 1)],
    };
    assert!(Node::recover(cfg, rec, 1).is_ok());
}

/// ZOOKEEPER-4925, ensemble side: a stale node that missed committed writes never becomes the
/// leader over an up-to-date one, and nothing committed is lost.
#[test]
fn stale_node_never_leads_over_committed_history_zk4925() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    let f = followers(&w, l);
    let (stale, up) = (f[0], f[1]);
    w.crash(stale);
    let mut last = Zxid::ZERO;
    for _ in 0..5 {
        last = write(&mut w, l).expect("write");
    }
    w.crash(l);
    w.restart(stale);
    let leader = settle(&mut w);
    assert_eq!(leader, up, "the stale node led");
    assert!(node(&w, stale).applied() >= last);
    converge(&mut w);
}

/// Running out of counter moves the ensemble to the next epoch without an election
/// (rollover.rs): the same leader throughout, every write acknowledged, nothing lost.
#[test]
fn counter_rollover_moves_to_the_next_epoch_without_an_election() {
    let mut w = world_with(Setup {
        counter_bits: 3,
        trace_lines: 1_000_000,
        ..Setup::scenario(3, 1)
    });
    let l = settle(&mut w);
    let elections = |w: &World| {
        w.trace
            .iter()
            .filter(|t| t.contains("role Looking"))
            .count()
    };
    let before = elections(&w);
    let first_epoch = node(&w, l).current_epoch();
    for i in 0..60 {
        assert!(write(&mut w, l).is_some(), "write {i} not acknowledged");
        assert_eq!(w.leader(), Some(l), "the leader changed at write {i}");
        assert!(
            w.nodes.iter().all(|n| n.serving()),
            "a node stopped serving"
        );
    }
    assert!(
        w.order.entries.iter().all(|(z, _)| z.counter() <= 7),
        "a counter past its bits"
    );
    let epochs = node(&w, l).current_epoch() - first_epoch;
    assert!(
        epochs >= 8,
        "only {epochs} rollovers for 60 writes of 7 per epoch"
    );
    assert_eq!(elections(&w), before, "an election ran");
    converge(&mut w);
}

/// A rollover racing a leader crash: the followers take the new epoch, and the leader dies
/// before it hears them. The next leader's epoch is above the one they took, and every
/// acknowledged write survives.
#[test]
fn rollover_racing_a_leader_crash_loses_nothing() {
    let mut w = world_with(Setup {
        counter_bits: 3,
        trace_lines: 20_000,
        ..Setup::scenario(3, 0)
    });
    let l = settle(&mut w);
    let mut last = Zxid::ZERO;
    while let Some(z) = write(&mut w, l) {
        last = z;
        if z.counter() == 6 {
            break;
        }
    }
    assert_eq!(last.counter(), 6, "the epoch's counter did not run");
    // The epoch's last counter (which may commit or not: a follower acknowledges it alone
    // or with the new epoch), then a write that waits for the rollover.
    let _seventh = w.submit_write(l, None);
    let op = w.submit_write(l, None);
    let next = last.epoch() + 1;
    let fs = followers(&w, l);
    assert!(
        w.run_until(50, |w| fs
            .iter()
            .all(|&f| w.node(f).is_some_and(|n| n.current_epoch() == next))),
        "the followers did not take the next epoch\n{}",
        dump(&w)
    );
    assert!(
        w.history[op].complete.is_none(),
        "proposed before the rollover"
    );
    w.crash(l);
    let n = settle(&mut w);
    assert_ne!(n, l);
    assert!(
        node(&w, n).current_epoch() > next,
        "a new leader reused the rolled epoch"
    );
    assert!(node(&w, n).applied() >= last);
    converge(&mut w);
}

/// A follower crashes between logging the old epoch's last proposals and acknowledging the
/// new epoch; the other follower completes the rollover with the leader, and the crashed one
/// comes back into the new epoch.
#[test]
fn rollover_with_a_follower_crash_in_the_middle() {
    let mut w = world_with(Setup {
        counter_bits: 3,
        trace_lines: 20_000,
        ..Setup::scenario(3, 0)
    });
    let l = settle(&mut w);
    let f = followers(&w, l)[0];
    w.filter = Some(Box::new(move |from, _, m| {
        !(from == f && is_learner_msg(m, |m| matches!(m, LearnerMsg::AckNewEpoch { .. })))
    }));
    for _ in 0..7 {
        write(&mut w, l).expect("write");
    }
    w.crash(f);
    w.filter = None;
    let z = write(&mut w, l).expect("a write of the next epoch, with one follower");
    assert_eq!(z.counter(), 1);
    assert_eq!(w.leader(), Some(l));
    w.restart(f);
    converge(&mut w);
    assert!(node(&w, f).applied() >= z);
}

/// Observers learn committed transactions and are never counted in a quorum.
#[test]
fn observers_are_never_counted() {
    let mut w = world(3, 2);
    let l = settle(&mut w);
    let z = write(&mut w, l).expect("write");
    assert!(
        w.run_until(20, |w| w.node(4).is_some_and(|n| n.applied() >= z)
            && w.node(5).is_some_and(|n| n.applied() >= z))
    );
    for f in followers(&w, l) {
        w.crash(f);
    }
    let before = w.order.len();
    let op = w.submit_write(l, None);
    w.run_ticks(30);
    ok(&w);
    assert_eq!(w.order.len(), before, "committed with observers only");
    assert_ne!(w.history[op].outcome, Outcome::Ok(Zxid::new(0, 0)));
    assert!(!matches!(w.history[op].outcome, Outcome::Ok(_)));
    assert_ne!(
        node(&w, l).role(),
        RoleKind::Leading,
        "leader kept leading with observers only"
    );
    converge(&mut w);
}

/// Proposals made while a learner syncs are queued behind its DIFF: on the learner's
/// connection every proposal comes in zxid order, and NEWLEADER follows the DIFF.
#[test]
fn proposals_during_sync_are_queued_behind_the_diff() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    let f = followers(&w, l)[0];
    w.crash(f);
    for _ in 0..5 {
        write(&mut w, l).expect("write");
    }
    let seen: Rc<RefCell<Vec<(u64, String, Zxid)>>> = Rc::default();
    let s2 = seen.clone();
    w.filter = Some(Box::new(move |from, to, m| {
        if from == l && to == f {
            if let Message::Learner { conn, msg } = m {
                let (kind, z) = match msg {
                    LearnerMsg::Sync { .. } => ("sync", Zxid::ZERO),
                    LearnerMsg::Snap { zxid, .. } => ("sync", *zxid),
                    LearnerMsg::Proposal { txn } => ("proposal", txn.zxid),
                    LearnerMsg::NewLeader { .. } => ("newleader", Zxid::ZERO),
                    LearnerMsg::UpToDate { .. } => ("uptodate", Zxid::ZERO),
                    _ => ("other", Zxid::ZERO),
                };
                s2.borrow_mut().push((*conn, kind.to_string(), z));
            }
        }
        true
    }));
    w.restart(f);
    // keep writing while f syncs
    for _ in 0..40 {
        w.submit_write(l, None);
        w.run_until_time(w.time + 30);
        ok(&w);
    }
    converge(&mut w);
    let seen = seen.borrow();
    let first = seen
        .iter()
        .position(|(_, k, _)| k == "sync")
        .expect("sync sent");
    let conn = seen[first].0;
    let on_conn: Vec<&(u64, String, Zxid)> = seen[first..]
        .iter()
        .filter(|(c, _, _)| *c == conn)
        .collect();
    assert_eq!(on_conn[0].1, "sync");
    let nl = on_conn
        .iter()
        .position(|(_, k, _)| k == "newleader")
        .expect("NEWLEADER sent");
    let props: Vec<Zxid> = on_conn
        .iter()
        .filter(|(_, k, _)| k == "proposal")
        .map(|(_, _, z)| *z)
        .collect();
    assert!(
        props.windows(2).all(|p| p[0] < p[1]),
        "proposals out of order: {props:?}"
    );
    let after_nl = on_conn[nl..]
        .iter()
        .filter(|(_, k, _)| k == "proposal")
        .count();
    assert!(after_nl > 0, "no proposal was made during the sync");
}

/// An uncommitted tail from an older epoch is truncated when its holder rejoins, never
/// committed by the new leader that did not see it.
#[test]
fn uncommitted_old_epoch_tail_is_truncated() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l);
    w.net.blocked.insert((l, f[0]));
    w.net.blocked.insert((l, f[1]));
    let op = w.submit_write(l, None);
    w.run_ticks(1);
    let x = node(&w, l).last_logged();
    w.isolate(l);
    let l2 = {
        assert!(
            w.run_until(100, |w| w.leader().is_some_and(|n| n != l)),
            "no new leader"
        );
        w.leader().expect("leader")
    };
    let y = write(&mut w, l2).expect("write in the new epoch");
    assert!(y.epoch() > x.epoch());
    w.net.heal();
    converge(&mut w);
    assert!(w.stats.truncs >= 1, "no TRUNC");
    let OpKind::Write(p) = &w.history[op].kind else {
        unreachable!()
    };
    assert!(
        w.order.entries.iter().all(|(z, q)| *z != x && q != p),
        "old-epoch tail committed"
    );
}

/// A leader that loses its quorum steps down within the sync limit; the others elect anew.
#[test]
fn leader_without_quorum_steps_down() {
    let mut w = world(5, 0);
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    w.isolate(l);
    w.run_ticks(13);
    assert_ne!(
        node(&w, l).role(),
        RoleKind::Leading,
        "isolated leader still leading"
    );
    assert!(
        w.run_until(100, |w| w.leader().is_some_and(|n| n != l)),
        "no new leader"
    );
    w.net.heal();
    converge(&mut w);
}

/// sync() on a follower completes only once it has applied every write acknowledged before
/// the sync (the world checks this at completion).
#[test]
fn read_after_sync_sees_acknowledged_writes() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    for f in followers(&w, l) {
        for _ in 0..3 {
            let z = write(&mut w, l).expect("write");
            let op = w.submit_sync(f, None);
            w.run_until(50, |w| w.history[op].complete.is_some());
            ok(&w);
            match w.history[op].outcome {
                Outcome::Ok(seen) => assert!(seen >= z),
                o => panic!("sync failed: {o:?}"),
            }
        }
    }
    converge(&mut w);
}

/// DIFF is served from the in-memory window plus the on-disk log: a learner further behind than
/// the window gets the older part read from disk, not a snapshot. After a purge, a SNAP.
#[test]
fn diff_beyond_the_memory_window_comes_from_the_disk_log() {
    let mut w = world_with(Setup {
        window: 2,
        trace_lines: 20_000,
        ..Setup::scenario(3, 0)
    });
    let l = settle(&mut w);
    let f = followers(&w, l);
    w.crash(f[0]);
    for _ in 0..10 {
        write(&mut w, l).expect("write");
    }
    w.restart(f[0]);
    converge(&mut w);
    assert!(w.stats.disk_diffs >= 1, "no DIFF from disk");
    assert_eq!(w.stats.snaps, 0, "SNAP although the disk log reaches back");
    // the same after the leader purged its log: a snapshot
    let l = w.leader().expect("leader");
    let f = followers(&w, l);
    w.crash(f[0]);
    for _ in 0..10 {
        write(&mut w, l).expect("write");
    }
    w.run_ticks(1);
    assert!(w.snapshot_and_purge(l));
    w.restart(f[0]);
    converge(&mut w);
    assert!(w.stats.snaps >= 1, "no SNAP after the purge");
}

/// sync() needs a quorum: a leader cut off from the majority (which may already have elected
/// another leader and acknowledged writes) never completes a sync, so a follower on its side
/// cannot pass stale state off as synced.
#[test]
fn sync_through_a_minority_leader_never_completes() {
    let mut w = world(5, 0);
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l);
    let (mine, others) = (f[0], &f[1..]);
    for &o in others {
        w.cut(l, o);
        w.cut(mine, o);
    }
    let op = w.submit_sync(mine, None);
    w.run_until(40, |w| w.history[op].complete.is_some());
    ok(&w);
    assert!(
        !matches!(w.history[op].outcome, Outcome::Ok(_)),
        "sync completed on the minority side"
    );
    // the majority side moved on meanwhile
    let l2 = w.leader().expect("majority leader");
    assert!(others.contains(&l2));
    write(&mut w, l2).expect("majority write");
    converge(&mut w);
}

/// A deposed leader whose clock runs slow still believes it leads, and a follower on its side
/// (slow too) still follows it, while the majority elected a new leader and acknowledged a
/// write. A sync through that follower must not complete. Returns the world after the sync was
/// sent, and the sync's op.
fn deposed_leader_sync(bugs: Bugs) -> (World, usize) {
    let mut w = world_with(Setup {
        bugs,
        trace_lines: 20_000,
        ..Setup::scenario(5, 0)
    });
    let l = settle(&mut w);
    write(&mut w, l).expect("write");
    let f = followers(&w, l);
    let (mine, others) = (f[0], f[1..].to_vec());
    w.set_tick_period(l, 5000);
    w.set_tick_period(mine, 5000);
    for &o in &others {
        w.cut(l, o);
        w.cut(mine, o);
    }
    assert!(
        w.run_until(100, |w| w.leader().is_some_and(|n| n != l)),
        "no majority leader"
    );
    let l2 = w.leader().expect("leader");
    write(&mut w, l2).expect("majority write");
    assert_eq!(
        node(&w, l).role(),
        RoleKind::Leading,
        "the deposed leader noticed too early"
    );
    let op = w.submit_sync(mine, None);
    w.run_ticks(20);
    (w, op)
}

#[test]
fn sync_through_a_deposed_leader_with_a_slow_clock_never_completes() {
    let (mut w, op) = deposed_leader_sync(Bugs::default());
    ok(&w);
    assert!(
        w.history[op].complete.is_none(),
        "sync completed through a deposed leader"
    );
    for n in 1..=5 {
        w.set_tick_period(n, 100);
    }
    converge(&mut w);
}

/// The same with the planted bug: the read-after-sync checker catches the stale sync.
#[test]
fn sync_without_quorum_is_caught() {
    let bugs = Bugs {
        sync_without_quorum: true,
        ..Bugs::default()
    };
    let (w, _op) = deposed_leader_sync(bugs);
    let v = w.violation.clone().expect("planted bug not caught");
    assert_eq!(v.checker, "client_history", "{v}");
}

/// A planned transfer: the leader hands over to the voter it is asked to, without an
/// election (no node looks), under writes; every acknowledged write survives, and the new
/// leader leads a newer epoch.
#[test]
fn leadership_transfer_hands_over_without_an_election() {
    let mut w = world(5, 1);
    let l = settle(&mut w);
    for _ in 0..5 {
        assert!(write(&mut w, l).is_some());
    }
    let target = followers(&w, l)[2];
    let epoch = node(&w, l).current_epoch();
    let looked = Rc::new(RefCell::new(Vec::new()));
    let seen = looked.clone();
    w.filter = Some(Box::new(move |_from, to, m: &Message| {
        if let Message::Notification { state, .. } = m {
            if *state == paddock_zab::PeerState::Looking {
                seen.borrow_mut().push(to);
            }
        }
        true
    }));
    // Writes are in flight when the transfer starts; they are held, not lost.
    let pending: Vec<usize> = (0..3).map(|_| w.submit_write(l, None)).collect();
    let li = w.idx(l);
    w.feed(
        li,
        paddock_zab::Event::TransferLeadership { to: Some(target) },
    );
    assert!(
        w.run_until(200, |w| w.leader() == Some(target) && all_up_serving(w)),
        "no handover to n{target}\n{}",
        dump(&w)
    );
    ok(&w);
    assert!(node(&w, target).current_epoch() > epoch);
    assert!(
        looked.borrow().is_empty(),
        "an election ran: {:?}",
        looked.borrow()
    );
    w.run_until(100, |w| {
        pending.iter().all(|&op| w.history[op].complete.is_some())
    });
    assert!(
        write(&mut w, target).is_some(),
        "the new leader takes writes"
    );
    converge(&mut w);
}

/// A transfer to a voter that cannot catch up is given up: proposals go on at the old leader.
#[test]
fn leadership_transfer_to_a_cut_off_voter_is_given_up() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    let target = followers(&w, l)[0];
    let li = w.idx(l);
    // The target stops hearing the leader (it still answers nothing new).
    w.cut(l, target);
    assert!(write(&mut w, l).is_some());
    w.feed(
        li,
        paddock_zab::Event::TransferLeadership { to: Some(target) },
    );
    w.run_ticks(40);
    ok(&w);
    assert_eq!(w.leader(), Some(l), "{}", dump(&w));
    assert!(
        write(&mut w, l).is_some(),
        "proposals resumed after the failed transfer"
    );
    converge(&mut w);
}

/// How often a payload was applied, in the ensemble's one order.
fn applied_times(w: &World, p: &[u8]) -> usize {
    w.order.entries.iter().filter(|(_, b)| b[..] == *p).count()
}

fn write_payload(w: &World, op: usize) -> Vec<u8> {
    match &w.history[op].kind {
        OpKind::Write(p) => p.to_vec(),
        other => panic!("op {op} is {other:?}"),
    }
}

/// A learner's write that reaches the leader while a transfer holds proposals is neither
/// refused nor lost when the transfer is given up: it is proposed then, once.
#[test]
fn a_write_held_by_a_transfer_given_up_is_proposed_after_it() {
    let mut w = world(3, 0);
    let l = settle(&mut w);
    let f = followers(&w, l);
    let (target, other) = (f[0], f[1]);
    w.cut(l, target);
    assert!(write(&mut w, l).is_some());
    let li = w.idx(l);
    w.feed(
        li,
        paddock_zab::Event::TransferLeadership { to: Some(target) },
    );
    let op = w.submit_write(other, None);
    w.run_ticks(60);
    ok(&w);
    assert_eq!(w.leader(), Some(l), "{}", dump(&w));
    let p = write_payload(&w, op);
    assert_eq!(applied_times(&w, &p), 1, "{}", dump(&w));
    assert!(
        matches!(w.history[op].outcome, Outcome::Ok(_)),
        "the held write was answered: {:?}",
        w.history[op].outcome
    );
    converge(&mut w);
}

/// Learners' writes held during a handover go to the new leader with the leadership and are
/// proposed there once, before anything else; every learner learns which of its requests the
/// old leader took.
#[test]
fn writes_held_during_a_handover_are_proposed_by_the_new_leader() {
    let mut carried = 0;
    for seed in 1..=20 {
        let mut w = world_with(Setup {
            seed,
            trace_lines: 20_000,
            ..Setup::scenario(3, 0)
        });
        let l = settle(&mut w);
        let f = followers(&w, l);
        let (target, other) = (f[0], f[1]);
        let seen = Rc::new(RefCell::new((0usize, Vec::new())));
        let s = seen.clone();
        w.filter = Some(Box::new(move |_from, to, m: &Message| {
            if let Message::Learner { msg, .. } = m {
                match msg {
                    LearnerMsg::TakeOver { held, .. } => s.borrow_mut().0 += held.len(),
                    LearnerMsg::Handover { through, .. } => s.borrow_mut().1.push((to, *through)),
                    _ => {}
                }
            }
            true
        }));
        // Writes in flight at the leader keep the hold on while the learner's write arrives.
        for _ in 0..3 {
            w.submit_write(l, None);
        }
        let li = w.idx(l);
        w.feed(
            li,
            paddock_zab::Event::TransferLeadership { to: Some(target) },
        );
        let op = w.submit_write(other, None);
        assert!(
            w.run_until(200, |w| w.leader() == Some(target) && all_up_serving(w)),
            "seed {seed}: no handover\n{}",
            dump(&w)
        );
        w.run_ticks(40);
        ok(&w);
        let p = write_payload(&w, op);
        let (held, handovers) = seen.borrow().clone();
        assert!(
            applied_times(&w, &p) <= 1,
            "seed {seed}: applied twice\n{}",
            dump(&w)
        );
        if held > 0 {
            carried += 1;
            assert_eq!(
                applied_times(&w, &p),
                1,
                "seed {seed}: a held write was lost\n{}",
                dump(&w)
            );
        }
        assert!(
            handovers.iter().any(|(to, _)| *to == other),
            "seed {seed}: {other} was not told to follow {target}"
        );
        converge(&mut w);
    }
    assert!(carried > 0, "no seed had a write held during the handover");
}

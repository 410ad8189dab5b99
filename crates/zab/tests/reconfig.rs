//! Named reconfiguration scenarios on the simulator: the voters grow and shrink, the leader
//! is removed (it hands over), a reconfiguration races a leader crash or a partition during
//! its activation, and ZooKeeper's bugs around membership changed by rolling restart with
//! reconfiguration off.

mod common;
use common::*;

use paddock_zab::sim::history::Outcome;
use paddock_zab::sim::reconfig;
use paddock_zab::sim::world::World;
use paddock_zab::{Event, LearnerMsg, Membership, Message, PeerState, RoleKind, ServerId, Zxid};
use std::cell::RefCell;
use std::rc::Rc;

fn members(voters: &[ServerId], observers: &[ServerId]) -> Membership {
    Membership {
        voters: voters.to_vec(),
        observers: observers.to_vec(),
    }
}

/// Asks `at` for a reconfiguration and runs until it is answered: its zxid if committed.
fn reconfigure(w: &mut World, at: ServerId, m: &Membership) -> Option<Zxid> {
    let seq = 1_000_000 + w.history.len() as u64;
    let op = w.submit_payload(at, None, reconfig::payload(seq, m));
    w.run_until(200, |w| w.history[op].complete.is_some());
    ok(w);
    match w.history[op].outcome {
        Outcome::Ok(z) => Some(z),
        _ => None,
    }
}

fn voters_at(w: &World, id: ServerId) -> Vec<ServerId> {
    node(w, id).membership().1.voters
}

/// Every running node has taken `voters`.
fn all_took(w: &World, voters: &[ServerId]) -> bool {
    w.nodes
        .iter()
        .filter_map(|n| n.node.as_ref())
        .all(|n| n.membership().1.voters == voters)
}

/// Records which of `voters` send a looking notification from now on: empty means they
/// ran no election (servers whose part changed look for the leader to join it again).
fn watch_elections(w: &mut World, voters: &[ServerId]) -> Rc<RefCell<Vec<ServerId>>> {
    let looked = Rc::new(RefCell::new(Vec::new()));
    let seen = looked.clone();
    let voters = voters.to_vec();
    w.filter = Some(Box::new(move |from, _to, m: &Message| {
        if let Message::Notification { state, .. } = m {
            if *state == PeerState::Looking && voters.contains(&from) {
                seen.borrow_mut().push(from);
            }
        }
        true
    }));
    looked
}

/// Three voters and two observers become five voters; then the leader and one more are
/// removed: the leader hands over to a voter of the new configuration without an election,
/// and stays on as an observer.
#[test]
fn voters_grow_then_shrink_and_the_removed_leader_hands_over() {
    let mut w = world(3, 2);
    let l = settle(&mut w);
    assert!(write(&mut w, l).is_some());
    let five = [1, 2, 3, 4, 5];
    let z = reconfigure(&mut w, l, &members(&five, &[])).expect("reconfig to five voters");
    assert!(
        w.run_until(200, |w| all_took(w, &five)
            && all_up_serving(w)
            && [4, 5]
                .iter()
                .all(|&id| w.node(id).unwrap().role() == RoleKind::Following)),
        "servers 4 and 5 do not follow\n{}",
        dump(&w)
    );
    assert_eq!(node(&w, 4).membership().0, z);
    for _ in 0..3 {
        assert!(write(&mut w, l).is_some());
    }
    // Remove the leader and one more.
    let l = w.leader().expect("leader");
    let kept: Vec<ServerId> = five.iter().copied().filter(|&id| id != l).take(3).collect();
    let gone: Vec<ServerId> = five
        .iter()
        .copied()
        .filter(|id| !kept.contains(id))
        .collect();
    let looked = watch_elections(&mut w, &kept);
    let epoch = node(&w, l).current_epoch();
    reconfigure(&mut w, l, &members(&kept, &gone)).expect("reconfig removing the leader");
    assert!(
        w.run_until(200, |w| w.leader().is_some_and(|x| kept.contains(&x))
            && all_took(w, &kept)
            && all_up_serving(w)),
        "no leader among {kept:?}\n{}",
        dump(&w)
    );
    ok(&w);
    let l2 = w.leader().expect("leader");
    assert!(node(&w, l2).current_epoch() > epoch);
    assert!(
        looked.borrow().is_empty(),
        "an election ran: {:?}",
        looked.borrow()
    );
    assert_eq!(node(&w, l).role(), RoleKind::Observing);
    assert!(write(&mut w, l2).is_some(), "the new leader takes writes");
    converge(&mut w);
    assert!(all_took(&w, &kept));
}

/// The leader crashes right after proposing a reconfiguration: whether it survives or not,
/// every server ends with the same configuration, and nothing acknowledged is lost.
#[test]
fn reconfig_racing_a_leader_crash() {
    for delay in [0, 1, 3, 10] {
        let mut w = world(3, 2);
        let l = settle(&mut w);
        assert!(write(&mut w, l).is_some());
        let seq = 2_000_000;
        w.submit_payload(
            l,
            None,
            reconfig::payload(seq, &members(&[1, 2, 3, 4, 5], &[])),
        );
        w.run_ticks(delay);
        w.crash(l);
        w.run_ticks(30);
        converge(&mut w);
        let expect: Vec<ServerId> = if w.configs.is_empty() {
            vec![1, 2, 3]
        } else {
            vec![1, 2, 3, 4, 5]
        };
        assert!(all_took(&w, &expect), "delay {delay}: {}", dump(&w));
    }
}

/// The leader commits a reconfiguration, but its COMMITs and INFORMs are lost and then it is
/// cut off: the others, which logged it, elect a leader with quorums of both configurations
/// (the observers about to become voters vote too) and that leader commits it.
#[test]
fn partition_during_activation() {
    let mut w = world(3, 2);
    let l = settle(&mut w);
    assert!(write(&mut w, l).is_some());
    w.filter = Some(Box::new(move |from, _to, m: &Message| {
        from != l
            || !matches!(
                m,
                Message::Learner {
                    msg: LearnerMsg::Commit { .. } | LearnerMsg::Inform { .. },
                    ..
                }
            )
    }));
    let five = [1, 2, 3, 4, 5];
    w.submit_payload(l, None, reconfig::payload(3_000_000, &members(&five, &[])));
    assert!(
        w.run_until(50, |w| voters_at(w, l) == five),
        "the leader did not commit it\n{}",
        dump(&w)
    );
    assert!(
        (1..=5)
            .filter(|&id| id != l)
            .all(|id| voters_at(&w, id) == [1, 2, 3]),
        "a commit got through"
    );
    w.isolate(l);
    w.filter = None;
    assert!(
        w.run_until(300, |w| w.leader().is_some_and(|x| x != l)
            && (1..=5)
                .filter(|&id| id != l)
                .all(|id| voters_at(w, id) == five)),
        "the others did not take it\n{}",
        dump(&w)
    );
    ok(&w);
    converge(&mut w);
    assert!(all_took(&w, &five));
}

/// A reconfiguration while another is pending is refused (ZooKeeper's RECONFIGINPROGRESS),
/// and so is one whose voters have no quorum among the leader and the learners in sync with
/// it (NEWCONFIGNOQUORUM): with two of three observers down, the three cannot become the
/// voters.
#[test]
fn reconfigs_that_could_not_commit_are_refused() {
    let mut w = world(3, 3);
    let l = settle(&mut w);
    w.crash(5);
    w.crash(6);
    // Until the leader has dropped them (syncLimit).
    w.run_ticks(30);
    assert_eq!(
        reconfigure(&mut w, l, &members(&[4, 5, 6], &[1, 2, 3])),
        None
    );
    w.restart(5);
    w.restart(6);
    settle(&mut w);
    let stalled = followers(&w, l);
    for &f in &stalled {
        w.stall_disk(f, true);
    }
    // Pending (its followers cannot acknowledge it): the next one is refused.
    let first = w.submit_payload(
        l,
        None,
        reconfig::payload(4_000_001, &members(&[1, 2, 3, 4], &[5, 6])),
    );
    let second = reconfigure(&mut w, l, &members(&[1, 2, 3, 5], &[4, 6]));
    assert_eq!(second, None);
    for &f in &stalled {
        w.stall_disk(f, false);
    }
    w.run_until(200, |w| w.history[first].complete.is_some());
    assert!(
        matches!(w.history[first].outcome, Outcome::Ok(_)),
        "{:?}\n{}",
        w.history[first].outcome,
        dump(&w)
    );
    converge(&mut w);
    assert!(all_took(&w, &[1, 2, 3, 4]));
}

/// Runs until the servers `ids` have a leader among them and all serve.
fn settle_among(w: &mut World, ids: &[ServerId]) -> ServerId {
    let ids = ids.to_vec();
    assert!(
        w.run_until(300, |w| w.leader().is_some_and(|l| ids.contains(&l))
            && ids
                .iter()
                .all(|&id| w.node(id).is_some_and(|n| n.is_serving()))),
        "no leader among {ids:?}\n{}",
        dump(w)
    );
    ok(w);
    w.leader().expect("leader")
}

/// Restarts `id` with a new static configuration (its zoo.cfg edited), as a rolling restart.
fn roll(w: &mut World, id: ServerId, voters: &[ServerId]) {
    w.crash(id);
    w.set_static_config(id, voters.to_vec(), Vec::new());
    w.restart(id);
}

/// Four servers, of which 1-3 run with a zoo.cfg listing 1-3, lead, and commit a write;
/// server 4 is down.
fn three_of_four() -> World {
    let mut w = world(4, 0);
    for id in 1..=4 {
        w.crash(id);
    }
    for id in 1..=3 {
        w.set_static_config(id, vec![1, 2, 3], Vec::new());
        w.restart(id);
    }
    let l = settle_among(&mut w, &[1, 2, 3]);
    assert!(write(&mut w, l).is_some());
    w
}

/// ZOOKEEPER-3829, 3830 and 3842 (fixed together in ZooKeeper 3.5.9/3.6.2, apache/zookeeper
/// pull request 1356/1370): with reconfigEnabled=false, a fourth server added by rolling
/// restart (server 4 started with 1-4, then 1, 2 and 3 restarted one by one with 1-4) left
/// 3.5/3.6 ensembles refusing requests (3829), or with server 4 elected leader and unable to
/// commit anything (3830, 3842): configurations carried between servers outranked the
/// edited static ones. Here, without a reconfiguration nothing carries a configuration: each
/// server counts by its own zoo.cfg, and once all four list 1-4, server 4 leads and commits.
#[test]
fn rolling_restart_adds_a_voter_without_reconfig_zk3829_zk3830_zk3842() {
    let mut w = three_of_four();
    w.restart(4); // its zoo.cfg lists 1-4
    assert!(
        !node(&w, 4).is_serving(),
        "server 4 is not a member for 1-3 yet"
    );
    for id in 1..=3 {
        roll(&mut w, id, &[1, 2, 3, 4]);
        let l = settle_among(&mut w, &[1, 2, 3]);
        assert!(write(&mut w, l).is_some(), "after rolling server {id}");
    }
    let l = settle_among(&mut w, &[1, 2, 3, 4]);
    if l != 4 {
        let li = w.idx(l);
        w.feed(li, Event::TransferLeadership { to: Some(4) });
    }
    assert!(
        w.run_until(200, |w| w.leader() == Some(4) && all_up_serving(w)),
        "server 4 did not take over\n{}",
        dump(&w)
    );
    for _ in 0..3 {
        assert!(write(&mut w, 4).is_some(), "server 4 leads and commits");
    }
    // Four voters: one down, three still commit.
    w.crash(1);
    assert!(write(&mut w, 4).is_some(), "three of four commit");
    converge(&mut w);
}

/// ZOOKEEPER-3814 (same fix): a member replaced by rolling restart under a new id (server 3
/// retired, server 4 on another host) left servers that still counted, or tried to reach, the
/// old member. Here the ensemble 1, 2, 4 counts only its zoo.cfg's members: with server 3
/// gone for good and one more down, the other two still commit.
#[test]
fn rolling_restart_replaces_a_member_zk3814() {
    let mut w = three_of_four();
    w.set_static_config(4, vec![1, 2, 4], Vec::new());
    w.crash(3); // retired
    w.restart(4);
    // While server 2 still lists 1-3, it may lead 1 and 2 without server 4.
    for (id, serving) in [(1, &[1, 2][..]), (2, &[1, 2, 4][..])] {
        roll(&mut w, id, &[1, 2, 4]);
        let l = settle_among(&mut w, serving);
        assert!(write(&mut w, l).is_some(), "after rolling server {id}");
    }
    let l = settle_among(&mut w, &[1, 2, 4]);
    let other = [1, 2, 4]
        .into_iter()
        .find(|&id| id != l)
        .expect("a follower");
    w.crash(other);
    assert!(
        write(&mut w, l).is_some(),
        "two of 1, 2, 4 commit: server 3 is not counted"
    );
    w.restart(other);
    let l = settle_among(&mut w, &[1, 2, 4]);
    assert!(write(&mut w, l).is_some());
    w.check_history();
    ok(&w);
}

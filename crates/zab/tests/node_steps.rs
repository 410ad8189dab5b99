//! A node in a named state, fed one event: the exact actions.

use bytes::Bytes;
use paddock_zab::{
    Action, Config, Event, LearnerMsg, Message, Node, PeerState, RoleKind, SyncMode, Txn, Vote,
    Zxid,
};

fn txn(e: u32, c: u32, p: &'static [u8]) -> Txn {
    Txn {
        zxid: Zxid::new(e, c),
        payload: Bytes::from_static(p),
    }
}

/// A one-voter ensemble: elects itself, establishes epoch 1 once its epochs are durable, and
/// commits a write when its own fsync covers it.
#[test]
fn single_voter_commits_after_its_own_fsync() {
    let mut n = Node::new(Config::new(1, vec![1], vec![]), 1);
    assert_eq!(
        n.take_actions(),
        vec![Action::RoleChanged {
            role: RoleKind::Looking,
            leader: None
        }]
    );
    n.step(Event::Tick);
    n.step(Event::Tick);
    assert_eq!(
        n.take_actions(),
        vec![
            Action::RoleChanged {
                role: RoleKind::Leading,
                leader: Some(1)
            },
            Action::PersistEpochs {
                seq: 1,
                accepted: 1,
                current: 0
            },
        ]
    );
    n.step(Event::Persisted { through: 1 });
    assert_eq!(
        n.take_actions(),
        vec![Action::PersistEpochs {
            seq: 2,
            accepted: 1,
            current: 1
        }]
    );
    assert_eq!(
        n.established_epoch(),
        None,
        "established before currentEpoch is durable"
    );
    n.step(Event::Persisted { through: 2 });
    assert_eq!(n.established_epoch(), Some(1));
    n.step(Event::ClientWrite {
        request_id: 7,
        payload: Bytes::from_static(b"w"),
    });
    assert_eq!(
        n.take_actions(),
        vec![Action::AppendLog {
            seq: 3,
            txns: vec![txn(1, 1, b"w")]
        }]
    );
    n.step(Event::Persisted { through: 3 });
    assert_eq!(
        n.take_actions(),
        vec![Action::Apply {
            txn: txn(1, 1, b"w")
        }]
    );
}

/// A follower ACKs a proposal only once its fsync covers it, and applies it only on COMMIT.
#[test]
fn follower_acks_after_fsync_and_applies_on_commit() {
    let mut n = Node::new(Config::new(1, vec![1, 2, 3], vec![]), 1);
    n.take_actions();
    let vote = Vote {
        epoch: 0,
        zxid: Zxid::ZERO,
        leader: 2,
    };
    n.step(Event::Peer {
        from: 2,
        msg: Message::Notification {
            round: 1,
            state: PeerState::Leading,
            vote,
            config: None,
        },
    });
    let acts = n.take_actions();
    assert_eq!(
        acts[0],
        Action::RoleChanged {
            role: RoleKind::Following,
            leader: Some(2)
        }
    );
    let Action::Send {
        to: 2,
        msg:
            Message::Learner {
                conn,
                msg:
                    LearnerMsg::Info {
                        accepted_epoch: 0,
                        observer: false,
                    },
            },
    } = acts[1].clone()
    else {
        panic!("no Info: {acts:?}")
    };
    let from_leader = |msg| Event::Peer {
        from: 2,
        msg: Message::Learner { conn, msg },
    };
    let to_leader = |msg| Action::Send {
        to: 2,
        msg: Message::Learner { conn, msg },
    };

    n.step(from_leader(LearnerMsg::LeaderInfo { epoch: 1 }));
    assert_eq!(
        n.take_actions(),
        vec![Action::PersistEpochs {
            seq: 1,
            accepted: 1,
            current: 0
        }]
    );
    n.step(Event::Persisted { through: 1 });
    assert_eq!(
        n.take_actions(),
        vec![to_leader(LearnerMsg::AckEpoch {
            epoch: 1,
            current_epoch: 0,
            last_zxid: Zxid::ZERO,
            applied: Zxid::ZERO,
            runs: vec![],
            promised: true
        })]
    );
    n.step(from_leader(LearnerMsg::Sync {
        mode: SyncMode::Diff,
        commit: Zxid::ZERO,
    }));
    n.step(from_leader(LearnerMsg::NewLeader {
        epoch: 1,
        commit: Zxid::ZERO,
        config: None,
    }));
    assert_eq!(
        n.take_actions(),
        vec![Action::PersistEpochs {
            seq: 2,
            accepted: 1,
            current: 1
        }]
    );
    n.step(Event::Persisted { through: 2 });
    assert_eq!(
        n.take_actions(),
        vec![to_leader(LearnerMsg::AckNewLeader { epoch: 1 })]
    );
    n.step(from_leader(LearnerMsg::UpToDate { commit: Zxid::ZERO }));
    assert!(n.is_serving());

    n.step(from_leader(LearnerMsg::Proposal {
        txn: txn(1, 1, b"a"),
    }));
    assert_eq!(
        n.take_actions(),
        vec![Action::AppendLog {
            seq: 3,
            txns: vec![txn(1, 1, b"a")]
        }]
    );
    n.step(Event::Persisted { through: 3 });
    assert_eq!(
        n.take_actions(),
        vec![to_leader(LearnerMsg::Ack {
            zxid: Zxid::new(1, 1)
        })]
    );
    n.step(from_leader(LearnerMsg::Commit {
        zxid: Zxid::new(1, 1),
    }));
    assert_eq!(
        n.take_actions(),
        vec![Action::Apply {
            txn: txn(1, 1, b"a")
        }]
    );
    // a gap in the proposals is refused: the follower resyncs rather than log past a hole
    n.step(from_leader(LearnerMsg::Proposal {
        txn: txn(1, 3, b"c"),
    }));
    assert_eq!(n.role(), RoleKind::Looking);
}

/// Follows `leader` on its notification; the learner connection's id.
fn follow(n: &mut Node, leader: u64, round: u64) -> u64 {
    n.step(Event::Peer {
        from: leader,
        msg: Message::Notification {
            round,
            state: PeerState::Leading,
            vote: Vote {
                epoch: 0,
                zxid: Zxid::ZERO,
                leader,
            },
            config: None,
        },
    });
    n.take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Send {
                to,
                msg:
                    Message::Learner {
                        conn,
                        msg: LearnerMsg::Info { .. },
                    },
            } if to == leader => Some(conn),
            _ => None,
        })
        .expect("an Info to the leader")
}

/// The ACKEPOCH the learner sends after LEADERINFO(e1) from `leader`: whether it is a promise.
fn ack_epoch_promise(n: &mut Node, leader: u64, conn: u64) -> bool {
    n.step(Event::Peer {
        from: leader,
        msg: Message::Learner {
            conn,
            msg: LearnerMsg::LeaderInfo { epoch: 1 },
        },
    });
    let mut acts = n.take_actions();
    let seq = acts.iter().find_map(|a| match a {
        Action::PersistEpochs { seq, .. } => Some(*seq),
        _ => None,
    });
    if let Some(through) = seq {
        n.step(Event::Persisted { through });
        acts.extend(n.take_actions());
    }
    acts.into_iter()
        .find_map(|a| match a {
            Action::Send {
                msg:
                    Message::Learner {
                        msg: LearnerMsg::AckEpoch { promised, .. },
                        ..
                    },
                ..
            } => Some(promised),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no AckEpoch from {leader}"))
}

/// Two leaders may pick the same epoch from different quorums. A learner that accepted it
/// from one must not count toward the other's quorum for it, or both could establish the
/// same epoch and one would truncate what the other committed (sim seed 122060). A promise to
/// the same leader, on a reconnect, still counts.
#[test]
fn an_epoch_accepted_from_one_leader_is_no_promise_to_another() {
    let mut n = Node::new(Config::new(1, vec![1, 2, 3], vec![]), 1);
    n.take_actions();
    let c = follow(&mut n, 3, 1);
    assert!(ack_epoch_promise(&mut n, 3, c), "a new epoch is a promise");
    n.step(Event::PeerLost { peer: 3 });
    n.take_actions();
    let c = follow(&mut n, 2, 2);
    assert!(
        !ack_epoch_promise(&mut n, 2, c),
        "e1 was promised to n3 already"
    );
    n.step(Event::PeerLost { peer: 2 });
    n.take_actions();
    let c = follow(&mut n, 3, 3);
    assert!(
        ack_epoch_promise(&mut n, 3, c),
        "the same leader's epoch again"
    );
}

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
            runs: vec![]
        })]
    );
    n.step(from_leader(LearnerMsg::Sync {
        mode: SyncMode::Diff,
        commit: Zxid::ZERO,
    }));
    n.step(from_leader(LearnerMsg::NewLeader {
        epoch: 1,
        commit: Zxid::ZERO,
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

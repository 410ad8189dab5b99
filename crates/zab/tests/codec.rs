//! The quorum-port encoding: every message round-trips, and no byte string makes the decoder
//! panic (a peer's bad frame is an error, never a crash).

use bytes::Bytes;
use paddock_zab::codec::{decode, encode_frame, take_frame, CodecError};
use paddock_zab::{HeldRequest, LearnerMsg, Message, PeerState, SyncMode, Txn, Vote, Zxid};
use proptest::prelude::*;

fn zxid() -> impl Strategy<Value = Zxid> {
    any::<u64>().prop_map(Zxid)
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn txn() -> impl Strategy<Value = Txn> {
    (zxid(), bytes()).prop_map(|(zxid, payload)| Txn { zxid, payload })
}

fn learner_msg() -> impl Strategy<Value = LearnerMsg> {
    use LearnerMsg::*;
    prop_oneof![
        (any::<u32>(), any::<bool>()).prop_map(|(accepted_epoch, observer)| Info {
            accepted_epoch,
            observer
        }),
        any::<u32>().prop_map(|epoch| LeaderInfo { epoch }),
        (
            any::<u32>(),
            any::<u32>(),
            zxid(),
            zxid(),
            prop::collection::vec((zxid(), zxid()), 0..5),
            any::<bool>()
        )
            .prop_map(
                |(epoch, current_epoch, last_zxid, applied, runs, promised)| AckEpoch {
                    epoch,
                    current_epoch,
                    last_zxid,
                    applied,
                    runs,
                    promised
                }
            ),
        zxid().prop_map(|commit| Sync {
            mode: SyncMode::Diff,
            commit
        }),
        (zxid(), zxid()).prop_map(|(to, commit)| Sync {
            mode: SyncMode::Trunc { to },
            commit
        }),
        (zxid(), bytes()).prop_map(|(zxid, data)| Snap { zxid, data }),
        txn().prop_map(|txn| Proposal { txn }),
        (any::<u32>(), zxid(), prop::option::of((zxid(), bytes()))).prop_map(
            |(epoch, commit, config)| NewLeader {
                epoch,
                commit,
                config
            }
        ),
        any::<u32>().prop_map(|epoch| AckNewLeader { epoch }),
        zxid().prop_map(|commit| UpToDate { commit }),
        zxid().prop_map(|zxid| Ack { zxid }),
        zxid().prop_map(|zxid| Commit { zxid }),
        txn().prop_map(|txn| Inform { txn }),
        (any::<u64>(), bytes()).prop_map(|(request_id, payload)| Request {
            request_id,
            payload
        }),
        any::<u64>().prop_map(|request_id| Refused { request_id }),
        any::<u64>().prop_map(|round| Ping { round }),
        (any::<u64>(), prop::collection::vec(any::<u64>(), 0..5))
            .prop_map(|(round, touches)| PingAck { round, touches }),
        any::<u64>().prop_map(|request_id| SyncRequest { request_id }),
        any::<u64>().prop_map(|request_id| SyncReply { request_id }),
        any::<u64>().prop_map(|session_id| SessionResumed { session_id }),
        (
            prop::option::of(any::<u64>()),
            prop::collection::vec((any::<u64>(), any::<u64>(), bytes()), 0..4)
        )
            .prop_map(|(through, held)| TakeOver {
                through,
                held: held
                    .into_iter()
                    .map(|(from, request_id, payload)| HeldRequest {
                        from,
                        request_id,
                        payload
                    })
                    .collect()
            }),
        (any::<u64>(), prop::option::of(any::<u64>()))
            .prop_map(|(to, through)| Handover { to, through }),
        Just(RequestLeadership),
        any::<u32>().prop_map(|epoch| NewEpoch { epoch }),
        any::<u32>().prop_map(|epoch| AckNewEpoch { epoch }),
    ]
}

/// Where a message's fields added after the first release begin, if it has any that are
/// written.
fn first_release_len(m: &Message) -> Option<usize> {
    let mut wire = Vec::new();
    encode_frame(m, &mut wire);
    let len = wire.len() - 4;
    let config_len =
        |c: &Option<(Zxid, bytes::Bytes)>| c.as_ref().map(|(_, p)| len - (1 + 8 + 4 + p.len()));
    let msg = match m {
        Message::Notification { config, .. } => return config_len(config),
        Message::Learner { msg, .. } => msg,
    };
    match msg {
        LearnerMsg::NewLeader { config, .. } => config_len(config),
        LearnerMsg::AckEpoch {
            promised: false, ..
        } => Some(len - 1),
        LearnerMsg::TakeOver { through, held } if through.is_some() || !held.is_empty() => {
            Some(1 + 8)
        }
        LearnerMsg::Handover {
            through: Some(_), ..
        } => Some(1 + 8 + 8),
        _ => None,
    }
}

fn message() -> impl Strategy<Value = Message> {
    let state = prop::sample::select(vec![
        PeerState::Looking,
        PeerState::Following,
        PeerState::Leading,
        PeerState::Observing,
    ]);
    prop_oneof![
        (any::<u64>(), state, any::<u32>(), zxid(), any::<u64>()).prop_map(
            |(round, state, epoch, zxid, leader)| Message::Notification {
                round,
                state,
                vote: Vote {
                    epoch,
                    zxid,
                    leader
                },
                config: (leader % 3 == 0).then(|| (zxid, round.to_be_bytes().to_vec().into())),
            }
        ),
        (any::<u64>(), learner_msg()).prop_map(|(conn, msg)| Message::Learner { conn, msg }),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(ms in prop::collection::vec(message(), 1..8)) {
        // Several frames back to back, as on a connection.
        let mut wire = Vec::new();
        for m in &ms {
            encode_frame(m, &mut wire);
        }
        let mut at = 0;
        for m in &ms {
            let (body, used) = take_frame(&wire[at..]).unwrap().expect("a whole frame");
            prop_assert_eq!(&decode(body).unwrap(), m);
            at += used;
        }
        prop_assert_eq!(at, wire.len());
        // A partial frame asks for more.
        prop_assert_eq!(take_frame(&wire[..wire.len().min(3)]).unwrap(), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&b);
        let _ = take_frame(&b);
    }

    #[test]
    fn truncated_messages_are_errors(m in message(), cut in 0usize..100) {
        let mut wire = Vec::new();
        encode_frame(&m, &mut wire);
        let body = &wire[4..];
        // Cut where the fields added after the first release begin, a body is that
        // release's message (frames are whole on the wire, so no cut happens there).
        if cut < body.len() && Some(cut) != first_release_len(&m) {
            prop_assert!(decode(&body[..cut]).is_err());
        }
    }
}

#[test]
fn lying_counts_and_lengths_are_refused() {
    // An AckEpoch claiming four billion runs in a short frame.
    let mut b = vec![12u8];
    b.extend_from_slice(&7u64.to_be_bytes());
    b.extend_from_slice(&[0; 4 + 4 + 8 + 8]);
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode(&b), Err(CodecError::Short));
    // A frame length over the limit.
    assert!(matches!(
        take_frame(&u32::MAX.to_be_bytes()),
        Err(CodecError::TooLarge(_))
    ));
    assert_eq!(decode(&[99]), Err(CodecError::UnknownKind(99)));
}

/// Fields added after the first release are left out when they say nothing new, so that a
/// server of that release (which refuses trailing bytes) still reads the usual messages
/// during a rolling upgrade, and what it sends reads back with the defaults.
#[test]
fn messages_of_the_first_release_keep_their_layout() {
    let body = |msg: LearnerMsg| {
        let mut wire = Vec::new();
        encode_frame(&Message::Learner { conn: 7, msg }, &mut wire);
        let (body, _) = take_frame(&wire).unwrap().expect("a whole frame");
        body.to_vec()
    };
    let ack = |promised| LearnerMsg::AckEpoch {
        epoch: 3,
        current_epoch: 2,
        last_zxid: Zxid(5),
        applied: Zxid(4),
        runs: vec![],
        promised,
    };
    // kind, conn, epoch, current epoch, last zxid, applied, run count
    assert_eq!(body(ack(true)).len(), 1 + 8 + 4 + 4 + 8 + 8 + 4);
    assert_eq!(body(ack(false)).len(), body(ack(true)).len() + 1);
    let take_over = LearnerMsg::TakeOver {
        through: None,
        held: vec![],
    };
    assert_eq!(body(take_over.clone()).len(), 1 + 8);
    let handover = LearnerMsg::Handover {
        to: 2,
        through: None,
    };
    assert_eq!(body(handover.clone()).len(), 1 + 8 + 8);
    for m in [ack(true), ack(false), take_over, handover] {
        let b = body(m.clone());
        assert_eq!(decode(&b).unwrap(), Message::Learner { conn: 7, msg: m });
    }
}

/// Until a reconfiguration, notifications and NEWLEADER are the bytes an earlier release
/// writes and reads (its decoder refuses trailing bytes): a rolling upgrade goes on.
#[test]
fn no_configuration_means_the_first_release_bytes() {
    let vote = Vote {
        epoch: 3,
        zxid: Zxid(0x3_0000_0007),
        leader: 2,
    };
    let n = |config| Message::Notification {
        round: 9,
        state: PeerState::Looking,
        vote,
        config,
    };
    let mut wire = Vec::new();
    encode_frame(&n(None), &mut wire);
    // kind, round, state, epoch, zxid, leader
    assert_eq!(wire.len() - 4, 1 + 8 + 1 + 4 + 8 + 8);
    let with = n(Some((Zxid(0x3_0000_0001), Bytes::from_static(b"cfg"))));
    let mut wire2 = Vec::new();
    encode_frame(&with, &mut wire2);
    assert_eq!(decode(&wire2[4..]), Ok(with));
    assert_eq!(decode(&wire[4..]), Ok(n(None)));
    let nl = Message::Learner {
        conn: 1,
        msg: LearnerMsg::NewLeader {
            epoch: 4,
            commit: Zxid(5),
            config: None,
        },
    };
    let mut wire3 = Vec::new();
    encode_frame(&nl, &mut wire3);
    assert_eq!(wire3.len() - 4, 1 + 8 + 4 + 8);
}

//! Two-phase commit against a real server.

mod support;

use paddock_recipes::two_phase::{Decision, Outcome, Vote};
use paddock_recipes::{Coordinator, Participant, RecipeError, Transaction};
use std::time::Duration;
use support::Target;
use tokio::task::JoinHandle;

const WITHIN: Duration = Duration::from_secs(5);

/// A participant on its own session: reads the proposal, votes (unless `None`), and returns
/// the outcome it sees.
async fn participant(
    t: &Target,
    base: &str,
    tx: &str,
    name: &str,
    vote: Option<Vote>,
) -> JoinHandle<(Vec<u8>, Outcome)> {
    let c = t.client().await;
    let p = Participant::new(&c, base, tx, name);
    tokio::spawn(async move {
        let proposal = p.proposal(WITHIN).await.unwrap();
        if let Some(v) = vote {
            p.vote(v).await.unwrap();
        }
        let outcome = p.outcome(WITHIN).await.unwrap();
        drop(c);
        (proposal, outcome)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_when_everyone_votes_commit() {
    let t = Target::start("2pc-commit").await;
    let base = t.path("tx");
    // Participants may start before the transaction exists.
    let mut ps = Vec::new();
    for name in ["p1", "p2", "p3"] {
        ps.push(participant(&t, &base, "t1", name, Some(Vote::Commit)).await);
    }
    let c = t.client().await;
    let tx = Coordinator::new(&c, &base)
        .begin("t1", &["p1", "p2", "p3"], b"transfer 10")
        .await
        .unwrap();
    assert_eq!(tx.decide(WITHIN).await.unwrap(), Decision::Committed);
    for p in ps {
        assert_eq!(p.await.unwrap(), (b"transfer 10".to_vec(), Outcome::Commit));
    }
    // The same id cannot be proposed twice; a re-opened transaction keeps its outcome.
    assert!(Coordinator::new(&c, &base)
        .begin("t1", &["p1"], b"again")
        .await
        .is_err());
    let reopened = Transaction::open(&c, &base, "t1").await.unwrap();
    assert_eq!(
        reopened.decide(WITHIN).await.unwrap(),
        Decision::AlreadyDecided(Outcome::Commit)
    );
    tx.remove().await.unwrap();
    assert!(c.exists(tx.path()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_when_one_votes_abort() {
    let t = Target::start("2pc-abort").await;
    let base = t.path("tx");
    let c = t.client().await;
    let tx = Coordinator::new(&c, &base)
        .begin("t2", &["p1", "p2", "p3"], b"op")
        .await
        .unwrap();
    let p1 = participant(&t, &base, "t2", "p1", Some(Vote::Commit)).await;
    let p2 = participant(&t, &base, "t2", "p2", Some(Vote::Abort)).await;
    // p3 never votes: one abort is enough to decide.
    let p3 = participant(&t, &base, "t2", "p3", None).await;
    assert_eq!(
        tx.decide(WITHIN).await.unwrap(),
        Decision::AbortedBy("p2".into())
    );
    for p in [p1, p2, p3] {
        assert_eq!(p.await.unwrap().1, Outcome::Abort);
    }
    // A participant cannot change its vote, and outsiders cannot vote.
    let pc = t.client().await;
    let p2 = Participant::new(&pc, &base, "t2", "p2");
    assert!(matches!(
        p2.vote(Vote::Commit).await,
        Err(RecipeError::Invalid(_))
    ));
    p2.vote(Vote::Abort).await.unwrap();
    let stranger = Participant::new(&pc, &base, "t2", "p9");
    assert_eq!(
        stranger.vote(Vote::Commit).await,
        Err(RecipeError::NotHeld("participant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_when_a_vote_does_not_come_in_time() {
    let t = Target::start("2pc-timeout").await;
    let base = t.path("tx");
    let c = t.client().await;
    let tx = Coordinator::new(&c, &base)
        .begin("t3", &["p1", "p2"], b"op")
        .await
        .unwrap();
    let p1 = participant(&t, &base, "t3", "p1", Some(Vote::Commit)).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        tx.decide(Duration::from_millis(600)).await.unwrap(),
        Decision::TimedOut(vec!["p2".into()])
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(p1.await.unwrap().1, Outcome::Abort);
    // A late commit vote does not change the published outcome.
    let late = t.client().await;
    let p2 = Participant::new(&late, &base, "t3", "p2");
    p2.vote(Vote::Commit).await.unwrap();
    assert_eq!(p2.outcome(WITHIN).await.unwrap(), Outcome::Abort);
    assert_eq!(
        tx.decide(WITHIN).await.unwrap(),
        Decision::AlreadyDecided(Outcome::Abort)
    );
}

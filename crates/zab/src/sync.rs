//! Leader side of synchronisation: choosing DIFF, TRUNC or SNAP for a learner and queueing its
//! history, then NEWLEADER, ahead of any later proposal.

use crate::action::Action;
use crate::leader::{Leader, LearnerLog, PeerPhase};
use crate::log::Log;
use crate::message::{LearnerMsg, SyncMode};
use crate::node::Node;
use crate::zxid::{ServerId, Zxid};

/// How to bring one learner up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncPlan {
    /// Its log is a prefix of ours: send what follows `from`.
    Diff {
        /// Last zxid we share.
        from: Zxid,
    },
    /// It has entries we do not (an uncommitted tail of an older epoch): it drops everything
    /// after `to`, then gets what follows.
    Trunc {
        /// Last zxid we share.
        to: Zxid,
    },
    /// Our in-memory window does not reach back to where it is: send a snapshot.
    Snap,
}

/// Chooses DIFF, TRUNC or SNAP.
///
/// Zxids identify transactions (one leader per epoch), and logs have no holes, so the learner's
/// log is fully described by its applied point (committed, hence in our history) and the runs of
/// zxids it logged above it. We walk those runs along our own log to find the last point where
/// the two agree: the learner keeps exactly that prefix. Everything it has above that point was
/// never committed (we hold every committed transaction) and is truncated, never committed by
/// us (ZOOKEEPER-4925 and the TRUNC bug class).
pub(crate) fn plan_sync(log: &Log, learner: &LearnerLog) -> SyncPlan {
    // Where the two logs are known to agree to start with: the learner's applied point if our
    // history (memory window plus on-disk log) reaches it, else the history's base if the
    // learner logged it (then it keeps its log and applies it from there, rather than
    // replacing a durable log by a snapshot).
    let base = log.history_base();
    let start = if learner.applied >= base {
        if !log.hist_has(learner.applied) {
            return SyncPlan::Snap;
        }
        learner.applied
    } else if learner.runs.iter().any(|&(f, l)| f <= base && base <= l) {
        base
    } else {
        return SyncPlan::Snap;
    };
    let mut shared = start;
    for &(first, last) in &learner.runs {
        if last <= shared {
            continue;
        }
        // a run straddling `shared` continues right after it (runs are one epoch each)
        let first = if first <= shared {
            Zxid::new(shared.epoch(), shared.counter() + 1)
        } else {
            first
        };
        if log.hist_next_after(shared) != Some(first) {
            break;
        }
        let ours = log
            .hist_last_in_epoch(first.epoch())
            .expect("we hold `first`");
        shared = last.min(ours);
        if shared < last {
            break;
        }
    }
    if shared == learner.last_zxid {
        SyncPlan::Diff { from: shared }
    } else {
        SyncPlan::Trunc { to: shared }
    }
}

impl Node {
    /// Sends a learner that acknowledged the epoch its sync, its missing history, and
    /// NEWLEADER. From here on it is in the broadcast set, so a proposal made while it syncs is
    /// sent after (queued behind) its DIFF, on the same ordered connection.
    pub(crate) fn sync_learner(&mut self, l: &mut Leader, id: ServerId) {
        let Some(peer) = l.peers.get(&id) else { return };
        let PeerPhase::AckedEpoch(info) = &peer.phase else {
            return;
        };
        let conn = peer.conn;
        let commit = self.commit;
        let mut plan = plan_sync(&self.log, info);
        if !self.cfg.diff_from_disk {
            // Only the in-memory window may serve a DIFF: further behind, a snapshot.
            if let SyncPlan::Diff { from } | SyncPlan::Trunc { to: from } = plan {
                if from < self.log.base() {
                    plan = SyncPlan::Snap;
                }
            }
        }
        let from = match plan {
            SyncPlan::Diff { from } => {
                self.send_learner(
                    id,
                    conn,
                    LearnerMsg::Sync {
                        mode: SyncMode::Diff,
                        commit,
                    },
                );
                from
            }
            SyncPlan::Trunc { to } => {
                self.send_learner(
                    id,
                    conn,
                    LearnerMsg::Sync {
                        mode: SyncMode::Trunc { to },
                        commit,
                    },
                );
                to
            }
            SyncPlan::Snap => {
                // The snapshot is our applied state, which is committed; everything we logged
                // after it follows as proposals.
                self.out.push(Action::SendSnapshot {
                    to: id,
                    conn,
                    zxid: self.applied,
                });
                self.applied
            }
        };
        // The part of the DIFF older than our in-memory window comes from the on-disk log.
        let from = if from < self.log.base() {
            let through = self.log.base();
            self.out.push(Action::SendLogRange {
                to: id,
                conn,
                after: from,
                through,
            });
            through
        } else {
            from
        };
        let txns: Vec<_> = self.log.after(from).cloned().collect();
        for txn in txns {
            self.send_learner(id, conn, LearnerMsg::Proposal { txn });
        }
        self.send_learner(
            id,
            conn,
            LearnerMsg::NewLeader {
                epoch: l.epoch,
                commit,
                config: self.config_to_send(),
            },
        );
        let peer = l.peers.get_mut(&id).expect("peer");
        peer.phase = PeerPhase::Synced;
        let observer = peer.observer;
        // It joins the broadcast during a rollover: it takes the new epoch too, once its
        // NEWLEADER is acknowledged (rollover.rs).
        if let Some(r) = &mut l.rollover {
            if !observer {
                r.sent.insert(id);
                let epoch = r.epoch;
                self.send_learner(id, conn, LearnerMsg::NewEpoch { epoch });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zxid::Txn;

    fn log_of(zs: &[(u32, u32)]) -> Log {
        let mut l = Log::new(Zxid::ZERO);
        for &(e, c) in zs {
            assert!(l.append(
                Txn {
                    zxid: Zxid::new(e, c),
                    payload: Default::default()
                },
                0
            ));
        }
        l
    }

    fn info(applied: Zxid, zs: &[(u32, u32)]) -> LearnerLog {
        let l = log_of(zs);
        LearnerLog {
            last_zxid: l.last(),
            applied,
            runs: l.runs_above(applied),
            promised: true,
        }
    }

    #[test]
    fn diff_trunc_snap() {
        let leader = log_of(&[(1, 1), (1, 2), (2, 1), (2, 2)]);
        let z = Zxid::new;
        assert_eq!(
            plan_sync(&leader, &info(z(1, 1), &[(1, 1), (1, 2)])),
            SyncPlan::Diff { from: z(1, 2) }
        );
        // an uncommitted tail of epoch 1 the leader never saw
        assert_eq!(
            plan_sync(&leader, &info(z(1, 1), &[(1, 1), (1, 2), (1, 3)])),
            SyncPlan::Trunc { to: z(1, 2) }
        );
        // a stale node whose epoch-3 entry jumps over the leader's epoch-2 entries
        assert_eq!(
            plan_sync(&leader, &info(z(1, 1), &[(1, 1), (3, 1)])),
            SyncPlan::Trunc { to: z(1, 1) }
        );
        assert_eq!(
            plan_sync(&leader, &info(z(2, 2), &[(1, 1), (1, 2), (2, 1), (2, 2)])),
            SyncPlan::Diff { from: z(2, 2) }
        );
        let mut trimmed = leader.clone();
        trimmed.trim(z(2, 1), 1);
        // behind the memory window: DIFF, partly from the on-disk log
        assert_eq!(
            plan_sync(&trimmed, &info(z(1, 1), &[(1, 1)])),
            SyncPlan::Diff { from: z(1, 1) }
        );
        // behind what is left on disk too: SNAP
        trimmed.purge(z(1, 2));
        assert_eq!(
            plan_sync(&trimmed, &info(z(1, 1), &[(1, 1)])),
            SyncPlan::Snap
        );
        trimmed.purge(z(2, 2));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn push_run(l: &mut Log, e: u32, from: u32, n: u32) {
            for c in from..from + n {
                assert!(l.append(
                    Txn {
                        zxid: Zxid::new(e, c),
                        payload: Default::default()
                    },
                    0
                ));
            }
        }

        proptest! {
            /// For a leader and a learner that share a prefix and then diverge the way ZAB logs
            /// can (one continues the last shared epoch further; then each has runs in epochs
            /// the other never saw), the plan keeps exactly the longest common prefix: DIFF if
            /// that is all the learner has, else TRUNC to it; SNAP only when the leader's
            /// history does not reach back to the learner's applied point.
            #[test]
            fn plan_keeps_exactly_the_common_prefix(
                prefix_epochs in proptest::collection::vec(1u32..4, 1..4),
                prefix_len in 1u32..5,
                ka in 0u32..4,
                kb in 0u32..4,
                runs_a in proptest::collection::vec(1u32..4, 0..3),
                runs_b in proptest::collection::vec(1u32..4, 0..3),
                applied_frac in 0u32..100,
                keep in 1usize..20,
                purge in any::<bool>(),
            ) {
                // the shared prefix: epochs 1, 2, ... each with `prefix_len` entries
                let mut leader = Log::new(Zxid::ZERO);
                let mut e = 0;
                for _ in &prefix_epochs {
                    e += 1;
                    push_run(&mut leader, e, 1, prefix_len);
                }
                let mut learner = leader.clone();
                // both may continue the last shared epoch; zxids agree, so one is a prefix
                push_run(&mut leader, e, prefix_len + 1, ka);
                push_run(&mut learner, e, prefix_len + 1, kb);
                let shared = Zxid::new(e, prefix_len + ka.min(kb));
                // then runs in epochs only one side has: the leader's odd, the learner's even
                let mut ea = e;
                for n in &runs_a {
                    ea += 1 + (ea + 1) % 2; // next odd above
                    push_run(&mut leader, ea, 1, *n);
                }
                let mut eb = e;
                for n in &runs_b {
                    eb += 1 + eb % 2; // next even above
                    push_run(&mut learner, eb, 1, *n);
                }
                // the learner applied some point of the shared prefix
                let all: Vec<Zxid> = learner.after(Zxid::ZERO).map(|t| t.zxid).filter(|z| *z <= shared).collect();
                let applied = all[(applied_frac as usize * all.len()) / 100];
                let info = LearnerLog { last_zxid: learner.last(), applied, runs: learner.runs_above(applied), promised: true };
                // the leader keeps only a window in memory, maybe purges its disk log too
                let mut lead = leader.clone();
                lead.trim(shared.min(leader.last()), keep);
                if purge {
                    lead.purge(lead.base());
                }
                let plan = plan_sync(&lead, &info);
                let base = lead.history_base();
                let reachable = applied >= base || learner.has(base) && base <= learner.last();
                if !reachable {
                    prop_assert_eq!(plan, SyncPlan::Snap);
                } else if shared == learner.last() {
                    prop_assert_eq!(plan, SyncPlan::Diff { from: shared });
                } else {
                    prop_assert_eq!(plan, SyncPlan::Trunc { to: shared });
                }
            }
        }
    }
}

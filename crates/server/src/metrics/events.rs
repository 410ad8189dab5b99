//! What the core counts as things happen, under ZooKeeper's `ServerMetrics` names and with
//! their meaning where Paddock has the same event: bytes in and out, connection handshakes,
//! session expiry, the replication traffic, latencies stamped by the leader's clock, watches
//! fired, time without service. Owned by the core task (no lock: most are on a request's
//! path), read for `mntr`, `monitor` and Prometheus.
//!
//! ZooKeeper's figures about its own processor queues (commit processor, prep processor,
//! session queues, request throttler, Netty, JVM pauses) have no counterpart here and are not
//! exported rather than reported as zero (docs/operations.md lists them).

use super::{Sample, Summary, Value};

/// Sizes seen, as ZooKeeper's `BufferStats`: last, min and max, -1 before the first.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            last: -1,
            min: -1,
            max: -1,
        }
    }
}

impl Sizes {
    pub fn record(&mut self, n: usize) {
        let n = n as i64;
        self.last = n;
        self.min = if self.min < 0 { n } else { self.min.min(n) };
        self.max = self.max.max(n);
    }
}

/// The core's event counts and summaries.
#[derive(Debug)]
pub struct Events {
    /// Client bytes received: 4 (the length) plus each request's body, and 4 per
    /// four-letter word (`bytes_received_count`).
    pub bytes_received: u64,
    /// Reply bytes sent, header and body without the length (`response_bytes`).
    pub response_bytes: u64,
    /// Replies and notifications, header and body (`last/min/max_client_response_size`).
    pub client_response_size: Sizes,
    /// Handshakes taken (`connection_request_count`), and of those, resumed sessions
    /// (`connection_revalidate_count`).
    pub connection_requests: u64,
    pub connection_revalidates: u64,
    /// Handshakes refused because this server does not serve (`cnxn_closed_without_zk_server_running`).
    pub closed_not_serving: u64,
    /// Sessions this server expired (`stale_sessions_expired`).
    pub sessions_expired: u64,
    /// Proposals made as leader (`proposal_count`) and their sizes (`last/min/max_proposal_size`).
    pub proposals: u64,
    pub proposal_size: Sizes,
    /// Transactions committed as leader (`commit_count`).
    pub commits: u64,
    /// As a learner: proposals and commits (or observers' INFORMs) received
    /// (`learner_proposal_received_count`, `learner_commit_received_count`).
    pub learner_proposals: u64,
    pub learner_commits: u64,
    /// Elections entered (`looking_count`).
    pub lookings: u64,
    /// Learners synced as leader: by DIFF or TRUNC (`diff_count`), by snapshot (`snap_count`).
    pub diff_syncs: u64,
    pub snap_syncs: u64,
    /// Notification bytes sent (`watch_bytes`).
    pub watch_bytes: u64,
    /// As leader, from a transaction's stamp (the leader's clock) to its commit, ms
    /// (`quorum_ack_latency`).
    pub quorum_ack_latency: Summary,
    /// From a transaction's stamp to its being applied here, ms (`propagation_latency`), and,
    /// on a learner, to its commit arriving here (`commit_propagation_latency`).
    pub propagation_latency: Summary,
    pub commit_propagation_latency: Summary,
    /// Preparing a transaction from a request, as leader, ms (`prep_process_time`), and the
    /// closeSession ones alone (`close_session_prep_time`).
    pub prep_process_time: Summary,
    pub close_session_prep_time: Summary,
    /// From following (observing) a leader to serving, ms (`follower_sync_time`,
    /// `observer_sync_time`).
    pub follower_sync_time: Summary,
    pub observer_sync_time: Summary,
    /// From not serving to serving again, ms (`unavailable_time`), and the leader's
    /// (`leader_unavailable_time`).
    pub unavailable_time: Summary,
    pub leader_unavailable_time: Summary,
    /// Watchers fired by one change, by its event type (`node_created_watch_count`, ...).
    pub watchers_fired: [Summary; 4],
    /// As a learner: the leader's digest marks compared with this tree's digest at the same
    /// zxid (`digest_checks_count`, Paddock's), and those that differed
    /// (`digest_mismatches_count`, ZooKeeper's).
    pub digest_checks: u64,
    pub digest_mismatches: u64,
    /// Reads answered on their connection's task, off the core (`direct_read_count`,
    /// Paddock's; they count in every request figure as well).
    pub direct_reads: u64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            bytes_received: 0,
            response_bytes: 0,
            client_response_size: Sizes::default(),
            connection_requests: 0,
            connection_revalidates: 0,
            closed_not_serving: 0,
            sessions_expired: 0,
            proposals: 0,
            proposal_size: Sizes::default(),
            commits: 0,
            learner_proposals: 0,
            learner_commits: 0,
            lookings: 0,
            diff_syncs: 0,
            snap_syncs: 0,
            watch_bytes: 0,
            quorum_ack_latency: Summary::detailed(),
            propagation_latency: Summary::detailed(),
            commit_propagation_latency: Summary::detailed(),
            prep_process_time: Summary::basic(),
            close_session_prep_time: Summary::detailed(),
            follower_sync_time: Summary::basic(),
            observer_sync_time: Summary::basic(),
            unavailable_time: Summary::basic(),
            leader_unavailable_time: Summary::basic(),
            watchers_fired: std::array::from_fn(|_| Summary::basic()),
            digest_checks: 0,
            digest_mismatches: 0,
            direct_reads: 0,
        }
    }
}

/// ZooKeeper's event types 1 to 4, and the watch-count figure of each.
const WATCH_EVENTS: [(i32, &str); 4] = [
    (1, "node_created_watch_count"),
    (2, "node_deleted_watch_count"),
    (3, "node_changed_watch_count"),
    (4, "node_children_watch_count"),
];

impl Events {
    /// A reply of `frame_len` bytes (the length prefix included) went out.
    pub fn replied(&mut self, frame_len: usize) {
        let n = frame_len.saturating_sub(4);
        self.response_bytes += n as u64;
        self.client_response_size.record(n);
    }

    /// A notification of `frame_len` bytes (the length prefix included) went out.
    pub fn notified(&mut self, frame_len: usize) {
        let n = frame_len.saturating_sub(4);
        self.watch_bytes += n as u64;
        self.client_response_size.record(n);
    }

    /// One change fired `n` watchers (ZooKeeper records only when some fired).
    pub fn watchers_fired(&mut self, event_type: i32, n: usize) {
        if let Some(i) = WATCH_EVENTS.iter().position(|(t, _)| *t == event_type) {
            self.watchers_fired[i].record(n as u64);
        }
    }

    /// A transaction stamped at `stamped_ms` (the leader's wall clock) applied here at
    /// `now_ms`; a negative difference (clocks apart) is dropped, as ZooKeeper does.
    pub fn applied(&mut self, stamped_ms: i64, now_ms: i64, leader: bool) {
        if leader {
            self.commits += 1;
        }
        let Ok(ms) = u64::try_from(now_ms - stamped_ms) else {
            return;
        };
        self.propagation_latency.record(ms);
        if leader {
            self.quorum_ack_latency.record(ms);
        } else {
            self.commit_propagation_latency.record(ms);
        }
    }

    /// The quantile windows move on (every tick).
    pub fn rotate(&mut self) {
        self.quorum_ack_latency.rotate();
        self.propagation_latency.rotate();
        self.commit_propagation_latency.rotate();
        self.close_session_prep_time.rotate();
    }

    /// The samples; `leader` adds the leader's own figures, as ZooKeeper lists them there.
    pub fn samples(&mut self, leader: bool, out: &mut Vec<Sample>) {
        let int = |v: u64| Value::Int(v as i64);
        let counters: [(&'static str, &'static str, u64); 17] = [
            (
                "bytes_received_count",
                "Client bytes received",
                self.bytes_received,
            ),
            (
                "response_bytes",
                "Reply bytes sent (header and body)",
                self.response_bytes,
            ),
            (
                "connection_request_count",
                "Client handshakes taken",
                self.connection_requests,
            ),
            (
                "connection_revalidate_count",
                "Handshakes that resumed a session",
                self.connection_revalidates,
            ),
            (
                "cnxn_closed_without_zk_server_running",
                "Handshakes refused while this server does not serve",
                self.closed_not_serving,
            ),
            (
                "stale_sessions_expired",
                "Sessions expired by this server",
                self.sessions_expired,
            ),
            ("proposal_count", "Proposals made as leader", self.proposals),
            (
                "commit_count",
                "Transactions committed as leader",
                self.commits,
            ),
            (
                "learner_proposal_received_count",
                "Proposals received as a learner",
                self.learner_proposals,
            ),
            (
                "learner_commit_received_count",
                "Commits received as a learner",
                self.learner_commits,
            ),
            ("looking_count", "Elections entered", self.lookings),
            (
                "diff_count",
                "Learners synced by DIFF or TRUNC as leader",
                self.diff_syncs,
            ),
            (
                "snap_count",
                "Learners synced by snapshot as leader",
                self.snap_syncs,
            ),
            ("watch_bytes", "Notification bytes sent", self.watch_bytes),
            (
                "digest_mismatches_count",
                "Leader's tree digests that differed from this server's at the same zxid",
                self.digest_mismatches,
            ),
            (
                "digest_checks_count",
                "Leader's tree digests compared with this server's at the same zxid",
                self.digest_checks,
            ),
            (
                "direct_read_count",
                "Reads answered on their connection's task rather than the core's",
                self.direct_reads,
            ),
        ];
        for (name, help, v) in counters {
            out.push(Sample::counter(name, help, int(v)));
        }
        let sizes = [
            ("last_client_response_size", self.client_response_size.last),
            ("min_client_response_size", self.client_response_size.min),
            ("max_client_response_size", self.client_response_size.max),
        ];
        for (name, v) in sizes {
            out.push(Sample::gauge(
                name,
                "Reply or notification size, header and body (bytes; -1 before any)",
                Value::Int(v),
            ));
        }
        if leader {
            let p = self.proposal_size;
            for (name, v) in [
                ("last_proposal_size", p.last),
                ("min_proposal_size", p.min),
                ("max_proposal_size", p.max),
            ] {
                out.push(Sample::gauge(
                    name,
                    "Proposal size (bytes; -1 before any)",
                    Value::Int(v),
                ));
            }
        }
        let mut summary = |name: &'static str, help: &'static str, s: &mut Summary| {
            out.push(Sample::gauge(name, help, Value::Summary(s.view())));
        };
        summary(
            "quorum_ack_latency",
            "From a transaction's stamp to its commit, as leader (ms)",
            &mut self.quorum_ack_latency,
        );
        summary(
            "propagation_latency",
            "From a transaction's stamp on the leader to its being applied here (ms)",
            &mut self.propagation_latency,
        );
        summary(
            "commit_propagation_latency",
            "From a transaction's stamp on the leader to its commit here, as a learner (ms)",
            &mut self.commit_propagation_latency,
        );
        summary(
            "prep_process_time",
            "Preparing a transaction from a request, as leader (ms)",
            &mut self.prep_process_time,
        );
        summary(
            "close_session_prep_time",
            "Preparing a closeSession transaction (ms)",
            &mut self.close_session_prep_time,
        );
        summary(
            "follower_sync_time",
            "From following a leader to serving (ms)",
            &mut self.follower_sync_time,
        );
        summary(
            "observer_sync_time",
            "From observing a leader to serving (ms)",
            &mut self.observer_sync_time,
        );
        summary(
            "unavailable_time",
            "From not serving to serving again (ms)",
            &mut self.unavailable_time,
        );
        summary(
            "leader_unavailable_time",
            "From not serving to serving again as leader (ms)",
            &mut self.leader_unavailable_time,
        );
        for ((_, name), s) in WATCH_EVENTS.iter().zip(self.watchers_fired.iter_mut()) {
            summary(name, "Watchers fired by one change of this kind", s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_start_at_minus_one() {
        let mut s = Sizes::default();
        assert_eq!((s.last, s.min, s.max), (-1, -1, -1));
        s.record(10);
        s.record(4);
        assert_eq!((s.last, s.min, s.max), (4, 4, 10));
    }

    #[test]
    fn latency_from_a_clock_ahead_is_dropped() {
        let mut e = Events::default();
        e.applied(1_000, 990, true);
        assert_eq!(e.propagation_latency.view().count, 0);
        assert_eq!(e.commits, 1, "a commit counts whatever the clocks say");
        e.applied(1_000, 1_007, true);
        assert_eq!(e.quorum_ack_latency.view().count, 1);
        assert_eq!(e.quorum_ack_latency.view().max, 7);
        e.applied(1_000, 1_003, false);
        assert_eq!(e.commit_propagation_latency.view().count, 1);
        assert_eq!(e.commits, 2, "a learner's apply is no leader's commit");
    }
}

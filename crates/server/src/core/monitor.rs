//! The figures `mntr`, the AdminServer's `monitor` and the Prometheus endpoint report, in
//! ZooKeeper's names and order (`crate::metrics` renders nothing itself).

use super::Core;
use crate::fourlw::{max_fds, open_fds, version_string};
use crate::metrics::{Sample, Value};

impl Core {
    /// ZooKeeper's node count: its node table holds the root twice (as "" and "/"), and
    /// monitoring compares the figure across servers, so report it the same way.
    pub(super) fn zk_node_count(&self) -> usize {
        self.tree.node_count() + 1
    }

    /// Requests received and not yet answered, over every connection.
    pub(super) fn outstanding(&self) -> usize {
        self.conns
            .iter()
            .map(|c| {
                c.out
                    .shared
                    .in_flight
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum()
    }

    /// Everything monitored, server state first, as `mntr` lists it.
    pub(crate) fn monitor_samples(&mut self) -> Vec<Sample> {
        let s = &self.stats;
        let int = |v: usize| Value::Int(v as i64);
        let mut out = vec![
            Sample::gauge("version", "Server version", Value::Text(version_string())),
            Sample::gauge(
                "server_state",
                "leader, follower, observer, standalone, read-only or looking",
                Value::Text(self.mode_name().to_owned()),
            ),
            Sample::gauge(
                "avg_latency",
                "Average request latency (ms)",
                Value::Float(s.avg_latency()),
            ),
            Sample::gauge(
                "max_latency",
                "Maximum request latency (ms)",
                Value::Int(s.latency_max as i64),
            ),
            Sample::gauge(
                "min_latency",
                "Minimum request latency (ms)",
                Value::Int(s.latency_min.unwrap_or(0) as i64),
            ),
            Sample::gauge(
                "packets_received",
                "Requests received",
                Value::Int(s.received as i64),
            ),
            Sample::gauge("packets_sent", "Replies sent", Value::Int(s.sent as i64)),
            Sample::gauge(
                "num_alive_connections",
                "Client connections",
                int(self.conns.len()),
            ),
            Sample::gauge(
                "outstanding_requests",
                "Requests received and not yet answered",
                int(self.outstanding()),
            ),
            Sample::gauge(
                "uptime",
                "Time since the server started (ms)",
                Value::Int(self.started.elapsed().as_millis() as i64),
            ),
            Sample::gauge("znode_count", "Znodes", int(self.zk_node_count())),
            Sample::gauge("watch_count", "Watches", int(self.watches.lock().count())),
            Sample::gauge(
                "ephemerals_count",
                "Ephemeral znodes",
                int(self.tree.ephemeral_count()),
            ),
            Sample::gauge(
                "approximate_data_size",
                "Bytes of znode data and paths",
                Value::Int(self.tree.approximate_data_size() as i64),
            ),
            Sample::gauge(
                "global_sessions",
                "Replicated sessions",
                int(self.sessions.len() - self.sessions.local_count()),
            ),
            Sample::gauge(
                "local_sessions",
                "Sessions of this server alone (localSessionsEnabled)",
                int(self.sessions.local_count()),
            ),
            Sample::gauge(
                "open_file_descriptor_count",
                "Open file descriptors",
                int(open_fds()),
            ),
            Sample::gauge(
                "max_file_descriptor_count",
                "Maximum open file descriptors",
                Value::Int(max_fds() as i64),
            ),
            Sample::gauge(
                "connection_drop_probability",
                "Probability of dropping a new connection",
                Value::Float(0.0),
            ),
            Sample::gauge(
                "auth_failed_count",
                "Failed authentications",
                Value::Int(s.auth_failed as i64),
            ),
            Sample::gauge(
                "outstanding_tls_handshake",
                "TLS handshakes in progress",
                Value::Int(
                    self.metrics
                        .off_core
                        .outstanding_tls_handshake
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .max(0),
                ),
            ),
        ];
        let r = &self.replica;
        if !r.standalone {
            out.push(Sample::gauge(
                "quorum_size",
                "Voting members of the ensemble",
                int(self.cfg.servers.iter().filter(|s| !s.observer).count()),
            ));
        }
        if r.is_leader() && !r.standalone {
            // The leader's view of its learners, as ZooKeeper reports it.
            let learners = r.node.learners();
            let followers = learners.iter().filter(|l| !l.1).count();
            let synced = learners.iter().filter(|l| !l.1 && l.2).count();
            out.extend([
                Sample::gauge("learners", "Connected learners", int(learners.len())),
                Sample::gauge("synced_followers", "Followers in sync", int(synced)),
                Sample::gauge(
                    "synced_non_voting_followers",
                    "Non-voting followers in sync",
                    Value::Int(0),
                ),
                Sample::gauge(
                    "synced_observers",
                    "Observers in sync",
                    int(learners.iter().filter(|l| l.1 && l.2).count()),
                ),
                Sample::gauge("followers", "Connected followers", int(followers)),
                Sample::gauge(
                    "pending_syncs",
                    "sync() calls waiting for a quorum",
                    int(r.node.pending_syncs()),
                ),
            ]);
        }
        let leader = r.is_leader();
        self.requests.samples(&mut out);
        self.events.samples(leader, &mut out);
        self.metrics.samples(&mut out);
        out
    }
}

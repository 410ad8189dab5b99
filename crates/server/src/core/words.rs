//! The four-letter words' texts, rendered from the core's state (formats in `crate::fourlw`).

use super::Core;
use crate::fourlw::*;
use crate::metrics::Flat;
use std::fmt::Write;

/// A transfer's outcome as the four-letter words print it.
pub(super) fn transfer_text(o: &paddock_zab::TransferOutcome) -> String {
    use paddock_zab::TransferOutcome::*;
    match o {
        Started { to } => format!("Handing leadership over to server {to}."),
        HandedOver { to } => format!("Handed leadership over to server {to}."),
        Requested { leader } => {
            format!("Asked the leader (server {leader}) to hand over to this server.")
        }
        Failed { reason } => format!("Not done: {reason}."),
    }
}

impl Core {
    fn mode(&self) -> &'static str {
        self.mode_name()
    }

    fn server_stats(&self, out: &mut String) {
        let s = &self.stats;
        let _ = writeln!(
            out,
            "Latency min/avg/max: {}/{:.4}/{}",
            s.latency_min.unwrap_or(0),
            s.avg_latency(),
            s.latency_max
        );
        let _ = writeln!(out, "Received: {}", s.received);
        let _ = writeln!(out, "Sent: {}", s.sent);
        let _ = writeln!(out, "Connections: {}", self.conns.len());
        let _ = writeln!(out, "Outstanding: {}", self.outstanding());
        let _ = writeln!(out, "Zxid: 0x{:x}", self.tree.last_zxid());
        let _ = writeln!(out, "Mode: {}", self.mode());
        let _ = writeln!(out, "Node count: {}", self.zk_node_count());
    }

    fn conn_line(&self, id: u64, full: bool) -> String {
        let Some(c) = self.conns.get(id) else {
            return String::new();
        };
        let queued = c
            .out
            .shared
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut s = format!(
            " /{}[1](queued={},recved={},sent={}",
            c.addr, queued, c.received, c.sent
        );
        if full {
            if let Some(sid) = c.session {
                let to = self.sessions.get(sid).map_or(0, |x| x.timeout);
                let (min, avg) = c.min_avg_latency();
                let est = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0)
                    .saturating_sub(c.established.elapsed().as_millis() as u64);
                let _ = write!(
                    s,
                    ",sid=0x{sid:x},lop={},est={est},to={to},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                    c.last_op, c.last_cxid, c.last_zxid, 0, c.last_latency_ms, min, avg, c.max_latency_ms
                );
            }
        }
        s.push(')');
        s
    }

    /// The output of a four-letter word.
    pub(crate) fn four_letter(&mut self, cmd: &str) -> String {
        if !self.cfg.four_letter_allowed(cmd) {
            return format!("{cmd} is not executed because it is not in the whitelist.\n");
        }
        let mut out = String::new();
        // As ZooKeeper: a server out of step with its ensemble answers only these.
        if !self.serving()
            && !self.read_only_active()
            && !matches!(
                cmd,
                "ruok" | "conf" | "envi" | "isro" | "dirs" | "ydld" | "rqld"
            )
        {
            out.push_str("This ZooKeeper instance is not currently serving requests\n");
            return out;
        }
        match cmd {
            "ruok" => out.push_str("imok"),
            "isro" => out.push_str(if self.serving() {
                "rw"
            } else if self.read_only_active() {
                "ro"
            } else {
                "null"
            }),
            "srvr" => {
                let _ = writeln!(out, "Zookeeper version: {}", version_string());
                self.server_stats(&mut out);
            }
            "stat" => {
                let _ = writeln!(out, "Zookeeper version: {}", version_string());
                out.push_str("Clients:\n");
                for id in self.conns.ids() {
                    let _ = writeln!(out, "{}", self.conn_line(id, false));
                }
                out.push('\n');
                self.server_stats(&mut out);
            }
            "cons" => {
                for id in self.conns.ids() {
                    let _ = writeln!(out, "{}", self.conn_line(id, true));
                }
                out.push('\n');
            }
            "crst" => {
                for c in self.conns.iter_mut() {
                    c.reset_stats();
                }
                out.push_str("Connection stats reset.\n");
            }
            "srst" => {
                self.stats.reset();
                self.requests.reset();
                out.push_str("Server stats reset.\n");
            }
            "conf" => {
                let c = &self.cfg;
                let _ = writeln!(out, "clientPort={}", c.client_port);
                let _ = writeln!(out, "secureClientPort=-1");
                let _ = writeln!(out, "dataDir={}", c.data_dir.display());
                let _ = writeln!(out, "dataDirSize={DATA_DIR_SIZE}");
                let _ = writeln!(out, "dataLogDir={}", c.data_log_dir.display());
                let _ = writeln!(out, "dataLogSize={LOG_DIR_SIZE}");
                let _ = writeln!(out, "tickTime={}", c.tick_time);
                let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
                let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout);
                let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout);
                let _ = writeln!(
                    out,
                    "clientPortListenBacklog={}",
                    c.client_port_listen_backlog
                );
                let r = &self.replica;
                if r.standalone {
                    let _ = writeln!(out, "serverId=0");
                } else {
                    let id = r.node.id();
                    let _ = writeln!(out, "serverId={id}");
                    let _ = writeln!(out, "initLimit={}", c.init_limit);
                    let _ = writeln!(out, "syncLimit={}", c.sync_limit);
                    let _ = writeln!(out, "electionAlg=3");
                    if let Some(me) = c.servers.iter().find(|s| s.id == id) {
                        let _ = writeln!(out, "electionPort={}", me.election_port);
                        let _ = writeln!(out, "quorumPort={}", me.quorum_port);
                        let _ = writeln!(out, "peerType={}", u8::from(me.observer));
                    }
                    out.push_str("membership: \n");
                    for sv in &c.servers {
                        let _ = writeln!(
                            out,
                            "server.{}={}:{}:{}:{}",
                            sv.id,
                            sv.host,
                            sv.quorum_port,
                            sv.election_port,
                            if sv.observer {
                                "observer"
                            } else {
                                "participant"
                            }
                        );
                    }
                }
            }
            "envi" => {
                out.push_str("Environment:\n");
                for (k, v) in super::admin::environment() {
                    let _ = writeln!(out, "{k}={v}");
                }
            }
            "dirs" => {
                let _ = writeln!(out, "datadir_size: {DATA_DIR_SIZE}");
                let _ = writeln!(out, "logdir_size: {LOG_DIR_SIZE}");
            }
            "dump" => {
                out.push_str("SessionTracker dump:\n");
                let all = self.sessions.all();
                let _ = writeln!(out, "Global Sessions({}):", all.len());
                for (id, s, left) in &all {
                    let _ = writeln!(
                        out,
                        "0x{id:x}\t{}ms",
                        s.timeout.max(0).min(*left.max(&0) as i32)
                    );
                }
                out.push_str("ephemeral nodes dump:\n");
                let eph = self.tree.all_ephemerals();
                let _ = writeln!(out, "Sessions with Ephemerals ({}):", eph.len());
                for (sid, paths) in eph {
                    let _ = writeln!(out, "0x{sid:x}:");
                    for p in paths {
                        let _ = writeln!(out, "\t{p}");
                    }
                }
                out.push_str("Connections dump:\n");
                let _ = writeln!(out, "Connections Sets (1)/({})", self.conns.len());
            }
            "wchs" => {
                let w = self.watches.lock();
                let _ = writeln!(
                    out,
                    "{} connections watching {} paths",
                    w.watcher_count(),
                    w.path_count()
                );
                let _ = writeln!(out, "Total watches:{}", w.count());
            }
            "wchc" => {
                let by_watcher = self.watches.lock().by_watcher();
                for (w, paths) in by_watcher {
                    let sid = self.conns.get(w).and_then(|c| c.session).unwrap_or(0);
                    let _ = writeln!(out, "0x{sid:x}");
                    for p in paths {
                        let _ = writeln!(out, "\t{p}");
                    }
                }
            }
            "wchp" => {
                let by_path = self.watches.lock().by_path();
                for (p, ws) in by_path {
                    let _ = writeln!(out, "{p}");
                    for w in ws {
                        let sid = self.conns.get(w).and_then(|c| c.session).unwrap_or(0);
                        let _ = writeln!(out, "\t0x{sid:x}");
                    }
                }
            }
            "mntr" => {
                for sample in self.monitor_samples() {
                    crate::metrics::flatten(&sample, |name, v| {
                        let _ = match v {
                            Flat::Text(t) => writeln!(out, "zk_{name}\t{t}"),
                            Flat::Int(i) => writeln!(out, "zk_{name}\t{i}"),
                            Flat::Float(f) => writeln!(out, "zk_{name}\t{f:.4}"),
                        };
                    });
                }
            }
            "gtmk" => out.push_str(&self.trace_mask.to_string()),
            // Yield: the leader hands over to its best voter. Request: this server asks its
            // leader to hand over to it.
            "ydld" | "rqld" => {
                let leads = self.replica.is_leader();
                let text = if cmd == "ydld" && !leads {
                    "This server is not the leader.".to_owned()
                } else if cmd == "rqld" && leads {
                    "This server is the leader already.".to_owned()
                } else {
                    match self.transfer_leadership(self.default_transfer_target()) {
                        Ok(o) => transfer_text(&o),
                        Err(e) => e,
                    }
                };
                let _ = writeln!(out, "{text}");
            }
            "stmk" => out.push('0'),
            "hash" => {
                // ZooKeeper's tree digest at every 128th zxid, as ZooKeeper lists it.
                for d in self.tree.zk_digest_log() {
                    let _ = writeln!(out, "{:x}: {}", d.zxid, d.digest);
                }
            }
            _ => {}
        }
        out
    }
}

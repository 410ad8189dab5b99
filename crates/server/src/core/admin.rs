//! The AdminServer's commands, rendered from the core's state as ZooKeeper 3.8's JSON (the
//! same field names and types). Figures that walk the disk (directory sizes, the last
//! snapshot) are added by the AdminServer off this task.

use super::Core;
use crate::fourlw::version_string;
use crate::metrics::Flat;
use crate::msg::{AdminReply, AdminRequest};
use paddock_proto::perms;
use paddock_zab::RoleKind;
use serde_json::{json, Map, Value};

/// ZooKeeper's answer for a command that needs a serving server.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

impl Core {
    /// Whether an entry of `/`'s ACL other than `world:anyone` grants the identities `perm`
    /// (or one of them is `super`): an open root is not an authenticated identity. ADMIN is
    /// what the commands that change state or show sessions and watches need; ALL (every
    /// permission, ZooKeeper's check for `snapshot`) what a backup needs, since it holds every
    /// znode whatever its ACL.
    pub(crate) fn root_grants(&self, auth: &paddock_tree::AuthInfo, perm: i32) -> bool {
        if auth.is_super() {
            return true;
        }
        let Some(root) = self.tree.lookup("/") else {
            return false;
        };
        self.tree.acl(root).iter().any(|a| {
            a.id.scheme != "world"
                && paddock_tree::acl::check(std::slice::from_ref(a), perm, auth, false)
        })
    }

    /// The start of a backup: the caller's right to it, then the tree to walk, the sessions
    /// and zxid it starts from, and a tap on every transaction applied from now on (the walk
    /// is fuzzy; replaying those makes it exact).
    pub(crate) fn backup(
        &mut self,
        auth: &paddock_tree::AuthInfo,
    ) -> Result<crate::msg::BackupStart, AdminReply> {
        let refuse = |status, error: &str| {
            let mut body = Map::new();
            body.insert("command".into(), json!("snapshot"));
            body.insert("error".into(), json!(error));
            AdminReply { status, body }
        };
        if !self.root_grants(auth, perms::ALL) {
            return Err(refuse(
                403,
                "a backup needs an identity with ALL permissions on / (an Authorization: \
                 digest user:password header, a client certificate, or super)",
            ));
        }
        if !self.serving() && !self.read_only_active() {
            return Err(refuse(503, NOT_SERVING));
        }
        let (tx, txns) = std::sync::mpsc::channel();
        self.backup_taps.push(tx);
        let shared = self.tree.shared();
        let mut sessions: Vec<(i64, i32)> =
            self.tree.sessions().iter().map(|(&k, &v)| (k, v)).collect();
        sessions.sort_unstable();
        Ok(crate::msg::BackupStart {
            generation: shared.generation(),
            tree: shared,
            zxid: self.tree.last_zxid(),
            cursor: self.tree.snapshot_cursor(),
            sessions,
            txns,
        })
    }

    /// Runs one AdminServer command.
    pub(crate) fn admin(&mut self, req: AdminRequest) -> AdminReply {
        let mut body = Map::new();
        if req.needs_admin && !self.root_grants(&req.auth, perms::ADMIN) {
            body.insert("command".into(), json!(req.command));
            body.insert(
                "error".into(),
                json!(
                    "this command needs an identity with ADMIN permission on / \
                       (an Authorization: digest user:password header, a client certificate, \
                       or an address that /'s ACL grants ADMIN)"
                ),
            );
            return AdminReply { status: 403, body };
        }
        if req.needs_server && !self.serving() && !self.read_only_active() {
            body.insert("command".into(), json!(req.command));
            body.insert("error".into(), json!(NOT_SERVING));
            return AdminReply { status: 200, body };
        }
        let error = self.admin_body(&req, &mut body).err();
        body.insert("command".into(), json!(req.command));
        body.insert("error".into(), error.map_or(Value::Null, Value::String));
        AdminReply { status: 200, body }
    }

    fn admin_body(&mut self, req: &AdminRequest, b: &mut Map<String, Value>) -> Result<(), String> {
        match req.command {
            "ruok" => {}
            "server_stats" => self.admin_server_stats(b),
            "stats" => {
                self.admin_server_stats(b);
                b.insert("connections".into(), self.admin_connections(false, false));
                b.insert(
                    "secure_connections".into(),
                    self.admin_connections(false, true),
                );
            }
            "monitor" => {
                for s in self.monitor_samples() {
                    crate::metrics::flatten(&s, |name, v| {
                        let v = match v {
                            Flat::Text(t) => json!(t),
                            Flat::Int(i) => json!(i),
                            Flat::Float(f) => json!(f),
                        };
                        b.insert(name.into_owned(), v);
                    });
                }
            }
            "configuration" => {
                let c = &self.cfg;
                b.insert("client_port".into(), json!(c.client_port));
                b.insert("data_dir".into(), json!(c.data_dir.display().to_string()));
                b.insert(
                    "data_log_dir".into(),
                    json!(c.data_log_dir.display().to_string()),
                );
                b.insert("tick_time".into(), json!(c.tick_time));
                b.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
                b.insert("min_session_timeout".into(), json!(c.min_session_timeout));
                b.insert("max_session_timeout".into(), json!(c.max_session_timeout));
                b.insert("server_id".into(), json!(self.server_id()));
                b.insert("client_port_listen_backlog".into(), json!(-1));
            }
            "connections" => {
                b.insert("connections".into(), self.admin_connections(true, false));
                b.insert(
                    "secure_connections".into(),
                    self.admin_connections(true, true),
                );
            }
            "connection_stat_reset" => {
                for c in self.conns.iter_mut() {
                    c.reset_stats();
                }
            }
            "stat_reset" => {
                self.stats.reset();
                self.requests.reset();
            }
            "observer_connection_stat_reset" => {}
            "dirs" => {}
            "dump" => {
                let now = super::now_ms();
                let mut expiry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                for (id, _, left) in self.sessions.all() {
                    let tick = self.cfg.tick_time as i64;
                    let at = (now + left.max(0)) / tick * tick + tick;
                    expiry.entry(at).or_default().push(id);
                }
                let expiry: Map<String, Value> = expiry
                    .into_iter()
                    .map(|(at, ids)| (at.to_string(), json!(ids)))
                    .collect();
                let eph: Map<String, Value> = self
                    .tree
                    .all_ephemerals()
                    .into_iter()
                    .map(|(sid, paths)| (sid.to_string(), json!(paths)))
                    .collect();
                b.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
                b.insert("session_id_to_ephemeral_paths".into(), Value::Object(eph));
            }
            "environment" => {
                for (k, v) in environment() {
                    b.insert(k.into(), json!(v));
                }
            }
            "system_properties" => {
                for (k, v) in &self.cfg.raw {
                    b.insert(format!("zookeeper.{k}"), json!(v));
                }
                for (k, v) in environment() {
                    b.insert(k.into(), json!(v));
                }
            }
            "get_trace_mask" => {
                b.insert("tracemask".into(), json!(self.trace_mask));
            }
            "set_trace_mask" => {
                let Some(v) = req.args.get("traceMask") else {
                    return Err("setTraceMask requires long traceMask argument".into());
                };
                let mask: i64 = v.parse().map_err(|_| {
                    format!("setTraceMask requires long traceMask argument, got {v}")
                })?;
                self.trace_mask = mask;
                b.insert("tracemask".into(), json!(mask));
            }
            "hash" => {
                // ZooKeeper's tree digest at every 128th zxid (the last 1,024).
                let digests: Vec<Value> = self
                    .tree
                    .zk_digest_log()
                    .map(|d| {
                        json!({
                            "zxid": d.zxid,
                            "digestVersion": paddock_tree::digest::DIGEST_VERSION,
                            "digest": d.digest,
                        })
                    })
                    .collect();
                b.insert("digests".into(), Value::Array(digests));
            }
            "initial_configuration" => {
                let text: String = self
                    .cfg
                    .initial
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                b.insert("initial_configuration".into(), json!(text));
            }
            "is_read_only" => {
                b.insert("read_only".into(), json!(self.read_only_active()));
            }
            "last_snapshot" => {}
            "leader" => {
                let r = &self.replica;
                if r.standalone {
                    return Err("server is not initialized".into());
                }
                let leader = r.node.leader();
                b.insert("is_leader".into(), json!(r.is_leader()));
                b.insert("leader_id".into(), json!(leader.map_or(-1, |l| l as i64)));
                let ip = leader
                    .and_then(|l| self.cfg.servers.iter().find(|s| s.id == l))
                    .map_or(String::new(), |s| format!("{}:{}", s.host, s.quorum_port));
                b.insert("leader_ip".into(), json!(ip));
            }
            "observers" => {
                let r = &self.replica;
                let observers: Vec<Value> = if r.is_leader() {
                    r.node
                        .learners()
                        .into_iter()
                        .filter(|l| l.1)
                        .map(|(id, _, synced)| json!({"sid": id, "synced": synced}))
                        .collect()
                } else {
                    Vec::new()
                };
                let synced = observers
                    .iter()
                    .filter(|o| o["synced"] == json!(true))
                    .count();
                b.insert("synced_observers".into(), json!(synced));
                b.insert("observers".into(), Value::Array(observers));
            }
            "voting_view" => {
                let mut view = Map::new();
                if !self.replica.standalone {
                    let mut servers = self.cfg.servers.clone();
                    servers.sort_by_key(|s| s.id);
                    for s in servers {
                        let client = s
                            .client_addr
                            .as_ref()
                            .map_or(String::new(), |(h, p)| format!(";{h}:{p}"));
                        view.insert(
                            s.id.to_string(),
                            json!(format!(
                                "{}:{}:{}:{}{client}",
                                s.host,
                                s.quorum_port,
                                s.election_port,
                                if s.observer {
                                    "observer"
                                } else {
                                    "participant"
                                }
                            )),
                        );
                    }
                }
                b.insert("current_config".into(), Value::Object(view));
            }
            "watches" => {
                let m: Map<String, Value> = self
                    .watches
                    .lock()
                    .by_watcher()
                    .into_iter()
                    .map(|(w, paths)| (self.session_of(w).to_string(), json!(paths)))
                    .collect();
                b.insert("session_id_to_watched_paths".into(), Value::Object(m));
            }
            "watches_by_path" => {
                let m: Map<String, Value> = self
                    .watches
                    .lock()
                    .by_path()
                    .into_iter()
                    .map(|(p, ws)| {
                        let sids: Vec<i64> = ws.into_iter().map(|w| self.session_of(w)).collect();
                        (p, json!(sids))
                    })
                    .collect();
                b.insert("path_to_session_ids".into(), Value::Object(m));
            }
            "watch_summary" => {
                b.insert(
                    "num_connections".into(),
                    json!(self.watches.lock().watcher_count()),
                );
                b.insert("num_paths".into(), json!(self.watches.lock().path_count()));
                b.insert(
                    "num_total_watches".into(),
                    json!(self.watches.lock().count()),
                );
            }
            "zabstate" => {
                let r = &self.replica;
                let (voting, state) = if r.standalone {
                    (false, "")
                } else {
                    let me = r.node.id();
                    let voting = self.cfg.servers.iter().any(|s| s.id == me && !s.observer);
                    let state = match (r.role, r.serving) {
                        (RoleKind::Looking, _) => "election",
                        (_, true) => "broadcast",
                        (_, false) => "synchronization",
                    };
                    (voting, state)
                };
                b.insert("voting".into(), json!(voting));
                b.insert("zabstate".into(), json!(state));
            }
            "members" => self.admin_members(b),
            "transfer_leadership" => {
                let to = match req.args.get("to") {
                    Some(v) => Some(
                        v.parse::<u64>()
                            .map_err(|_| format!("to must be a server id, got {v}"))?,
                    ),
                    None => self.default_transfer_target(),
                };
                let outcome = self.transfer_leadership(to)?;
                b.insert(
                    "transfer".into(),
                    json!(super::words::transfer_text(&outcome)),
                );
                use paddock_zab::TransferOutcome::*;
                match outcome {
                    Started { to } | HandedOver { to } => {
                        b.insert("to".into(), json!(to));
                    }
                    Requested { leader } => {
                        b.insert("leader_id".into(), json!(leader));
                    }
                    Failed { reason } => return Err(reason),
                }
            }
            other => return Err(format!("Unknown command: {other}")),
        }
        Ok(())
    }

    /// Every configured member as this server sees it: the leader knows each learner's
    /// acknowledged zxid and when it last heard from it; a learner knows its leader.
    fn admin_members(&self, b: &mut Map<String, Value>) {
        let r = &self.replica;
        let me = self.server_id();
        let last = r.node.last_logged();
        let leader = if r.standalone {
            Some(me)
        } else {
            r.node.leader()
        };
        b.insert("server_id".into(), json!(me));
        b.insert("mode".into(), json!(self.mode_name()));
        b.insert("leader_id".into(), json!(leader.map_or(-1, |l| l as i64)));
        b.insert("last_zxid".into(), json!(format!("0x{:x}", last.0)));
        let learners = r.node.learner_status();
        let tick_ms = crate::replica::ZAB_TICK_MS;
        let mut out = Vec::new();
        let mut servers = self.cfg.servers.clone();
        if servers.is_empty() {
            servers.push(crate::config::ServerSpec {
                id: 0,
                host: self.cfg.client_port_address.to_string(),
                quorum_port: 0,
                election_port: 0,
                observer: false,
                client_addr: None,
            });
        }
        servers.sort_by_key(|s| s.id);
        for s in servers {
            let mut m = Map::new();
            m.insert("id".into(), json!(s.id));
            m.insert("host".into(), json!(s.host));
            m.insert(
                "type".into(),
                json!(if s.observer {
                    "observer"
                } else {
                    "participant"
                }),
            );
            if s.id == me {
                m.insert("role".into(), json!(self.mode_name()));
                m.insert("zxid".into(), json!(format!("0x{:x}", last.0)));
                m.insert("lag".into(), json!(0));
                m.insert("last_contact_ms".into(), json!(0));
            } else if let Some(l) = learners.iter().find(|l| l.id == s.id) {
                let role = if l.observer { "observer" } else { "follower" };
                m.insert(
                    "role".into(),
                    json!(if l.synced { role } else { "syncing" }),
                );
                if !l.observer {
                    m.insert("zxid".into(), json!(format!("0x{:x}", l.acked.0)));
                    // Transactions of this epoch it has yet to acknowledge (its zxid is of
                    // an older epoch until it acknowledges one of ours).
                    let lag = if l.acked.epoch() == last.epoch() {
                        json!(last.counter().saturating_sub(l.acked.counter()))
                    } else {
                        Value::Null
                    };
                    m.insert("lag".into(), lag);
                }
                m.insert("last_contact_ms".into(), json!(l.silent_ticks * tick_ms));
            } else if r.is_leader() {
                m.insert("role".into(), json!("unreachable"));
            } else if Some(s.id) == leader {
                m.insert("role".into(), json!("leader"));
            } else {
                // Only the leader hears from every member.
                m.insert("role".into(), json!("unknown"));
            }
            out.push(Value::Object(m));
        }
        b.insert("members".into(), Value::Array(out));
    }

    /// The web console's view of a znode (`CoreMsg::Browse`): what getData, getACL and a
    /// page of getChildren would give the caller, with the permissions its identities hold.
    pub(crate) fn browse(&self, req: crate::msg::BrowseRequest) -> AdminReply {
        let mut b = Map::new();
        b.insert("path".into(), json!(req.path));
        let fail = |mut b: Map<String, Value>, status: u16, msg: String| {
            b.insert("error".into(), json!(msg));
            AdminReply { status, body: b }
        };
        if let Err(e) = paddock_proto::path::validate(&req.path) {
            return fail(b, 400, format!("invalid path: {e}"));
        }
        let Some(id) = self.tree.lookup(&req.path) else {
            return fail(b, 404, "no such znode".into());
        };
        let acl = self.tree.acl(id);
        let mut may = String::new();
        for (bit, c) in [
            (perms::READ, 'r'),
            (perms::WRITE, 'w'),
            (perms::CREATE, 'c'),
            (perms::DELETE, 'd'),
            (perms::ADMIN, 'a'),
        ] {
            if paddock_tree::acl::check(acl, bit, &req.auth, self.cfg.skip_acl) {
                may.push(c);
            }
        }
        b.insert("may".into(), json!(may));
        b.insert(
            "identities".into(),
            json!(req
                .auth
                .ids
                .iter()
                .map(|i| format!("{}:{}", i.scheme, i.id))
                .collect::<Vec<_>>()),
        );
        let entries: Vec<Value> = acl
            .iter()
            .map(
                |a| json!({"scheme": a.id.scheme, "id": a.id.id, "perms": perms::letters(a.perms)}),
            )
            .collect();
        // getACL needs READ or ADMIN (3.8), getData and getChildren READ.
        if !may.contains('r') && !may.contains('a') {
            return fail(b, 403, "no READ or ADMIN permission on this znode".into());
        }
        b.insert("acl".into(), Value::Array(entries));
        let st = self.tree.stat(id);
        // Zxids and session ids as hex strings: they pass 2^53, past which a browser's
        // numbers round.
        let hex = |v: i64| format!("0x{v:x}");
        b.insert(
            "stat".into(),
            json!({
                "czxid": hex(st.czxid), "mzxid": hex(st.mzxid), "pzxid": hex(st.pzxid),
                "ctime": st.ctime, "mtime": st.mtime, "version": st.version,
                "cversion": st.cversion, "aversion": st.aversion,
                "ephemeralOwner": hex(st.ephemeral_owner), "dataLength": st.data_length,
                "numChildren": st.num_children,
            }),
        );
        if !may.contains('r') {
            b.insert(
                "error".into(),
                json!("no READ permission: data and children hidden"),
            );
            return AdminReply {
                status: 200,
                body: b,
            };
        }
        use base64::Engine;
        let data = self.tree.data(id);
        b.insert(
            "data_base64".into(),
            data.map_or(Value::Null, |d| {
                json!(base64::engine::general_purpose::STANDARD.encode(d))
            }),
        );
        let limit = req.limit.clamp(1, 1000);
        let page = self.tree.children_page(id, req.offset, limit);
        b.insert("offset".into(), json!(req.offset));
        b.insert("limit".into(), json!(limit));
        b.insert(
            "children".into(),
            Value::Array(
                page.into_iter()
                    .map(|(name, n)| json!({"name": name, "num_children": n}))
                    .collect(),
            ),
        );
        b.insert("error".into(), Value::Null);
        AdminReply {
            status: 200,
            body: b,
        }
    }

    fn server_id(&self) -> u64 {
        if self.replica.standalone {
            0
        } else {
            self.replica.node.id()
        }
    }

    fn session_of(&self, w: paddock_tree::WatcherId) -> i64 {
        self.conns.get(w).and_then(|c| c.session).unwrap_or(0)
    }

    fn admin_server_stats(&self, b: &mut Map<String, Value>) {
        let s = &self.stats;
        let client_response = json!({
            "last_buffer_size": -1,
            "min_buffer_size": -1,
            "max_buffer_size": -1,
        });
        b.insert("version".into(), json!(version_string()));
        b.insert("read_only".into(), json!(self.read_only_active()));
        b.insert(
            "server_stats".into(),
            json!({
                "packets_sent": s.sent,
                "packets_received": s.received,
                "fsync_threshold_exceed_count": 0,
                "client_response_stats": client_response.clone(),
                "provider_null": false,
                "server_state": self.mode_name(),
                "last_processed_zxid": self.tree.last_zxid(),
                "outstanding_requests": self.outstanding(),
                "avg_latency": s.avg_latency(),
                "max_latency": s.latency_max,
                "min_latency": s.latency_min.unwrap_or(0),
                "num_alive_client_connections": self.conns.len(),
                "auth_failed_count": s.auth_failed,
                "non_mtlsremote_conn_count": 0,
                "non_mtlslocal_conn_count": 0,
                "uptime": self.started.elapsed().as_millis() as u64,
            }),
        );
        b.insert("client_response".into(), client_response);
        b.insert("node_count".into(), json!(self.zk_node_count()));
    }

    /// Each connection (over TLS or not, as `secure` says) as ZooKeeper's
    /// `getConnectionInfo`: the counters, and with `full` the session's details too.
    fn admin_connections(&self, full: bool, secure: bool) -> Value {
        let now = super::now_ms();
        let mut out = Vec::new();
        for id in self.conns.ids() {
            let Some(c) = self.conns.get(id).filter(|c| c.secure == secure) else {
                continue;
            };
            let mut m = Map::new();
            m.insert("remote_socket_address".into(), json!(c.addr.to_string()));
            m.insert("interest_ops".into(), json!(1));
            m.insert(
                "outstanding_requests".into(),
                json!(c
                    .out
                    .shared
                    .in_flight
                    .load(std::sync::atomic::Ordering::Relaxed)),
            );
            m.insert("packets_received".into(), json!(c.received));
            m.insert("packets_sent".into(), json!(c.sent));
            if full {
                if let Some(sid) = c.session {
                    let timeout = self.sessions.get(sid).map_or(0, |x| x.timeout);
                    let (min, avg) = c.min_avg_latency();
                    m.insert("session_id".into(), json!(sid));
                    m.insert("last_operation".into(), json!(c.last_op));
                    m.insert(
                        "established".into(),
                        json!(now - c.established.elapsed().as_millis() as i64),
                    );
                    m.insert("session_timeout".into(), json!(timeout));
                    m.insert("last_cxid".into(), json!(c.last_cxid));
                    m.insert("last_zxid".into(), json!(c.last_zxid));
                    m.insert("last_response_time".into(), json!(0));
                    m.insert("last_latency".into(), json!(c.last_latency_ms));
                    m.insert("min_latency".into(), json!(min));
                    m.insert("avg_latency".into(), json!(avg));
                    m.insert("max_latency".into(), json!(c.max_latency_ms));
                }
            }
            out.push(Value::Object(m));
        }
        Value::Array(out)
    }
}

/// What `environment` (and the `envi` four-letter word) lists: ZooKeeper's keys that mean
/// something outside a JVM.
pub(super) fn environment() -> Vec<(&'static str, String)> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    vec![
        ("zookeeper.version", version_string()),
        ("host.name", read("/proc/sys/kernel/hostname")),
        ("os.name", "Linux".to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("os.version", read("/proc/sys/kernel/osrelease")),
        (
            "user.name",
            std::env::var("USER").unwrap_or_else(|_| String::new()),
        ),
        (
            "user.home",
            std::env::var("HOME").unwrap_or_else(|_| String::new()),
        ),
        (
            "user.dir",
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("paddock.version", env!("CARGO_PKG_VERSION").to_owned()),
    ]
}

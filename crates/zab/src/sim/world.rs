//! The simulated ensemble: real [`Node`]s driven by a seeded event queue, a `SimDisk` per node,
//! a `SimNet`, crashes and restarts, skewed ticks, and a client workload. Checkers run after
//! every step.

use crate::action::Action;
use crate::config::{Bugs, Config};
use crate::event::Event;
use crate::message::Message;
use crate::node::Node;
use crate::sim::checkers::applied_prefix::GlobalOrder;
use crate::sim::checkers::one_leader_per_epoch::OneLeaderPerEpoch;
use crate::sim::checkers::{client_history, committed_never_lost, Violation};
use crate::sim::clients::{Client, PendingSync, PendingWrite};
use crate::sim::disk::{Op, SimDisk, SmState};
use crate::sim::faults::{Faults, TICK};
use crate::sim::history::{OpKind, OpRecord, Outcome};
use crate::sim::net::{Fate, SimNet};
use crate::sim::rng::Rng;
use crate::zxid::{ServerId, Zxid};
use bytes::Bytes;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// How to build a world.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Seed of everything random.
    pub seed: u64,
    /// Voters (ids 1..=voters).
    pub voters: usize,
    /// Observers (ids after the voters).
    pub observers: usize,
    /// zxid counter width.
    pub counter_bits: u32,
    /// Committed transactions kept in memory for DIFF.
    pub window: usize,
    /// Fault mix.
    pub faults: Faults,
    /// Simulated clients.
    pub clients: usize,
    /// Planted bugs.
    pub bugs: Bugs,
    /// Keep a trace (the last `trace_lines` lines).
    pub trace_lines: usize,
    /// Run the per-step durability check (`committed_never_lost`). Off only to show that the
    /// other checkers see the actual damage a planted bug does.
    pub durability_check: bool,
}

impl Setup {
    /// A calm ensemble for scripted scenarios: no faults, no clients.
    pub fn scenario(voters: usize, observers: usize) -> Setup {
        Setup {
            seed: 1,
            voters,
            observers,
            counter_bits: 32,
            window: 1000,
            faults: Faults::none(),
            clients: 0,
            bugs: Bugs::default(),
            trace_lines: 0,
            durability_check: true,
        }
    }
}

/// One simulated server.
#[derive(Debug)]
pub struct SimNode {
    /// Server id.
    pub id: ServerId,
    /// The running state machine; None while crashed.
    pub node: Option<Node>,
    /// Its disk.
    pub disk: SimDisk,
    /// Bumped at each restart.
    pub incarnation: u64,
    /// Applied state.
    pub sm: SmState,
    /// Length of a tick for this node (skew).
    pub tick_period: u64,
    /// Disk slowness factor.
    pub disk_slow: u64,
    /// fsyncs never complete while set (scenarios).
    pub disk_stalled: bool,
    /// The committed configuration as its driver last wrote it (the server's
    /// `zoo.cfg.dynamic.<version>`, written and synced when one takes effect): survives
    /// crashes.
    pub config_file: Option<(Zxid, crate::membership::Membership)>,
    pub(super) cfg: Config,
}

impl SimNode {
    /// Whether it runs and serves clients.
    pub fn serving(&self) -> bool {
        self.node.as_ref().is_some_and(|n| n.is_serving())
    }
}

#[derive(Debug, Clone)]
pub(super) enum Ev {
    Tick(usize, u64),
    Deliver {
        from: ServerId,
        to: ServerId,
        msg: Message,
        n: u64,
    },
    Fsync {
        node: usize,
        inc: u64,
        through: u64,
    },
    Crash(usize),
    Restart(usize),
    /// End of a clock stall: the node's tick period goes back to this.
    ClockRestore(usize, u64),
    Chaos,
    Client(usize),
    /// The driver tells node `node` (if still incarnation `inc`) that its connection with
    /// `peer` broke, as the server's transport does on a TCP reset.
    PeerLost {
        node: usize,
        inc: u64,
        peer: ServerId,
    },
}

#[derive(Debug)]
struct Queued {
    time: u64,
    pub(super) seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // BinaryHeap is a max-heap: earliest (time, seq) first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}

/// Run statistics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Messages sent.
    pub messages: u64,
    /// Crashes.
    pub crashes: u64,
    /// Writes acknowledged.
    pub acked_writes: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Planned leadership transfers handed over.
    pub transfers: u64,
    /// Reads.
    pub reads: u64,
    /// Snapshots sent.
    pub snaps: u64,
    /// Truncations.
    pub truncs: u64,
    /// DIFFs served (partly) from the on-disk log.
    pub disk_diffs: u64,
    /// Session touches that reached a leader.
    pub session_touches: u64,
    /// Reconfigurations asked of a leader.
    pub reconfigs_asked: u64,
    /// Reconfigurations committed.
    pub reconfigs: u64,
}

/// Filter on messages being sent: return false to drop.
pub type MsgFilter = Box<dyn FnMut(ServerId, ServerId, &Message) -> bool>;

/// Matches a message delivered to a node (see `World::stall_disk_on`).
pub type MsgMatch = Box<dyn Fn(&Message) -> bool>;

/// The simulated world.
pub struct World {
    /// How it was built.
    pub setup: Setup,
    /// Whether the driver reports broken connections (`Event::PeerLost`) on this seed.
    pub(super) peer_lost_signals: bool,
    pub(super) rng: Rng,
    /// Current time (TICK units per nominal tick).
    pub time: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    /// Servers, index = id - 1.
    pub nodes: Vec<SimNode>,
    /// Network.
    pub net: SimNet,
    /// Faults in force.
    pub faults: Faults,
    /// Whether random faults are injected.
    pub chaos: bool,
    /// Clients.
    pub clients: Vec<Client>,
    /// Whether clients issue operations.
    pub clients_active: bool,
    /// Every client operation.
    pub history: Vec<OpRecord>,
    pub(super) pending_writes: BTreeMap<Bytes, PendingWrite>,
    pub(super) pending_syncs: BTreeMap<u64, PendingSync>,
    pub(super) next_request: u64,
    pub(super) scenario_seq: u64,
    /// Highest zxid acknowledged to a client.
    pub max_acked: Zxid,
    /// The one committed order.
    pub order: GlobalOrder,
    pub(super) leaders: OneLeaderPerEpoch,
    /// First violation seen; the run stops there.
    pub violation: Option<Violation>,
    /// Steps taken.
    pub steps: u64,
    /// Trace lines (if enabled).
    pub trace: VecDeque<String>,
    /// Drop filter for scripted scenarios.
    pub filter: Option<MsgFilter>,
    /// Stall this node's disk when a matching message is delivered to it (scenarios).
    pub stall_disk_on: Option<(ServerId, MsgMatch)>,
    /// Statistics.
    pub stats: Stats,
    /// Committed reconfigurations by zxid (reconfig.rs).
    pub configs: BTreeMap<Zxid, crate::membership::Membership>,
    /// The voters of the last established leader's static configuration (scenarios that
    /// change zoo.cfgs by rolling restart): what counts before any reconfiguration.
    pub(super) static_voters: Vec<ServerId>,
}

impl World {
    /// Builds the ensemble and starts every node.
    pub fn new(setup: Setup) -> World {
        let setup_seed = setup.seed;
        let mut rng = Rng::new(setup.seed);
        let voters: Vec<ServerId> = (1..=setup.voters as u64).collect();
        let observers: Vec<ServerId> =
            (setup.voters as u64 + 1..=(setup.voters + setup.observers) as u64).collect();
        let mut nodes = Vec::new();
        for id in voters.iter().chain(observers.iter()) {
            let mut cfg = Config::new(*id, voters.clone(), observers.clone());
            cfg.counter_bits = setup.counter_bits;
            cfg.committed_window_max = setup.window;
            // Both ways the server may run: syncs heartbeat at once on odd seeds, and a third
            // of the seeds sync far-behind learners by snapshot rather than from the disk log.
            cfg.eager_sync_heartbeat = setup.seed % 2 == 1;
            cfg.diff_from_disk = !setup.seed.is_multiple_of(3);
            cfg.bugs = setup.bugs;
            cfg.membership_reader = Some(crate::sim::reconfig::reader());
            let skew = setup.faults.tick_skew;
            let dev = if skew > 0.0 {
                ((rng.below(2001) as f64 / 1000.0 - 1.0) * skew * TICK as f64) as i64
            } else {
                0
            };
            nodes.push(SimNode {
                id: *id,
                node: None,
                disk: SimDisk::default(),
                incarnation: 0,
                sm: SmState::default(),
                tick_period: (TICK as i64 + dev).max(10) as u64,
                disk_slow: 1,
                disk_stalled: false,
                config_file: None,
                cfg,
            });
        }
        let mut w = World {
            faults: setup.faults.clone(),
            clients: vec![Client::default(); setup.clients],
            setup,
            rng,
            time: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            net: SimNet::default(),
            chaos: false,
            clients_active: true,
            history: Vec::new(),
            pending_writes: BTreeMap::new(),
            pending_syncs: BTreeMap::new(),
            next_request: 1,
            scenario_seq: 0,
            max_acked: Zxid::ZERO,
            order: GlobalOrder::default(),
            leaders: OneLeaderPerEpoch::default(),
            violation: None,
            steps: 0,
            trace: VecDeque::new(),
            filter: None,
            stall_disk_on: None,
            stats: Stats::default(),
            configs: BTreeMap::new(),
            static_voters: voters,
            peer_lost_signals: (setup_seed / 2).is_multiple_of(2),
        };
        for i in 0..w.nodes.len() {
            w.start_node(i);
        }
        for c in 0..w.clients.len() {
            let t = w.rng.range(1, 3 * TICK);
            w.schedule(t, Ev::Client(c));
        }
        w
    }

    pub(super) fn schedule(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            time: self.time + delay,
            seq: self.seq,
            ev,
        });
    }

    pub(super) fn log(&mut self, line: impl FnOnce() -> String) {
        if self.setup.trace_lines > 0 {
            if self.trace.len() >= self.setup.trace_lines {
                self.trace.pop_front();
            }
            self.trace.push_back(line());
        }
    }

    /// Records a violation (the first one stops the run) and puts it in the trace.
    pub fn fail(&mut self, checker: &'static str, detail: String) {
        if self.violation.is_none() {
            let v = Violation {
                checker,
                time: self.time,
                step: self.steps,
                detail,
            };
            let line = format!("{:>9} VIOLATION {v}", self.time);
            self.log(|| line);
            self.violation = Some(v);
        }
    }

    /// Index of a server id.
    pub fn idx(&self, id: ServerId) -> usize {
        (id - 1) as usize
    }

    /// The running node with this id.
    pub fn node(&self, id: ServerId) -> Option<&Node> {
        self.nodes[self.idx(id)].node.as_ref()
    }

    // ----- node lifecycle -----

    pub(super) fn start_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        let (rec, sm) = n.disk.recover();
        let name = format!("n{}", n.id);
        if let Err(e) = self.order.check_image(&name, &sm) {
            self.fail("applied_prefix", format!("restart: {e}"));
        }
        // The newer of the configuration in the snapshot (as the server reads it from its
        // snapshot's /zookeeper/config: the last committed reconfiguration at or below it)
        // and the one its driver wrote when it took effect; without either, the node's
        // static configuration (its zoo.cfg).
        let in_snapshot = self
            .configs
            .range(..=sm.zxid)
            .next_back()
            .map(|(z, m)| (*z, m.clone()));
        let in_snapshot = match (in_snapshot, self.nodes[i].config_file.clone()) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        let n = &mut self.nodes[i];
        let mut cfg = n.cfg.clone();
        if let Some((config_zxid, m)) = in_snapshot {
            cfg.quorum = std::sync::Arc::new(crate::quorum::Majority::new(m.voters.clone()));
            cfg.observers = m.observers.clone();
            cfg.config_zxid = config_zxid;
            cfg.config_payload = Some(crate::sim::reconfig::payload(config_zxid.0, &m));
        }
        match Node::recover(cfg, rec, n.incarnation) {
            Ok(node) => {
                n.node = Some(node);
                n.sm = sm;
            }
            Err(e) => {
                let id = n.id;
                self.fail("recovery", format!("n{id} refuses to start: {e}"));
                return;
            }
        }
        let (id, inc, period) = (n.id, n.incarnation, n.tick_period);
        let (config_zxid, m) = n.node.as_ref().expect("up").membership();
        let t = self.time;
        self.log(|| {
            format!(
                "{t:>9} n{id} start (incarnation {inc}, snapshot {}, config {config_zxid}: voters {:?})",
                sm.zxid, m.voters
            )
        });
        let first = self.rng.range(1, period);
        self.schedule(first, Ev::Tick(i, inc));
        let acts = self.nodes[i].node.as_mut().expect("up").take_actions();
        self.exec(i, acts);
        self.after_step(i);
    }

    /// Gives a node another static configuration (its zoo.cfg), taken at its next start: a
    /// membership changed by rolling restart rather than by a reconfiguration.
    pub fn set_static_config(
        &mut self,
        id: ServerId,
        voters: Vec<ServerId>,
        observers: Vec<ServerId>,
    ) {
        let i = self.idx(id);
        let cfg = &mut self.nodes[i].cfg;
        cfg.quorum = std::sync::Arc::new(crate::quorum::Majority::new(voters));
        cfg.observers = observers;
    }

    /// Crashes a node now: it loses its unsynced tail (a random prefix of it survives).
    pub fn crash(&mut self, id: ServerId) {
        let i = self.idx(id);
        if self.nodes[i].node.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let n = &mut self.nodes[i];
        n.node = None;
        n.disk.crash(&mut self.rng);
        let t = self.time;
        self.log(|| format!("{t:>9} n{id} CRASH"));
        self.disconnect_clients(i);
        if self.peer_lost_signals {
            // A dead process's sockets are reset by its kernel: the others hear of it.
            for j in 0..self.nodes.len() {
                if j != i {
                    let inc = self.nodes[j].incarnation;
                    let d = self.rng.range(1, TICK);
                    self.schedule(
                        d,
                        Ev::PeerLost {
                            node: j,
                            inc,
                            peer: id,
                        },
                    );
                }
            }
        }
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, id: ServerId) {
        let i = self.idx(id);
        if self.nodes[i].node.is_some() {
            return;
        }
        self.start_node(i);
    }

    // ----- stepping -----

    /// Feeds one event to node `i` and carries out its actions.
    pub fn feed(&mut self, i: usize, ev: Event) {
        let t = self.time;
        let id = self.nodes[i].id;
        if self.setup.trace_lines > 0 {
            let line = format!("{t:>9} n{id} <- {ev}");
            self.log(|| line);
        }
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        node.step(ev);
        let acts = node.take_actions();
        self.exec(i, acts);
        self.after_step(i);
    }

    pub(super) fn after_step(&mut self, i: usize) {
        let id = self.nodes[i].id;
        let est = self.nodes[i]
            .node
            .as_ref()
            .and_then(|n| n.established_epoch());
        if let Err(e) = self.leaders.observe(id, est) {
            self.fail("one_leader_per_epoch", e);
        }
    }

    pub(super) fn exec(&mut self, i: usize, acts: Vec<Action>) {
        let id = self.nodes[i].id;
        for a in acts {
            if self.setup.trace_lines > 0 {
                let line = format!("{:>9} n{id}    -> {a}", self.time);
                self.log(|| line);
            }
            match a {
                Action::Send { to, msg } => self.send(id, to, msg),
                Action::AppendLog { seq, txns } => {
                    for t in txns {
                        self.nodes[i].disk.push(seq, Op::Append(t));
                    }
                    self.kick_fsync(i);
                }
                Action::TruncateLog { seq, after } => {
                    self.stats.truncs += 1;
                    self.nodes[i].disk.push(seq, Op::Truncate(after));
                    self.kick_fsync(i);
                }
                Action::PersistEpochs {
                    seq,
                    accepted,
                    current,
                } => {
                    self.nodes[i].disk.push(seq, Op::Epochs(accepted, current));
                    self.kick_fsync(i);
                }
                Action::InstallSnapshot { seq, zxid, data } => {
                    let Some(sm) = SmState::decode(&data).filter(|s| s.zxid == zxid) else {
                        self.fail(
                            "applied_prefix",
                            format!("n{id}: bad snapshot image at {zxid}"),
                        );
                        continue;
                    };
                    if let Err(e) = self.order.check_image(&format!("n{id}"), &sm) {
                        self.fail("applied_prefix", format!("snapshot install: {e}"));
                    }
                    self.nodes[i].sm = sm;
                    self.nodes[i].disk.push(seq, Op::Snapshot(sm));
                    self.kick_fsync(i);
                }
                Action::SendSnapshot { to, conn, zxid } => {
                    let sm = self.nodes[i].sm;
                    if sm.zxid != zxid {
                        self.fail(
                            "applied_prefix",
                            format!("n{id} asked to snapshot at {zxid}, applied {}", sm.zxid),
                        );
                    }
                    self.stats.snaps += 1;
                    let msg = Message::Learner {
                        conn,
                        msg: crate::message::LearnerMsg::Snap {
                            zxid,
                            data: sm.encode(),
                        },
                    };
                    self.send(id, to, msg);
                }
                Action::SendLogRange {
                    to,
                    conn,
                    after,
                    through,
                } => {
                    self.stats.disk_diffs += 1;
                    let txns = self.nodes[i].disk.read_range(after, through);
                    let contiguous = txns.first().is_some_and(|t| after.may_precede(t.zxid))
                        && txns.windows(2).all(|w| w[0].zxid.may_precede(w[1].zxid))
                        && txns.last().is_some_and(|t| t.zxid == through);
                    if !contiguous {
                        self.fail(
                            "log_range",
                            format!("n{id}: disk log lacks ({after}, {through}]"),
                        );
                        continue;
                    }
                    for txn in txns {
                        let msg = Message::Learner {
                            conn,
                            msg: crate::message::LearnerMsg::Proposal { txn },
                        };
                        self.send(id, to, msg);
                    }
                }
                Action::Apply { txn } => {
                    self.note_committed_config(txn.zxid, &txn.payload);
                    let now = self.time;
                    let mut sm = self.nodes[i].sm;
                    if let Err(e) = self.order.on_apply(&format!("n{id}"), &mut sm, &txn, now) {
                        self.fail("applied_prefix", e);
                    }
                    self.nodes[i].sm = sm;
                    if self
                        .pending_writes
                        .get(&txn.payload)
                        .is_some_and(|p| p.node == i)
                    {
                        let p = self.pending_writes.remove(&txn.payload).expect("present");
                        self.complete(p.op, p.client, Outcome::Ok(txn.zxid));
                    }
                }
                // The simulator's clients are dropped on any role change, planned or not:
                // keeping them through a handover is the server's business.
                Action::RoleChanged { .. } => self.disconnect_clients(i),
                Action::Handover { .. } => {}
                Action::ConfigActivated {
                    zxid,
                    voters,
                    observers,
                    ..
                } => {
                    let newer = self.nodes[i]
                        .config_file
                        .as_ref()
                        .is_none_or(|(z, _)| *z < zxid);
                    if newer {
                        self.nodes[i].config_file =
                            Some((zxid, crate::membership::Membership { voters, observers }));
                    }
                }
                Action::Transfer { outcome } => {
                    if matches!(outcome, crate::action::TransferOutcome::HandedOver { .. }) {
                        self.stats.transfers += 1;
                    }
                }
                Action::WriteRejected { request_id, .. } => {
                    // write request ids are the op index + 1 (see `submit_write`)
                    let op = request_id.wrapping_sub(1) as usize;
                    if let Some(OpKind::Write(p)) = self.history.get(op).map(|o| o.kind.clone()) {
                        if self.pending_writes.get(&p).is_some_and(|w| w.node == i) {
                            let w = self.pending_writes.remove(&p).expect("present");
                            self.complete(w.op, w.client, Outcome::Failed);
                        }
                    }
                }
                Action::SyncDone { request_id } => {
                    if let Some(p) = self.pending_syncs.remove(&request_id) {
                        let reached = self.nodes[p.node].sm.zxid;
                        if reached < p.need {
                            self.fail(
                                "client_history",
                                format!("sync at n{id} done with applied {reached}, but {} was acknowledged before the sync", p.need),
                            );
                        }
                        self.stats.syncs += 1;
                        self.complete(p.op, p.client, Outcome::Ok(reached));
                    }
                }
                Action::SyncFailed { request_id } => {
                    if let Some(p) = self.pending_syncs.remove(&request_id) {
                        self.complete(p.op, p.client, Outcome::Failed);
                    }
                }
                // The simulator's clients do not move their sessions between servers.
                Action::SessionOwner { .. } | Action::RolledOver { .. } => {}
                Action::SessionsTouched { sessions, .. } => {
                    self.stats.session_touches += sessions.len() as u64
                }
                // The simulator's nodes propose forwarded payloads as they are.
                Action::Forwarded { .. } => unreachable!("driver_prepares_forwarded is off"),
            }
        }
    }

    pub(super) fn send(&mut self, from: ServerId, to: ServerId, msg: Message) {
        self.stats.messages += 1;
        if let Some(f) = self.filter.as_mut() {
            if !f(from, to, &msg) {
                let t = self.time;
                self.log(|| format!("{t:>9} net: n{from}->n{to} filtered out"));
                if let Message::Learner { .. } = msg {
                    // a dropped connection message breaks the connection
                    self.net.blocked.insert((from, to));
                    self.net
                        .send(self.time, from, to, &msg, true, [0, 0], false);
                    self.net.blocked.remove(&(from, to));
                }
                return;
            }
        }
        let f = &self.faults;
        let (loss, dup_p, lo, hi, long) = (f.loss, f.dup, f.delay_min, f.delay_max, f.long_delay);
        let lost = self.rng.chance(loss);
        let mut d = [self.rng.range(lo, hi), self.rng.range(lo, hi)];
        if self.rng.chance(long) {
            d[0] += self.rng.range(1, 5 * TICK);
        }
        let dup = self.rng.chance(dup_p);
        let fate = self.net.send(self.time, from, to, &msg, lost, d, dup);
        self.report_breaks();
        match fate {
            Fate::Drop => {
                let t = self.time;
                let why = if self.net.blocked.contains(&(from, to)) {
                    "partitioned"
                } else if lost {
                    "lost"
                } else {
                    "connection broken"
                };
                self.log(|| format!("{t:>9} net: n{from}->n{to} dropped ({why})"));
            }
            Fate::Deliver(ts, n) => {
                for t in ts {
                    let delay = t - self.time;
                    let msg = msg.clone();
                    self.schedule(delay, Ev::Deliver { from, to, msg, n });
                }
            }
        }
    }

    /// Learner connections the network just broke. On half the seeds the driver notices (as
    /// the server's TCP transport does) and tells both ends a little later; on the others only
    /// the tick limits find out, as with a silent network.
    fn report_breaks(&mut self) {
        let breaks = self.net.take_breaks();
        if !self.peer_lost_signals {
            return;
        }
        for (me, peer) in breaks.into_iter().flat_map(|(a, b)| [(a, b), (b, a)]) {
            let i = self.idx(me);
            let inc = self.nodes[i].incarnation;
            let d = self.rng.range(1, TICK);
            self.schedule(d, Ev::PeerLost { node: i, inc, peer });
        }
    }

    pub(super) fn kick_fsync(&mut self, i: usize) {
        let n = &self.nodes[i];
        if n.disk.fsync_in_flight || n.disk_stalled {
            return;
        }
        let Some(through) = n.disk.last_pending() else {
            return;
        };
        let inc = n.incarnation;
        let slow = n.disk_slow;
        let d = self.rng.range(1, self.faults.fsync_max) * slow;
        self.nodes[i].disk.fsync_in_flight = true;
        self.schedule(
            d,
            Ev::Fsync {
                node: i,
                inc,
                through,
            },
        );
    }

    pub(super) fn on_fsync(&mut self, i: usize, inc: u64, through: u64) {
        let n = &mut self.nodes[i];
        if n.node.is_none() || n.incarnation != inc {
            return;
        }
        n.disk.fsync_in_flight = false;
        n.disk.sync_through(through);
        // Now and then the driver snapshots its applied (committed) state.
        if n.disk.is_clean() && self.rng.chance(0.05) {
            let sm = self.nodes[i].sm;
            if self.nodes[i].disk.take_snapshot(sm) {
                self.feed(i, Event::LogPurged { through: sm.zxid });
            }
        }
        self.feed(i, Event::Persisted { through });
        self.kick_fsync(i);
    }

    /// Runs one queued event. False when the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some(q) = self.queue.pop() else {
            return false;
        };
        self.time = q.time;
        self.steps += 1;
        match q.ev {
            Ev::Tick(i, inc) => {
                let n = &self.nodes[i];
                if n.node.is_some() && n.incarnation == inc {
                    let p = n.tick_period;
                    self.schedule(p, Ev::Tick(i, inc));
                    self.feed(i, Event::Tick);
                }
            }
            Ev::Deliver { from, to, msg, n } => {
                let ti = self.idx(to);
                let up = self.nodes[ti].node.is_some();
                let ok = self.net.deliverable(from, to, &msg, n, up);
                self.report_breaks();
                if ok {
                    if self
                        .stall_disk_on
                        .as_ref()
                        .is_some_and(|(id, m)| *id == to && m(&msg))
                    {
                        self.nodes[ti].disk_stalled = true;
                        self.stall_disk_on = None;
                        let t = self.time;
                        self.log(|| format!("{t:>9} n{to} disk stalled"));
                    }
                    self.feed(ti, Event::Peer { from, msg });
                }
            }
            Ev::Fsync { node, inc, through } => self.on_fsync(node, inc, through),
            Ev::Crash(i) => {
                let id = self.nodes[i].id;
                self.crash(id);
                let d = self.rng.range(1, self.faults.restart_max_ticks) * TICK;
                self.schedule(d, Ev::Restart(i));
            }
            Ev::Restart(i) => {
                let id = self.nodes[i].id;
                self.restart(id);
            }
            Ev::ClockRestore(i, period) => self.nodes[i].tick_period = period,
            Ev::Chaos => self.chaos_step(),
            Ev::Client(c) => self.client_step(c),
            Ev::PeerLost { node, inc, peer } => {
                let n = &self.nodes[node];
                if n.node.is_some() && n.incarnation == inc {
                    self.feed(node, Event::PeerLost { peer });
                }
            }
        }
        if self.violation.is_none() && self.setup.durability_check {
            // On a quorum of the voters in force at the last commit (a reconfiguration
            // commits on a quorum of the old voters and of the new; what follows it on the new).
            let last = self.order.last();
            let q = crate::quorum::Majority::new(self.voters_in_force(last.unwrap_or_default()));
            let disks = self.nodes.iter().map(|n| (n.id, &n.disk));
            if let Err(e) = committed_never_lost::check(last, &q, disks) {
                self.fail("committed_never_lost", e);
            }
        }
        true
    }

    /// Runs until time `t` (or a violation).
    pub fn run_until_time(&mut self, t: u64) {
        while self.violation.is_none() {
            match self.queue.peek() {
                Some(q) if q.time <= t => {
                    self.step();
                }
                _ => break,
            }
        }
        self.time = self.time.max(t);
    }

    /// Runs for `ticks` nominal ticks.
    pub fn run_ticks(&mut self, ticks: u64) {
        let t = self.time + ticks * TICK;
        self.run_until_time(t);
    }

    /// Runs until `pred` holds (checked after each step) or `ticks` pass. True if it held.
    pub fn run_until(&mut self, ticks: u64, mut pred: impl FnMut(&World) -> bool) -> bool {
        let end = self.time + ticks * TICK;
        while self.violation.is_none() {
            if pred(self) {
                return true;
            }
            match self.queue.peek() {
                Some(q) if q.time <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        pred(self)
    }

    // ----- end of run -----

    /// Checks the client histories (call at the end of a run).
    pub fn check_history(&mut self) {
        if let Err(e) = client_history::check(&self.history, &self.order) {
            self.fail("client_history", e);
        }
    }

    /// Writes acknowledged since op index `from`.
    pub fn acked_since(&self, from: usize) -> u64 {
        self.history[from..]
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Write(_)) && matches!(o.outcome, Outcome::Ok(_)))
            .count() as u64
    }

    /// Number of epochs that had an established leader.
    pub fn epochs(&self) -> usize {
        self.leaders.epochs()
    }

    /// The established leader with the highest epoch, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.nodes
            .iter()
            .filter_map(|n| {
                n.node
                    .as_ref()
                    .and_then(|x| x.established_epoch().map(|e| (e, n.id)))
            })
            .max()
            .map(|(_, id)| id)
    }
}

//! Fault injection for the world: random faults during the safety phase, healing for the
//! liveness phase, and the scripted faults scenarios use.

use crate::event::Event;
use crate::sim::faults::TICK;
use crate::sim::world::{Ev, World};
use crate::zxid::ServerId;

impl World {
    /// Starts random fault injection (one chaos event per tick, at a random moment).
    pub fn start_chaos(&mut self) {
        self.chaos = true;
        let d = self.rng.range(1, TICK);
        self.schedule(d, Ev::Chaos);
    }

    pub(super) fn chaos_step(&mut self) {
        if !self.chaos {
            return;
        }
        let n = self.nodes.len();
        let f = self.faults.clone();
        if self.rng.chance(f.crash * n as f64) {
            let i = self.rng.below(n as u64) as usize;
            if self.nodes[i].node.is_some() {
                // crash at a random moment within the next tick: between any two steps
                let d = self.rng.range(0, TICK);
                self.schedule(d, Ev::Crash(i));
            }
        }
        if self.rng.chance(f.leader_fault) {
            if let Some(l) = self.leader() {
                if self.rng.chance(0.5) {
                    let li = self.idx(l);
                    let d = self.rng.range(0, TICK);
                    self.schedule(d, Ev::Crash(li));
                } else {
                    self.isolate(l);
                    let t = self.time;
                    self.log(|| format!("{t:>9} net: leader n{l} isolated"));
                }
            }
        }
        if self.rng.chance(f.partition) {
            let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
            if self.rng.chance(0.5) {
                // symmetric split into two groups
                let mask = self.rng.next_u64();
                for &a in &ids {
                    for &b in &ids {
                        if (mask >> a) & 1 != (mask >> b) & 1 {
                            self.net.blocked.insert((a, b));
                        }
                    }
                }
            } else {
                // one-way: a stops hearing b
                let a = self.rng.pick(&ids);
                let b = self.rng.pick(&ids);
                if a != b {
                    self.net.blocked.insert((a, b));
                }
            }
            let t = self.time;
            let cut = self.net.blocked.len();
            self.log(|| format!("{t:>9} net: partition ({cut} directed cuts)"));
        }
        if self.rng.chance(f.heal) && !self.net.blocked.is_empty() {
            self.net.heal();
            let t = self.time;
            self.log(|| format!("{t:>9} net: healed"));
        }
        if self.rng.chance(f.clock_stall * n as f64) {
            let i = self.rng.below(n as u64) as usize;
            let period = self.nodes[i].tick_period;
            if period <= 2 * TICK {
                self.nodes[i].tick_period = period * 20;
                let d = self.rng.range(5, 50) * TICK;
                self.schedule(d, Ev::ClockRestore(i, period));
                let (t, id) = (self.time, self.nodes[i].id);
                self.log(|| format!("{t:>9} n{id} clock stalls"));
            }
        }
        if f.tick_skew > 0.0 && self.rng.chance(0.01 * n as f64) {
            // clocks drift: a node's tick period changes now and then
            let i = self.rng.below(n as u64) as usize;
            let dev =
                ((self.rng.below(2001) as f64 / 1000.0 - 1.0) * f.tick_skew * TICK as f64) as i64;
            self.nodes[i].tick_period = (TICK as i64 + dev).max(10) as u64;
        }
        // Drawn only on seeds that ask for reconfigurations, so that the others' random
        // streams stay as they were.
        if f.reconfig > 0.0 && self.rng.chance(f.reconfig) {
            self.random_reconfig();
        }
        if self.rng.chance(f.transfer) {
            let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
            let (at, to) = match (self.leader(), self.rng.below(3)) {
                // The leader, to a random server (perhaps an observer, itself or one not in
                // sync: refused) or to the best voter.
                (Some(l), 0) => (l, Some(self.rng.pick(&ids))),
                (Some(l), 1) => (l, None),
                // Any server asks for itself (a follower's rqld).
                _ => (self.rng.pick(&ids), None),
            };
            let i = self.idx(at);
            if self.nodes[i].node.is_some() {
                let t = self.time;
                self.log(|| format!("{t:>9} n{at} asked to transfer leadership to {to:?}"));
                self.feed(i, Event::TransferLeadership { to });
            }
        }
        if self.rng.chance(f.slow_disk * n as f64) {
            let i = self.rng.below(n as u64) as usize;
            self.nodes[i].disk_slow = if self.nodes[i].disk_slow == 1 { 10 } else { 1 };
        }
        self.schedule(TICK, Ev::Chaos);
    }

    /// Stops faults: heals the network, calms the fault mix, restarts every crashed node.
    pub fn heal_all(&mut self) {
        self.chaos = false;
        self.faults = self.faults.calm();
        self.net.heal();
        for i in 0..self.nodes.len() {
            self.nodes[i].disk_slow = 1;
            if self.nodes[i].tick_period > 2 * TICK {
                self.nodes[i].tick_period = TICK;
            }
            self.nodes[i].disk_stalled = false;
            let id = self.nodes[i].id;
            self.restart(id);
            self.kick_fsync(i);
        }
        let t = self.time;
        self.log(|| format!("{t:>9} HEAL: faults off, all nodes up"));
    }

    /// Cuts both directions between a and b.
    pub fn cut(&mut self, a: ServerId, b: ServerId) {
        self.net.blocked.insert((a, b));
        self.net.blocked.insert((b, a));
    }

    /// Isolates `a` from everyone.
    pub fn isolate(&mut self, a: ServerId) {
        let ids: Vec<ServerId> = self.nodes.iter().map(|n| n.id).collect();
        for b in ids {
            if b != a {
                self.cut(a, b);
            }
        }
    }

    /// The driver of node `id` snapshots its applied state and purges the log it covers (if its
    /// disk has nothing pending). True if done.
    pub fn snapshot_and_purge(&mut self, id: ServerId) -> bool {
        let i = self.idx(id);
        let sm = self.nodes[i].sm;
        if self.nodes[i].node.is_none() || !self.nodes[i].disk.take_snapshot(sm) {
            return false;
        }
        self.feed(i, Event::LogPurged { through: sm.zxid });
        true
    }

    /// Stalls or resumes a node's fsyncs.
    pub fn stall_disk(&mut self, id: ServerId, stalled: bool) {
        let i = self.idx(id);
        self.nodes[i].disk_stalled = stalled;
        if !stalled {
            self.kick_fsync(i);
        }
    }

    /// Sets a node's tick period (clock skew in scenarios); takes effect from its next tick.
    pub fn set_tick_period(&mut self, id: ServerId, period: u64) {
        let i = self.idx(id);
        self.nodes[i].tick_period = period.max(1);
    }
}

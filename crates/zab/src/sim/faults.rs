//! The fault model, chosen per seed (swarm testing: each seed turns some faults up and others
//! off, so that rare combinations get room).

use crate::sim::rng::Rng;

/// Time units per tick.
pub const TICK: u64 = 100;

/// Fault probabilities and ranges for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Probability a message is lost. On a learner connection a loss ends the connection (as a
    /// reset TCP stream does); election notifications are just dropped.
    pub loss: f64,
    /// Probability an election notification is delivered twice.
    pub dup: f64,
    /// Message delay range, in time units.
    pub delay_min: u64,
    /// Upper end of the delay range.
    pub delay_max: u64,
    /// Probability a message is delayed by up to 5 ticks more (reordering for notifications;
    /// on a connection later messages wait behind it).
    pub long_delay: f64,
    /// Probability per tick that a running node crashes (at a random moment of the tick).
    pub crash: f64,
    /// Probability per tick that the current leader is hit: crashed, or cut off from everyone
    /// (uncommitted tails, elections mid-broadcast, TRUNC).
    pub leader_fault: f64,
    /// Longest downtime after a crash, in ticks.
    pub restart_max_ticks: u64,
    /// Probability per tick of a new partition (symmetric or one-way).
    pub partition: f64,
    /// Probability per tick that partitions heal.
    pub heal: f64,
    /// Longest fsync, in time units.
    pub fsync_max: u64,
    /// Probability per tick that a node's disk turns slow (10x) or fast again.
    pub slow_disk: f64,
    /// Largest relative deviation of a node's tick period from the nominal one.
    pub tick_skew: f64,
    /// Probability per tick that a node's clock stalls (ticks 20x slower for 5 to 50 ticks) while
    /// it keeps processing messages: a starved timer thread. A stalled leader keeps believing it
    /// leads after the others moved on.
    pub clock_stall: f64,
    /// Probability per tick of a planned leadership transfer: asked of the leader (to a given
    /// voter or the best one) or of any node (a follower asks for itself).
    pub transfer: f64,
    /// Probability per tick that the leader is asked for a reconfiguration: a random set of
    /// voters among the same servers, the others observers (reconfig.rs).
    pub reconfig: f64,
}

impl Faults {
    /// No faults: for hand-scripted scenarios.
    pub fn none() -> Faults {
        Faults {
            loss: 0.0,
            dup: 0.0,
            delay_min: 1,
            delay_max: 10,
            long_delay: 0.0,
            crash: 0.0,
            leader_fault: 0.0,
            restart_max_ticks: 10,
            partition: 0.0,
            heal: 0.0,
            fsync_max: 20,
            slow_disk: 0.0,
            tick_skew: 0.0,
            clock_stall: 0.0,
            transfer: 0.0,
            reconfig: 0.0,
        }
    }

    /// The seed's fault mix.
    pub fn swarm(rng: &mut Rng) -> Faults {
        Faults {
            loss: rng.pick(&[0.0, 0.0, 0.001, 0.01, 0.05]),
            dup: rng.pick(&[0.0, 0.01, 0.1]),
            delay_min: rng.pick(&[1, 5]),
            delay_max: rng.pick(&[10, 40, 150]),
            long_delay: rng.pick(&[0.0, 0.0, 0.01, 0.05]),
            crash: rng.pick(&[0.0, 0.002, 0.01, 0.03]),
            leader_fault: rng.pick(&[0.0, 0.0, 0.005, 0.02]),
            restart_max_ticks: rng.pick(&[5, 30, 100]),
            partition: rng.pick(&[0.0, 0.005, 0.02]),
            heal: rng.pick(&[0.02, 0.1]),
            fsync_max: rng.pick(&[5, 50, 200]),
            slow_disk: rng.pick(&[0.0, 0.01]),
            tick_skew: rng.pick(&[0.0, 0.05, 0.3]),
            clock_stall: rng.pick(&[0.0, 0.0, 0.002, 0.01]),
            // Drawn by the caller from a stream of its own (`setup_for`), so that adding
            // transfers left every other seed's faults as they were; reconfigurations too.
            transfer: 0.0,
            reconfig: 0.0,
        }
    }

    /// Every fault on at once, at rates that still let the ensemble make progress between
    /// faults (`paddock sim --storm`).
    pub fn storm() -> Faults {
        Faults {
            loss: 0.01,
            dup: 0.1,
            delay_min: 1,
            delay_max: 150,
            long_delay: 0.05,
            crash: 0.005,
            leader_fault: 0.01,
            restart_max_ticks: 30,
            partition: 0.01,
            heal: 0.1,
            fsync_max: 200,
            slow_disk: 0.01,
            tick_skew: 0.3,
            clock_stall: 0.01,
            transfer: 0.01,
            reconfig: 0.005,
        }
    }

    /// The liveness phase: everything healed and calm.
    pub fn calm(&self) -> Faults {
        Faults {
            loss: 0.0,
            dup: 0.0,
            long_delay: 0.0,
            crash: 0.0,
            leader_fault: 0.0,
            partition: 0.0,
            slow_disk: 0.0,
            clock_stall: 0.0,
            transfer: 0.0,
            reconfig: 0.0,
            delay_max: self.delay_max.min(40),
            fsync_max: self.fsync_max.min(50),
            ..self.clone()
        }
    }
}

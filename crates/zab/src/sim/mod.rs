//! A deterministic simulator that drives real [`Node`](crate::Node)s: the second executor of
//! the same actions the server carries out.
//!
//! - `world.rs`: event queue ordered by (time, sequence); nodes and their actions.
//! - `chaos.rs`: fault injection; `clients.rs`: the client workload.
//! - `disk.rs`: `SimDisk`, durable plus pending records; crashes lose an unsynced tail.
//! - `net.rs`: `SimNet`, delay, loss, duplication, reordering, (asymmetric) partitions.
//! - `faults.rs`: the fault mix, chosen per seed (swarm testing).
//! - `checkers/`: one property per file, checked after every step or at the end.
//! - `reconfig.rs`: reconfiguration payloads and the chaos step that asks for one.
//! - `run.rs`: one seed = safety phase with faults, then a liveness phase.
//! - `cli.rs`: `paddock sim`.

pub mod chaos;
pub mod checkers;
pub mod cli;
pub mod clients;
pub mod disk;
pub mod faults;
pub mod history;
pub mod net;
pub mod reconfig;
pub mod rng;
pub mod run;
pub mod world;

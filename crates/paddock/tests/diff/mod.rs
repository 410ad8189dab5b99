//! The differential tester: seeded random operation sequences against Paddock and Apache
//! ZooKeeper side by side, every reply, error, Stat and watch event compared after
//! normalising what may legitimately differ (see norm.rs).

pub mod gen;
pub mod norm;
pub mod ops;
pub mod rng;
pub mod runner;
pub mod servers;
pub mod side;
pub mod watches;

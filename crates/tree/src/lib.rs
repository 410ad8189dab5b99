//! The ZooKeeper data tree as a deterministic state machine: znodes with exact Stat semantics,
//! ACLs, the watch registry, sessions' ephemerals, containers, TTLs and quotas, plus the write
//! preparation that validates requests against the tree and the changes still in flight.
//! Nothing here reads a clock or does IO: time arrives inside transactions.

pub mod acl;
pub mod codec;
pub mod java_order;
pub mod prep;
pub mod quota;
mod reads;
pub mod snapshot;
pub mod store;
pub mod tree;
pub mod txn;
pub mod watch;

pub use acl::{digest_id, AuthInfo};
pub use prep::{Prep, PrepConfig, Stamp};
pub use snapshot::SnapNode;
pub use store::NodeId;
pub use tree::{Applied, Change, DataTree, Outcome, RESERVED};
pub use txn::{Owner, Txn, TxnOp};
pub use watch::{WatchKind, WatchRegistry, WatcherId};

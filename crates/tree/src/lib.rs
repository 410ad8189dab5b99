//! The ZooKeeper data tree as a deterministic state machine: znodes with exact Stat semantics,
//! ACLs, the watch registry, sessions' ephemerals, containers, TTLs and quotas, plus the write
//! preparation that validates requests against the tree and the changes still in flight.
//! Nothing here reads a clock or does IO: time arrives inside transactions.

pub mod acl;
pub mod codec;
pub mod digest;
pub mod java_order;
pub mod prep;
pub mod quota;
mod reads;
pub mod restore;
pub mod snapshot;
pub mod store;
pub mod tree;
pub mod txn;
pub mod watch;

pub use acl::{digest_id, AuthInfo};
pub use digest::ZxidDigest;
pub use prep::{Prep, PrepConfig, Stamp};
pub use restore::RestoreImage;
pub use snapshot::{SnapNode, SnapshotCursor};
pub use store::NodeId;
pub use tree::{Applied, Change, DataTree, Outcome, CONFIG_NODE, RESERVED};
pub use txn::{Owner, Txn, TxnOp};
pub use watch::{WatchKind, WatchRegistry, WatcherId};

#[cfg(test)]
mod threads {
    /// The tree and the watch registry hold nothing tied to a thread (no `Rc`, no `Cell`, no
    /// thread-local): a server may hand `&DataTree` to readers on other threads while no write
    /// is being applied, and move either to another thread whole.
    #[test]
    fn the_tree_and_the_watch_registry_may_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<crate::DataTree>();
        shareable::<crate::WatchRegistry>();
        shareable::<crate::Prep>();
    }
}

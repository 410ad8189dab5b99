//! The tree, shared between the core task and the threads that read all of it.
//!
//! The core task is the tree's only writer. It holds the tree's write lock through each round
//! of its work and lets go only while it waits for the next message, so everything the core
//! does sees one tree and pays one uncontended lock per round, not one per access. Threads
//! that walk the whole tree (the snapshot writer, a learner's SNAP image; the scale issue's
//! readers next) take the read lock between rounds, a chunk of nodes at a time, so the core
//! never waits longer than one chunk. The lock is task-fair: a waiting core is not overtaken
//! by a walker taking its next chunk.

use paddock_tree::DataTree;
use parking_lot::lock_api::ArcRwLockWriteGuard;
use parking_lot::{RawRwLock, RwLock};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The tree as the walkers see it.
#[derive(Clone)]
pub struct SharedTree {
    lock: Arc<RwLock<DataTree>>,
    /// Bumped each time the core replaces the whole tree (a leader's snapshot installed): a
    /// walk that began on the old one must stop, or it would mix two trees.
    generation: Arc<AtomicU64>,
}

impl SharedTree {
    /// The replacement count now (compare with [`SharedTree::read_chunk`]'s `since`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `f` on the tree under the read lock, unless the tree was replaced since
    /// generation `since` (then None).
    pub fn read_chunk<R>(&self, since: u64, f: impl FnOnce(&DataTree) -> R) -> Option<R> {
        let t = self.lock.read();
        (self.generation.load(Ordering::Acquire) == since).then(|| f(&t))
    }
}

/// The core's handle: the tree, held for writing except while the core waits.
pub struct HeldTree {
    shared: SharedTree,
    guard: Option<ArcRwLockWriteGuard<RawRwLock, DataTree>>,
}

impl HeldTree {
    /// Shares `tree`, held from the start.
    pub fn new(tree: DataTree) -> HeldTree {
        let lock = Arc::new(RwLock::new(tree));
        let guard = Some(lock.write_arc());
        HeldTree {
            shared: SharedTree {
                lock,
                generation: Arc::new(AtomicU64::new(0)),
            },
            guard,
        }
    }

    /// Takes the write lock again (after the core's wait), waiting for a walker's chunk.
    pub fn hold(&mut self) {
        if self.guard.is_none() {
            self.guard = Some(self.shared.lock.write_arc());
        }
    }

    /// Lets the walkers in while the core waits for its next message. A walker waiting for
    /// the lock gets it now (a fair unlock hands it over) rather than being woken only to find
    /// the core has taken it again: under load the core comes straight back, and every futile
    /// wake-up costs both threads.
    pub fn release(&mut self) {
        if let Some(g) = self.guard.take() {
            ArcRwLockWriteGuard::unlock_fair(g);
        }
    }

    /// A handle for a walker.
    pub fn shared(&self) -> SharedTree {
        self.shared.clone()
    }

    /// Replaces the whole tree (the leader's snapshot), stopping every walk of the old one;
    /// returns the old tree.
    pub fn replace(&mut self, tree: DataTree) -> DataTree {
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        std::mem::replace(&mut **self, tree)
    }
}

impl Deref for HeldTree {
    type Target = DataTree;
    fn deref(&self) -> &DataTree {
        self.guard
            .as_deref()
            .expect("the core uses the tree only while it holds it")
    }
}

impl DerefMut for HeldTree {
    fn deref_mut(&mut self) -> &mut DataTree {
        self.guard
            .as_deref_mut()
            .expect("the core uses the tree only while it holds it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_walker_reads_only_between_the_cores_rounds() {
        let mut t = HeldTree::new(DataTree::new());
        let shared = t.shared();
        let g = shared.generation();
        let walker = std::thread::spawn(move || shared.read_chunk(g, |t| t.node_count()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!walker.is_finished(), "the core holds the tree");
        t.release();
        assert_eq!(walker.join().unwrap(), Some(DataTree::new().node_count()));
        t.hold();
        assert_eq!(t.last_zxid(), 0);
    }

    #[test]
    fn a_walk_of_a_replaced_tree_stops() {
        let mut t = HeldTree::new(DataTree::new());
        let shared = t.shared();
        let g = shared.generation();
        let _old = t.replace(DataTree::new());
        t.release();
        assert_eq!(shared.read_chunk(g, |_| ()), None);
        assert_eq!(shared.read_chunk(shared.generation(), |_| ()), Some(()));
    }
}

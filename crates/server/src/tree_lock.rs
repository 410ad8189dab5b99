//! The tree, shared between the core task and the threads that read all of it.
//!
//! The core task is the tree's only writer. It holds the tree's write lock through each round
//! of its work and lets go only while it waits for the next message, so everything the core
//! does sees one tree and pays one uncontended lock per round, not one per access. Threads
//! that walk the whole tree (the snapshot writer, a learner's SNAP image) take the read lock
//! between rounds, a chunk of nodes at a time, so the core never waits longer than one chunk;
//! a connection's direct reads (`crate::read_path`) take it for one run of reads, only if it
//! is free at once (`SharedTree::try_read`). A round that only counts direct reads does not
//! take the tree (`CoreMsg::needs_tree`).
//!
//! A walker never parks on the lock: it polls with `try_read` and reads only when it finds the
//! tree free, that is while it is itself on a CPU. A walker parked on the lock would be handed
//! it at the core's release and then have to be scheduled before it could read and let go; on
//! a busy machine that takes a scheduler slice, and the core, back for its next round, would
//! wait all that time (measured: 2.7 s of 18 under `paddock bench`'s write load on 2 cores,
//! p50 0.56 ms per wait, 8-15% of write throughput). For the same reason the core does not
//! park either when it finds a walker reading (`HeldTree::hold`). So the core's waits are the
//! time a running walker needs for one chunk.

use paddock_tree::DataTree;
use parking_lot::lock_api::ArcRwLockWriteGuard;
use parking_lot::{RawRwLock, RwLock};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a walker that found the tree held sleeps before it looks again.
const POLL: Duration = Duration::from_micros(50);

/// Tries the core makes, spinning then yielding, before it parks on the lock.
const HOLD_ATTEMPTS: u32 = 20_000;

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
    /// generation `since` (then None). Waits, without parking on the lock, until the core lets
    /// go of the tree.
    pub fn read_chunk<R>(&self, since: u64, f: impl FnOnce(&DataTree) -> R) -> Option<R> {
        let mut tries = 0u32;
        let t = loop {
            if let Some(t) = self.lock.try_read() {
                break t;
            }
            // The core lets go between rounds, often within microseconds under load: look
            // again soon, without taking a CPU from the core meanwhile.
            tries += 1;
            if tries < 8 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(POLL);
            }
        };
        (self.generation.load(Ordering::Acquire) == since).then(|| f(&t))
    }

    /// Whether the core holds the tree now (in a round of its work).
    pub fn held(&self) -> bool {
        self.lock.is_locked_exclusive()
    }

    /// Runs `f` on the tree under the read lock if the core is not holding it right now;
    /// None at once if it is (a direct read then goes to the core instead of waiting).
    pub fn try_read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> Option<R> {
        self.lock.try_read().map(|t| f(&t))
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
    ///
    /// A walker holds the tree for one chunk while it runs, tens of microseconds, so the core
    /// spins and then yields rather than parking: a parked core, woken when the walker lets
    /// go, must wait to be scheduled again, which on a busy machine is far longer than the
    /// chunk (measured on 2 cores: p50 0.8 ms a wait, 13% of the core's time under write
    /// load). Yielding also gives the CPU to a walker that was preempted holding the lock.
    pub fn hold(&mut self) {
        if self.guard.is_some() {
            return;
        }
        for attempt in 0..HOLD_ATTEMPTS {
            if let Some(g) = self.shared.lock.try_write_arc() {
                self.guard = Some(g);
                return;
            }
            if attempt < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // Readers that never let go (none today): wait in line, which also stops new ones.
        self.guard = Some(self.shared.lock.write_arc());
    }

    /// Lets the walkers in while the core waits for its next message (none is parked on the
    /// lock: they poll, see the module's doc).
    pub fn release(&mut self) {
        self.guard = None;
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
    fn a_direct_read_never_waits_for_the_core() {
        let mut t = HeldTree::new(DataTree::new());
        let shared = t.shared();
        assert!(shared.held());
        assert_eq!(shared.try_read(|t| t.last_zxid()), None);
        t.release();
        assert!(!shared.held());
        assert_eq!(shared.try_read(|t| t.last_zxid()), Some(0));
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

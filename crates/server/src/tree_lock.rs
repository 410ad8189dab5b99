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
//!
//! Polling alone starves a walker under a steady stream of requests: the core takes the tree
//! back within microseconds of letting go, and a walk could wait until the load stopped (a
//! snapshot begun early in a 10,000,000-znode fill was written only when the fill ended). So a
//! walker that has waited longer than `STARVED` says so, and the core, about to take the tree,
//! first gives way until that walker has read one chunk. A walker thus gets at most one chunk
//! per `STARVED` of the core's time when it has to ask: its share of a busy core is bounded by
//! time, not left to luck, and what it reads is still paced by its owner (the snapshot walk's
//! `Pace`).

use paddock_tree::DataTree;
use parking_lot::lock_api::ArcRwLockWriteGuard;
use parking_lot::{RawRwLock, RwLock};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a walker that found the tree held sleeps before it looks again.
const POLL: Duration = Duration::from_micros(50);

/// Tries the core makes, spinning then yielding, before it parks on the lock.
const HOLD_ATTEMPTS: u32 = 20_000;

/// How long a walker waits for the tree before the core gives way to it. A chunk is about a
/// tenth of a millisecond, so a starved walker costs a busy core at most about 5% of its time.
const STARVED: Duration = Duration::from_millis(2);

/// The longest the core gives way to a starved walker that does not come in (one that was
/// descheduled, or gave up): it then takes the tree as usual.
const GIVE_WAY_AT_MOST: Duration = Duration::from_millis(1);

/// Walkers that could not get the tree, as the core sees them.
#[derive(Debug)]
struct Starving {
    /// What `since` counts from.
    base: Instant,
    /// Nanoseconds from `base` (plus one: 0 means none) since which the longest-waiting walker
    /// has been waiting, cleared when a walker gets in (another still waiting sets it again).
    since: AtomicU64,
}

impl Starving {
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64 + 1
    }

    /// A walker that has waited since `began` and still does.
    fn waiting(&self, began: Instant) {
        let _ =
            self.since
                .compare_exchange(0, self.nanos(began), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// A walker got in.
    fn fed(&self) {
        self.since.store(0, Ordering::Release);
    }

    /// Whether a walker is waiting (and has not got in since it said so).
    fn waiting_any(&self) -> bool {
        self.since.load(Ordering::Acquire) != 0
    }

    /// Whether a walker has waited longer than `STARVED` now.
    fn starved(&self) -> bool {
        let since = self.since.load(Ordering::Acquire);
        since != 0 && self.nanos(Instant::now()).saturating_sub(since) > STARVED.as_nanos() as u64
    }
}

/// The tree as the walkers see it.
#[derive(Clone)]
pub struct SharedTree {
    lock: Arc<RwLock<DataTree>>,
    /// Bumped each time the core replaces the whole tree (a leader's snapshot installed): a
    /// walk that began on the old one must stop, or it would mix two trees.
    generation: Arc<AtomicU64>,
    starving: Arc<Starving>,
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
        let began = Instant::now();
        let t = loop {
            if let Some(t) = self.lock.try_read() {
                if tries > 0 {
                    self.starving.fed();
                }
                break t;
            }
            // Every try, not just the first: another walker that got in cleared it.
            self.starving.waiting(began);
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
                starving: Arc::new(Starving {
                    base: Instant::now(),
                    since: AtomicU64::new(0),
                }),
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
        if self.shared.starving.starved() {
            self.give_way();
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

    /// Waits, without the tree, until the starved walker has got in (it clears the mark as it
    /// does; the core then waits for its chunk as for any), or for `GIVE_WAY_AT_MOST`.
    fn give_way(&self) {
        let deadline = Instant::now() + GIVE_WAY_AT_MOST;
        let mut attempt = 0u32;
        while self.shared.starving.waiting_any() {
            if Instant::now() >= deadline {
                // Let the next walker that asks wait its full time again, not cost the core
                // this wait on every round.
                self.shared.starving.fed();
                return;
            }
            attempt += 1;
            if attempt < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
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
    fn a_walker_is_not_starved_by_a_core_that_never_waits() {
        // The core lets go and takes the tree back at once, as under a steady stream of
        // requests; a walker must still read a chunk every few milliseconds.
        let mut t = HeldTree::new(DataTree::new());
        let shared = t.shared();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let walker = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                // The longest a read_chunk waited for the tree.
                let mut longest = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let asked = Instant::now();
                    shared.read_chunk(shared.generation(), |_| ()).unwrap();
                    longest = longest.max(asked.elapsed());
                    // What a snapshot does between chunks: write the last one out.
                    std::thread::sleep(Duration::from_micros(100));
                }
                longest
            })
        };
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            t.release();
            t.hold();
            // A round's work, with the tree held.
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
        stop.store(true, Ordering::Relaxed);
        t.release();
        let longest = walker.join().unwrap();
        // STARVED (2 ms), then the core's wait for the walker to wake; 100 ms leaves room
        // for a loaded machine, and a starved walker waits for as long as the core runs.
        assert!(
            longest < Duration::from_millis(100),
            "a walker waited {longest:?} for the tree"
        );
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

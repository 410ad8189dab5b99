//! One sync in flight per server for every client `sync` and linearizable read (a read index,
//! batched): what waits for a sync needs one that reached the leader after it arrived here, so
//! whatever arrives while a sync is in flight waits for the next one, which starts as soon as
//! that one is done. A server then costs the leader one sync message per round trip however
//! many reads and syncs its clients send, where it cost one each.
//!
//! Riders are the keys their origins wait under in the reply order; a barrier is a key of its
//! own, the one the replication core's sync is asked under.

use std::collections::HashMap;

/// The sync in flight and who rides on it, and who waits for the next.
#[derive(Debug, Default)]
pub(crate) struct SyncBarrier {
    in_flight: Option<i64>,
    riders: HashMap<i64, Vec<i64>>,
    next: Vec<i64>,
}

impl SyncBarrier {
    /// `rider` needs a sync that starts from now on. Returns the key of a barrier to ask the
    /// replication core for now (`new_key` makes it; whoever waited for the next one rides
    /// on it too), or None if it waits for the next one.
    pub fn join(&mut self, rider: i64, new_key: impl FnOnce() -> i64) -> Option<i64> {
        self.next.push(rider);
        self.take_start(new_key)
    }

    /// Whether `key` is a barrier (asked of the replication core, not yet done or failed).
    pub fn is_barrier(&self, key: i64) -> bool {
        self.riders.contains_key(&key)
    }

    /// The barrier `key` is over (done or failed): its riders, or None if `key` is no barrier.
    /// Those waiting for the next one get it from `take_start`.
    pub fn finish(&mut self, key: i64) -> Option<Vec<i64>> {
        let riders = self.riders.remove(&key)?;
        if self.in_flight == Some(key) {
            self.in_flight = None;
        }
        Some(riders)
    }

    /// The next barrier, when none is in flight and riders wait for one: its key (made by
    /// `new_key`), to ask the replication core for outside its action loop.
    pub fn take_start(&mut self, new_key: impl FnOnce() -> i64) -> Option<i64> {
        if self.in_flight.is_some() || self.next.is_empty() {
            return None;
        }
        let b = new_key();
        self.in_flight = Some(b);
        self.riders.insert(b, std::mem::take(&mut self.next));
        Some(b)
    }

    /// Forgets everything (the clients were dropped; their origins are gone).
    pub fn clear(&mut self) {
        *self = SyncBarrier::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatever_arrives_during_a_sync_waits_for_the_next_one() {
        let mut b = SyncBarrier::default();
        let mut k = -100;
        let mut key = || {
            k -= 1;
            k
        };
        let first = b.join(1, &mut key).expect("nothing in flight: starts one");
        assert_eq!(b.join(2, &mut key), None);
        assert_eq!(b.join(3, &mut key), None);
        assert!(b.is_barrier(first) && !b.is_barrier(1));
        assert_eq!(b.take_start(&mut key), None, "one in flight at a time");
        assert_eq!(b.finish(first), Some(vec![1]));
        let second = b
            .take_start(&mut key)
            .expect("the waiting riders get the next sync");
        assert_eq!(b.take_start(&mut key), None);
        assert_eq!(b.join(4, &mut key), None, "one in flight at a time");
        assert_eq!(b.finish(second), Some(vec![2, 3]));
        // A rider arriving before the next barrier was asked for starts it, with those
        // already waiting.
        assert_eq!(b.finish(second), None, "no barrier twice");
        let third = b.join(5, &mut key).expect("idle: starts one");
        assert_eq!(b.finish(third), Some(vec![4, 5]));
        assert_eq!(b.take_start(&mut key), None);
        assert_eq!(b.finish(7), None, "a plain key is no barrier");
        assert!(b.join(6, &mut key).is_some(), "idle again");
    }
}

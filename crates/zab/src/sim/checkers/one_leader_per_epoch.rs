//! At most one established leader per epoch, ever.

use crate::zxid::{Epoch, ServerId};
use std::collections::BTreeMap;

/// Remembers who was established in each epoch.
#[derive(Debug, Default)]
pub struct OneLeaderPerEpoch {
    leaders: BTreeMap<Epoch, ServerId>,
}

impl OneLeaderPerEpoch {
    /// After a step of node `id`, which reports itself established in `epoch` (if any).
    pub fn observe(&mut self, id: ServerId, epoch: Option<Epoch>) -> Result<(), String> {
        let Some(e) = epoch else { return Ok(()) };
        match self.leaders.get(&e) {
            Some(&other) if other != id => Err(format!(
                "n{id} and n{other} both established leaders of epoch {e}"
            )),
            Some(_) => Ok(()),
            None => {
                self.leaders.insert(e, id);
                Ok(())
            }
        }
    }

    /// Number of epochs that had an established leader.
    pub fn epochs(&self) -> usize {
        self.leaders.len()
    }
}

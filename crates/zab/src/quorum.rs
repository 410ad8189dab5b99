//! Quorum verifiers: which sets of voters form a quorum.

use crate::zxid::ServerId;
use std::fmt::Debug;

/// Decides whether a set of servers is a quorum. Majority today; weighted or hierarchical
/// verifiers implement the same trait.
pub trait QuorumVerifier: Debug + Send + Sync {
    /// Whether `id` votes (observers do not).
    fn is_voter(&self, id: ServerId) -> bool;
    /// Whether the given distinct servers form a quorum. Non-voters in `ids` are ignored.
    fn is_quorum(&self, ids: &[ServerId]) -> bool;
    /// All voters, ascending.
    fn voters(&self) -> &[ServerId];
}

/// A strict majority of the voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Majority {
    voters: Vec<ServerId>,
}

impl Majority {
    /// A majority verifier over these voters.
    pub fn new(mut voters: Vec<ServerId>) -> Majority {
        voters.sort_unstable();
        voters.dedup();
        Majority { voters }
    }
}

impl QuorumVerifier for Majority {
    fn is_voter(&self, id: ServerId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    fn is_quorum(&self, ids: &[ServerId]) -> bool {
        let n = ids.iter().filter(|id| self.is_voter(**id)).count();
        n * 2 > self.voters.len()
    }

    fn voters(&self) -> &[ServerId] {
        &self.voters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority() {
        let q = Majority::new(vec![1, 2, 3, 4, 5]);
        assert!(!q.is_quorum(&[1, 2]));
        assert!(q.is_quorum(&[1, 2, 3]));
        // observers (non-voters) never count
        assert!(!q.is_quorum(&[1, 2, 9, 10]));
        assert!(q.is_voter(5) && !q.is_voter(6));
    }
}

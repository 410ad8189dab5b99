//! Liveness after the faults stop: with everything healed and every node up, a leader must be
//! established, every node must serve, apply the whole committed order, and new writes must
//! commit, within the tick budget.

/// State of the ensemble at the end of the budget.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Nodes up.
    pub up: usize,
    /// Nodes in all.
    pub nodes: usize,
    /// Nodes serving clients.
    pub serving: usize,
    /// Whether some leader is established.
    pub leader: bool,
    /// Smallest applied length over nodes.
    pub min_applied: u64,
    /// Length of the committed order when the faults stopped.
    pub target: u64,
    /// Writes acknowledged since the faults stopped.
    pub new_acks: u64,
}

impl Progress {
    /// Whether the ensemble recovered.
    pub fn done(&self) -> bool {
        self.up == self.nodes
            && self.serving == self.nodes
            && self.leader
            && self.min_applied >= self.target
            && self.new_acks > 0
    }

    /// Err if the ensemble did not recover.
    pub fn check(&self, budget_ticks: u64) -> Result<(), String> {
        if self.done() {
            Ok(())
        } else {
            Err(format!(
                "no recovery within {budget_ticks} ticks after healing: {self:?}"
            ))
        }
    }
}

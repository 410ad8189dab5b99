//! Checkers, one per file. Each returns `Err(detail)` on a violation.

pub mod applied_prefix;
pub mod client_history;
pub mod committed_never_lost;
pub mod liveness;
pub mod one_leader_per_epoch;

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which checker.
    pub checker: &'static str,
    /// Simulated time.
    pub time: u64,
    /// Step number.
    pub step: u64,
    /// What went wrong.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at step {} (t={}): {}",
            self.checker, self.step, self.time, self.detail
        )
    }
}

//! Client operations as the simulated clients saw them.

use crate::zxid::Zxid;
use bytes::Bytes;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// A write of a unique payload.
    Write(Bytes),
    /// A read of the serving node's applied state (returns its last zxid).
    Read,
    /// sync().
    Sync,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting.
    Pending,
    /// Done: the zxid written (write), seen (read) or reached (sync).
    Ok(Zxid),
    /// Refused: a refused write is never committed.
    Failed,
    /// No answer (timeout, crash, lost leader): a write may or may not be committed.
    Unknown,
}

/// One client operation.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// Client number (scenario writes use `usize::MAX`).
    pub client: usize,
    /// Node index it was sent to.
    pub node: usize,
    /// What.
    pub kind: OpKind,
    /// Time it was sent.
    pub invoke: u64,
    /// Time it completed.
    pub complete: Option<u64>,
    /// Result.
    pub outcome: Outcome,
}

/// A write payload unique to (client, sequence).
pub fn payload(client: usize, seq: u64) -> Bytes {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&(client as u64).to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.into()
}

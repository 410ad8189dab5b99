//! The log stage of the write pipeline. Every prepared transaction passes through it before it
//! is applied and answered; the durability work replaces the in-memory log with a checksummed,
//! fsynced one without touching the rest of the pipeline.

use paddock_tree::Txn;

/// Where transactions are made durable before they are applied.
pub trait TxnLog: Send {
    /// Appends a batch; when this returns Ok every transaction in it is durable.
    fn append(&mut self, txns: &[Txn]) -> std::io::Result<()>;
}

/// A log that keeps nothing: the standalone server before durability exists.
#[derive(Debug, Default)]
pub struct MemoryLog {
    appended: u64,
}

impl TxnLog for MemoryLog {
    fn append(&mut self, txns: &[Txn]) -> std::io::Result<()> {
        self.appended += txns.len() as u64;
        Ok(())
    }
}

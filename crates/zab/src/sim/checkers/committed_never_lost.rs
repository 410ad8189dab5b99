//! Nothing committed is lost. Checked after every step: the last committed transaction is
//! durable (in the log or a snapshot) on a quorum of voters, up or down. A commit needs durable
//! acknowledgements from a quorum, and a correct ensemble removes a durable copy only through
//! a TRUNC (never of committed entries) or a SNAP whose image covers it. So whenever this fails,
//! crashing the right servers would lose a committed transaction. At the end of the liveness
//! phase, every node must also have applied the whole order (see `liveness.rs`).

use crate::quorum::QuorumVerifier;
use crate::sim::disk::SimDisk;
use crate::zxid::{ServerId, Zxid};

/// `disks` are the voters' disks with their ids.
pub fn check<'a>(
    last_committed: Option<Zxid>,
    quorum: &dyn QuorumVerifier,
    disks: impl Iterator<Item = (ServerId, &'a SimDisk)>,
) -> Result<(), String> {
    let Some(z) = last_committed else {
        return Ok(());
    };
    let holders: Vec<ServerId> = disks
        .filter(|(_, d)| {
            d.durable.snap.zxid >= z || d.durable.log.binary_search_by(|t| t.zxid.cmp(&z)).is_ok()
        })
        .map(|(id, _)| id)
        .collect();
    if quorum.is_quorum(&holders) {
        Ok(())
    } else {
        Err(format!(
            "committed {z} is durable only on {holders:?}, not a quorum: crashes there would lose it"
        ))
    }
}

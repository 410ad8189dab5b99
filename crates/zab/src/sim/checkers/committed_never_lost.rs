//! Nothing committed is lost. Checked after every step: the last committed transaction is
//! durable (in the log or a snapshot) on at least one voter, up or down. At commit time a quorum
//! holds it durably, and a correct ensemble only removes a durable copy through a TRUNC (never
//! of committed entries) or a SNAP from a leader whose own history is durable. At the end of
//! the liveness phase, every node must have applied the whole order (see `liveness.rs`).

use crate::sim::disk::SimDisk;
use crate::zxid::Zxid;

/// `disks` are the voters' disks.
pub fn check<'a>(
    last_committed: Option<Zxid>,
    disks: impl Iterator<Item = &'a SimDisk>,
) -> Result<(), String> {
    let Some(z) = last_committed else {
        return Ok(());
    };
    let mut any = false;
    for d in disks {
        if d.durable.snap.zxid >= z || d.durable.log.binary_search_by(|t| t.zxid.cmp(&z)).is_ok() {
            any = true;
            break;
        }
    }
    if any {
        Ok(())
    } else {
        Err(format!(
            "committed {z} is durable on no voter: a crash of everyone would lose it"
        ))
    }
}

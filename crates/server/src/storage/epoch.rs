//! The ensemble's persisted epochs: `acceptedEpoch` (the epoch this server agreed to follow in
//! discovery) and `currentEpoch` (the epoch of the last NEWLEADER it acknowledged), each a
//! decimal number in a file of that name in dataDir, as ZooKeeper keeps them.
//!
//! They are written atomically: a temporary file, fsynced, renamed over the old one, and the
//! directory fsynced, so a power failure leaves either the old value or the new one, never an
//! empty or half-written file (ZOOKEEPER-1653, 2325).

use super::fs::{Fs, OpenMode};
use super::StorageError;
use std::path::Path;

/// The file holding the accepted epoch.
pub const ACCEPTED: &str = "acceptedEpoch";
/// The file holding the current epoch.
pub const CURRENT: &str = "currentEpoch";

/// Reads an epoch file; `None` if there is none yet.
pub fn read(fs: &Fs, data_dir: &Path, name: &str) -> Result<Option<u64>, StorageError> {
    let path = data_dir.join(name);
    let bytes = match fs.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| StorageError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: format!("expected a decimal epoch, found {:?}", text.trim()),
        })
}

/// Replaces an epoch file durably.
pub fn write(fs: &Fs, data_dir: &Path, name: &str, epoch: u64) -> Result<(), StorageError> {
    let path = data_dir.join(name);
    let tmp = data_dir.join(format!("{name}.tmp"));
    let io = |e| StorageError::io(&path, e);
    let f = fs.open(&tmp, OpenMode::CreateTruncate).map_err(io)?;
    f.write_at(format!("{epoch}\n").as_bytes(), 0).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs.rename(&tmp, &path).map_err(io)?;
    fs.sync_dir(data_dir).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim_fs::SimFs;
    use std::sync::Arc;

    /// At every step of a rewrite, a power failure leaves the old value or the new one,
    /// whether the disk kept none, all, or a torn part of what was not yet synced.
    #[test]
    fn a_rewrite_is_atomic_at_every_step() {
        let dir = Path::new("/data");
        let mut k = 0;
        loop {
            let mut completed = false;
            for keep in 0..3u64 {
                let sim = SimFs::new();
                let fs: Fs = Arc::new(sim.clone());
                fs.create_dir_all(dir).unwrap();
                write(&fs, dir, CURRENT, 4).unwrap();
                sim.fail_after_steps(k);
                completed = write(&fs, dir, CURRENT, 5).is_ok();
                sim.power_cycle(|n| match keep {
                    0 => 0,
                    1 => n,
                    _ => n / 2,
                });
                let got = read(&fs, dir, CURRENT).unwrap();
                assert!(
                    got == Some(4) || got == Some(5),
                    "step {k}: read {got:?} after a power failure"
                );
                if completed {
                    assert_eq!(got, Some(5), "a completed write must survive");
                }
            }
            if completed {
                break;
            }
            k += 1;
        }
        assert!(k >= 4, "the rewrite took {k} steps: too few to be atomic");
    }
}

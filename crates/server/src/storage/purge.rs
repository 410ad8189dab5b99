//! Retention: keep the newest snapshots and the log segments needed to replay after the oldest
//! of them; delete the rest.

use super::fs::Fs;
use super::{list_by_zxid, log_dir, snap_dir, StorageError};
use std::path::Path;
use tracing::info;

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Files deleted (snapshots and log segments).
    pub files: usize,
    /// When log segments went: the highest zxid no longer in the on-disk log (everything up to
    /// it is only in snapshots now). The replication core must hear it (`Event::LogPurged`),
    /// or a leader would plan a DIFF over what is gone.
    pub log_purged_through: Option<i64>,
}

/// Keeps `retain` (at least 3) snapshots and the logs they need.
pub fn purge(
    fs: &Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    retain: usize,
) -> Result<Purged, StorageError> {
    let retain = retain.max(3);
    let snaps = list_by_zxid(fs, &snap_dir(data_dir), "snap.")?;
    if snaps.len() <= retain {
        return Ok(Purged::default());
    }
    let keep_from = snaps[snaps.len() - retain].0;
    let mut deleted = 0;
    for (_, p) in &snaps[..snaps.len() - retain] {
        fs.remove_file(p).map_err(|e| StorageError::io(p, e))?;
        deleted += 1;
    }
    // A segment may go when the next one starts at or before the first zxid the oldest kept
    // snapshot needs; the newest segment always stays.
    let segs = list_by_zxid(fs, &log_dir(data_log_dir), "log.")?;
    let mut log_purged_through = None;
    for w in segs.windows(2) {
        if w[1].0 <= keep_from + 1 {
            fs.remove_file(&w[0].1)
                .map_err(|e| StorageError::io(&w[0].1, e))?;
            deleted += 1;
            // The log now starts with w[1]: everything before its first zxid is gone.
            log_purged_through = Some(w[1].0 - 1);
        }
    }
    info!(
        deleted,
        kept_snapshots = retain,
        log_purged_through = log_purged_through.map(|z| format!("0x{z:x}")),
        "purged old snapshots and logs"
    );
    Ok(Purged {
        files: deleted,
        log_purged_through,
    })
}

//! Retention: keep the newest snapshots and the log segments needed to replay after the oldest
//! of them; delete the rest.

use super::fs::Fs;
use super::{list_by_zxid, log_dir, snap_dir, StorageError};
use std::path::Path;
use tracing::info;

/// Keeps `retain` (at least 3) snapshots and the logs they need. Returns the files deleted.
pub fn purge(
    fs: &Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    retain: usize,
) -> Result<usize, StorageError> {
    let retain = retain.max(3);
    let snaps = list_by_zxid(fs, &snap_dir(data_dir), "snap.")?;
    if snaps.len() <= retain {
        return Ok(0);
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
    for w in segs.windows(2) {
        if w[1].0 <= keep_from + 1 {
            fs.remove_file(&w[0].1)
                .map_err(|e| StorageError::io(&w[0].1, e))?;
            deleted += 1;
        }
    }
    info!(
        deleted,
        kept_snapshots = retain,
        "purged old snapshots and logs"
    );
    Ok(deleted)
}

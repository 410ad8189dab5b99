//! What the readers of ZooKeeper's snapshot and log files share: the file names, the errors,
//! and a reader of jute's encoding (`../shared/spec/zookeeper-server-formats.md` §0) that
//! checks every length against what is left and against ZooKeeper's own limit, so a damaged
//! file is an error naming the offset, never a panic or a huge allocation.

use paddock_proto::Acl;
use std::path::Path;

/// ZooKeeper refuses lengths above jute.maxbuffer plus its extra size (0xFFFFF each).
const MAX_LEN: usize = 2 * 0xFFFFF;

/// Where a file is damaged (its offset) and how.
pub(super) type Bad = (usize, String);

#[derive(Debug, thiserror::Error)]
pub enum ZkFileError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not a snapshot name (snapshot.<hex zxid>)")]
    Name { path: String },
    #[error("{path} at offset {offset}: {what}")]
    Corrupt {
        path: String,
        offset: usize,
        what: String,
    },
}

/// The zxid a file's name gives (`<kind>.<hex>`, anything after ignored, as ZooKeeper
/// does), or None.
pub fn name_zxid(name: &str, kind: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != kind {
        return None;
    }
    u64::from_str_radix(parts.next()?, 16)
        .ok()
        .map(|z| z as i64)
}

/// Reads a file whole, naming it in the error.
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, ZkFileError> {
    std::fs::read(path).map_err(|err| ZkFileError::Io {
        path: path.display().to_string(),
        err,
    })
}

/// Reads a file whole and parses it, naming the file in any error.
pub(super) fn read_with<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, Bad>,
) -> Result<T, ZkFileError> {
    let bytes = read_file(path)?;
    parse(&bytes).map_err(|(offset, what)| ZkFileError::Corrupt {
        path: path.display().to_string(),
        offset,
        what,
    })
}

/// A jute reader over `buf`, which sits at `base` in its file (for the offsets of errors).
pub(super) struct In<'a> {
    pub buf: &'a [u8],
    pub at: usize,
    pub base: usize,
}

impl<'a> In<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> In<'a> {
        In { buf, at: 0, base }
    }
    /// The offset in the file of what comes next.
    pub fn offset(&self) -> usize {
        self.base + self.at
    }
    pub fn left(&self) -> usize {
        self.buf.len() - self.at
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        if self.left() < n {
            return Err((self.offset(), format!("ends early (wanted {n} more bytes)")));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    pub fn int(&mut self) -> Result<i32, Bad> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub fn long(&mut self) -> Result<i64, Bad> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub fn boolean(&mut self) -> Result<bool, Bad> {
        Ok(self.take(1)?[0] != 0)
    }
    /// A buffer or ustring: None for length -1.
    pub fn bytes(&mut self) -> Result<Option<&'a [u8]>, Bad> {
        let at = self.offset();
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > MAX_LEN {
            return Err((at, format!("unreasonable length {n}")));
        }
        self.take(n as usize).map(Some)
    }
    /// A ustring: None for null.
    pub fn string(&mut self) -> Result<Option<String>, Bad> {
        let at = self.offset();
        match self.bytes()? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| (at, "a string that is not UTF-8".into())),
        }
    }
    /// A ustring that may not be null.
    pub fn text(&mut self, what: &str) -> Result<String, Bad> {
        let at = self.offset();
        self.string()?.ok_or_else(|| (at, format!("a null {what}")))
    }
    /// A count of items of at least `min` bytes each: no larger than what is left.
    pub fn count(&mut self, min: usize) -> Result<usize, Bad> {
        let at = self.offset();
        let n = self.int()?;
        if n < 0 || (n as usize).saturating_mul(min) > self.left() {
            return Err((at, format!("unreasonable count {n}")));
        }
        Ok(n as usize)
    }
    /// A `vector<ACL>` (perms, scheme, id), not null.
    pub fn acl(&mut self) -> Result<Vec<Acl>, Bad> {
        let n = self.count(12)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let perms = self.int()?;
            let scheme = self.text("ACL scheme")?;
            let id = self.text("ACL id")?;
            v.push(Acl::new(perms, &scheme, &id));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_zxid("snapshot.1a", "snapshot"), Some(0x1a));
        assert_eq!(
            name_zxid("snapshot.100000000.snappy", "snapshot"),
            Some(0x1_0000_0000)
        );
        assert_eq!(name_zxid("log.1a", "snapshot"), None);
        assert_eq!(name_zxid("log.1a", "log"), Some(0x1a));
        assert_eq!(name_zxid("snapshot.zz", "snapshot"), None);
    }
}

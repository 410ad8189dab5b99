//! The transaction log: segments of checksummed, length-prefixed records, appended in batches
//! with one fsync per batch (group commit).
//!
//! A segment is `log.<zxid of its first txn, 16 hex digits>`: a 32-byte header (magic, format,
//! database id, zeros), then records `[u32 length][u32 crc32 of payload][payload]`, then zeros up to
//! the preallocated size. A zero length marks the end.

use super::fs::{Fs, OpenMode, StorageFile};
use super::{list_by_zxid, StorageError};
use bytes::Bytes;
use paddock_tree::codec::{decode_txn, encode_txn_marked, txn_zxid, without_mark};
use paddock_tree::Txn;
use paddock_tree::ZxidDigest;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

const MAGIC: &[u8; 8] = b"PDKLOG\0\x01";
const FORMAT: u32 = 1;
/// Bytes before the first record of a segment.
pub const HEADER_LEN: u64 = 32;
pub(crate) const RECORD_HEADER: usize = 8;
/// No record may claim more than this: no server makes a longer transaction.
const MAX_RECORD: usize = paddock_tree::codec::MAX_RECORD_BYTES;
/// A segment is rolled once it passes this size (tests use smaller segments).
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Appends the log records of `txns` to `out`.
pub fn encode_records(txns: &[Txn], out: &mut Vec<u8>) {
    for t in txns {
        encode_record(t, None, out);
    }
}

/// Appends one record, carrying a digest mark if given (codec.rs).
pub fn encode_record(t: &Txn, mark: Option<ZxidDigest>, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    encode_txn_marked(t, mark, out);
    let header = record_header(&out[at + RECORD_HEADER..]);
    out[at..at + RECORD_HEADER].copy_from_slice(&header);
}

/// The header of a record holding the encoded transaction `txn`: its length and checksum.
fn record_header(txn: &[u8]) -> [u8; RECORD_HEADER] {
    let mut h = [0; RECORD_HEADER];
    h[..4].copy_from_slice(&(txn.len() as u32).to_be_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(txn).to_be_bytes());
    h
}

fn segment_name(zxid: i64) -> String {
    format!("log.{:016x}", zxid as u64)
}

/// Appends batches to the newest segment, rolling to a new one when it is full.
pub struct LogWriter {
    fs: Fs,
    dir: PathBuf,
    file: Option<Box<dyn StorageFile>>,
    path: PathBuf,
    offset: u64,
    force_sync: bool,
    dbid: u64,
    segment_bytes: u64,
    /// Start a new segment with the next write (a snapshot began: the segments before it can
    /// then be purged whole once the snapshot is old enough, as in ZooKeeper).
    roll_pending: bool,
    /// Set by a failed fsync: the kernel may have dropped the pages, and a retried fsync can
    /// falsely succeed, so nothing more is written until the server restarts and recovers.
    poisoned: bool,
}

impl LogWriter {
    /// A writer appending after `tail` (a segment and the end of its valid records), or
    /// starting a fresh segment with the next batch.
    pub fn open(
        fs: &Fs,
        dir: &Path,
        tail: Option<(PathBuf, u64)>,
        force_sync: bool,
        dbid: u64,
    ) -> Result<LogWriter, StorageError> {
        fs.create_dir_all(dir)
            .map_err(|e| StorageError::io(dir, e))?;
        let mut w = LogWriter {
            fs: fs.clone(),
            dir: dir.to_owned(),
            file: None,
            path: PathBuf::new(),
            offset: 0,
            force_sync,
            dbid,
            segment_bytes: SEGMENT_BYTES,
            roll_pending: false,
            poisoned: false,
        };
        if let Some((path, offset)) = tail {
            let f = fs
                .open(&path, OpenMode::Existing)
                .map_err(|e| StorageError::io(&path, e))?;
            w.file = Some(f);
            w.path = path;
            w.offset = offset;
        }
        Ok(w)
    }

    /// Rolls to a new segment once the current one passes `bytes` (tests use small segments
    /// to exercise rolling).
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes.max(HEADER_LEN + 1);
    }

    /// Starts a new segment with the next write.
    pub fn roll_next(&mut self) {
        self.roll_pending = true;
    }

    fn roll(&mut self, first_zxid: i64) -> std::io::Result<()> {
        let path = self.dir.join(segment_name(first_zxid));
        let f = match self.fs.open(&path, OpenMode::CreateNew) {
            // A roll that failed part-way (a full disk) left this file: it holds no record,
            // since `first_zxid` is the first one it was made for. Start it afresh.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && self.path != path => {
                warn!(segment = %path.display(), "replacing a segment left by a failed roll");
                self.fs.remove_file(&path)?;
                self.fs.open(&path, OpenMode::CreateNew)?
            }
            other => other?,
        };
        f.write_at(&header(self.dbid), 0)?;
        // Preallocate so appends rarely change the file's size.
        f.set_len(self.segment_bytes)?;
        f.sync_all()?;
        // The segment must be reachable before any record in it is acknowledged.
        self.fs.sync_dir(&self.dir)?;
        info!(segment = %path.display(), "new transaction log segment");
        self.file = Some(f);
        self.path = path;
        self.offset = HEADER_LEN;
        Ok(())
    }

    /// Writes encoded records whose first transaction is `first_zxid`. Nothing is durable until
    /// `sync` returns Ok.
    pub fn write(&mut self, records: &[u8], first_zxid: i64) -> std::io::Result<()> {
        if self.poisoned {
            return Err(std::io::Error::other(
                "the transaction log failed an fsync; restart the server to recover",
            ));
        }
        if self.file.is_none()
            || self.roll_pending
            || self.offset + records.len() as u64
                > self.segment_bytes.max(HEADER_LEN + records.len() as u64)
        {
            self.sync()?;
            self.roll(first_zxid)?;
            self.roll_pending = false;
        }
        let f = self.file.as_ref().expect("segment open");
        if let Err(e) = f.write_at(records, self.offset) {
            // Cut the partial append back, so the log ends at the last whole batch.
            let _ = f.write_at(&vec![0u8; records.len()], self.offset);
            return Err(e);
        }
        self.offset += records.len() as u64;
        Ok(())
    }

    /// Makes everything written durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if !self.force_sync || self.poisoned {
            return if self.poisoned {
                Err(std::io::Error::other(
                    "log poisoned by an earlier fsync failure",
                ))
            } else {
                Ok(())
            };
        }
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                self.poisoned = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Drops every logged transaction after `zxid` (a leader's TRUNC, or a snapshot installed
    /// from the leader), durably, and continues appending after what is left.
    pub fn truncate_after(&mut self, zxid: i64) -> Result<(), StorageError> {
        self.sync().map_err(|e| StorageError::io(&self.path, e))?;
        self.file = None;
        let tail = truncate_to_zxid(&self.fs, &self.dir, zxid)?;
        if let Some((path, offset)) = tail {
            let f = self
                .fs
                .open(&path, OpenMode::Existing)
                .map_err(|e| StorageError::io(&path, e))?;
            self.file = Some(f);
            self.path = path;
            self.offset = offset;
        }
        Ok(())
    }

    /// The segment being appended to.
    pub fn current(&self) -> &Path {
        &self.path
    }
}

/// One record as read back, not decoded: its transaction's zxid, and the record (header and
/// transaction, without a digest mark) as the replication core carries it.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    pub zxid: i64,
    pub record: Bytes,
}

impl LoggedRecord {
    /// The transaction, decoded.
    pub fn decode(&self) -> Result<Txn, paddock_proto::DecodeError> {
        decode_txn(&self.record[RECORD_HEADER..])
    }
}

/// What a segment holds, its records not decoded.
#[derive(Debug)]
pub struct SegmentRecords {
    pub records: Vec<LoggedRecord>,
    /// Where each record ends.
    pub ends: Vec<u64>,
    /// The database id in the header (0 for a segment never written).
    pub dbid: u64,
    /// Offset just past the last valid record.
    pub end: u64,
}

impl SegmentRecords {
    /// Where record `i` begins.
    pub fn offset_of(&self, i: usize) -> u64 {
        i.checked_sub(1).map_or(HEADER_LEN, |p| self.ends[p])
    }

    /// Record `i` of the segment at `path`, decoded; one that does not decode is corruption
    /// at its offset.
    pub fn decode(&self, i: usize, path: &Path) -> Result<Txn, StorageError> {
        self.records[i].decode().map_err(|e| StorageError::Corrupt {
            path: path.to_owned(),
            offset: self.offset_of(i),
            reason: format!("undecodable transaction: {e}"),
        })
    }
}

/// Reads a segment's records, checking each one's length, checksum and zxid order but not
/// decoding them: a start-up hands them to the replication core as they are, and each is
/// decoded once, when it is applied. In the newest segment a torn tail (a partial record
/// and/or zeros after the last valid record) is cut off with a warning; anything else that
/// does not check out is corruption.
pub fn read_segment_records(
    fs: &Fs,
    path: &Path,
    newest: bool,
) -> Result<SegmentRecords, StorageError> {
    // One buffer for the segment: each record is a slice of it.
    let bytes = Bytes::from(fs.read(path).map_err(|e| StorageError::io(path, e))?);
    let corrupt = |offset: u64, reason: &str| StorageError::Corrupt {
        path: path.to_owned(),
        offset,
        reason: reason.to_owned(),
    };
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        let no_records = bytes
            .get(HEADER_LEN as usize..)
            .is_none_or(|r| r.iter().all(|&b| b == 0));
        if newest && no_records {
            // Created, but its header never reached the disk whole: records are written only
            // after the header is durable, so nothing in it was acknowledged.
            return Ok(SegmentRecords {
                records: Vec::new(),
                ends: Vec::new(),
                dbid: 0,
                end: 0,
            });
        }
        return Err(corrupt(0, "not a Paddock log segment (bad header)"));
    }
    let dbid = u64::from_be_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let mut records: Vec<LoggedRecord> = Vec::new();
    let mut ends = Vec::new();
    let mut at = HEADER_LEN as usize;
    loop {
        let rest = &bytes[at..];
        if rest.iter().all(|&b| b == 0) {
            return Ok(SegmentRecords {
                records,
                ends,
                dbid,
                end: at as u64,
            });
        }
        let bad = |why: &str| -> Result<SegmentRecords, StorageError> {
            // A torn tail: only this record's bytes (as far as its length claims) and zeros
            // follow. Only the newest segment can have one.
            let claimed = if rest.len() >= 4 {
                u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize
            } else {
                0
            };
            let last_nonzero = rest.iter().rposition(|&b| b != 0).unwrap_or(0);
            if newest && claimed <= MAX_RECORD && last_nonzero < RECORD_HEADER + claimed.max(1) {
                warn!(segment = %path.display(), offset = at, reason = why, "cutting off a torn log tail");
                return Ok(SegmentRecords {
                    records: Vec::new(),
                    ends: Vec::new(),
                    dbid,
                    end: at as u64,
                });
            }
            Err(corrupt(at as u64, why))
        };
        if rest.len() < RECORD_HEADER {
            let r = bad("record header cut short")?;
            return Ok(SegmentRecords {
                records,
                ends,
                dbid,
                end: r.end,
            });
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let why = if len == 0 || len > MAX_RECORD {
            Some("impossible record length")
        } else if rest.len() < RECORD_HEADER + len {
            Some("record cut short")
        } else if crc32fast::hash(&rest[RECORD_HEADER..RECORD_HEADER + len]) != crc {
            Some("checksum mismatch")
        } else {
            None
        };
        if let Some(why) = why {
            let r = bad(why)?;
            return Ok(SegmentRecords {
                records,
                ends,
                dbid,
                end: r.end,
            });
        }
        let txn = &rest[RECORD_HEADER..RECORD_HEADER + len];
        let zxid = txn_zxid(txn)
            .map_err(|e| corrupt(at as u64, &format!("undecodable transaction: {e}")))?;
        if records.last().is_some_and(|p| zxid <= p.zxid) {
            return Err(corrupt(at as u64, "zxids go backwards"));
        }
        let record = match without_mark(txn) {
            None => bytes.slice(at..at + RECORD_HEADER + len),
            Some(plain) => Bytes::from([&record_header(&plain)[..], &plain].concat()),
        };
        records.push(LoggedRecord { zxid, record });
        at += RECORD_HEADER + len;
        ends.push(at as u64);
    }
}

fn header(dbid: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT.to_be_bytes());
    h[12..20].copy_from_slice(&dbid.to_be_bytes());
    h
}

/// Zeroes everything from `offset` on (cuts a torn tail, or truncates by an operator's choice),
/// keeping the preallocated size, and makes it durable.
pub fn cut_at(fs: &Fs, path: &Path, offset: u64) -> Result<(), StorageError> {
    let f = fs
        .open(path, OpenMode::Existing)
        .map_err(|e| StorageError::io(path, e))?;
    let len = f.size().map_err(|e| StorageError::io(path, e))?;
    f.set_len(offset)
        .and_then(|_| f.set_len(len.max(offset)))
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io(path, e))
}

/// Truncates the log so that its last transaction is the last one at or below `zxid` (a new
/// leader's TRUNC, or an operator's choice). Newer segments go first, newest first, so a power
/// failure part way leaves a prefix of the log. Returns where appends continue.
pub fn truncate_to_zxid(
    fs: &Fs,
    dir: &Path,
    zxid: i64,
) -> Result<Option<(PathBuf, u64)>, StorageError> {
    let segs = list_by_zxid(fs, dir, "log.")?;
    let mut removed = false;
    for (first, path) in segs.iter().rev() {
        if *first <= zxid {
            break;
        }
        fs.remove_file(path)
            .map_err(|e| StorageError::io(path, e))?;
        removed = true;
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    let Some((_, path)) = segs.iter().rev().find(|(first, _)| *first <= zxid) else {
        return Ok(None);
    };
    let r = read_segment_records(fs, path, true)?;
    let end = r.offset_of(r.records.iter().take_while(|t| t.zxid <= zxid).count());
    if end < r.end {
        cut_at(fs, path, end)?;
        info!(segment = %path.display(), zxid = format_args!("0x{zxid:x}"), "log truncated");
    }
    Ok(Some((path.clone(), end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::real;
    use paddock_tree::TxnOp;

    fn txn(z: i64) -> Txn {
        Txn {
            session_id: 1,
            cxid: 1,
            zxid: z,
            time: 0,
            op: TxnOp::Delete {
                path: format!("/n{z}"),
            },
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("paddock-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn write(dir: &Path, zs: std::ops::Range<i64>) -> PathBuf {
        let mut w = LogWriter::open(&real(), dir, None, true, 7).unwrap();
        let mut b = Vec::new();
        encode_records(&zs.clone().map(txn).collect::<Vec<_>>(), &mut b);
        w.write(&b, zs.start).unwrap();
        w.sync().unwrap();
        w.current().to_owned()
    }

    #[test]
    fn records_are_read_as_logged_without_their_digest_marks() {
        let d = tmp("records");
        let mut w = LogWriter::open(&real(), &d, None, true, 7).unwrap();
        let mut b = Vec::new();
        encode_record(&txn(1), None, &mut b);
        let mark = ZxidDigest {
            zxid: 1,
            digest: 99,
        };
        encode_record(&txn(2), Some(mark), &mut b);
        w.write(&b, 1).unwrap();
        w.sync().unwrap();
        let r = read_segment_records(&real(), w.current(), true).unwrap();
        assert_eq!(r.records.iter().map(|r| r.zxid).collect::<Vec<_>>(), [1, 2]);
        // Each record is what the log would hold for the transaction without a mark: the
        // replication core's payload, with a valid length and checksum.
        for (rec, z) in r.records.iter().zip(1..) {
            let mut plain = Vec::new();
            encode_records(&[txn(z)], &mut plain);
            assert_eq!(&rec.record[..], &plain[..], "zxid {z}");
            assert_eq!(rec.decode().unwrap(), txn(z));
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let d = tmp("torn");
        let seg = write(&d, 1..11);
        let r = read_segment_records(&real(), &seg, true).unwrap();
        assert_eq!(r.records.len(), 10);
        // Tear the last record: keep its first bytes only.
        let mut bytes = std::fs::read(&seg).unwrap();
        let end = r.end as usize;
        let last_len = {
            let mut b = Vec::new();
            encode_records(&[txn(10)], &mut b);
            b.len()
        };
        for b in &mut bytes[end - last_len / 2..end] {
            *b = 0;
        }
        std::fs::write(&seg, &bytes).unwrap();
        let r2 = read_segment_records(&real(), &seg, true).unwrap();
        assert_eq!(r2.records.len(), 9);
        assert!(
            read_segment_records(&real(), &seg, false).is_err(),
            "an older segment may not end torn"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn flipped_byte_in_the_middle_is_corruption() {
        let d = tmp("flip");
        let seg = write(&d, 1..11);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[HEADER_LEN as usize + 20] ^= 0x40;
        std::fs::write(&seg, &bytes).unwrap();
        let e = read_segment_records(&real(), &seg, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("corrupt at offset 32"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

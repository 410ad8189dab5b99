//! The file operations storage needs, behind a trait, so that the same storage code runs over
//! the real file system in the server and over a power-loss simulator (`sim_fs`) in tests.
//!
//! The trait is small on purpose: positioned writes, length changes, the two kinds of fsync,
//! whole-file reads, and the directory operations whose durability needs a directory fsync
//! (create, rename, remove). Everything storage does to a disk goes through it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A shared handle on a file system.
pub type Fs = Arc<dyn FileSystem>;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading and writing.
    Existing,
    /// A new file; fails if one exists.
    CreateNew,
    /// A new or emptied file.
    CreateTruncate,
}

/// File-system operations used by storage. Directory entries created, renamed or removed are
/// durable only after `sync_dir` of their directory; file contents only after `sync_data` or
/// `sync_all` of the file.
pub trait FileSystem: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (NotFound if it does not exist).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file.
pub trait StorageFile: Send {
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
    /// fdatasync: the contents (and the size when it changed).
    fn sync_data(&self) -> io::Result<()>;
    /// fsync: contents and metadata.
    fn sync_all(&self) -> io::Result<()>;
    /// Starts writing `len` bytes from `offset` back to the disk, and waits until what was
    /// written before `offset` is on the device; no durability promise (metadata is not
    /// flushed). A large file written in the background this way keeps at most about one range
    /// of dirty data in flight, so the log's fsyncs never queue behind a huge flush.
    fn write_behind(&self, _offset: u64, _len: u64) {}
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// The real file system as a shared handle.
pub fn real() -> Fs {
    Arc::new(RealFs)
}

struct RealFile(File);

impl StorageFile for RealFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn write_behind(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let fd = self.0.as_raw_fd();
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is owned by
        // self.0 and open for the duration of the calls. A failure is harmless (a hint: the
        // final fsync still makes the file durable).
        unsafe {
            libc::sync_file_range(
                fd,
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
            if offset > 0 {
                libc::sync_file_range(
                    fd,
                    0,
                    offset as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
        }
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Some(n) = e?.file_name().to_str() {
                out.push(n.to_owned());
            }
        }
        Ok(out)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        match mode {
            OpenMode::Existing => {}
            OpenMode::CreateNew => {
                o.create_new(true);
            }
            OpenMode::CreateTruncate => {
                o.create(true).truncate(true);
            }
        }
        Ok(Box::new(RealFile(o.open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

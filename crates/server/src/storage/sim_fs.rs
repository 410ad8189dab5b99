//! A test double of the file system that models power loss: it keeps, for every file, what was
//! written and what was made durable by an fsync, and for every directory, which entries were
//! made durable by a directory fsync. At a simulated power failure it forgets everything not
//! durable, except that it may keep a prefix of each file's unsynced writes in order, tearing
//! the last one kept at any byte (a disk that was part way through writing it), and a prefix of
//! the directory changes not yet made durable (file systems often commit those early).
//!
//! A process kill (SIGKILL) cannot test this: the kernel keeps what the process wrote. Here the
//! storage code runs unchanged over this layer, power fails at a chosen step, and recovery runs
//! over what a real disk could have kept.
//!
//! Every mutating call (write, length change, fsync, create, rename, remove) is one step.
//! `fail_at_step(k)` lets k steps succeed; the next one fails, and from then on every call
//! fails, as if the machine had stopped. `power_cycle` then brings the disk back in the state a
//! reboot would find.

use super::fs::{FileSystem, OpenMode, StorageFile};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// An unsynced change to a file.
#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

/// A directory change not yet made durable by a directory fsync.
#[derive(Debug, Clone)]
enum NameOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    /// Within one directory, replacing what `to` named.
    Rename(PathBuf, PathBuf, u64),
}

impl NameOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            NameOp::Link(p, _) | NameOp::Unlink(p) | NameOp::Rename(_, p, _) => p.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            NameOp::Link(p, i) => {
                names.insert(p.clone(), *i);
            }
            NameOp::Unlink(p) => {
                names.remove(p);
            }
            NameOp::Rename(from, to, i) => {
                names.remove(from);
                names.insert(to.clone(), *i);
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    /// Bytes with blocks behind them: a length change alone allocates nothing (sparse files),
    /// so a preallocated segment can still meet a full disk when written.
    allocated: u64,
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

/// Faults other than power loss.
#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    /// Writes that would grow the total size of all files past this fail with ENOSPC.
    space_bytes_max: Option<u64>,
    /// The next fsync of a file fails with EIO (and, as on Linux, the dirty data may be gone).
    fail_next_sync: bool,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    /// Directory changes since the last fsync of their directory, in order.
    name_ops: Vec<NameOp>,
    dirs: BTreeSet<PathBuf>,
    next_inode: u64,
    steps: u64,
    fail_after: Option<u64>,
    dead: bool,
    faults: Faults,
}

/// The simulated disk. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn power_off() -> io::Error {
    io::Error::other("simulated power failure")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", p.display()),
    )
}

impl State {
    /// Counts a mutating step, failing it (and everything after) once the budget is spent.
    fn step(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(power_off());
        }
        self.steps += 1;
        if self.fail_after.is_some_and(|k| self.steps > k) {
            self.dead = true;
            return Err(power_off());
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead {
            Err(power_off())
        } else {
            Ok(())
        }
    }

    fn allocated_bytes(&self) -> u64 {
        self.names
            .values()
            .filter_map(|i| self.inodes.get(i))
            .map(|n| n.allocated)
            .sum()
    }
}

fn apply(data: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, bytes } => {
            let end = *offset as usize + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[*offset as usize..end].copy_from_slice(bytes);
        }
        Pending::SetLen(n) => data.resize(*n as usize, 0),
    }
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a test failure anyway; keep going to report it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mutating steps taken so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Power fails at the step after the next `k` (counting from now).
    pub fn fail_after_steps(&self, k: u64) {
        let mut s = self.lock();
        s.fail_after = Some(s.steps + k);
    }

    /// Whether power has failed.
    pub fn is_off(&self) -> bool {
        self.lock().dead
    }

    /// Bytes allocated to files now.
    pub fn used_bytes(&self) -> u64 {
        self.lock().allocated_bytes()
    }

    /// Limits the bytes allocated to all files (None: unlimited).
    pub fn set_space_limit(&self, bytes: Option<u64>) {
        self.lock().faults.space_bytes_max = bytes;
    }

    /// Makes the next file fsync fail with EIO.
    pub fn fail_next_sync(&self) {
        self.lock().faults.fail_next_sync = true;
    }

    /// Power comes back: what was not durable is gone, except that each file keeps the first
    /// `keep(unsynced count)` of its unsynced changes, the last of them torn to
    /// `tear(bytes)` bytes. `choose(n)` returns a number in 0..=n; pass a seeded generator.
    pub fn power_cycle(&self, mut choose: impl FnMut(u64) -> u64) {
        let mut s = self.lock();
        let ops = std::mem::take(&mut s.name_ops);
        let keep_ops = choose(ops.len() as u64) as usize;
        for op in ops.iter().take(keep_ops) {
            op.apply(&mut s.durable_names);
        }
        let durable_inodes: BTreeSet<u64> = s.durable_names.values().copied().collect();
        s.inodes.retain(|i, _| durable_inodes.contains(i));
        let mut ids: Vec<u64> = s.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let n = s.inodes.get_mut(&id).expect("listed");
            let mut data = n.durable.clone();
            let keep = choose(n.pending.len() as u64) as usize;
            for (i, p) in n.pending.iter().take(keep).enumerate() {
                match p {
                    Pending::Write { offset, bytes } if i + 1 == keep => {
                        let cut = choose(bytes.len() as u64) as usize;
                        apply(
                            &mut data,
                            &Pending::Write {
                                offset: *offset,
                                bytes: bytes[..cut].to_vec(),
                            },
                        );
                    }
                    p => apply(&mut data, p),
                }
            }
            // What survived is what the disk holds now; call it durable so a second power
            // failure does not resurrect less.
            n.data = data.clone();
            n.durable = data;
            n.pending.clear();
        }
        s.names = s.durable_names.clone();
        s.dead = false;
        s.fail_after = None;
        s.faults = Faults::default();
    }

    /// The unsynced changes of a file, as (offset, length) of writes and (length, 0) of
    /// length changes marked with u64::MAX offset (for test diagnostics).
    pub fn pending(&self, path: &Path) -> Vec<(u64, u64)> {
        let s = self.lock();
        s.names
            .get(path)
            .and_then(|i| s.inodes.get(i))
            .map(|n| {
                n.pending
                    .iter()
                    .map(|p| match p {
                        Pending::Write { offset, bytes } => (*offset, bytes.len() as u64),
                        Pending::SetLen(l) => (u64::MAX, *l),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current contents of a file (for tests that damage or inspect files).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        s.names
            .get(path)
            .and_then(|i| s.inodes.get(i))
            .map(|n| n.data.clone())
    }

    /// Replaces a file's contents, durably (a test damaging a file).
    pub fn set_contents(&self, path: &Path, bytes: Vec<u8>) {
        let mut s = self.lock();
        if let Some(i) = s.names.get(path).copied() {
            if let Some(n) = s.inodes.get_mut(&i) {
                n.data = bytes.clone();
                n.durable = bytes;
                n.pending.clear();
            }
        }
    }
}

struct SimFile {
    fs: SimFs,
    inode: u64,
}

impl SimFile {
    fn change(&self, p: Pending) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.alive()?;
        if let Pending::Write { offset, bytes } = &p {
            let cur = s.inodes.get(&self.inode).map_or(0, |n| n.allocated);
            let end = offset + bytes.len() as u64;
            let grow = end.saturating_sub(cur);
            if let Some(max) = s.faults.space_bytes_max {
                if grow > 0 && s.allocated_bytes() + grow > max {
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
            }
            let n = s.inodes.entry(self.inode).or_default();
            n.allocated = n.allocated.max(end);
        }
        let r = s.step();
        // The write under way when power fails may reach the disk in part: keep it pending
        // so the power cycle can tear it. Nothing after it happens.
        if r.is_err() && !matches!(p, Pending::Write { .. }) {
            return r;
        }
        let n = s.inodes.entry(self.inode).or_default();
        apply(&mut n.data, &p);
        n.pending.push(p);
        r
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.step()?;
        if std::mem::take(&mut s.faults.fail_next_sync) {
            // Linux may drop the dirty pages and clear the error: the data is gone for good.
            let n = s.inodes.entry(self.inode).or_default();
            n.data = n.durable.clone();
            n.pending.clear();
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        let n = s.inodes.entry(self.inode).or_default();
        n.durable = n.data.clone();
        n.pending.clear();
        Ok(())
    }
}

impl StorageFile for SimFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.change(Pending::Write {
            offset,
            bytes: buf.to_vec(),
        })
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.change(Pending::SetLen(len))
    }
    fn size(&self) -> io::Result<u64> {
        let s = self.fs.lock();
        s.alive()?;
        Ok(s.inodes.get(&self.inode).map_or(0, |n| n.data.len() as u64))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        // Directories are taken as durable: tests create them before the first step.
        for a in dir.ancestors() {
            s.dirs.insert(a.to_owned());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        s.alive()?;
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path).ok_or_else(|| not_found(path))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut s = self.lock();
        let existing = s.names.get(path).copied();
        let inode = match (mode, existing) {
            (OpenMode::Existing, Some(i)) => {
                s.alive()?;
                i
            }
            (OpenMode::Existing, None) => {
                s.alive()?;
                return Err(not_found(path));
            }
            (OpenMode::CreateNew, Some(_)) => {
                s.alive()?;
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: exists", path.display()),
                ));
            }
            (OpenMode::CreateTruncate, Some(i)) => {
                s.step()?;
                let n = s.inodes.entry(i).or_default();
                n.data.clear();
                n.pending.push(Pending::SetLen(0));
                i
            }
            (_, None) => {
                s.step()?;
                if !path.parent().is_some_and(|d| s.dirs.contains(d)) {
                    return Err(not_found(path));
                }
                s.next_inode += 1;
                let i = s.next_inode;
                s.inodes.insert(i, Inode::default());
                s.names.insert(path.to_owned(), i);
                s.name_ops.push(NameOp::Link(path.to_owned(), i));
                i
            }
        };
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.step()?;
        let i = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_owned(), i);
        // Atomic, as rename is: the prefix kept at a power failure holds all of it or none.
        s.name_ops
            .push(NameOp::Rename(from.to_owned(), to.to_owned(), i));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.step()?;
        s.names.remove(path).ok_or_else(|| not_found(path))?;
        s.name_ops.push(NameOp::Unlink(path.to_owned()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.step()?;
        let State {
            name_ops,
            durable_names,
            ..
        } = &mut *s;
        name_ops.retain(|op| {
            if op.dir() == Some(dir) {
                op.apply(durable_names);
                false
            } else {
                true
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_data_and_entries_are_forgotten() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).unwrap();
        let f = fs.open(&d.join("a"), OpenMode::CreateNew).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        // The file's data is durable but its name is not.
        fs.power_cycle(|_| 0);
        assert!(fs.read(&d.join("a")).is_err());
        // A file system may commit the name early all the same.
        let f = fs.open(&d.join("a"), OpenMode::CreateNew).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        fs.power_cycle(|n| n);
        assert_eq!(fs.read(&d.join("a")).unwrap(), b"hello");

        let f = fs.open(&d.join("b"), OpenMode::CreateNew).unwrap();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(d).unwrap();
        f.write_at(b" world", 5).unwrap();
        fs.power_cycle(|_| 0);
        assert_eq!(fs.read(&d.join("b")).unwrap(), b"hello");
    }

    #[test]
    fn a_torn_write_keeps_a_prefix() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).unwrap();
        let f = fs.open(&d.join("a"), OpenMode::CreateNew).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(d).unwrap();
        f.write_at(b"abcdef", 0).unwrap();
        // Keep the one pending write, torn to 3 bytes.
        fs.power_cycle(|n| if n == 1 { 1 } else { 3 });
        assert_eq!(fs.read(&d.join("a")).unwrap(), b"abc");
    }

    #[test]
    fn power_fails_at_the_chosen_step_and_stays_off() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).unwrap();
        fs.fail_after_steps(2);
        let f = fs.open(&d.join("a"), OpenMode::CreateNew).unwrap();
        f.write_at(b"x", 0).unwrap();
        assert!(f.sync_data().is_err());
        assert!(fs.is_off());
        assert!(fs.list(d).is_err());
    }
}

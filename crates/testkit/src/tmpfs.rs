//! A small tmpfs mounted for a test that needs a disk that fills up (the full-disk tests).
//! Mounting needs root, as CI has.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted (lazily, so a process still inside it does not block) and its
/// empty mount point removed on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: "4m") at `dir`, creating the directory.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map_err(Error::io("run mount"))?;
        if !status.success() {
            return Err(Error::Invalid(format!(
                "mount -t tmpfs at {} failed ({status}): full-disk tests must run as root",
                dir.display()
            )));
        }
        Ok(Tmpfs(dir.to_owned()))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

//! `paddock import-zk` and `paddock export-zk`: moving a data directory from Apache ZooKeeper
//! to Paddock and back (docs/migration.md).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The paths named (one or two) and the one after `--to`; None after printing `--help`.
pub(crate) fn dirs_and_target(
    args: &[String],
    usage: &str,
) -> Result<Option<(Vec<PathBuf>, PathBuf)>> {
    let mut dirs = Vec::new();
    let mut to = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--to" | "-to" => to = Some(PathBuf::from(it.next().context(usage.to_owned())?)),
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(None);
            }
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    match to {
        Some(to) if (1..=2).contains(&dirs.len()) => Ok(Some((dirs, to))),
        _ => bail!("{usage}"),
    }
}

/// `paddock import-zk <zk dataDir> [<zk dataLogDir>] --to <dataDir>`: reads ZooKeeper's
/// directory (never writes it), writes Paddock's, prints what it found.
pub fn import_zk(args: &[String]) -> Result<()> {
    let usage = "usage: paddock import-zk <zk dataDir> [<zk dataLogDir>] --to <paddock dataDir>";
    let Some((dirs, to)) = dirs_and_target(args, usage)? else {
        return Ok(());
    };
    let zk = &dirs[0];
    std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
    let _lock = paddock_server::storage::dir_lock::DirLocks::acquire(&[&to])?;
    let fs = paddock_server::storage::fs::real();
    let r =
        paddock_server::storage::zk_import::import(&fs, zk, dirs.get(1).map(|p| p.as_path()), &to)?;
    println!("imported {} into {}", zk.display(), to.display());
    println!(
        "  snapshot        {} (zxid 0x{:x})",
        r.snapshot.display(),
        r.snapshot_zxid
    );
    println!(
        "  logs            {} read, {} transactions replayed",
        r.logs, r.replayed
    );
    if let Some((p, at)) = &r.torn {
        println!(
            "  torn tail       {} at offset {at}: dropped (never acknowledged)",
            p.display()
        );
    }
    println!("  last zxid       0x{:x}", r.last_zxid);
    println!("  znodes          {}", r.znodes);
    println!(
        "  sessions        {} open ({} ephemerals), resumable with their passwords",
        r.sessions, r.ephemerals
    );
    println!(
        "  epochs          accepted {}, current {}",
        r.accepted_epoch, r.current_epoch
    );
    let verdict = if r.digests_checked == 0 {
        "none in the files (digests were off)".to_owned()
    } else if r.digest_mismatches == 0 {
        format!("{} of ZooKeeper's digests match", r.digests_checked)
    } else {
        format!(
            "{} of {} of ZooKeeper's digests DIFFER",
            r.digest_mismatches, r.digests_checked
        )
    };
    println!("  digest          {} ({verdict})", r.digest);
    println!("  written         {}", r.written.display());
    if r.digest_mismatches > 0 {
        bail!("the imported tree differs from what ZooKeeper's digests say");
    }
    Ok(())
}

/// `paddock export-zk <dataDir> [<dataLogDir>] --to <zk dataDir>`: reads a stopped server's
/// directories (never writes them), writes ZooKeeper's snapshot and epoch files.
pub fn export_zk(args: &[String]) -> Result<()> {
    let usage =
        "usage: paddock export-zk <paddock dataDir> [<paddock dataLogDir>] --to <zk dataDir>";
    let Some((dirs, to)) = dirs_and_target(args, usage)? else {
        return Ok(());
    };
    let data = &dirs[0];
    let logs = dirs.get(1).unwrap_or(data);
    // The server's own lock: a running server is refused (its log is still growing).
    let _lock = paddock_server::storage::dir_lock::DirLocks::acquire(&[data, logs])?;
    let fs = paddock_server::storage::fs::real();
    let r = paddock_server::storage::zk_export::export(&fs, data, logs, &to)?;
    println!("exported {} into {}", data.display(), to.display());
    println!("  last zxid       0x{:x}", r.last_zxid);
    println!("  znodes          {}", r.znodes);
    println!(
        "  sessions        {} open ({} ephemerals); {} resumable on ZooKeeper, the others expire there",
        r.sessions, r.ephemerals, r.resumable
    );
    println!(
        "  epochs          accepted {}, current {}",
        r.accepted_epoch, r.current_epoch
    );
    println!("  digest          {}", r.digest);
    println!("  written         {}", r.written.display());
    Ok(())
}

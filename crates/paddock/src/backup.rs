//! `paddock backup` and `paddock restore`: a backup of a running server's whole tree through
//! its AdminServer's `snapshot` command (ZooKeeper 3.9's, in ZooKeeper's snapshot format), and
//! a new data directory made from one (docs/migration.md).

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "paddock backup",
    about = "Save a running server's whole tree, exact at one zxid, as a ZooKeeper snapshot file (the listed AdminServers are asked in turn)"
)]
struct BackupArgs {
    /// Where to write the backup (written whole, then renamed into place).
    file: PathBuf,
    // Asked in turn: the first that answers gives the backup.
    #[command(flatten)]
    target: crate::admin::Target,
    /// How long to wait for the backup, in milliseconds.
    #[arg(long, default_value_t = 600_000)]
    timeout: u64,
}

pub fn backup(args: &[String]) -> Result<()> {
    let a = BackupArgs::try_parse_from(
        std::iter::once("paddock backup".to_owned()).chain(crate::argv::normalise(args)),
    )
    .unwrap_or_else(|e| e.exit());
    let path = format!("{}/snapshot?streaming=true", a.target.url);
    let timeout = Duration::from_millis(a.timeout.max(1));
    let (server, answer) = ask_in_turn(
        &a.target,
        hyper::Method::GET,
        &path,
        Default::default(),
        timeout,
        |_| false,
    )?;
    let zxid = answer
        .headers
        .get("last_zxid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let tmp = a.file.with_extension("partial");
    std::fs::write(&tmp, &answer.body)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // Checked before it takes the name: seals, digest trailer, every node's encoding.
    let snap = paddock_server::storage::zk_snapshot::check_any(&tmp)
        .context("the backup received does not read back")?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.file)
        .with_context(|| format!("cannot rename to {}", a.file.display()))?;
    println!("backup of {server} into {}", a.file.display());
    println!("  zxid            {zxid}");
    println!("  znodes          {}", snap.node_count);
    println!("  sessions        {}", snap.sessions.len());
    if let Some(t) = snap.trailer {
        println!("  digest          {}", t.digest);
    }
    println!("  bytes           {}", answer.body.len());
    Ok(())
}

/// Sends one request to the listed AdminServers in turn: the first that answers 200 gives
/// the answer. A server that cannot be reached, or whose status `next` accepts, passes the
/// request on to the next; any other status ends it with the AdminServer's error.
fn ask_in_turn(
    target: &crate::admin::Target,
    method: hyper::Method,
    path: &str,
    body: hyper::body::Bytes,
    timeout: Duration,
    next: impl Fn(u16) -> bool,
) -> Result<(String, crate::admin::Answer)> {
    let (servers, tls) = target.open()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut last_err = anyhow!("no server given");
    for server in &servers {
        let answer = rt.block_on(async {
            tokio::time::timeout(
                timeout,
                crate::admin::request(
                    server,
                    method.clone(),
                    path,
                    body.clone(),
                    tls.clone(),
                    target.digest.as_deref(),
                ),
            )
            .await
            .unwrap_or_else(|_| Err(anyhow!("no answer within {timeout:?}")))
        });
        let answer = match answer {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{server}: {e:#}");
                last_err = e;
                continue;
            }
        };
        if answer.status == 200 {
            return Ok((server.clone(), answer));
        }
        // The AdminServer's JSON error says why (identity, rate limit, switched off, ...).
        let why = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned());
        if next(answer.status) {
            eprintln!("{server}: {why}");
            last_err = anyhow!("{server}: {why}");
            continue;
        }
        bail!("{server}: HTTP {}: {why}", answer.status);
    }
    Err(last_err)
}

#[derive(Parser, Debug)]
#[command(
    name = "paddock restore",
    about = "Restore a running ensemble's whole tree from a backup, through the leader's AdminServer `restore` (the listed servers are asked in turn; with --to DIR instead: write a new data directory, offline)"
)]
struct OnlineArgs {
    /// The backup (a file `paddock backup` or the `snapshot` command gave, or any ZooKeeper
    /// snapshot).
    file: PathBuf,
    #[command(flatten)]
    target: crate::admin::Target,
    /// How long to wait for the restore, in milliseconds.
    #[arg(long, default_value_t = 600_000)]
    timeout: u64,
}

/// `paddock restore <backup> -server ...`: the ensemble's tree replaced by the backup's,
/// online, through whichever listed server leads.
fn restore_online(args: &[String]) -> Result<()> {
    let a = OnlineArgs::try_parse_from(
        std::iter::once("paddock restore".to_owned()).chain(crate::argv::normalise(args)),
    )
    .unwrap_or_else(|e| e.exit());
    let body =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let path = format!("{}/restore", a.target.url);
    // A follower answers 421: only the leader takes a restore.
    let (server, answer) = ask_in_turn(
        &a.target,
        hyper::Method::POST,
        &path,
        body.into(),
        Duration::from_millis(a.timeout.max(1)),
        |status| status == 421,
    )?;
    let v = serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap_or_default();
    let num = |k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or(-1);
    println!("restored {} through {server}", a.file.display());
    println!("  backup zxid     0x{:x}", num("restored_zxid"));
    println!("  applied at      0x{:x}", num("last_zxid"));
    println!("  znodes          {}", num("node_count"));
    Ok(())
}

/// `paddock restore <backup> --to <dataDir>` (offline), or `-server ...` (online).
pub fn restore(args: &[String]) -> Result<()> {
    if !args.iter().any(|a| a == "--to" || a == "-to")
        && !args.iter().any(|a| a == "-h" || a == "--help")
    {
        return restore_online(args);
    }
    let usage = "usage: paddock restore <backup file> --to <paddock dataDir>   (offline: a new data directory)\n       paddock restore <backup file> -server <admin host:port,...> [--digest user:password]   (online: the whole ensemble)";
    let Some((files, to)) = crate::migrate::dirs_and_target(args, usage)? else {
        return Ok(());
    };
    let [file] = &files[..] else { bail!("{usage}") };
    std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
    let _lock = paddock_server::storage::dir_lock::DirLocks::acquire(&[&to])?;
    let fs = paddock_server::storage::fs::real();
    let r = paddock_server::storage::zk_import::restore(&fs, file, &to)?;
    println!("restored {} into {}", file.display(), to.display());
    println!("  zxid            0x{:x}", r.last_zxid);
    println!("  znodes          {}", r.znodes);
    println!(
        "  sessions        {} open ({} ephemerals)",
        r.sessions, r.ephemerals
    );
    let verdict = match (r.digests_checked, r.digest_mismatches) {
        (0, _) => "no digest in the file",
        (_, 0) => "matches the backup's",
        _ => "DIFFERS from the backup's",
    };
    println!("  digest          {} ({verdict})", r.digest);
    println!("  written         {}", r.written.display());
    if r.digest_mismatches > 0 {
        bail!("the restored tree differs from what the backup's digest says");
    }
    Ok(())
}

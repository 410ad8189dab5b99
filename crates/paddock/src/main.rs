//! The `paddock` binary: one command, several subcommands.

mod admin;
mod argv;
mod backup;
mod cli;
mod client_props;
mod elect;
mod lock;
mod migrate;
mod status;

use anyhow::{bail, Context, Result};

/// jemalloc: the server allocates on its core task and frees on its log thread (and the other
/// way round) for every write; glibc's allocator spends a fifth of a loaded server's CPU on that
/// (arena locks, consolidation), jemalloc's thread caches and arenas a fraction of it.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (the symbol tikv-jemallocator's prefixed build looks
/// for). `background_thread`: freed memory is returned to the system by jemalloc's own thread,
/// not by whichever thread allocates next. After a restart that applied a long log, the
/// gigabytes it freed were purged about 10 s later inside the server's threads: a setData run
/// then had a 168-236 ms stall (max latency), none with this set (`bench/snapshot-p99.sh`).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true\0";
use paddock_server::config::Config;
use paddock_server::container_env;
use std::path::PathBuf;

const USAGE: &str = "usage: paddock <command> [args]

commands:
  server [-Dname=value ...] [zoo.cfg]   run a server (no file: standalone on 127.0.0.1:2181,
                                        data in ./paddock-data)
  purge <dataDir> [<dataLogDir>] [-n N]  keep the newest N (>= 3) snapshots and the logs they need
  import-zk <zk dataDir> [<zk dataLogDir>] --to <dataDir>
                                        a ZooKeeper data directory into a new Paddock one
  export-zk <dataDir> [<dataLogDir>] --to <zk dataDir>
                                        a stopped server's data into a ZooKeeper snapshot
  backup [-server host:port] [--digest user:pw] FILE
                                        a running server's tree, exact at one zxid, through its
                                        AdminServer (ZooKeeper's snapshot format)
  restore FILE --to <dataDir>           a new data directory from a backup
  log truncate <segment> <offset>       cut a damaged log segment at <offset> (loses what follows)
  log truncate-zxid <dataLogDir> <zxid> cut the log back to <zxid> (loses what follows)
  bench [run|memory|compare|workloads]  load generator and side-by-side benchmark (paddock bench --help)
  sim --seeds N [--seed S]              run the replication simulator (paddock sim --help)
  status [-server host:port,...] [--json]
                                        each server's mode, zxid and lag; exit 0 when a quorum serves
  admin <command> [name=value ...] [-server host:port,...] [--table] [--digest user:pw]
                                        run an AdminServer command (mntr, srvr, stat, dump, ...;
                                        `paddock admin list`) and print its JSON, or a table
  version                               print the version

  cli [-server host:port] [-timeout ms] [-r] [-waitforconnection] [cmd args]
                                        zkCli.sh-compatible shell (a command after the flags runs once)
  lock <path> --server hosts [--wait ms] [--signal SIG] [--grace ms] -- <command...>
                                        run a command while holding a lock; stop it if the lock is lost
  elect <path> --server hosts --id NAME --on-active CMD --on-standby CMD --fence CMD
        [--health CMD] [--session-timeout ms]
                                        active/standby failover controller (like Hadoop's ZKFC)

Every subcommand takes -server and --server alike; `paddock lock --help`, `paddock elect --help`.";

/// Logs go to stderr, filtered by `PADDOCK_LOG` (an `EnvFilter` directive, `info` by default);
/// `PADDOCK_LOG_FORMAT=json` writes one JSON object per line for log pipelines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PADDOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let json = std::env::var("PADDOCK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        fmt.json().flatten_event(true).init();
    } else {
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// `-Dname=value` properties, in the order given.
type Props = Vec<(String, String)>;

/// Splits `paddock server` arguments into `-D` properties and the optional config file.
fn server_args(args: &[String]) -> Result<(Props, Option<PathBuf>)> {
    let mut props = Vec::new();
    let mut file = None;
    for a in args {
        if let Some(p) = a.strip_prefix("-D") {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            props.push((k.to_owned(), v.to_owned()));
        } else if a.starts_with('-') {
            bail!("unknown option '{a}' for 'paddock server'\n\n{USAGE}");
        } else if file.is_some() {
            bail!("more than one config file given\n\n{USAGE}");
        } else {
            file = Some(PathBuf::from(a));
        }
    }
    Ok((props, file))
}

/// The configuration the ZooKeeper container image's variables describe, and the myid its
/// entrypoint would write when the data directory has none.
fn container_config(
    setup: container_env::Setup,
    myid: &std::path::Path,
    id: &str,
    props: &Props,
) -> Result<Config> {
    let cfg = match setup {
        container_env::Setup::File(f) => {
            tracing::info!(file = %f.display(), "configuration from ZOO_CONF_DIR");
            Config::load(Some(&f), props)
        }
        container_env::Setup::Generated { text, name } => {
            tracing::info!("configuration from the ZOO_* environment, as ZooKeeper's container image builds it");
            Config::load_text(Some((&name, &text)), props)
        }
    }
    .context("invalid configuration")?;
    if !myid.exists() {
        if let Some(dir) = myid.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(myid, format!("{id}\n"))
            .with_context(|| format!("cannot write {}", myid.display()))?;
    }
    Ok(cfg)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    match cmd.as_str() {
        "server" => {
            init_logging();
            let (props, file) = server_args(&args[1..])?;
            let cfg = match (&file, container_env::setup(&|k| std::env::var(k).ok())) {
                (None, Some((setup, myid, id))) => container_config(setup, &myid, &id, &props)?,
                _ => Config::load(file.as_deref(), &props).context("invalid configuration")?,
            };
            if let Some(krb5) = &cfg.krb5_conf {
                // Before any thread starts: the GSS-API library reads it from the environment.
                std::env::set_var("KRB5_CONFIG", krb5);
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(paddock_server::run(cfg))?;
            // Stopped by a signal, everything acknowledged on disk: exit without waiting
            // for the runtime's idle threads.
            std::process::exit(0)
        }
        "import-zk" => {
            init_logging();
            migrate::import_zk(&args[1..])
        }
        "export-zk" => {
            init_logging();
            migrate::export_zk(&args[1..])
        }
        "purge" => {
            init_logging();
            let mut dirs = Vec::new();
            let mut keep = 3usize;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                if a == "-n" {
                    keep = it
                        .next()
                        .context("-n needs a number")?
                        .parse()
                        .context("-n needs a number")?;
                } else {
                    dirs.push(PathBuf::from(a));
                }
            }
            let Some(data) = dirs.first() else {
                bail!("usage: paddock purge <dataDir> [<dataLogDir>] [-n N]")
            };
            let log = dirs.get(1).unwrap_or(data);
            let _locks = paddock_server::storage::dir_lock::DirLocks::acquire(&[data, log])?;
            let fs = paddock_server::storage::fs::real();
            let n = paddock_server::storage::purge::purge(&fs, data, log, keep)?;
            println!("deleted {} files", n.files);
            Ok(())
        }
        "log" => {
            init_logging();
            match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
                (Some("truncate"), Some(seg), Some(off)) => {
                    let off: u64 = off.parse().context("offset must be a number")?;
                    // <dataLogDir>/log/<segment>: the server locks <dataLogDir>.
                    let seg_path = std::path::Path::new(seg);
                    let data_log_dir = seg_path
                        .parent()
                        .and_then(|d| d.parent())
                        .filter(|d| !d.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."));
                    let _locks =
                        paddock_server::storage::dir_lock::DirLocks::acquire(&[data_log_dir])?;
                    let fs = paddock_server::storage::fs::real();
                    paddock_server::storage::txn_log::cut_at(&fs, std::path::Path::new(seg), off)?;
                    println!("cut {seg} at offset {off}");
                    Ok(())
                }
                (Some("truncate-zxid"), Some(dir), Some(z)) => {
                    let zxid = match z.strip_prefix("0x") {
                        Some(hex) => i64::from_str_radix(hex, 16),
                        None => z.parse(),
                    }
                    .context("zxid must be a number (0x for hex)")?;
                    let _locks = paddock_server::storage::dir_lock::DirLocks::acquire(&[
                        std::path::Path::new(dir),
                    ])?;
                    let fs = paddock_server::storage::fs::real();
                    let log_dir = paddock_server::storage::log_dir(std::path::Path::new(dir));
                    match paddock_server::storage::txn_log::truncate_to_zxid(&fs, &log_dir, zxid)? {
                        Some((seg, off)) => println!(
                            "log now ends at 0x{zxid:x} or before: {} offset {off}",
                            seg.display()
                        ),
                        None => println!("no log segment holds 0x{zxid:x} or earlier"),
                    }
                    Ok(())
                }
                _ => bail!(
                    "usage: paddock log truncate <segment> <offset>\n       paddock log truncate-zxid <dataLogDir> <zxid>"
                ),
            }
        }
        "version" | "--version" | "-V" => {
            println!(
                "paddock {} (ZooKeeper 3.8 protocol)",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        "bench" => {
            init_logging();
            // The Java client's properties (`-D` arguments, CLIENT_JVMFLAGS) secure the bench's
            // sessions as they do `paddock cli`'s: TLS with PEM files, SASL from a JAAS file.
            let (dprops, rest): (Vec<&String>, Vec<&String>) =
                args[1..].iter().partition(|a| a.starts_with("-D"));
            let props = client_props::collect(
                &dprops
                    .iter()
                    .filter_map(|a| client_props::parse(a))
                    .collect::<Vec<_>>(),
            );
            if let Some(tls) = paddock_client::TlsOptions::from_properties(&props)
                .map_err(|e| anyhow::anyhow!(e))?
            {
                paddock_bench::conn::use_tls(
                    tls.connector().map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
                );
            }
            if let Some(sasl) = paddock_client::SaslOptions::from_properties(&props)
                .map_err(|e| anyhow::anyhow!("SASL: {e}"))?
            {
                paddock_bench::conn::use_sasl(sasl);
            }
            let rest: Vec<String> = rest.into_iter().cloned().collect();
            paddock_bench::main(&argv::normalise(&rest))
        }
        "sim" => std::process::exit(paddock_zab::sim::cli::main(&args[1..])),
        "cli" => cli::main(&args[1..]),
        "status" => status::main(&args[1..]),
        "admin" => admin::main(&args[1..]),
        "backup" => backup::backup(&args[1..]),
        "restore" => {
            init_logging();
            backup::restore(&args[1..])
        }
        "lock" => {
            init_logging();
            lock::main(&args[1..])
        }
        "elect" => {
            init_logging();
            elect::main(&args[1..])
        }
        other => {
            eprintln!("unknown command '{other}'\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

//! The environment variables of the official ZooKeeper container image, so `paddock server`
//! drops into container and Kubernetes setups written for ZooKeeper.
//!
//! The image's entrypoint writes `$ZOO_CONF_DIR/zoo.cfg` from `ZOO_*` variables unless that
//! file exists, and `$ZOO_DATA_DIR/myid` from `ZOO_MY_ID` unless it exists. Paddock does the
//! same in memory when it is started without a zoo.cfg and any of these variables is set
//! (without any, it keeps its own default: standalone on 127.0.0.1:2181). Unset variables take
//! the image's defaults (`/data`, `/datalog`, tickTime 2000, initLimit 5, syncLimit 2, ...), as
//! the image's Dockerfile sets them.

use std::path::PathBuf;

/// The variables the image's entrypoint reads.
pub const VARIABLES: &[&str] = &[
    "ZOO_CONF_DIR",
    "ZOO_DATA_DIR",
    "ZOO_DATA_LOG_DIR",
    "ZOO_MY_ID",
    "ZOO_SERVERS",
    "ZOO_TICK_TIME",
    "ZOO_INIT_LIMIT",
    "ZOO_SYNC_LIMIT",
    "ZOO_AUTOPURGE_PURGEINTERVAL",
    "ZOO_AUTOPURGE_SNAPRETAINCOUNT",
    "ZOO_MAX_CLIENT_CNXNS",
    "ZOO_STANDALONE_ENABLED",
    "ZOO_ADMINSERVER_ENABLED",
    "ZOO_4LW_COMMANDS_WHITELIST",
    "ZOO_CFG_EXTRA",
];

/// What the environment says to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Setup {
    /// `$ZOO_CONF_DIR/zoo.cfg` exists: it is the configuration, as in the image.
    File(PathBuf),
    /// A configuration built from the variables.
    Generated {
        /// The zoo.cfg text the entrypoint would have written.
        text: String,
        /// Where it would have been written (for messages).
        name: String,
    },
}

/// The setup and the myid to write (`$ZOO_DATA_DIR/myid`, `ZOO_MY_ID` or 1) when the file is
/// missing; `None` when no `ZOO_*` variable is set.
pub fn setup(env: &dyn Fn(&str) -> Option<String>) -> Option<(Setup, PathBuf, String)> {
    if !VARIABLES.iter().any(|v| env(v).is_some()) {
        return None;
    }
    let var = |k: &str, default: &str| env(k).unwrap_or_else(|| default.to_owned());
    let conf_dir = PathBuf::from(var("ZOO_CONF_DIR", "/conf"));
    let data_dir = var("ZOO_DATA_DIR", "/data");
    let myid = (PathBuf::from(&data_dir).join("myid"), var("ZOO_MY_ID", "1"));
    let file = conf_dir.join("zoo.cfg");
    if file.is_file() {
        return Some((Setup::File(file), myid.0, myid.1));
    }
    let mut lines = vec![
        format!("dataDir={data_dir}"),
        format!("dataLogDir={}", var("ZOO_DATA_LOG_DIR", "/datalog")),
        format!("tickTime={}", var("ZOO_TICK_TIME", "2000")),
        format!("initLimit={}", var("ZOO_INIT_LIMIT", "5")),
        format!("syncLimit={}", var("ZOO_SYNC_LIMIT", "2")),
        format!(
            "autopurge.snapRetainCount={}",
            var("ZOO_AUTOPURGE_SNAPRETAINCOUNT", "3")
        ),
        format!(
            "autopurge.purgeInterval={}",
            var("ZOO_AUTOPURGE_PURGEINTERVAL", "0")
        ),
        format!("maxClientCnxns={}", var("ZOO_MAX_CLIENT_CNXNS", "60")),
        format!(
            "standaloneEnabled={}",
            var("ZOO_STANDALONE_ENABLED", "true")
        ),
        format!(
            "admin.enableServer={}",
            var("ZOO_ADMINSERVER_ENABLED", "true")
        ),
    ];
    // Space-separated, as the entrypoint splits them.
    let servers = var("ZOO_SERVERS", "server.1=localhost:2888:3888;2181");
    lines.extend(servers.split_whitespace().map(str::to_owned));
    if let Some(w) = env("ZOO_4LW_COMMANDS_WHITELIST") {
        lines.push(format!("4lw.commands.whitelist={w}"));
    }
    if let Some(extra) = env("ZOO_CFG_EXTRA") {
        lines.extend(extra.split_whitespace().map(str::to_owned));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Some((
        Setup::Generated {
            text,
            name: format!("{} (from the ZOO_* environment)", file.display()),
        },
        myid.0,
        myid.1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_set_keeps_paddocks_default() {
        assert_eq!(setup(&env(&[])), None);
    }

    #[test]
    fn the_entrypoints_zoo_cfg() {
        let (s, myid, id) = setup(&env(&[
            ("ZOO_CONF_DIR", "/nonexistent-conf"),
            ("ZOO_MY_ID", "2"),
            (
                "ZOO_SERVERS",
                "server.1=zk1:2888:3888;2181 server.2=zk2:2888:3888;2181",
            ),
            ("ZOO_4LW_COMMANDS_WHITELIST", "srvr,mntr"),
            (
                "ZOO_CFG_EXTRA",
                "metricsProvider.httpPort=7000 forceSync=yes",
            ),
        ]))
        .unwrap();
        assert_eq!((myid, id.as_str()), (PathBuf::from("/data/myid"), "2"));
        let Setup::Generated { text, .. } = s else {
            panic!("{s:?}")
        };
        for line in [
            "dataDir=/data",
            "dataLogDir=/datalog",
            "tickTime=2000",
            "initLimit=5",
            "syncLimit=2",
            "standaloneEnabled=true",
            "server.1=zk1:2888:3888;2181",
            "server.2=zk2:2888:3888;2181",
            "4lw.commands.whitelist=srvr,mntr",
            "forceSync=yes",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }

    #[test]
    fn an_existing_zoo_cfg_in_the_conf_dir_wins() {
        let dir = std::env::temp_dir().join(format!("paddock-zoo-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("zoo.cfg"), "clientPort=2181\n").unwrap();
        let d = dir.display().to_string();
        let (s, _, _) = setup(&env(&[("ZOO_CONF_DIR", &d)])).unwrap();
        assert_eq!(s, Setup::File(dir.join("zoo.cfg")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

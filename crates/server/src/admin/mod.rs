//! The AdminServer (ZooKeeper 3.8's HTTP command interface, `admin.*` keys) and the
//! Prometheus endpoint (`metricsProvider.*`): the command table here, HTTP in `http`. The
//! core renders each command (core/admin.rs).

mod backup;
mod console;
pub mod http;
mod restore;

/// One command: its names (the primary one first, as ZooKeeper lists them) and what it needs.
#[derive(Debug)]
pub struct Command {
    pub names: &'static [&'static str],
    /// Changes state or shows sessions, connections or watches: ADMIN on `/` only.
    pub sensitive: bool,
    /// Answered only while the server serves (ZooKeeper's `isServerRequired`).
    pub needs_server: bool,
}

const fn cmd(names: &'static [&'static str], sensitive: bool, needs_server: bool) -> Command {
    Command {
        names,
        sensitive,
        needs_server,
    }
}

/// Every command ZooKeeper 3.8's AdminServer has, under the same names.
pub const COMMANDS: &[Command] = &[
    cmd(&["configuration", "conf", "config"], false, true),
    cmd(&["connection_stat_reset", "crst"], true, true),
    cmd(&["connections", "cons"], true, true),
    cmd(&["dirs"], false, true),
    cmd(&["dump"], true, true),
    cmd(&["environment", "env", "envi"], false, false),
    cmd(&["get_trace_mask", "gtmk"], false, false),
    cmd(&["hash"], false, true),
    cmd(&["initial_configuration", "icfg"], false, true),
    cmd(&["is_read_only", "isro"], false, true),
    cmd(&["last_snapshot", "lsnp"], false, true),
    cmd(&["leader", "lead"], false, true),
    cmd(&["monitor", "mntr"], false, false),
    cmd(&["observer_connection_stat_reset", "orst"], true, true),
    cmd(&["observers", "obsr"], false, true),
    // ZooKeeper 3.9's restore: a POST whose body is a backup; needs ALL on `/`, which the
    // command checks itself (admin/restore.rs). Paddock's restores the whole ensemble.
    cmd(&["restore", "rest"], true, true),
    cmd(&["ruok"], false, true),
    cmd(&["server_stats", "srvr"], false, true),
    cmd(&["set_trace_mask", "stmk"], true, false),
    // ZooKeeper 3.9's backup: the tree in its snapshot format (admin/backup.rs). Needs ALL on
    // `/`, which the command checks itself.
    cmd(&["snapshot", "snap"], true, true),
    cmd(&["stat_reset", "srst"], true, true),
    cmd(&["stats", "stat"], true, true),
    cmd(&["system_properties", "sysp"], false, false),
    cmd(&["voting_view"], false, true),
    cmd(&["watch_summary", "wchs"], false, true),
    cmd(&["watches", "wchc"], true, true),
    cmd(&["watches_by_path", "wchp"], true, true),
    cmd(&["zabstate"], false, false),
    // Paddock's own: every member with its role, zxid, lag and last contact, as this
    // server knows them (all of them on the leader).
    cmd(&["members"], false, false),
    // Paddock's own: a planned leadership transfer (`?to=N`; without it, to the best voter;
    // on a follower, to itself). Changes who leads: ADMIN on / only.
    cmd(
        &["transfer_leadership", "transfer-leadership", "ydld"],
        true,
        false,
    ),
];

/// The command a name (primary or short) stands for.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for c in COMMANDS {
            for n in c.names {
                assert!(seen.insert(*n), "{n} twice");
                assert_eq!(find(n).unwrap().names[0], c.names[0]);
            }
        }
        assert!(find("nonexistent").is_none());
        assert!(find("dump").unwrap().sensitive);
        assert!(!find("mntr").unwrap().sensitive);
    }
}

//! ZooKeeper's dynamic configuration: the `server.N` lines and the version that
//! `/zookeeper/config` shows, and the configuration a reconfig request asks for, with the checks
//! and errors ZooKeeper 3.8's leader applies to it (PrepRequestProcessor), in its order.
//!
//! Nothing here changes a running ensemble; it is the model the reconfiguration is built on
//! (issue 18).

use crate::config::{parse_server, ServerSpec};
use paddock_proto::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::Write;

/// An ensemble's members and the version of their configuration: the zxid of the
/// reconfiguration that made it (0: the static one from zoo.cfg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynConfig {
    pub servers: BTreeMap<u64, ServerSpec>,
    pub version: i64,
}

/// Why a reconfig request is refused: the error its client gets and what the leader logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub why: String,
}

fn refuse(code: ErrorCode, why: impl Into<String>) -> Refusal {
    Refusal {
        code,
        why: why.into(),
    }
}

impl DynConfig {
    /// The configuration of these servers at `version`.
    pub fn new(servers: &[ServerSpec], version: i64) -> DynConfig {
        DynConfig {
            servers: servers.iter().map(|s| (s.id, s.clone())).collect(),
            version,
        }
    }

    /// Reads back what `render` wrote (`/zookeeper/config`'s data).
    pub fn parse(text: &str) -> Result<DynConfig, String> {
        let mut servers = BTreeMap::new();
        let mut version = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("'{line}' is not key=value"))?;
            if let Some(id) = k.strip_prefix("server.") {
                let s = parse_server(id, v)?;
                servers.insert(s.id, s);
            } else if k == "version" {
                version =
                    Some(i64::from_str_radix(v, 16).map_err(|_| format!("bad version '{v}'"))?);
            } else {
                return Err(format!("unexpected key '{k}'"));
            }
        }
        if servers.is_empty() {
            return Err("no server.N line".into());
        }
        Ok(DynConfig {
            servers,
            version: version.ok_or("no version line")?,
        })
    }

    /// Observers, ascending.
    pub fn observers(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|s| s.observer)
            .map(|s| s.id)
            .collect()
    }

    /// Whether `next` changes nothing but observers: the same voters at the same addresses.
    pub fn same_voters(&self, next: &DynConfig) -> bool {
        let voters = |c: &DynConfig| -> Vec<ServerSpec> {
            c.servers
                .values()
                .filter(|s| !s.observer)
                .cloned()
                .collect()
        };
        voters(self) == voters(next)
    }

    /// As the log record of a reconfiguration that installs it (at its version): how the
    /// replication core is handed a configuration it did not log (a snapshot's).
    pub fn as_payload(&self) -> bytes::Bytes {
        crate::replica::txn_payload(&paddock_tree::Txn {
            session_id: 0,
            cxid: 0,
            zxid: self.version,
            time: 0,
            op: paddock_tree::TxnOp::Reconfig {
                config: self.render().into_bytes(),
            },
        })
    }

    /// The members as the replication core counts them.
    pub fn membership(&self) -> paddock_zab::Membership {
        paddock_zab::Membership {
            voters: self.voters(),
            observers: self.observers(),
        }
    }

    /// Voting members, ascending.
    pub fn voters(&self) -> Vec<u64> {
        self.servers
            .values()
            .filter(|s| !s.observer)
            .map(|s| s.id)
            .collect()
    }

    /// `/zookeeper/config`'s data, as ZooKeeper writes it: one `server.N=` line per member in
    /// id order, `host:quorumPort:electionPort:participant|observer`, then `;host:port` when
    /// the member has a client address, and `version=` in hex without a prefix.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in self.servers.values() {
            let role = if s.observer {
                "observer"
            } else {
                "participant"
            };
            let _ = write!(
                out,
                "server.{}={}:{}:{}:{}",
                s.id, s.host, s.quorum_port, s.election_port, role
            );
            if let Some((h, p)) = &s.client_addr {
                let _ = write!(out, ";{h}:{p}");
            }
            out.push('\n');
        }
        let _ = write!(out, "version={:x}", self.version);
        out
    }

    /// The configuration a reconfig request asks for, at `version` (the zxid its transaction
    /// will take), or why it is refused. `joining` and `leaving` (comma lists of
    /// `server.N=spec;client` and of ids) change this configuration; `new_members` (lines or a
    /// comma list of `server.N=` entries) replaces it. `standalone_enabled`: ZooKeeper's
    /// `standaloneEnabled`, under which a configuration needs at least two voters.
    pub fn reconfigured(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        version: i64,
        standalone_enabled: bool,
    ) -> Result<DynConfig, Refusal> {
        let servers = match new_members {
            Some(m) => parse_members(m)?,
            None => self.incremental(joining, leaving)?,
        };
        let next = DynConfig { servers, version };
        let voters = next.voters().len();
        if standalone_enabled && voters < 2 {
            return Err(refuse(
                ErrorCode::BadArguments,
                "Reconfig failed - new configuration must include at least 2 followers",
            ));
        }
        if voters < 1 {
            return Err(refuse(
                ErrorCode::BadArguments,
                "Reconfig failed - new configuration must include at least 1 follower",
            ));
        }
        Ok(next)
    }

    fn incremental(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
    ) -> Result<BTreeMap<u64, ServerSpec>, Refusal> {
        let mut next = self.servers.clone();
        for id in leaving.into_iter().flat_map(split_list) {
            let id: u64 = id.parse().map_err(|_| {
                refuse(
                    ErrorCode::BadArguments,
                    format!("'{id}' is not a server id"),
                )
            })?;
            next.remove(&id);
        }
        for joiner in joining.into_iter().flat_map(split_list) {
            let parts: Vec<&str> = joiner.split('=').filter(|p| !p.is_empty()).collect();
            let [key, spec] = parts[..] else {
                return Err(refuse(
                    ErrorCode::BadArguments,
                    "Wrong format of server string",
                ));
            };
            let id = key.rsplit('.').next().unwrap_or(key).trim();
            let s = parse_server(id, spec)
                .map_err(|_| refuse(ErrorCode::BadArguments, "Reconfiguration failed"))?;
            if s.client_addr.is_none() {
                return Err(refuse(
                    ErrorCode::BadArguments,
                    "Wrong format of server string - each server should have at least 3 ports specified",
                ));
            }
            if let Some(other) = next.values().find(|o| o.id != s.id && shares_a_port(o, &s)) {
                return Err(refuse(
                    ErrorCode::BadArguments,
                    format!(
                        "Reconfiguration failed: server.{} uses an address of server.{}",
                        s.id, other.id
                    ),
                ));
            }
            next.insert(s.id, s);
        }
        Ok(next)
    }
}

/// A comma list, as ZooKeeper's StringUtils.split: trimmed, empty parts dropped.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Whether two members would listen on the same quorum or election address.
fn shares_a_port(a: &ServerSpec, b: &ServerSpec) -> bool {
    let ports = |s: &ServerSpec| [s.quorum_port, s.election_port];
    a.host == b.host && ports(a).iter().any(|p| ports(b).contains(p))
}

/// A non-incremental member list: `server.N=` entries separated by newlines or commas, as a
/// properties file; any other key is refused.
fn parse_members(m: &str) -> Result<BTreeMap<u64, ServerSpec>, Refusal> {
    let mut out = BTreeMap::new();
    for line in m.split([',', '\n']).map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| refuse(ErrorCode::BadArguments, why);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("'{line}' is not key=value")))?;
        let id = k
            .trim()
            .strip_prefix("server.")
            .ok_or_else(|| bad(format!("'{}' is not a server.N key", k.trim())))?;
        let s = parse_server(id, v).map_err(|e| bad(format!("{}: {e}", k.trim())))?;
        out.insert(s.id, s);
    }
    Ok(out)
}

/// Writes a committed configuration as ZooKeeper does once reconfiguration is on: its server
/// lines (no version line: the name carries it) to `<zoo.cfg>.dynamic.<version in hex>` next
/// to `owner`, then `owner`'s `dynamicConfigFile=` line pointed at it, each file replaced
/// whole (written aside, synced, renamed) so that a crash leaves the old pair or the new.
/// A restart then starts from this configuration even before its data is read.
pub fn write_committed(
    owner: &std::path::Path,
    c: &DynConfig,
) -> std::io::Result<std::path::PathBuf> {
    let name = owner
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zoo.cfg".into());
    let path = owner.with_file_name(format!("{name}.dynamic.{:x}", c.version));
    let rendered = c.render();
    let servers: Vec<&str> = rendered
        .lines()
        .filter(|l| !l.starts_with("version="))
        .collect();
    replace_file(&path, &(servers.join("\n") + "\n"))?;
    let text = std::fs::read_to_string(owner)?;
    let mut pointed = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.trim_start().starts_with("dynamicConfigFile") {
            out.push_str(&format!("dynamicConfigFile={}", path.display()));
            pointed = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !pointed {
        out.push_str(&format!("dynamicConfigFile={}\n", path.display()));
    }
    replace_file(owner, &out)?;
    Ok(path)
}

/// The file in the data directory that keeps the last configuration this server knows
/// committed, whatever zoo.cfg says (`write_known`, `read_known`).
pub const KNOWN_CONFIG: &str = "committedConfig";

/// Records a configuration this server learned committed in its data directory, synced
/// before the server acts on it. A server that voted under a configuration must come back
/// knowing it: after a restart its snapshot may be older, and its log only says what was
/// proposed, and an election among servers that all forgot it could pick a leader whose
/// history lacks what that configuration's voters committed.
pub fn write_known(data_dir: &std::path::Path, c: &DynConfig) -> std::io::Result<()> {
    replace_file(&data_dir.join(KNOWN_CONFIG), &(c.render() + "\n"))
}

/// The configuration `write_known` recorded, if any (one that does not read is reported and
/// ignored: the snapshot's and zoo.cfg's still count).
pub fn read_known(data_dir: &std::path::Path) -> Option<DynConfig> {
    let path = data_dir.join(KNOWN_CONFIG);
    let text = std::fs::read_to_string(&path).ok()?;
    match DynConfig::parse(&text) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "the recorded configuration does not read; ignored");
            None
        }
    }
}

/// Replaces `path` with `text`: written to a file beside it, synced, renamed over it, and
/// the directory synced.
fn replace_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("paddock-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The configuration a reconfiguration's log record installs, if it is one.
pub fn from_payload(payload: &[u8]) -> Option<DynConfig> {
    let txn = payload.get(crate::storage::txn_log::RECORD_HEADER..)?;
    if !paddock_tree::codec::is_reconfig(txn) {
        return None;
    }
    match paddock_tree::codec::decode_txn(txn).ok()?.op {
        paddock_tree::TxnOp::Reconfig { config } => {
            DynConfig::parse(&String::from_utf8_lossy(&config)).ok()
        }
        _ => None,
    }
}

/// How the replication core tells a reconfiguration among the entries it logs: a payload is
/// a log record (header, then the encoded transaction); one byte says whether it is a
/// reconfig, and only those are decoded and parsed.
pub fn membership_reader() -> paddock_zab::MembershipReader {
    paddock_zab::MembershipReader::new(|payload| from_payload(payload).map(|c| c.membership()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> DynConfig {
        let s = |id: u64, q: u16, e: u16| ServerSpec {
            id,
            host: "127.0.0.1".into(),
            quorum_port: q,
            election_port: e,
            observer: false,
            client_addr: None,
        };
        DynConfig::new(
            &[s(1, 56047, 53571), s(2, 33351, 42729), s(3, 39223, 46095)],
            0x1_0000_0000,
        )
    }

    // Every expected string below is what ZooKeeper 3.8.0's leader answered the same request
    // with (a three-server ensemble from Debian's package, its server lines as `three()`).

    #[test]
    fn parses_what_it_renders() {
        let c = three()
            .reconfigured(
                Some("server.100=0.0.0.0:40001:40002:observer;0.0.0.0:40003"),
                None,
                None,
                0x1_0000_0005,
                true,
            )
            .unwrap();
        assert_eq!(DynConfig::parse(&c.render()), Ok(c.clone()));
        assert!(three().same_voters(&c) && c.observers() == vec![100]);
        assert!(DynConfig::parse("").is_err());
        assert!(
            DynConfig::parse("server.1=127.0.0.1:1:2").is_err(),
            "no version"
        );
    }

    #[test]
    fn renders_as_zookeeper() {
        assert_eq!(
            three().render(),
            "server.1=127.0.0.1:56047:53571:participant\n\
             server.2=127.0.0.1:33351:42729:participant\n\
             server.3=127.0.0.1:39223:46095:participant\n\
             version=100000000"
        );
    }

    #[test]
    fn incremental_joins_and_leaves() {
        let c = three();
        let joining = "server.100=0.0.0.0:40001:40002:observer;0.0.0.0:40003";
        let added = c
            .reconfigured(Some(joining), None, None, 0x1_0000_0005, true)
            .unwrap();
        assert_eq!(
            added.render(),
            "server.1=127.0.0.1:56047:53571:participant\n\
             server.2=127.0.0.1:33351:42729:participant\n\
             server.3=127.0.0.1:39223:46095:participant\n\
             server.100=0.0.0.0:40001:40002:observer;0.0.0.0:40003\n\
             version=100000005"
        );
        let removed = added
            .reconfigured(None, Some("100"), None, 0x1_0000_0006, true)
            .unwrap();
        assert_eq!(removed.servers, c.servers);
        let voter = c
            .reconfigured(
                Some("server.4=127.0.0.1:40011:40012:participant;40013"),
                None,
                None,
                0x1_0000_0008,
                true,
            )
            .unwrap();
        assert!(voter
            .render()
            .contains("server.4=127.0.0.1:40011:40012:participant;0.0.0.0:40013\n"));
        assert_eq!(voter.voters(), vec![1, 2, 3, 4]);
        let without_3 = voter
            .reconfigured(None, Some("3"), None, 0x1_0000_0009, true)
            .unwrap();
        assert_eq!(without_3.voters(), vec![1, 2, 4]);
    }

    #[test]
    fn refusals_as_zookeeper() {
        let c = three();
        let code = |j: Option<&str>, l: Option<&str>, m: Option<&str>| {
            c.reconfigured(j, l, m, 9, true)
                .map(|_| ())
                .map_err(|r| r.code)
        };
        let bad = Err(ErrorCode::BadArguments);
        assert_eq!(code(Some("some thing"), None, None), bad);
        // A joiner needs its client port too.
        assert_eq!(
            code(
                Some("server.4=127.0.0.1:40011:40012:participant"),
                None,
                None
            ),
            bad
        );
        assert_eq!(
            code(Some("server.4=127.0.0.1:x:1:participant;5"), None, None),
            bad
        );
        // Another member's quorum port.
        assert_eq!(
            code(Some("server.4=127.0.0.1:56047:1:participant;5"), None, None),
            bad
        );
        assert_eq!(code(None, Some("one"), None), bad);
        // Fewer than two voters while standaloneEnabled (ZooKeeper's default).
        assert_eq!(code(None, Some("1,2"), None), bad);
        assert_eq!(
            code(
                None,
                None,
                Some("server.1=127.0.0.1:56047:53571:participant;60407")
            ),
            bad
        );
        assert!(c.reconfigured(None, Some("1,2"), None, 9, false).is_ok());
        assert_eq!(code(None, None, Some("weight.1=2")), bad);
        // The joiner ZooKeeper's kazoo test uses passes (its refusal is the ACL's).
        assert_eq!(
            code(
                Some("server.999=0.0.0.0:1234:2345:observer;3456"),
                None,
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn non_incremental_takes_lines_or_commas() {
        let c = three();
        let m = "server.1=127.0.0.1:56047:53571:participant;2181,\
                 server.2=127.0.0.1:33351:42729:participant;2182";
        let next = c.reconfigured(None, None, Some(m), 7, true).unwrap();
        assert_eq!(next.voters(), vec![1, 2]);
        let lines = m.replace(',', "\n");
        assert_eq!(c.reconfigured(None, None, Some(&lines), 7, true), Ok(next));
    }

    #[test]
    fn the_replication_core_reads_a_reconfig_record_and_nothing_else() {
        let c = three()
            .reconfigured(
                Some("server.4=127.0.0.4:1:2:observer;127.0.0.4:3"),
                None,
                None,
                0x2_0000_0007,
                true,
            )
            .unwrap();
        let payload = c.as_payload();
        assert_eq!(from_payload(&payload), Some(c.clone()));
        let m = membership_reader().read(&payload).expect("a reconfig");
        assert_eq!((m.voters, m.observers), (vec![1, 2, 3], vec![4]));
        let create = crate::replica::txn_payload(&paddock_tree::Txn {
            session_id: 1,
            cxid: 1,
            zxid: 5,
            time: 0,
            op: paddock_tree::TxnOp::Error {
                err: paddock_proto::ErrorCode::NoNode,
            },
        });
        assert_eq!(membership_reader().read(&create), None);
        assert_eq!(membership_reader().read(b"short"), None);
    }

    #[test]
    fn a_committed_configuration_is_written_next_to_zoo_cfg() {
        let dir = std::env::temp_dir().join(format!("paddock-dynfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let owner = dir.join("zoo.cfg");
        let first = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(&first, "server.1=127.0.0.1:56047:53571:participant\n").unwrap();
        std::fs::write(
            &owner,
            format!(
                "tickTime=2000\nclientPort=2181\ndynamicConfigFile={}\nreconfigEnabled=true\n",
                first.display()
            ),
        )
        .unwrap();
        let c = three()
            .reconfigured(None, Some("3"), None, 0x3_0000_00ab, true)
            .unwrap();
        let path = write_committed(&owner, &c).unwrap();
        assert_eq!(path, dir.join("zoo.cfg.dynamic.3000000ab"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains("version"));
        let cfg = std::fs::read_to_string(&owner).unwrap();
        assert_eq!(
            cfg,
            format!(
                "tickTime=2000\nclientPort=2181\ndynamicConfigFile={}\nreconfigEnabled=true\n",
                path.display()
            )
        );
        // What a restart reads: the same members, at the same version.
        let loaded = crate::config::Config::load(Some(&owner), &[]).unwrap();
        assert_eq!(loaded.config_version, 0x3_0000_00ab);
        assert_eq!(loaded.servers.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Configuration in ZooKeeper's zoo.cfg format, plus `-Dname=value` properties with ZooKeeper's
//! Java property names (`zookeeper.X` is the zoo.cfg key `X`).
//!
//! Keys Paddock does not implement are warned about once and ignored, whatever their value:
//! real clients' test harnesses pass many of them. An implemented key with a bad value is an
//! error naming its line, and so is every security key (TLS, SASL, authentication providers,
//! auth enforcement, audit) that Paddock does not implement yet: a server asked to be secured
//! must not start open (see [`security_refusal`]).
//!
//! Secrets never reach a log line or an error: values of keys that look like passwords or
//! secrets, `superDigest` and JAAS content are shown masked ([`shown_value`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// A configuration problem, with where it came from.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: {key}: {msg}", place(source_name, *line))]
    BadValue {
        source_name: String,
        line: usize,
        key: String,
        msg: String,
    },
    /// A security setting Paddock cannot honour yet: starting without it would fail open.
    #[error("{}: {key}: {why}; Paddock refuses to start rather than run without it", place(source_name, *line))]
    Unsupported {
        source_name: String,
        line: usize,
        key: String,
        why: String,
    },
    #[error("cannot read {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// `file:line`, or the `-D` property alone (line 0).
fn place(source_name: &str, line: usize) -> String {
    if line == 0 {
        source_name.to_owned()
    } else {
        format!("{source_name}:{line}")
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone)]
struct Origin {
    source_name: String,
    line: usize,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub id: u64,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    pub client_addr: Option<(String, u16)>,
}

/// This server's place in its ensemble.
#[derive(Debug, Clone)]
pub struct Membership {
    pub me: ServerSpec,
    pub voters: Vec<u64>,
    pub observers: Vec<u64>,
    pub servers: Vec<ServerSpec>,
}

impl Membership {
    /// A server without `server.N` lines: the one voter (id 1, as ZooKeeper's standalone
    /// session ids carry) of an ensemble with no peer ports.
    pub fn standalone() -> Membership {
        let me = ServerSpec {
            id: 1,
            host: "127.0.0.1".into(),
            quorum_port: 0,
            election_port: 0,
            observer: false,
            client_addr: None,
        };
        Membership {
            voters: vec![1],
            observers: Vec::new(),
            servers: vec![me.clone()],
            me,
        }
    }
}

/// How a new session's password is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPasswords {
    /// 16 bytes from a CSPRNG, replicated with the session (the default): knowing a session's
    /// id, which any reader of an ephemeral node's Stat does, is not enough to take it over.
    Random,
    /// ZooKeeper's derivation from the session id (`java.util.Random(id ^ constant)`): for an
    /// ensemble that must hand out the passwords ZooKeeper would (migration).
    Derived,
}

/// A password from the configuration. It never prints its value (`Debug` shows it masked), so
/// no log line or error can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that needs it (opening a store).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

/// A keystore or truststore as ZooKeeper's `ssl.keyStore.*` / `ssl.trustStore.*` keys name it.
#[derive(Debug, Clone, Default)]
pub struct StoreSpec {
    pub location: Option<PathBuf>,
    pub password: Option<Secret>,
    pub password_path: Option<PathBuf>,
    /// `type`: JKS, PKCS12 or PEM; from the file name when unset.
    pub kind: Option<String>,
}

/// `ssl.clientAuth`: whether clients must show a certificate the truststore vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    /// ZooKeeper's default.
    #[default]
    Need,
}

/// The keys a TLS endpoint is made of, shared by the client port (`ssl.*`) and the quorum
/// ports (`ssl.quorum.*`).
#[derive(Debug, Clone)]
pub struct TlsKeys {
    /// `ssl` or `ssl.quorum`: where these came from, so an error names the right key.
    pub prefix: &'static str,
    pub key_store: StoreSpec,
    pub trust_store: StoreSpec,
    pub client_auth: ClientAuth,
    /// `<prefix>.protocol`.
    pub protocol: Option<String>,
    /// `<prefix>.enabledProtocols`.
    pub enabled_protocols: Option<Vec<String>>,
    /// `<prefix>.ciphersuites`.
    pub ciphersuites: Option<Vec<String>>,
    /// `<prefix>.hostnameVerification`: only the quorum acts on it (a client's host is never
    /// checked by the server, as in ZooKeeper).
    pub hostname_verification: bool,
}

impl TlsKeys {
    pub fn new(prefix: &'static str) -> TlsKeys {
        TlsKeys {
            prefix,
            key_store: StoreSpec::default(),
            trust_store: StoreSpec::default(),
            client_auth: ClientAuth::default(),
            protocol: None,
            enabled_protocols: None,
            ciphersuites: None,
            hostname_verification: true,
        }
    }

    /// Reads one key below the prefix (`keyStore.location`, `clientAuth`, ...); `Ok(false)`
    /// when it is not one of these keys.
    fn set(&mut self, part: &str, v: &str) -> Result<bool, String> {
        match part {
            "clientAuth" => {
                self.client_auth = match v.trim().to_ascii_lowercase().as_str() {
                    "none" => ClientAuth::None,
                    "want" => ClientAuth::Want,
                    "need" | "" => ClientAuth::Need,
                    _ => return Err(format!("'{v}' is not none, want or need")),
                }
            }
            "protocol" => self.protocol = Some(v.trim().to_owned()),
            "enabledProtocols" => self.enabled_protocols = Some(list(v)),
            "ciphersuites" => self.ciphersuites = Some(list(v)),
            "hostnameVerification" => self.hostname_verification = parse_bool(v)?,
            "handshakeDetectionTimeoutMillis" => {
                parse_num::<u64>(v)?;
            }
            // Refused unless false (security_refusal).
            "crl" | "ocsp" => {}
            _ => {
                let (store, part) = if let Some(p) = part.strip_prefix("keyStore.") {
                    (&mut self.key_store, p)
                } else if let Some(p) = part.strip_prefix("trustStore.") {
                    (&mut self.trust_store, p)
                } else {
                    return Ok(false);
                };
                match part {
                    "location" => store.location = Some(PathBuf::from(v.trim())),
                    "password" => store.password = Some(Secret::new(v)),
                    "passwordPath" => store.password_path = Some(PathBuf::from(v.trim())),
                    "type" => store.kind = Some(v.trim().to_owned()),
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }
}

/// TLS for clients: the secure client port, port unification, and the `ssl.*` keys.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// `secureClientPort` (0 or unset: none).
    pub secure_port: u16,
    /// `secureClientPortAddress` (else `clientPortAddress`'s address).
    pub secure_address: Option<IpAddr>,
    /// `client.portUnification`: the plaintext client port also takes TLS.
    pub port_unification: bool,
    /// `client.certReload`: reload the stores when their files change.
    pub cert_reload: bool,
    pub keys: TlsKeys,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            secure_port: 0,
            secure_address: None,
            port_unification: false,
            cert_reload: false,
            keys: TlsKeys::new("ssl"),
        }
    }
}

impl ClientTls {
    /// Whether any client connection may use TLS.
    pub fn wanted(&self) -> bool {
        self.secure_port != 0 || self.port_unification
    }
}

/// The AdminServer: ZooKeeper 3.8's `admin.*` keys, plus `admin.trustedProxies`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `admin.enableServer` (ZooKeeper's default: on).
    pub enabled: bool,
    /// `admin.serverAddress`: 127.0.0.1 unless told otherwise (ZooKeeper listens on every
    /// interface; an admin port open to the network is a choice an operator should make).
    pub address: IpAddr,
    /// `admin.serverPort` (8080).
    pub port: u16,
    /// `admin.commandURL` (`/commands`).
    pub command_url: String,
    /// `admin.idleTimeout` in milliseconds (30000): an idle HTTP connection is closed.
    pub idle_timeout_ms: u64,
    /// `admin.forceHttps`: HTTPS only, with the `ssl.quorum.*` keystore.
    pub force_https: bool,
    /// `admin.portUnification`: HTTPS and HTTP on the same port.
    pub port_unification: bool,
    /// `admin.trustedProxies`: addresses whose `X-Forwarded-For` is believed (ZooKeeper
    /// believes anyone's: CVE-2024-51504). Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// `admin.snapshot.enabled` and `admin.restore.enabled` (ZooKeeper 3.9's; on): the
    /// `snapshot` command that streams a backup, and `restore`.
    pub snapshot_enabled: bool,
    pub restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS` (300000): at most one `snapshot` (and one `restore`)
    /// per interval.
    pub rate_limit_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            command_url: "/commands".into(),
            idle_timeout_ms: 30_000,
            force_https: false,
            port_unification: false,
            trusted_proxies: Vec::new(),
            snapshot_enabled: true,
            restore_enabled: true,
            rate_limit_ms: 300_000,
        }
    }
}

/// The Prometheus endpoint: ZooKeeper's `metricsProvider.*` keys.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `metricsProvider.className` names ZooKeeper's PrometheusMetricsProvider.
    pub prometheus: bool,
    /// `metricsProvider.httpHost` (ZooKeeper's default: 0.0.0.0).
    pub host: IpAddr,
    /// `metricsProvider.httpPort` (7000).
    pub port: u16,
    /// `metricsProvider.exportJvmInfo`: here the process's own figures (`process_*`), which
    /// is what stands in for the JVM's.
    pub export_process_info: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            prometheus: false,
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 7000,
            export_process_info: true,
        }
    }
}

/// ZooKeeper's Prometheus provider class, as `metricsProvider.className` names it.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// TLS between servers: `sslQuorum`, `portUnification` (on the quorum and election ports)
/// and the `ssl.quorum.*` keys.
#[derive(Debug, Clone)]
pub struct QuorumTls {
    /// `sslQuorum`: this server dials its peers with TLS, and takes TLS from them.
    pub ssl: bool,
    /// `portUnification`: the peer ports take TLS and plaintext alike, told apart by the
    /// first byte: ZooKeeper's way to move an ensemble to TLS by rolling restarts.
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`.
    pub reload: bool,
    pub keys: TlsKeys,
}

impl Default for QuorumTls {
    fn default() -> Self {
        QuorumTls {
            ssl: false,
            port_unification: false,
            reload: false,
            keys: TlsKeys::new("ssl.quorum"),
        }
    }
}

impl QuorumTls {
    /// Whether any peer connection may use TLS.
    pub fn wanted(&self) -> bool {
        self.ssl || self.port_unification
    }
}

/// Kerberos settings that shape a client's identity, as ZooKeeper's SaslServerCallbackHandler
/// builds it (`kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`).
#[derive(Debug, Clone, Copy, Default)]
pub struct KerberosNames {
    pub remove_host: bool,
    pub remove_realm: bool,
}

/// SASL between servers (`quorum.auth.*`): DIGEST-MD5 with the users and credentials of two
/// sections of the JAAS file.
#[derive(Debug, Clone)]
pub struct QuorumSasl {
    /// `quorum.auth.enableSasl`: this server authenticates when it dials a peer, and
    /// authenticates peers that dial it with SASL.
    pub enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: a peer dialled must authenticate too (else a peer
    /// without SASL is still dialled).
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: a peer dialling in without SASL is refused.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section with this server's credentials.
    pub learner_context: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section with the peers' users.
    pub server_context: String,
    /// `quorum.auth.kerberos.servicePrincipal`: the principal a server asks a ticket for when
    /// it dials a peer, `_HOST` standing for that peer's host.
    pub service_principal: String,
}

impl Default for QuorumSasl {
    fn default() -> Self {
        QuorumSasl {
            enabled: false,
            learner_require: false,
            server_require: false,
            learner_context: "QuorumLearner".into(),
            server_context: "QuorumServer".into(),
            service_principal: "zkquorum/localhost".into(),
        }
    }
}

/// The settings Paddock acts on.
#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    pub max_client_cnxns: usize,
    /// `maxCnxns`: client connections of the whole server (0: no limit).
    pub max_cnxns: usize,
    /// `clientPortListenBacklog`: connections the kernel queues for the client ports until
    /// they are accepted; -1 for this server's default.
    pub client_port_listen_backlog: i32,
    /// `sessionPasswords`: how new sessions get their password.
    pub session_passwords: SessionPasswords,
    /// `linearizableReads` (Paddock's own): every read this server answers is linearizable
    /// (a sync before it, batched by the leader's heartbeats); off by default, as in
    /// ZooKeeper, where reads may be stale until a `sync`.
    pub linearizable_reads: bool,
    /// `directReads` (Paddock's own, on by default): a connection's task answers a read
    /// itself when nothing of its session waits in the core (crate::read_path); off, every
    /// read goes through the core task.
    pub direct_reads: bool,
    /// `localSessionsEnabled`: new sessions live on the server they connected to alone,
    /// created and closed without a transaction (ensembles only, as in ZooKeeper).
    pub local_sessions: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an ephemeral node
    /// becomes a global one first; off, the create fails with EPHEMERALONLOCALSESSION.
    pub local_sessions_upgrading: bool,
    /// `zxidCounterBits` (Paddock's own, for tests): the bits of a zxid's counter the leader
    /// uses before it rolls the ensemble over to the next epoch; 32, all of them, by default.
    pub zxid_counter_bits: u32,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    /// `None` means every command.
    pub four_letter_whitelist: Option<Vec<String>>,
    pub extended_types: bool,
    pub enforce_quota: bool,
    pub skip_acl: bool,
    pub reconfig_enabled: bool,
    pub read_only_mode: bool,
    pub force_sync: bool,
    pub max_buffer: usize,
    /// `largeRequestThreshold`: requests longer than this share `largeRequestMaxBytes`
    /// (`None`: ZooKeeper's -1, no limit).
    pub large_request_threshold: Option<usize>,
    /// `largeRequestMaxBytes`: bytes of large requests in flight at once (100 MiB).
    pub large_request_max_bytes: usize,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u64,
    pub container_max_never_used_ms: u64,
    /// `user:base64` digest that grants `super`.
    pub super_digest: Option<String>,
    /// The members: `server.N` lines of zoo.cfg, or of its `dynamicConfigFile`.
    pub servers: Vec<ServerSpec>,
    /// The version of that configuration: the hex suffix of the `dynamicConfigFile`'s name
    /// (`zoo.cfg.dynamic.100000000`), as ZooKeeper reads it; 0 for zoo.cfg's own lines.
    pub config_version: i64,
    /// The zoo.cfg whose `dynamicConfigFile` named the members: a committed reconfiguration
    /// is written next to it as `<zoo.cfg>.dynamic.<version>`, and its line points there
    /// (dynfile.rs). None without a `dynamicConfigFile`, or without a file.
    pub dynamic_config_owner: Option<PathBuf>,
    pub peer_type_observer: bool,
    pub standalone_enabled: bool,
    pub snap_count: u64,
    /// A snapshot is also taken after this much log (KiB) since the last; <= 0 turns it off.
    pub snap_size_limit_kb: i64,
    /// Committed transactions a leader keeps in memory to bring learners up to date by DIFF
    /// (ZooKeeper's commitLogCount).
    pub commit_log_count: usize,
    /// A learner further behind than the in-memory window is synced from the on-disk log
    /// when this is above 0, else by snapshot (ZooKeeper's snapshotSizeFactor).
    pub snapshot_size_factor: f64,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval: u32,
    pub global_outstanding_limit: usize,
    /// TLS for client connections.
    pub client_tls: ClientTls,
    /// TLS between servers.
    pub quorum_tls: QuorumTls,
    /// SASL between servers.
    pub quorum_sasl: QuorumSasl,
    /// `kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`.
    pub kerberos_names: KerberosNames,
    /// `zookeeper.security.auth_to_local`: how a Kerberos principal gets its short name.
    pub auth_to_local: Arc<crate::auth_to_local::AuthToLocal>,
    /// `java.security.krb5.conf`: the Kerberos configuration (`KRB5_CONFIG` for the GSS-API
    /// library; `paddock server` sets it before anything starts).
    pub krb5_conf: Option<PathBuf>,
    /// `java.security.auth.login.config`: the JAAS file with the SASL users.
    pub jaas_config: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: its section for the server (`Server`).
    pub jaas_section: String,
    /// An `authProvider.N` names ZooKeeper's SASLAuthenticationProvider: `sasl` ACLs are valid.
    pub sasl_acls: bool,
    /// `enforce.auth.schemes` when `enforce.auth.enabled`, plus `sasl` for
    /// `sessionRequireClientSASLAuth`: a connection must hold an identity of one of them
    /// before any request but auth and SASL (empty: no enforcement).
    pub enforce_auth_schemes: Vec<String>,
    /// An `authProvider.N` names ZooKeeper's X509AuthenticationProvider: a TLS client's
    /// certificate subject is its `x509` identity, and `x509` ACLs are valid.
    pub x509_identities: bool,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the subject that is also `super`.
    pub x509_super_user: Option<String>,
    /// `audit.enable`: the audit log, where it goes and how it rotates (`audit.file`,
    /// `audit.maxFileSize`, `audit.maxBackupIndex`: Paddock's keys; ZooKeeper sets these in
    /// its log4j configuration).
    pub audit: Option<crate::audit::AuditConfig>,
    /// `zookeeper.superUser`: the SASL user who is also `super`.
    pub sasl_super_user: Option<String>,
    /// `zookeeper.allowSaslFailedClients`: a failed SASL exchange leaves the connection open
    /// (unless sasl is enforced), as in ZooKeeper.
    pub allow_sasl_failed: bool,
    /// Every key/value given, for `conf`, secrets masked ([`shown_value`]).
    pub raw: BTreeMap<String, String>,
    /// The settings as given, in order, secrets masked: the AdminServer's
    /// `initial_configuration`.
    pub initial: Vec<(String, String)>,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time: 2000,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::from("paddock-data"),
            data_log_dir: PathBuf::from("paddock-data"),
            client_port: 2181,
            client_port_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_client_cnxns: 60,
            max_cnxns: 0,
            client_port_listen_backlog: -1,
            session_passwords: SessionPasswords::Random,
            zxid_counter_bits: 32,
            linearizable_reads: false,
            direct_reads: true,
            local_sessions: false,
            local_sessions_upgrading: false,
            min_session_timeout: 0,
            max_session_timeout: 0,
            four_letter_whitelist: Some(vec!["srvr".into()]),
            extended_types: false,
            enforce_quota: false,
            skip_acl: false,
            reconfig_enabled: false,
            read_only_mode: false,
            force_sync: true,
            max_buffer: paddock_proto::frame::DEFAULT_MAX_FRAME,
            large_request_threshold: None,
            large_request_max_bytes: 100 << 20,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_ms: 0,
            super_digest: None,
            servers: Vec::new(),
            config_version: 0,
            dynamic_config_owner: None,
            peer_type_observer: false,
            standalone_enabled: true,
            snap_count: 100_000,
            snap_size_limit_kb: 4_194_304,
            commit_log_count: 10_000,
            snapshot_size_factor: 0.33,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval: 0,
            global_outstanding_limit: 1000,
            client_tls: ClientTls::default(),
            quorum_tls: QuorumTls::default(),
            quorum_sasl: QuorumSasl::default(),
            kerberos_names: Default::default(),
            auth_to_local: Default::default(),
            krb5_conf: None,
            jaas_config: None,
            jaas_section: "Server".into(),
            sasl_acls: false,
            enforce_auth_schemes: Vec::new(),
            audit: None,
            x509_identities: false,
            x509_super_user: None,
            sasl_super_user: None,
            allow_sasl_failed: false,
            raw: BTreeMap::new(),
            initial: Vec::new(),
            admin: AdminConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// Keys ZooKeeper knows that Paddock accepts and ignores without a warning because they only
/// tune the JVM, logging or features that make no difference here.
const QUIET: &[&str] = &["electionAlg", "preAllocSize"];

/// Whether a key's value must never be printed: passwords, secrets, digests that grant
/// `super`, and JAAS configuration (which holds `user_<name>="<password>"` lines).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("superdigest")
        || k.contains("jaas")
        || k.contains("login.config")
        || k.contains("sasl.serverconfig")
}

/// A value as it may appear in a log line or an error: masked for [`is_secret_key`] keys.
pub fn shown_value<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) {
        "********"
    } else {
        value
    }
}

/// ZooKeeper's SASL authentication provider (`authProvider.N=...`), which makes `sasl` ACLs
/// valid.
const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// ZooKeeper's x509 authentication provider (`authProvider.N=...`).
const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// ZooKeeper's audit logger, the one whose format Paddock writes.
const SLF4J_AUDIT: &str = "org.apache.zookeeper.audit.Slf4jAuditLogger";

/// The parts of a `ssl.keyStore.*` / `ssl.trustStore.*` key Paddock reads.
const STORE_KEYS: &[&str] = &["location", "password", "passwordPath", "type"];

/// Why a security key must stop the server from starting, or `None` when Paddock honours it
/// (or it asks for nothing: an explicit `false` on a switch that turns a feature on).
///
/// Fail closed: each of these asks for TLS, SASL, another authentication provider, auth
/// enforcement or an audit trail. A server that warned and went on would serve plaintext to
/// unauthenticated clients while its operator believes it secured. `key` has its
/// `zookeeper.` prefix removed, as for every other key.
pub fn security_refusal(key: &str, value: &str) -> Option<String> {
    // Switches whose `false` is ZooKeeper's default: setting them off asks for nothing.
    const SWITCHES: &[&str] = &[
        "sslQuorum",
        "sslQuorumReloadCertFiles",
        "portUnification",
        "client.portUnification",
        "client.certReload",
        "client.secure",
        "sessionRequireClientSASLAuth",
        "enforce.auth.enabled",
        "quorum.auth.enableSasl",
        "quorum.auth.learnerRequireSasl",
        "quorum.auth.serverRequireSasl",
        "audit.enable",
        "allowSaslFailedClients",
    ];
    if SWITCHES.contains(&key) && parse_bool(value) == Ok(false) {
        return None;
    }
    // TLS for clients and between servers is implemented: these are read into `ClientTls`
    // and `QuorumTls` (a bad value is an error there). Revocation checks are not: asking for
    // them must not be ignored.
    const TLS: &[&str] = &[
        "secureClientPort",
        "secureClientPortAddress",
        "client.portUnification",
        "client.certReload",
        "sslQuorum",
        "sslQuorumReloadCertFiles",
        "portUnification",
    ];
    const TLS_PARTS: &[&str] = &[
        "clientAuth",
        "protocol",
        "enabledProtocols",
        "ciphersuites",
        "hostnameVerification",
        "handshakeDetectionTimeoutMillis",
    ];
    let tls_part = key
        .strip_prefix("ssl.quorum.")
        .or_else(|| key.strip_prefix("ssl."));
    if TLS.contains(&key)
        || tls_part.is_some_and(|part| {
            TLS_PARTS.contains(&part)
                || ["keyStore.", "trustStore."].iter().any(|p| {
                    part.strip_prefix(p)
                        .is_some_and(|k| STORE_KEYS.contains(&k))
                })
        })
    {
        return None;
    }
    // SASL for clients (DIGEST-MD5 from the JAAS file) and auth enforcement are implemented.
    if matches!(
        key,
        "java.security.auth.login.config"
            | "sasl.serverconfig"
            | "sessionRequireClientSASLAuth"
            | "enforce.auth.enabled"
            | "enforce.auth.schemes"
            | "superUser"
            | "allowSaslFailedClients"
            | "quorum.auth.enableSasl"
            | "quorum.auth.learnerRequireSasl"
            | "quorum.auth.serverRequireSasl"
            | "quorum.auth.learner.saslLoginContext"
            | "quorum.auth.server.saslLoginContext"
            | "quorum.auth.kerberos.servicePrincipal"
            | "kerberos.removeHostFromPrincipal"
            | "kerberos.removeRealmFromPrincipal"
            | "audit.enable"
            | "audit.file"
            | "audit.maxFileSize"
            | "audit.maxBackupIndex"
    ) || (key == "audit.impl.class" && value.trim() == SLF4J_AUDIT)
        || key == "security.auth_to_local"
        || (key.starts_with("authProvider.") && value.trim() == X509_PROVIDER)
        || (key == "ssl.authProvider" && value.trim() == "x509")
        || key == "X509AuthenticationProvider.superUser"
        || (key.starts_with("authProvider.") && value.trim().ends_with(SASL_PROVIDER))
    {
        return None;
    }
    if matches!(tls_part, Some("crl" | "ocsp")) {
        return (parse_bool(value) != Ok(false))
            .then(|| "certificate revocation checks are not implemented yet".to_owned());
    }
    let what = if key.starts_with("secureClientPort")
        || key.starts_with("ssl.")
        || key.starts_with("sslQuorum")
        || key == "portUnification"
        || key == "client.portUnification"
        || key == "client.certReload"
        || key == "client.secure"
    {
        "this TLS setting is not implemented yet"
    } else if key.starts_with("authProvider.") {
        "authentication providers other than digest, ip and SASL are not implemented yet"
    } else if key.starts_with("enforce.auth.") || key == "sessionRequireClientSASLAuth" {
        "enforcing client authentication is not implemented yet"
    } else if key.starts_with("quorum.auth.") {
        "authentication between servers is not implemented yet"
    } else if key.starts_with("kerberos.")
        || key == "security.auth_to_local"
        || key == "java.security.auth.login.config"
        || key == "sasl.serverconfig"
        || key == "allowSaslFailedClients"
        || key == "superUser"
    {
        "SASL is not implemented yet"
    } else if key.starts_with("audit.") {
        "the audit log is not implemented yet"
    } else if key.contains("AuthenticationProvider.") {
        match key {
            "DigestAuthenticationProvider.superDigest" => return None,
            "DigestAuthenticationProvider.digestAlg"
                if matches!(value.trim().to_ascii_uppercase().as_str(), "SHA1" | "SHA-1") =>
            {
                return None
            }
            "DigestAuthenticationProvider.enabled" if parse_bool(value) == Ok(true) => return None,
            "DigestAuthenticationProvider.digestAlg" => {
                "only SHA1 digests are implemented (ZooKeeper's default)"
            }
            _ => "this authentication provider setting is not implemented yet",
        }
    } else {
        return None;
    };
    Some(what.to_owned())
}

/// A comma-separated list, as ZooKeeper's list keys are written.
/// `dynamicConfigFile`, as ZooKeeper 3.5+ reads it: the members' `server.N` lines live in that
/// file alone (zoo.cfg must have none), the file holds no `version` (its name's hex suffix is
/// the configuration's version), and `<zoo.cfg>.dynamic.next`, a configuration ZooKeeper had
/// proposed but not committed when it stopped, is not taken.
fn read_dynamic_config(
    c: &mut Config,
    path: &str,
    origin: &Origin,
    config_file: Option<&str>,
) -> Result<(), ConfigError> {
    let bad = |msg: String| ConfigError::BadValue {
        source_name: origin.source_name.clone(),
        line: origin.line,
        key: "dynamicConfigFile".into(),
        msg,
    };
    if let Some(s) = c.servers.first() {
        return Err(bad(format!(
            "zoo.cfg lists server.{} too: with a dynamicConfigFile the server lines must be in \
             that file alone, as in ZooKeeper",
            s.id
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.to_owned(),
        err,
    })?;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let at = |key: &str, msg: String| ConfigError::BadValue {
            source_name: path.to_owned(),
            line: i + 1,
            key: key.to_owned(),
            msg,
        };
        let (k, v) = l
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| at(l, "expected key=value".into()))?;
        if let Some(id) = k.strip_prefix("server.") {
            let spec = parse_server(id, v).map_err(|m| at(k, m))?;
            if c.servers.iter().any(|s| s.id == spec.id) {
                return Err(at(k, format!("server {} is listed twice", spec.id)));
            }
            c.servers.push(spec);
        } else if k == "version" {
            return Err(at(
                k,
                "a dynamic configuration file holds no version: its name's suffix is the version"
                    .into(),
            ));
        } else if k.starts_with("group.") || k.starts_with("weight.") {
            return Err(at(
                k,
                "hierarchical quorums (group/weight) are not supported; Paddock's quorums are \
                 majorities of the voters"
                    .into(),
            ));
        } else {
            let origin = Origin {
                source_name: path.to_owned(),
                line: i + 1,
            };
            warn_ignored(k, v, &origin);
        }
    }
    if c.servers.is_empty() {
        return Err(bad(format!("{path} lists no server.N line")));
    }
    // ZooKeeper's getVersionFromFilename: the text after the last '.', in hex; else 0.
    c.config_version = path
        .rsplit_once('.')
        .and_then(|(_, v)| i64::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    if let Some(cfg) = config_file {
        let next = format!("{cfg}.dynamic.next");
        if std::path::Path::new(&next).exists() {
            tracing::warn!(
                file = %next,
                "a reconfiguration was proposed and not committed when the configuration was \
                 last written; starting from the committed one in the dynamicConfigFile"
            );
        }
    }
    Ok(())
}

fn warn_ignored(k: &str, v: &str, origin: &Origin) {
    tracing::warn!(key = %k, value = %shown_value(k, v), from = %origin.source_name, "setting not implemented by Paddock; ignored")
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse::<T>()
        .map_err(|_| format!("'{v}' is not a valid number"))
}

fn parse_ip(v: &str) -> Result<IpAddr, String> {
    let v = v.trim();
    if v == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    v.parse().map_err(|_| format!("'{v}' is not an IP address"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("'{v}' is not yes/no/true/false")),
    }
}

pub(crate) fn parse_server(id: &str, v: &str) -> Result<ServerSpec, String> {
    let id: u64 = id
        .parse()
        .map_err(|_| format!("server id '{id}' is not a number"))?;
    let (addr, client) = match v.split_once(';') {
        Some((a, c)) => (a, Some(c)),
        None => (v, None),
    };
    let parts: Vec<&str> = addr.trim().split(':').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return Err("expected host:quorumPort:electionPort[:participant|:observer]".into());
    }
    let quorum_port = parse_num::<u16>(parts[1])?;
    let election_port = parse_num::<u16>(parts[2])?;
    if quorum_port == election_port {
        return Err("quorum and election ports must differ".into());
    }
    let observer = match parts.get(3).map(|s| s.trim()) {
        None | Some("participant") => false,
        Some("observer") => true,
        Some(o) => return Err(format!("unknown server type '{o}'")),
    };
    let client_addr = match client {
        None => None,
        Some(c) => {
            let c = c.trim();
            Some(match c.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), parse_num::<u16>(p)?),
                None => ("0.0.0.0".to_owned(), parse_num::<u16>(c)?),
            })
        }
    };
    Ok(ServerSpec {
        id,
        host: parts[0].trim().to_owned(),
        quorum_port,
        election_port,
        observer,
        client_addr,
    })
}

/// The client ports' listen backlog when `clientPortListenBacklog` is not set. ZooKeeper
/// leaves it to the JVM (50 on Linux), and after a failover thousands of clients reconnect
/// at once: the connections a short queue drops are retried by the clients' kernels a
/// second later, then three. The kernel caps it at net.core.somaxconn (4,096 by default).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;

impl Config {
    /// The client ports' listen backlog.
    pub fn listen_backlog(&self) -> u32 {
        match self.client_port_listen_backlog {
            n @ 1.. => n as u32,
            _ => DEFAULT_LISTEN_BACKLOG,
        }
    }

    /// Builds a configuration from an optional zoo.cfg and `-D` properties (later wins).
    pub fn load(
        file: Option<&std::path::Path>,
        props: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
                    path: path.display().to_string(),
                    err,
                })?;
                Config::load_text(Some((&path.display().to_string(), &text)), props)
            }
            None => Config::load_text(None, props),
        }
    }

    /// As [`Config::load`], from zoo.cfg text (`(name, text)`: the name is for messages).
    pub fn load_text(
        source: Option<(&str, &str)>,
        props: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut entries: Vec<(String, String, Origin)> = Vec::new();
        let mut from_file = false;
        if let Some((name, text)) = source {
            from_file = true;
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
                    continue;
                }
                let (k, v) = match l.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => match l.split_once([':', ' ']) {
                        Some((k, v)) => (k.trim(), v.trim()),
                        None => (l, ""),
                    },
                };
                entries.push((
                    k.to_owned(),
                    v.to_owned(),
                    Origin {
                        source_name: name.to_owned(),
                        line: i + 1,
                    },
                ));
            }
        }
        for (k, v) in props {
            let key = k.strip_prefix("zookeeper.").unwrap_or(k);
            entries.push((
                key.to_owned(),
                v.clone(),
                Origin {
                    source_name: format!("-D{k}"),
                    line: 0,
                },
            ));
        }
        let mut c = Config::default();
        if from_file {
            // A config file must name its client port, and, as in ZooKeeper, listens on every
            // interface unless clientPortAddress says otherwise; the loopback default applies
            // only without a file.
            c.client_port = 0;
            c.client_port_address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        }
        let mut data_log_dir_set = false;
        let (mut enforce_on, mut enforce_schemes, mut require_sasl) = (false, None, false);
        let (mut audit_on, mut audit_file, mut audit_size, mut audit_backups) =
            (false, None, 10 << 20, 10);
        let mut min_set = None;
        let mut max_set = None;
        let mut dynamic_file: Option<(String, &Origin)> = None;
        for (k, v, origin) in &entries {
            let bad = |msg: String| ConfigError::BadValue {
                source_name: origin.source_name.clone(),
                line: origin.line,
                key: k.clone(),
                msg,
            };
            // A `zookeeper.` prefix in zoo.cfg itself is read as if it were a -D property.
            let sec_key = k.strip_prefix("zookeeper.").unwrap_or(k);
            if let Some(why) = security_refusal(sec_key, v) {
                return Err(ConfigError::Unsupported {
                    source_name: origin.source_name.clone(),
                    line: origin.line,
                    key: k.clone(),
                    why,
                });
            }
            // Kept for `conf` and debugging, so never a secret's value.
            c.raw.insert(k.clone(), shown_value(k, v).to_owned());
            c.initial.push((k.clone(), shown_value(k, v).to_owned()));
            match k.as_str() {
                "tickTime" => c.tick_time = parse_num(v).map_err(bad)?,
                "initLimit" => c.init_limit = parse_num(v).map_err(bad)?,
                "syncLimit" => c.sync_limit = parse_num(v).map_err(bad)?,
                "dataDir" => c.data_dir = PathBuf::from(v),
                "dataLogDir" => {
                    c.data_log_dir = PathBuf::from(v);
                    data_log_dir_set = true;
                }
                "clientPort" => c.client_port = parse_num(v).map_err(bad)?,
                "clientPortAddress" => {
                    c.client_port_address = v
                        .parse()
                        .map_err(|_| bad(format!("'{v}' is not an IP address")))?
                }
                "secureClientPort" => c.client_tls.secure_port = parse_num(v).map_err(bad)?,
                "secureClientPortAddress" => {
                    c.client_tls.secure_address = Some(
                        v.trim()
                            .parse()
                            .map_err(|_| bad(format!("'{v}' is not an IP address")))?,
                    )
                }
                "client.portUnification" => {
                    c.client_tls.port_unification = parse_bool(v).map_err(bad)?
                }
                "client.certReload" => c.client_tls.cert_reload = parse_bool(v).map_err(bad)?,
                "sslQuorum" => c.quorum_tls.ssl = parse_bool(v).map_err(bad)?,
                "portUnification" => c.quorum_tls.port_unification = parse_bool(v).map_err(bad)?,
                "sslQuorumReloadCertFiles" => c.quorum_tls.reload = parse_bool(v).map_err(bad)?,
                k if k.starts_with("ssl.quorum.") => {
                    if !c
                        .quorum_tls
                        .keys
                        .set(&k["ssl.quorum.".len()..], v)
                        .map_err(bad)?
                    {
                        warn_ignored(k, v, origin);
                    }
                }
                k if k.starts_with("ssl.") && c.client_tls.keys.set(&k[4..], v).map_err(bad)? => {}
                "java.security.auth.login.config" => c.jaas_config = Some(PathBuf::from(v.trim())),
                "sasl.serverconfig" => c.jaas_section = v.trim().to_owned(),
                "sessionRequireClientSASLAuth" => require_sasl = parse_bool(v).map_err(bad)?,
                "superUser" => c.sasl_super_user = Some(v.trim().to_owned()),
                "audit.enable" => audit_on = parse_bool(v).map_err(bad)?,
                "audit.impl.class" => {}
                "audit.file" => audit_file = Some(PathBuf::from(v.trim())),
                "audit.maxFileSize" => {
                    audit_size = parse_num::<u64>(v).map_err(bad)?;
                    if audit_size < 4096 {
                        return Err(bad("must be at least 4096 (bytes)".into()));
                    }
                }
                "audit.maxBackupIndex" => audit_backups = parse_num(v).map_err(bad)?,
                "allowSaslFailedClients" => c.allow_sasl_failed = parse_bool(v).map_err(bad)?,
                "quorum.auth.enableSasl" => c.quorum_sasl.enabled = parse_bool(v).map_err(bad)?,
                "quorum.auth.learnerRequireSasl" => {
                    c.quorum_sasl.learner_require = parse_bool(v).map_err(bad)?
                }
                "quorum.auth.serverRequireSasl" => {
                    c.quorum_sasl.server_require = parse_bool(v).map_err(bad)?
                }
                "quorum.auth.learner.saslLoginContext" => {
                    c.quorum_sasl.learner_context = v.trim().to_owned()
                }
                "quorum.auth.server.saslLoginContext" => {
                    c.quorum_sasl.server_context = v.trim().to_owned()
                }
                "kerberos.removeHostFromPrincipal" => {
                    c.kerberos_names.remove_host = parse_bool(v).map_err(bad)?
                }
                "kerberos.removeRealmFromPrincipal" => {
                    c.kerberos_names.remove_realm = parse_bool(v).map_err(bad)?
                }
                // ZooKeeper reads it as a system property; in zoo.cfg with or without its prefix.
                "security.auth_to_local" | "zookeeper.security.auth_to_local" => {
                    c.auth_to_local = Arc::new(
                        crate::auth_to_local::AuthToLocal::parse(v)
                            .map_err(|e| bad(e.to_string()))?,
                    )
                }
                "java.security.krb5.conf" => c.krb5_conf = Some(PathBuf::from(v.trim())),
                // A JVM debugging switch kazoo's harness passes: nothing to do.
                "sun.security.krb5.debug" => {}
                "quorum.auth.kerberos.servicePrincipal" => {
                    c.quorum_sasl.service_principal = v.trim().to_owned()
                }
                "enforce.auth.enabled" => enforce_on = parse_bool(v).map_err(bad)?,
                "enforce.auth.schemes" => {
                    let schemes = list(v);
                    for s in &schemes {
                        if !matches!(s.as_str(), "sasl" | "digest" | "ip") {
                            return Err(bad(format!(
                                "'{s}' is not a scheme Paddock authenticates (sasl, digest, ip)"
                            )));
                        }
                    }
                    enforce_schemes = Some(schemes);
                }
                k if k.starts_with("authProvider.") && v.trim() == X509_PROVIDER => {
                    c.x509_identities = true
                }
                k if k.starts_with("authProvider.") => c.sasl_acls = true,
                "ssl.authProvider" => {}
                "X509AuthenticationProvider.superUser" => {
                    c.x509_super_user = Some(v.trim().to_owned())
                }
                "admin.enableServer" => c.admin.enabled = parse_bool(v).map_err(bad)?,
                "admin.serverAddress" => c.admin.address = parse_ip(v).map_err(bad)?,
                "admin.serverPort" => c.admin.port = parse_num(v).map_err(bad)?,
                "admin.commandURL" => {
                    let url = v.trim();
                    if !url.starts_with('/') || url.len() < 2 {
                        return Err(bad("must be a path such as /commands".into()));
                    }
                    c.admin.command_url = url.trim_end_matches('/').to_owned();
                }
                "admin.idleTimeout" => c.admin.idle_timeout_ms = parse_num(v).map_err(bad)?,
                "admin.forceHttps" => c.admin.force_https = parse_bool(v).map_err(bad)?,
                "admin.portUnification" => c.admin.port_unification = parse_bool(v).map_err(bad)?,
                "admin.snapshot.enabled" => {
                    c.admin.snapshot_enabled = parse_bool(v).map_err(bad)?
                }
                "admin.restore.enabled" => c.admin.restore_enabled = parse_bool(v).map_err(bad)?,
                "admin.rateLimiterIntervalInMS" => {
                    c.admin.rate_limit_ms = parse_num(v).map_err(bad)?
                }
                "admin.trustedProxies" => {
                    c.admin.trusted_proxies = list(v)
                        .iter()
                        .map(|a| parse_ip(a))
                        .collect::<Result<_, _>>()
                        .map_err(bad)?
                }
                "metricsProvider.className" => {
                    c.metrics.prometheus = match v.trim() {
                        PROMETHEUS_PROVIDER => true,
                        "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider" | "" => false,
                        other => {
                            return Err(bad(format!(
                                "'{other}' is not a provider Paddock has: use {PROMETHEUS_PROVIDER}"
                            )))
                        }
                    }
                }
                "metricsProvider.httpHost" => c.metrics.host = parse_ip(v).map_err(bad)?,
                "metricsProvider.httpPort" => c.metrics.port = parse_num(v).map_err(bad)?,
                "metricsProvider.exportJvmInfo" => {
                    c.metrics.export_process_info = parse_bool(v).map_err(bad)?
                }
                "maxClientCnxns" => c.max_client_cnxns = parse_num(v).map_err(bad)?,
                "maxCnxns" => c.max_cnxns = parse_num(v).map_err(bad)?,
                "clientPortListenBacklog" => {
                    c.client_port_listen_backlog = parse_num(v).map_err(bad)?;
                    if c.client_port_listen_backlog == 0 || c.client_port_listen_backlog < -1 {
                        return Err(bad(format!("'{v}' is not a backlog (-1, or 1 and up)")));
                    }
                }
                "sessionPasswords" => {
                    c.session_passwords = match v.as_str() {
                        "random" => SessionPasswords::Random,
                        "derived" => SessionPasswords::Derived,
                        _ => return Err(bad(format!("'{v}' is not random or derived"))),
                    }
                }
                "linearizableReads" => c.linearizable_reads = parse_bool(v).map_err(bad)?,
                "directReads" => c.direct_reads = parse_bool(v).map_err(bad)?,
                "localSessionsEnabled" => c.local_sessions = parse_bool(v).map_err(bad)?,
                "localSessionsUpgradingEnabled" => {
                    c.local_sessions_upgrading = parse_bool(v).map_err(bad)?
                }
                "zxidCounterBits" => {
                    c.zxid_counter_bits = parse_num(v).map_err(bad)?;
                    if !(4..=32).contains(&c.zxid_counter_bits) {
                        return Err(bad("must be from 4 to 32".into()));
                    }
                }
                "minSessionTimeout" => min_set = Some(parse_num::<i64>(v).map_err(bad)?),
                "maxSessionTimeout" => max_set = Some(parse_num::<i64>(v).map_err(bad)?),
                "4lw.commands.whitelist" => {
                    let words = list(v);
                    c.four_letter_whitelist = if words.iter().any(|s| s == "*") {
                        None
                    } else {
                        Some(words)
                    };
                }
                "extendedTypesEnabled" => c.extended_types = parse_bool(v).map_err(bad)?,
                "enforceQuota" => c.enforce_quota = parse_bool(v).map_err(bad)?,
                "skipACL" => c.skip_acl = parse_bool(v).map_err(bad)?,
                "reconfigEnabled" => c.reconfig_enabled = parse_bool(v).map_err(bad)?,
                "readonlymode.enabled" => c.read_only_mode = parse_bool(v).map_err(bad)?,
                "forceSync" => c.force_sync = parse_bool(v).map_err(bad)?,
                "jute.maxbuffer" => {
                    c.max_buffer = parse_num(v).map_err(bad)?;
                    if c.max_buffer < 1024 {
                        return Err(bad("must be at least 1024".into()));
                    }
                }
                // ZooKeeper warns and keeps its default for values it cannot use; a setting
                // that would not take effect is refused here instead.
                "largeRequestThreshold" => {
                    let n: i64 = parse_num(v).map_err(bad)?;
                    c.large_request_threshold = match n {
                        -1 => None,
                        n if n > 0 => Some(n as usize),
                        _ => return Err(bad("must be -1 (no limit) or positive".into())),
                    };
                }
                "largeRequestMaxBytes" => {
                    let n: i64 = parse_num(v).map_err(bad)?;
                    if n <= 0 {
                        return Err(bad("must be positive".into()));
                    }
                    c.large_request_max_bytes = n as usize;
                }
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms = parse_num(v).map_err(bad)?
                }
                "znode.container.maxPerMinute" => {
                    c.container_max_per_minute = parse_num(v).map_err(bad)?
                }
                "znode.container.maxNeverUsedIntervalMs" => {
                    c.container_max_never_used_ms = parse_num(v).map_err(bad)?
                }
                "DigestAuthenticationProvider.superDigest" => {
                    if !v.contains(':') {
                        return Err(bad("expected user:base64digest".into()));
                    }
                    c.super_digest = Some(v.clone())
                }
                "peerType" => {
                    c.peer_type_observer = match v.as_str() {
                        "observer" => true,
                        "participant" => false,
                        _ => return Err(bad(format!("'{v}' is not participant or observer"))),
                    }
                }
                "standaloneEnabled" => c.standalone_enabled = parse_bool(v).map_err(bad)?,
                "snapCount" => c.snap_count = parse_num(v).map_err(bad)?,
                "snapSizeLimitInKb" => c.snap_size_limit_kb = parse_num(v).map_err(bad)?,
                "commitLogCount" => c.commit_log_count = parse_num(v).map_err(bad)?,
                "snapshotSizeFactor" => {
                    c.snapshot_size_factor = v
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("'{v}' is not a number")))?
                }
                "autopurge.snapRetainCount" => {
                    c.autopurge_snap_retain_count = parse_num::<u32>(v).map_err(bad)?.max(3)
                }
                "autopurge.purgeInterval" => {
                    c.autopurge_purge_interval = parse_num(v).map_err(bad)?
                }
                "globalOutstandingLimit" => {
                    c.global_outstanding_limit = parse_num(v).map_err(bad)?
                }
                k if k.starts_with("server.") => {
                    let spec = parse_server(&k["server.".len()..], v).map_err(bad)?;
                    if c.servers.iter().any(|s| s.id == spec.id) {
                        return Err(bad(format!("server {} is listed twice", spec.id)));
                    }
                    c.servers.push(spec);
                }
                "dynamicConfigFile" => dynamic_file = Some((v.clone(), origin)),
                k if k.starts_with("group.") || k.starts_with("weight.") => {
                    return Err(bad(
                        "hierarchical quorums (group/weight) are not supported; Paddock's \
                         quorums are majorities of the voters"
                            .into(),
                    ));
                }
                k if QUIET.contains(&k) => {}
                _ => warn_ignored(k, v, origin),
            }
        }
        if let Some((path, origin)) = dynamic_file {
            let config_file = source.map(|(name, _)| name);
            read_dynamic_config(&mut c, &path, origin, config_file)?;
            c.dynamic_config_owner = config_file.map(PathBuf::from);
        }
        if !data_log_dir_set {
            c.data_log_dir = c.data_dir.clone();
        }
        if audit_on {
            c.audit = Some(crate::audit::AuditConfig {
                // ZooKeeper's log4j configuration names zookeeper_audit.log in its log
                // directory; Paddock's default is the data directory.
                file: audit_file.unwrap_or_else(|| c.data_dir.join("zookeeper_audit.log")),
                max_file_size: audit_size,
                max_backups: audit_backups,
            });
        }
        // As ZooKeeper's AuthenticationHelper: sessionRequireClientSASLAuth is enforcement of
        // sasl; enforcement with no scheme, or of sasl with nothing to authenticate against,
        // would refuse every client.
        if enforce_on {
            c.enforce_auth_schemes = enforce_schemes.unwrap_or_default();
            if c.enforce_auth_schemes.is_empty() {
                return Err(ConfigError::Invalid(
                    "enforce.auth.enabled=true needs enforce.auth.schemes".into(),
                ));
            }
        }
        if require_sasl && !c.enforce_auth_schemes.iter().any(|s| s == "sasl") {
            c.enforce_auth_schemes.push("sasl".into());
        }
        if c.enforce_auth_schemes.iter().any(|s| s == "sasl") && c.jaas_config.is_none() {
            return Err(ConfigError::Invalid(
                "enforcing sasl (enforce.auth.schemes or sessionRequireClientSASLAuth) needs \
                 the SASL users: set java.security.auth.login.config"
                    .into(),
            ));
        }
        // As ZooKeeper's QuorumPeerConfig: requiring SASL of peers needs SASL on.
        let qs = &c.quorum_sasl;
        if !qs.enabled && (qs.learner_require || qs.server_require) {
            return Err(ConfigError::Invalid(
                "quorum.auth.learnerRequireSasl and quorum.auth.serverRequireSasl need \
                 quorum.auth.enableSasl=true"
                    .into(),
            ));
        }
        if qs.enabled && c.jaas_config.is_none() {
            return Err(ConfigError::Invalid(
                "quorum.auth.enableSasl=true needs the JAAS file with the QuorumServer and \
                 QuorumLearner sections: set java.security.auth.login.config"
                    .into(),
            ));
        }
        if c.tick_time == 0 {
            return Err(ConfigError::Invalid(
                "tickTime must be greater than 0".into(),
            ));
        }
        c.min_session_timeout = match min_set {
            Some(m) if m > 0 => m as u32,
            _ => 2 * c.tick_time,
        };
        c.max_session_timeout = match max_set {
            Some(m) if m > 0 => m as u32,
            _ => 20 * c.tick_time,
        };
        if c.min_session_timeout > c.max_session_timeout {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                c.min_session_timeout, c.max_session_timeout
            )));
        }
        // ZooKeeper 3.5+ also takes the client address from the server's own line
        // (`server.N=host:q:e;[addr:]port`), resolved once myid is known (`ensemble`).
        if c.client_port == 0
            && c.client_tls.secure_port == 0
            && !c.servers.iter().any(|s| s.client_addr.is_some())
        {
            return Err(ConfigError::Invalid(
                "neither clientPort nor secureClientPort is set".into(),
            ));
        }
        if c.client_tls.port_unification && c.client_port == 0 {
            return Err(ConfigError::Invalid(
                "client.portUnification needs a clientPort to unify".into(),
            ));
        }
        let mut ports = std::collections::HashSet::new();
        for s in &c.servers {
            for p in [s.quorum_port, s.election_port] {
                if !ports.insert((s.host.clone(), p)) {
                    return Err(ConfigError::Invalid(format!(
                        "port {p} on {} is used twice in server.N lines",
                        s.host
                    )));
                }
            }
        }
        Ok(c)
    }

    /// Whether this configuration runs an ensemble (more than one `server.N`, or one with
    /// `standaloneEnabled=false`), and if so this server's place in it, from `dataDir/myid`.
    pub fn ensemble(&self) -> Result<Option<Membership>, ConfigError> {
        if self.servers.is_empty() || (self.servers.len() == 1 && self.standalone_enabled) {
            return Ok(None);
        }
        let path = self.data_dir.join("myid");
        let text = std::fs::read_to_string(&path).map_err(|err| {
            ConfigError::Invalid(format!(
                "{} is missing or unreadable ({err}): a server of an ensemble needs its id there",
                path.display()
            ))
        })?;
        let id: u64 = text.trim().parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "{}: '{}' is not a server id",
                path.display(),
                text.trim()
            ))
        })?;
        let Some(me) = self.servers.iter().find(|s| s.id == id).cloned() else {
            return Err(ConfigError::Invalid(format!(
                "myid {id} (from {}) is not among the server.N lines of the configuration",
                path.display()
            )));
        };
        let mut seen = std::collections::HashSet::new();
        for s in &self.servers {
            if !seen.insert(s.id) {
                return Err(ConfigError::Invalid(format!(
                    "server.{} is listed twice",
                    s.id
                )));
            }
        }
        if self.peer_type_observer && !me.observer {
            return Err(ConfigError::Invalid(format!(
                "peerType=observer, but server.{id} is not listed as an observer"
            )));
        }
        let voters: Vec<u64> = self
            .servers
            .iter()
            .filter(|s| !s.observer)
            .map(|s| s.id)
            .collect();
        if voters.is_empty() {
            return Err(ConfigError::Invalid(
                "the ensemble has no voting member".into(),
            ));
        }
        if self.client_port == 0 && me.client_addr.is_none() {
            return Err(ConfigError::Invalid(format!(
                "clientPort is not set, and server.{id} names no client port"
            )));
        }
        let observers = self
            .servers
            .iter()
            .filter(|s| s.observer)
            .map(|s| s.id)
            .collect();
        Ok(Some(Membership {
            me,
            voters,
            observers,
            servers: self.servers.clone(),
        }))
    }

    /// Takes the client address from this server's own `server.N` line when clientPort is not
    /// set (ZooKeeper's dynamic-configuration form). An address that is not an IP (a host
    /// name) is resolved.
    pub fn adopt_client_addr(&mut self, me: &ServerSpec) -> Result<(), ConfigError> {
        if self.client_port != 0 {
            return Ok(());
        }
        let Some((host, port)) = &me.client_addr else {
            return Ok(());
        };
        self.client_port = *port;
        self.client_port_address = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!("server.{}: cannot resolve {host}", me.id))
                })?,
        };
        Ok(())
    }

    /// The address the client port listens on.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.client_port_address, self.client_port)
    }

    /// Whether a digest identity (`user:base64(sha1)`) is `superDigest`'s, compared in constant
    /// time (for clients' auth packets and the AdminServer's Authorization header alike).
    pub fn is_super_digest(&self, id: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.super_digest
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(id.as_bytes())))
    }

    /// Whether a certificate subject is `X509AuthenticationProvider.superUser`.
    pub fn is_super_x509(&self, subject: &str) -> bool {
        self.x509_super_user.as_deref() == Some(subject)
    }

    /// Whether a four-letter word may run.
    pub fn four_letter_allowed(&self, cmd: &str) -> bool {
        match &self.four_letter_whitelist {
            None => true,
            Some(list) => list.iter().any(|c| c == cmd) || (cmd == "isro" && self.read_only_mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::new(text)
    }

    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn new(text: &str) -> TempPath {
                let p = std::env::temp_dir().join(format!(
                    "paddock-cfg-{}-{}.cfg",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ));
                std::fs::write(&p, text).unwrap();
                TempPath(p)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn parses_kazoo_style_config() {
        let f = write("\ntickTime=2000\ndataDir=/tmp/x\nclientPort=20000\nmaxClientCnxns=0\nserverCnxnFactory=org.Foo\n4lw.commands.whitelist=*\nserver.1=localhost:20002:20001:participant\n");
        let props = vec![(
            "zookeeper.DigestAuthenticationProvider.superDigest".into(),
            "super:abc".into(),
        )];
        let c = Config::load(Some(&f.0), &props).unwrap();
        assert_eq!(c.client_port, 20000);
        assert_eq!(c.min_session_timeout, 4000);
        assert_eq!(c.max_session_timeout, 40000);
        assert!(c.four_letter_whitelist.is_none());
        assert_eq!(c.super_digest.as_deref(), Some("super:abc"));
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn the_listen_backlog_defaults_long_and_can_be_set() {
        let f = write("clientPort=1\n");
        let c = Config::load(Some(&f.0), &[]).unwrap();
        assert_eq!(c.client_port_listen_backlog, -1);
        assert_eq!(c.listen_backlog(), DEFAULT_LISTEN_BACKLOG);
        let f = write("clientPort=1\nclientPortListenBacklog=50\n");
        assert_eq!(Config::load(Some(&f.0), &[]).unwrap().listen_backlog(), 50);
        for bad in ["0", "-2", "x"] {
            let f = write(&format!("clientPort=1\nclientPortListenBacklog={bad}\n"));
            let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
            assert!(e.contains("clientPortListenBacklog"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_values_name_the_line() {
        let f = write("tickTime=abc\nclientPort=1\n");
        let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
        assert!(e.contains(":1: tickTime"), "{e}");
        let f = write("clientPort=1\nminSessionTimeout=9000\nmaxSessionTimeout=100\n");
        assert!(Config::load(Some(&f.0), &[]).is_err());
        let f = write("clientPort=1\nserver.1=h:1:1\n");
        assert!(Config::load(Some(&f.0), &[]).is_err());
    }

    #[test]
    fn ensemble_membership_from_myid() {
        let dir = std::env::temp_dir().join(format!("paddock-cfg-ens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "dataDir={}\nserver.1=127.0.0.1:3001:4001;127.0.0.1:5001\nserver.2=127.0.0.2:3002:4002;5002\nserver.3=127.0.0.3:3003:4003:observer;5003\n",
            dir.display()
        );
        let f = write(&text);
        let mut c = Config::load(Some(&f.0), &[]).unwrap();
        let e = c.ensemble().unwrap_err().to_string();
        assert!(e.contains("myid"), "{e}");
        std::fs::write(dir.join("myid"), "9\n").unwrap();
        let e = c.ensemble().unwrap_err().to_string();
        assert!(e.contains("myid 9"), "{e}");
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        let m = c.ensemble().unwrap().expect("an ensemble");
        assert_eq!(m.me.id, 2);
        assert_eq!(m.voters, vec![1, 2]);
        assert_eq!(m.observers, vec![3]);
        c.adopt_client_addr(&m.me).unwrap();
        assert_eq!(c.client_port, 5002);
        assert_eq!(c.client_addr().to_string(), "0.0.0.0:5002");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A ZooKeeper 3.5+ deployment keeps its members in a dynamicConfigFile (what ZooKeeper
    /// writes once reconfiguration is on, and what Kubernetes operators generate). Before it
    /// was read, such a member started as a standalone server of its own.
    #[test]
    fn members_from_a_dynamic_config_file() {
        let dir = std::env::temp_dir().join(format!("paddock-cfg-dyn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "3\n").unwrap();
        let dynamic = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:3001:4001:participant;0.0.0.0:5001\n\
             server.2=127.0.0.2:3002:4002:participant;0.0.0.0:5002\n\
             server.3=127.0.0.3:3003:4003:observer;0.0.0.0:5003\n",
        )
        .unwrap();
        let cfg = dir.join("zoo.cfg");
        let base = format!(
            "dataDir={}\nreconfigEnabled=true\ndynamicConfigFile={}\n",
            dir.display(),
            dynamic.display()
        );
        std::fs::write(&cfg, &base).unwrap();
        let mut c = Config::load(Some(&cfg), &[]).unwrap();
        assert_eq!(c.config_version, 0x1_0000_0000);
        let m = c
            .ensemble()
            .unwrap()
            .expect("an ensemble, not a standalone server");
        assert_eq!(
            (m.me.id, m.voters.clone(), m.observers.clone()),
            (3, vec![1, 2], vec![3])
        );
        c.adopt_client_addr(&m.me).unwrap();
        assert_eq!(c.client_port, 5003);
        // Server lines in both places, a version inside the file, hierarchical quorums, a
        // missing file: refused at start, naming what is wrong.
        let refused = |text: &str, dynamic_text: &str, want: &str| {
            std::fs::write(&dynamic, dynamic_text).unwrap();
            std::fs::write(&cfg, text).unwrap();
            let e = Config::load(Some(&cfg), &[]).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        let ok_lines = "server.1=127.0.0.1:3001:4001;5001\nserver.2=127.0.0.2:3002:4002;5002\n";
        refused(
            &format!("{base}server.1=127.0.0.1:3001:4001\n"),
            ok_lines,
            "server lines must be in that file alone",
        );
        refused(
            &base,
            &format!("{ok_lines}version=100000000\n"),
            "holds no version",
        );
        refused(&base, &format!("{ok_lines}group.1=1:2\n"), "hierarchical");
        refused(&base, "", "lists no server.N line");
        refused(&format!("{base}weight.1=2\n"), ok_lines, "hierarchical");
        let missing = format!(
            "dataDir={}\ndynamicConfigFile={}/nope\n",
            dir.display(),
            dir.display()
        );
        refused(&missing, ok_lines, "cannot read");
        // Without a version suffix the version is 0, as in ZooKeeper.
        let plain = dir.join("members");
        std::fs::write(&plain, ok_lines).unwrap();
        std::fs::write(
            &cfg,
            format!(
                "dataDir={}\ndynamicConfigFile={}\n",
                dir.display(),
                plain.display()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&cfg), &[]).unwrap();
        assert_eq!((c.config_version, c.servers.len()), (0, 2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What kazoo's harness and a secured ZooKeeper 3.8 deployment put in zoo.cfg: every one
    /// of these asks for security Paddock does not have yet, so the server must not start.
    #[test]
    fn security_keys_fail_closed_naming_key_and_line() {
        let refused = [
            "ssl.crl=true",
            "ssl.ocsp=true",
            "ssl.authProvider=custom",
            "ssl.keyStore.alias=server",
            "ssl.quorum.crl=true",
            "ssl.quorum.keyStore.alias=server",
            "authProvider.2=com.example.auth.TokenAuthenticationProvider",
            "quorum.auth.saslMechanism=GSSAPI",
            "kerberos.useCanonicalHostname=true",
            "DigestAuthenticationProvider.digestAlg=SHA3-256",
            "audit.impl.class=com.example.OtherAuditLogger",
        ];
        for line in refused {
            let f = write(&format!("tickTime=2000\nclientPort=2181\n{line}\n"));
            let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
            let key = line.split_once('=').unwrap().0;
            assert!(e.contains(&format!(":3: {key}:")), "{line}: {e}");
            assert!(e.contains("refuses to start"), "{line}: {e}");
            assert!(!e.contains("hunter2"), "a secret in an error: {e}");
        }
        // The same keys as system properties, the way kazoo's harness passes the JAAS file.
        for (k, v) in [
            (
                "zookeeper.authProvider.token",
                "x.TokenAuthenticationProvider",
            ),
            ("zookeeper.ssl.quorum.ocsp", "true"),
            ("zookeeper.kerberos.useCanonicalHostname", "true"),
        ] {
            let e = Config::load(None, &[(k.to_owned(), v.to_owned())])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(k.strip_prefix("zookeeper.").unwrap_or(k)),
                "{k}: {e}"
            );
            assert!(!e.contains("hunter2"), "a secret in an error: {e}");
        }
    }

    /// Turning a security feature explicitly off asks for nothing, and the settings Paddock
    /// does implement (the digest super user, SHA1 digests) still load.
    #[test]
    fn security_switches_set_off_and_implemented_keys_load() {
        let f = write(
            "clientPort=2181\nsslQuorum=false\nportUnification=false\naudit.enable=false\n\
             sessionRequireClientSASLAuth=false\nquorum.auth.enableSasl=false\n\
             enforce.auth.enabled=false\nDigestAuthenticationProvider.digestAlg=SHA1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n",
        );
        Config::load(Some(&f.0), &[]).unwrap();
        let props = vec![(
            "zookeeper.DigestAuthenticationProvider.superDigest".to_owned(),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU=".to_owned(),
        )];
        let c = Config::load(None, &props).unwrap();
        assert!(c.super_digest.is_some());
        // `true` on a switch that needs more (here the JAAS file) is an error too.
        let f = write("clientPort=2181\nquorum.auth.enableSasl=true\n");
        assert!(Config::load(Some(&f.0), &[]).is_err());
        let f = write("clientPort=2181\nquorum.auth.serverRequireSasl=true\n");
        assert!(Config::load(Some(&f.0), &[]).is_err());
    }

    /// Kerberos naming: the principal's host and realm switches, and auth_to_local rules (a
    /// rule that does not parse names its line).
    #[test]
    fn kerberos_naming_keys() {
        let f = write(
            "clientPort=2181\nkerberos.removeHostFromPrincipal=true\n\
             kerberos.removeRealmFromPrincipal=true\n\
             zookeeper.security.auth_to_local=RULE:[1:$1@$0](.*@OTHER)s/@.*// DEFAULT\n",
        );
        let c = Config::load(Some(&f.0), &[]).unwrap();
        assert!(c.kerberos_names.remove_host && c.kerberos_names.remove_realm);
        assert_eq!(
            c.auth_to_local.short_name("bob@OTHER", "HOME").as_deref(),
            Some("bob")
        );
        let f = write("clientPort=2181\nzookeeper.security.auth_to_local=RULE:[x:$1]\n");
        let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
        assert!(e.contains(":2: zookeeper.security.auth_to_local:"), "{e}");
    }

    /// TLS between servers: `ssl.quorum.*` is read apart from the client's `ssl.*`.
    #[test]
    fn quorum_tls_keys_are_read() {
        let f = write(
            "clientPort=2181\nsslQuorum=true\nportUnification=true\n\
             sslQuorumReloadCertFiles=true\nssl.quorum.keyStore.location=/etc/zk/q.p12\n\
             ssl.quorum.keyStore.password=hunter2\nssl.quorum.trustStore.location=/etc/zk/t.jks\n\
             ssl.quorum.hostnameVerification=false\nssl.quorum.enabledProtocols=TLSv1.3\n\
             ssl.keyStore.location=/etc/zk/client.pem\n",
        );
        let c = Config::load(Some(&f.0), &[]).unwrap();
        let q = &c.quorum_tls;
        assert!(q.ssl && q.port_unification && q.reload && q.wanted());
        assert_eq!(q.keys.prefix, "ssl.quorum");
        assert!(!q.keys.hostname_verification);
        assert_eq!(
            q.keys.key_store.location.as_deref(),
            Some(std::path::Path::new("/etc/zk/q.p12"))
        );
        assert_eq!(
            q.keys.key_store.password.as_ref().unwrap().expose(),
            "hunter2"
        );
        assert_eq!(
            c.client_tls.keys.key_store.location.as_deref(),
            Some(std::path::Path::new("/etc/zk/client.pem"))
        );
        assert!(c.client_tls.keys.hostname_verification);
        assert!(!c.raw.values().any(|v| v.contains("hunter2")));
        let f = write("clientPort=2181\nssl.quorum.clientAuth=sometimes\n");
        let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
        assert!(e.contains(":2: ssl.quorum.clientAuth:"), "{e}");
    }

    /// TLS for clients: the keys are read (a bad value names its line), passwords are held
    /// masked, and a plaintext client port is not required when a secure one is set.
    #[test]
    fn client_tls_keys_are_read() {
        let f = write(
            "secureClientPort=2281\nsecureClientPortAddress=127.0.0.2\n\
             ssl.keyStore.location=/etc/zk/ks.p12\nssl.keyStore.password=hunter2\n\
             ssl.trustStore.location=/etc/zk/ts.pem\nssl.trustStore.passwordPath=/etc/zk/pw\n\
             ssl.trustStore.type=PEM\nssl.clientAuth=want\nssl.protocol=TLSv1.3\n\
             ssl.enabledProtocols=TLSv1.3, TLSv1.2\nssl.ciphersuites=TLS_AES_128_GCM_SHA256\n\
             ssl.hostnameVerification=false\nssl.crl=false\nssl.ocsp=false\n",
        );
        let c = Config::load(Some(&f.0), &[]).unwrap();
        let (t, k) = (&c.client_tls, &c.client_tls.keys);
        assert_eq!(c.client_port, 0, "no plaintext port unless asked");
        assert_eq!(t.secure_port, 2281);
        assert_eq!(t.secure_address, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(k.client_auth, ClientAuth::Want);
        assert_eq!(k.key_store.password.as_ref().unwrap().expose(), "hunter2");
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "a password in Debug output"
        );
        assert_eq!(k.trust_store.kind.as_deref(), Some("PEM"));
        assert_eq!(
            k.enabled_protocols.as_deref(),
            Some(&["TLSv1.3".to_owned(), "TLSv1.2".to_owned()][..])
        );
        assert!(t.wanted() && !t.port_unification);
        for (bad, key) in [
            ("ssl.clientAuth=maybe", "ssl.clientAuth"),
            ("secureClientPort=x", "secureClientPort"),
            ("client.portUnification=perhaps", "client.portUnification"),
        ] {
            let f = write(&format!("clientPort=2181\n{bad}\n"));
            let e = Config::load(Some(&f.0), &[]).unwrap_err().to_string();
            assert!(e.contains(&format!(":2: {key}:")), "{bad}: {e}");
        }
        let f = write("secureClientPort=2281\nclient.portUnification=true\n");
        assert!(Config::load(Some(&f.0), &[]).is_err(), "nothing to unify");
    }

    /// Auth enforcement, as ZooKeeper's AuthenticationHelper reads it.
    #[test]
    fn auth_enforcement_keys() {
        let load = |text: &str| Config::load(Some(&write(text).0), &[]);
        let c = load(
            "clientPort=2181\njava.security.auth.login.config=/j\n\
             sessionRequireClientSASLAuth=true\n",
        )
        .unwrap();
        assert_eq!(c.enforce_auth_schemes, ["sasl"]);
        let c = load(
            "clientPort=2181\njava.security.auth.login.config=/j\nenforce.auth.enabled=true\n\
             enforce.auth.schemes=sasl, digest\n",
        )
        .unwrap();
        assert_eq!(c.enforce_auth_schemes, ["sasl", "digest"]);
        // Schemes without the switch enforce nothing.
        let c = load("clientPort=2181\nenforce.auth.schemes=digest\n").unwrap();
        assert!(c.enforce_auth_schemes.is_empty());
        for bad in [
            "enforce.auth.enabled=true\n",
            "enforce.auth.enabled=true\nenforce.auth.schemes=x509\n",
            "sessionRequireClientSASLAuth=true\n",
        ] {
            assert!(load(&format!("clientPort=2181\n{bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        for key in [
            "ssl.keyStore.password",
            "ssl.quorum.trustStore.password",
            "DigestAuthenticationProvider.superDigest",
            "some.client.secret",
            "java.security.auth.login.config",
            "jaasContent",
        ] {
            assert_eq!(shown_value(key, "hunter2"), "********", "{key}");
        }
        assert_eq!(shown_value("tickTime", "2000"), "2000");
    }

    /// The warning for an ignored key goes through the log; a secret-looking key's value must
    /// not, even for a key Paddock has never heard of.
    #[test]
    fn ignored_secret_values_are_not_logged() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let f = write("clientPort=2181\nmyapp.dbPassword=hunter2\nmyapp.colour=blue\n");
        tracing::subscriber::with_default(subscriber, || {
            Config::load(Some(&f.0), &[]).unwrap();
        });
        let logged = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("myapp.dbPassword"), "{logged}");
        assert!(logged.contains("blue"), "{logged}");
        assert!(!logged.contains("hunter2"), "{logged}");
    }

    #[test]
    fn no_file_is_standalone_default() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.client_addr().to_string(), "127.0.0.1:2181");
        assert_eq!(c.data_dir, PathBuf::from("paddock-data"));
    }
}

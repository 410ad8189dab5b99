//! TLS between servers: `sslQuorum`, `portUnification` on the peer ports, and the
//! `ssl.quorum.*` keys.
//!
//! Both peer ports (election and quorum) carry it, as in ZooKeeper. A server dials its peers
//! with TLS when `sslQuorum=true`; it takes TLS on its own ports whenever `sslQuorum` or
//! `portUnification` is set, and plaintext only without `sslQuorum` or with
//! `portUnification`. That gives ZooKeeper's rolling move from plaintext to TLS: first every
//! server takes both, then every server dials with TLS, then plaintext is turned off.
//!
//! Every peer shows its certificate (client authentication is always required between
//! servers). With `ssl.quorum.hostnameVerification` (the default) a certificate is valid for
//! a server only if its subject alternative names include the host of that server's
//! `server.N` line: the host dialled, for the server we dial; the host of the id it claims
//! in its hello, for one that dials us. Nothing is looked up by reverse DNS.

use crate::config::{ClientAuth, QuorumTls, ServerSpec};
use crate::tls::{self, TlsError};
use paddock_zab::ServerId;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tracing::warn;

/// What a server needs to speak TLS with its peers.
pub struct PeerTls {
    acceptor: tls::Certs,
    connector: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    /// `sslQuorum`: peers are dialled with TLS.
    pub dial_tls: bool,
    /// Plaintext is taken on the peer ports (`portUnification`, or only it without
    /// `sslQuorum`).
    pub accept_plain: bool,
    hostname_verification: bool,
    /// Each member's host, which its certificate must name; a reconfiguration changes them
    /// (`set_hosts`).
    hosts: RwLock<HashMap<ServerId, String>>,
}

/// The server side of a peer connection: client certificates are required, and no session
/// tickets are sent (the peer never reads after the handshake, nor resumes).
fn acceptor_config(q: &QuorumTls) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut cfg = (*tls::server_config(&q.keys)?).clone();
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

impl PeerTls {
    /// Loads and checks everything at start; `None` when no peer connection uses TLS.
    pub fn load(
        q: &QuorumTls,
        me: &ServerSpec,
        servers: &[ServerSpec],
    ) -> Result<Option<Arc<PeerTls>>, TlsError> {
        if !q.wanted() {
            return Ok(None);
        }
        if q.keys.client_auth != ClientAuth::Need {
            return Err(TlsError {
                key: "ssl.quorum.clientAuth".into(),
                msg: "servers always show each other their certificates: only need is \
                      supported"
                    .into(),
            });
        }
        let acceptor = tls::Certs::new(acceptor_config(q)?);
        let connector = Arc::new(RwLock::new(tls::peer_client_config(&q.keys)?));
        let hostname_verification = q.keys.hostname_verification;
        let own = tls::own_certificate(&q.keys)?;
        if hostname_verification {
            let unspecified = me
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_unspecified());
            if !unspecified {
                if let Err(e) = tls::names_host(&own, &me.host) {
                    warn!(
                        host = %me.host,
                        error = %e,
                        "ssl.quorum.keyStore.location: the certificate does not name this \
                         server's host (its server.{} line); the other servers will refuse it",
                        me.id
                    );
                }
            }
            let shared: Vec<ServerId> = servers
                .iter()
                .filter(|s| s.id != me.id && tls::names_host(&own, &s.host).is_ok())
                .map(|s| s.id)
                .collect();
            if !shared.is_empty() {
                warn!(
                    also_valid_for = ?shared,
                    "ssl.quorum.keyStore.location: this certificate is also valid for other \
                     servers' hosts, so whoever holds its key can pose as them; give each \
                     server a certificate naming only its own host"
                );
            }
        } else {
            warn!(
                "ssl.quorum.hostnameVerification=false: any certificate the truststore vouches \
                 for is taken as any server's"
            );
        }
        let t = Arc::new(PeerTls {
            acceptor,
            connector,
            dial_tls: q.ssl,
            accept_plain: q.port_unification || !q.ssl,
            hostname_verification,
            hosts: RwLock::new(servers.iter().map(|s| (s.id, s.host.clone())).collect()),
        });
        if q.reload {
            let (w, q2) = (t.clone(), q.clone());
            tls::watch_files(
                &q.keys,
                std::time::Duration::from_secs(1),
                "quorum TLS (sslQuorumReloadCertFiles)",
                move || {
                    let server = acceptor_config(&q2)?;
                    let client = tls::peer_client_config(&q2.keys)?;
                    w.acceptor.replace(server);
                    *w.connector.write().unwrap_or_else(|e| e.into_inner()) = client;
                    Ok(())
                },
            )
            .map_err(|e| TlsError {
                key: "sslQuorumReloadCertFiles".into(),
                msg: format!("cannot start the watcher: {e}"),
            })?;
        }
        Ok(Some(t))
    }

    /// The acceptor for a peer dialling in.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.acceptor()
    }

    /// The connector for dialling a peer, and the name its certificate must carry.
    pub fn connector(
        &self,
        host: &str,
    ) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("'{host}' is not a host name or an IP address: {e}"))?;
        let cfg = self
            .connector
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok((tokio_rustls::TlsConnector::from(cfg), name))
    }

    /// Whether the certificate a peer dialling in showed is valid for the server it claims to
    /// be (its chain was checked in the handshake).
    /// The members changed (a reconfiguration): a member added at run time is checked
    /// against its own host, one removed is not taken.
    pub fn set_hosts(&self, servers: &[crate::config::ServerSpec]) {
        if let Ok(mut h) = self.hosts.write() {
            *h = servers.iter().map(|s| (s.id, s.host.clone())).collect();
        }
    }

    pub fn check_peer(&self, id: ServerId, certs: &[CertificateDer<'_>]) -> Result<(), String> {
        if !self.hostname_verification {
            return Ok(());
        }
        let host = self
            .hosts
            .read()
            .map_err(|_| "the members' hosts are unreadable".to_string())?
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("server {id} is not in the configuration"))?;
        let cert = certs.first().ok_or("it showed no certificate")?;
        tls::names_host(cert, &host).map_err(|e| {
            format!("its certificate does not name {host}, the host of server.{id} ({e})")
        })
    }
}

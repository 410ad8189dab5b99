//! SASL between servers (`quorum.auth.*`): DIGEST-MD5 or Kerberos on every peer connection,
//! right after the hello (and after TLS, when both are on), as the login modules of the JAAS
//! sections say.
//!
//! DIGEST-MD5: the dialling server authenticates with the credentials of the JAAS section
//! `quorum.auth.learner.saslLoginContext` (`QuorumLearner`: `username`, `password`); the
//! server dialled checks them against the users of `quorum.auth.server.saslLoginContext`
//! (`QuorumServer`: `user_<name>="<password>"`) and proves it knows the password too
//! (`rspauth`), so each side authenticates the other.
//!
//! Kerberos: the dialling server gets a ticket for `quorum.auth.kerberos.servicePrincipal`
//! (`_HOST` replaced by the host of the `server.N` line it dials) with the keytab and principal
//! of its `QuorumLearner` section; the server dialled accepts it with those of its
//! `QuorumServer` section, mutually. The dialler's principal must carry, as its host part, the
//! host of the `server.N` line of the id it claims: otherwise any holder of a quorum keytab
//! could join as any server (ZooKeeper's CVE-2023-44981).
//!
//! On the wire (Paddock's own peer protocol, not ZooKeeper's): a dialler that wants SASL
//! opens with the hello magic `PDKS` instead of `PDKP`. The server dialled answers one status
//! byte: `NO_SASL` (SASL is off here: go on unauthenticated, unless
//! `quorum.auth.learnerRequireSasl`), or `GO` and the challenge; then the dialler's response;
//! then `GO` and `rspauth`, or `REFUSED`. With Kerberos the byte is `KERBEROS`; then the
//! dialler's tokens, each answered `GO` and a token while the context is not established, or
//! `DONE` and the last token, or `REFUSED`. Tokens are framed by a 4-byte big-endian length.
//! A dialler without SASL is refused when `quorum.auth.serverRequireSasl` is set. That gives
//! ZooKeeper's rolling move to quorum SASL: enableSasl everywhere, then learnerRequireSasl,
//! then serverRequireSasl.
//!
//! Nothing here prints a password.

use crate::config::{QuorumSasl, Secret, ServerSpec};
use crate::sasl::{krb5_entry, krb5_keys, DigestExchange, DigestUsers, JaasError};
use paddock_gssapi::{Accepted, Acceptor, Initiator};
use paddock_proto::sasl::{digest_client, hex, parse_jaas};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The hello magic of a dialler that authenticates.
pub const MAGIC_SASL: &[u8; 4] = b"PDKS";
/// Status bytes from the server dialled.
const NO_SASL: u8 = 0;
const GO: u8 = 1;
const REFUSED: u8 = 2;
const KERBEROS: u8 = 3;
const DONE: u8 = 4;
/// The longest token either side accepts (a DIGEST-MD5 token is a few hundred bytes).
const MAX_TOKEN: usize = 4096;

/// Quorum SASL as this server does it.
pub struct PeerSasl {
    mechanism: Mechanism,
    learner_require: bool,
    server_require: bool,
}

enum Mechanism {
    Digest {
        /// The peers' users (`QuorumServer`).
        users: DigestUsers,
        /// This server's credentials (`QuorumLearner`).
        user: String,
        password: Secret,
    },
    Kerberos(Box<Kerberos>),
}

struct Kerberos {
    /// Accepts peers with the `QuorumServer` section's keytab and principal.
    acceptor: Acceptor,
    /// Dials peers with the `QuorumLearner` section's keytab and principal.
    initiator: Initiator,
    /// `quorum.auth.kerberos.servicePrincipal` (`_HOST`: the host dialled).
    service: String,
    /// The host of each server's `server.N` line.
    hosts: HashMap<u64, String>,
}

impl PeerSasl {
    /// Reads both JAAS sections at start; `None` when quorum SASL is off. A missing section,
    /// keytab or principal stops the server.
    pub fn load(
        q: &QuorumSasl,
        jaas: Option<&Path>,
        servers: &[ServerSpec],
    ) -> Result<Option<Arc<PeerSasl>>, JaasError> {
        if !q.enabled {
            return Ok(None);
        }
        const KEY: &str = "java.security.auth.login.config";
        let path = jaas.ok_or(JaasError {
            key: KEY,
            msg: "quorum.auth.enableSasl=true needs a JAAS file".into(),
        })?;
        let bad = |msg: String| JaasError {
            key: KEY,
            msg: format!("{}: {msg}", path.display()),
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let sections = parse_jaas(&text).map_err(bad)?;
        let server = sections.get(&q.server_context).ok_or_else(|| {
            bad(format!(
                "no section {} (quorum.auth.server.saslLoginContext) with the peers' users or \
                 this server's Kerberos keys",
                q.server_context
            ))
        })?;
        let learner = sections.get(&q.learner_context).ok_or_else(|| {
            bad(format!(
                "no section {} (quorum.auth.learner.saslLoginContext) with this server's \
                 credentials",
                q.learner_context
            ))
        })?;
        let mechanism = match (krb5_entry(server), krb5_entry(learner)) {
            (Some(srv), Some(lrn)) => {
                let (skt, sp) = krb5_keys(srv, &q.server_context).map_err(bad)?;
                let (lkt, lp) = krb5_keys(lrn, &q.learner_context).map_err(bad)?;
                let acceptor = Acceptor::new(&skt, &sp)
                    .map_err(|e| bad(format!("section {}: {e}", q.server_context)))?;
                let initiator = Initiator::new(Some(&lkt), Some(&lp))
                    .map_err(|e| bad(format!("section {}: {e}", q.learner_context)))?;
                Mechanism::Kerberos(Box::new(Kerberos {
                    acceptor,
                    initiator,
                    service: q.service_principal.clone(),
                    hosts: servers.iter().map(|s| (s.id, s.host.clone())).collect(),
                }))
            }
            (None, None) => {
                let users = DigestUsers::from_entries(&q.server_context, server).map_err(bad)?;
                let mut creds = None;
                for e in learner {
                    let opt = |k: &str| e.options.iter().find(|(o, _)| o == k).map(|(_, v)| v);
                    if let (Some(u), Some(p)) = (opt("username"), opt("password")) {
                        creds = Some((u.clone(), Secret::new(p.as_str())));
                    }
                }
                let (user, password) = creds.ok_or_else(|| {
                    bad(format!(
                        "section {} has no username and password",
                        q.learner_context
                    ))
                })?;
                Mechanism::Digest {
                    users,
                    user,
                    password,
                }
            }
            _ => {
                return Err(bad(format!(
                    "sections {} and {} must both use Kerberos (Krb5LoginModule) or both \
                     DIGEST-MD5",
                    q.server_context, q.learner_context
                )))
            }
        };
        Ok(Some(Arc::new(PeerSasl {
            mechanism,
            learner_require: q.learner_require,
            server_require: q.server_require,
        })))
    }

    /// Whether a dialler without SASL is refused.
    pub fn server_require(&self) -> bool {
        self.server_require
    }

    /// The dialler's side, after its `PDKS` hello: authenticates to the server dialled at
    /// `host`, and checks that it is who it should be (it knows our password, or its Kerberos
    /// keys).
    pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        self: &Arc<Self>,
        io: &mut S,
        host: &str,
    ) -> Result<(), String> {
        let status = io.read_u8().await.map_err(|e| e.to_string())?;
        match (status, &self.mechanism) {
            (NO_SASL, _) if self.learner_require => Err("the peer does not authenticate by SASL \
                                                         (quorum.auth.learnerRequireSasl=true here)"
                .into()),
            (NO_SASL, _) => Ok(()),
            (GO, Mechanism::Digest { user, password, .. }) => {
                digest_authenticate(io, user, password).await
            }
            (KERBEROS, Mechanism::Kerberos(k)) => {
                let target = k.service.replace("_HOST", host);
                self.kerberos_authenticate(io, target).await
            }
            (GO, Mechanism::Kerberos(_)) => {
                Err("the peer uses DIGEST-MD5 between servers, this server Kerberos".into())
            }
            (KERBEROS, Mechanism::Digest { .. }) => {
                Err("the peer uses Kerberos between servers, this server DIGEST-MD5".into())
            }
            (other, _) => Err(format!("unexpected SASL status {other}")),
        }
    }

    async fn kerberos_authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        self: &Arc<Self>,
        io: &mut S,
        target: String,
    ) -> Result<(), String> {
        // Each step may ask the KDC for a ticket: off the async workers.
        let me = self.clone();
        let first = tokio::task::spawn_blocking(move || {
            let Mechanism::Kerberos(k) = &me.mechanism else {
                unreachable!("a Kerberos exchange with a DIGEST-MD5 configuration")
            };
            let mut ctx = k.initiator.context(&target).map_err(|e| e.to_string())?;
            let out = k
                .initiator
                .step(&mut ctx, None)
                .map_err(|e| format!("{target}: {e}"))?;
            Ok::<_, String>((ctx, out))
        })
        .await
        .map_err(|e| e.to_string())??;
        let (mut ctx, mut out) = first;
        loop {
            let (token, complete) = match out {
                Accepted::Continue(t) => (t, false),
                Accepted::Complete(t) => (t, true),
            };
            write_token(io, None, &token).await?;
            let status = io.read_u8().await.map_err(|e| e.to_string())?;
            if status == REFUSED {
                return Err("the peer refused our Kerberos credentials".into());
            }
            if status != GO && status != DONE {
                return Err(format!("unexpected SASL status {status}"));
            }
            let reply = read_token(io).await?;
            if complete {
                return if status == DONE {
                    Ok(())
                } else {
                    Err("the peer wants more after our context was established".into())
                };
            }
            let me = self.clone();
            let (c, next) = tokio::task::spawn_blocking(move || {
                let Mechanism::Kerberos(k) = &me.mechanism else {
                    unreachable!("a Kerberos exchange with a DIGEST-MD5 configuration")
                };
                let r = k.initiator.step(&mut ctx, Some(&reply));
                (ctx, r)
            })
            .await
            .map_err(|e| e.to_string())?;
            ctx = c;
            out = next.map_err(|e| e.to_string())?;
            if status == DONE {
                return match out {
                    Accepted::Complete(_) => Ok(()),
                    Accepted::Continue(_) => {
                        Err("the peer finished before our context was established".into())
                    }
                };
            }
        }
    }

    /// The side of the server dialled: who the dialler authenticated as. `claimed` is the id
    /// its hello gave: a Kerberos principal must name that server's host.
    pub async fn check<S: AsyncRead + AsyncWrite + Unpin>(
        self: &Arc<Self>,
        io: &mut S,
        claimed: u64,
    ) -> Result<String, String> {
        let k = match &self.mechanism {
            Mechanism::Digest { users, .. } => return digest_check(io, users).await,
            Mechanism::Kerberos(k) => k,
        };
        io.write_all(&[KERBEROS]).await.map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        let mut ctx = k.acceptor.context();
        loop {
            let token = read_token(io).await?;
            let me = self.clone();
            let (c, r) = tokio::task::spawn_blocking(move || {
                let Mechanism::Kerberos(k) = &me.mechanism else {
                    unreachable!("a Kerberos exchange with a DIGEST-MD5 configuration")
                };
                let r = ctx.accept(&k.acceptor, &token);
                (ctx, r)
            })
            .await
            .map_err(|e| e.to_string())?;
            ctx = c;
            let refusal = match r {
                Err(e) => e.to_string(),
                Ok(Accepted::Continue(out)) => {
                    write_token(io, Some(GO), &out).await?;
                    continue;
                }
                Ok(Accepted::Complete(out)) => {
                    let principal = ctx.peer.clone().unwrap_or_default();
                    match check_host(&k.hosts, &principal, claimed) {
                        Ok(()) => {
                            write_token(io, Some(DONE), &out).await?;
                            return Ok(principal);
                        }
                        Err(e) => e,
                    }
                }
            };
            let _ = io.write_all(&[REFUSED]).await;
            let _ = io.flush().await;
            return Err(refusal);
        }
    }
}

/// A principal `service/host@REALM` may only join as a server whose `server.N` line names that
/// host (ZooKeeper's CVE-2023-44981).
fn check_host(hosts: &HashMap<u64, String>, principal: &str, claimed: u64) -> Result<(), String> {
    {
        let expected = hosts
            .get(&claimed)
            .ok_or_else(|| format!("server {claimed} is not in the configuration"))?;
        let name = principal.rsplit_once('@').map_or(principal, |(n, _)| n);
        match name.split_once('/') {
            Some((_, host)) if host.eq_ignore_ascii_case(expected) => Ok(()),
            Some((_, host)) => Err(format!(
                "the principal {principal} names host {host}, not {expected}, the host of \
                 server.{claimed} it claims to be"
            )),
            None => Err(format!(
                "the principal {principal} has no host part, so it cannot be server.{claimed} \
                 ({expected})"
            )),
        }
    }
}

async fn digest_authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    user: &str,
    password: &Secret,
) -> Result<(), String> {
    let challenge = read_token(io).await?;
    let challenge = std::str::from_utf8(&challenge).map_err(|_| "a challenge that is not UTF-8")?;
    let mut raw = [0u8; 16];
    {
        use rand::RngCore;
        rand::rngs::OsRng.fill_bytes(&mut raw);
    }
    let (response, rspauth) = digest_client(challenge, user, password.expose(), &hex(&raw))?;
    write_token(io, None, response.as_bytes()).await?;
    match io.read_u8().await.map_err(|e| e.to_string())? {
        GO => {}
        REFUSED => return Err(format!("the peer refused our credentials (user {user:?})")),
        other => return Err(format!("unexpected SASL status {other}")),
    }
    let got = read_token(io).await?;
    if !bool::from(got.as_slice().ct_eq(rspauth.as_bytes())) {
        return Err("the peer's rspauth is wrong: it does not know our password".into());
    }
    Ok(())
}

async fn digest_check<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    users: &DigestUsers,
) -> Result<String, String> {
    let mut x = DigestExchange::new();
    let challenge = x.step(users, &[]).map_err(|e| e.to_string())?;
    write_token(io, Some(GO), &challenge.token).await?;
    let response = read_token(io).await?;
    match x.step(users, &response) {
        Ok(step) => {
            write_token(io, Some(GO), &step.token).await?;
            step.user.ok_or_else(|| "no user".to_owned())
        }
        Err(e) => {
            let _ = io.write_all(&[REFUSED]).await;
            let _ = io.flush().await;
            Err(e.to_string())
        }
    }
}

/// A server without quorum SASL tells a dialler that wants it so.
pub async fn answer_without_sasl<S: AsyncWrite + Unpin>(io: &mut S) -> std::io::Result<()> {
    io.write_all(&[NO_SASL]).await?;
    io.flush().await
}

async fn write_token<S: AsyncWrite + Unpin>(
    io: &mut S,
    status: Option<u8>,
    token: &[u8],
) -> Result<(), String> {
    let mut out = Vec::with_capacity(5 + token.len());
    out.extend(status);
    out.extend_from_slice(&(token.len() as u32).to_be_bytes());
    out.extend_from_slice(token);
    io.write_all(&out).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())
}

async fn read_token<S: AsyncRead + Unpin>(io: &mut S) -> Result<Vec<u8>, String> {
    let n = io.read_u32().await.map_err(|e| e.to_string())? as usize;
    if n > MAX_TOKEN {
        return Err(format!("a SASL token of {n} bytes"));
    }
    let mut buf = vec![0u8; n];
    io.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(users: &str, user: &str, password: &str) -> Arc<PeerSasl> {
        let jaas = format!(
            "QuorumServer {{ org.apache.zookeeper.server.auth.DigestLoginModule required {users}; }};"
        );
        Arc::new(PeerSasl {
            mechanism: Mechanism::Digest {
                users: DigestUsers::from_jaas(&jaas, "QuorumServer")
                    .unwrap()
                    .unwrap(),
                user: user.into(),
                password: Secret::new(password),
            },
            learner_require: true,
            server_require: true,
        })
    }

    async fn exchange(
        dialler: &Arc<PeerSasl>,
        dialled: &Arc<PeerSasl>,
    ) -> (Result<(), String>, Result<String, String>) {
        let (mut a, mut b) = tokio::io::duplex(8192);
        tokio::join!(dialler.authenticate(&mut a, "h"), dialled.check(&mut b, 1))
    }

    #[tokio::test]
    async fn both_sides_authenticate() {
        let s = sasl(r#"user_zk="pw""#, "zk", "pw");
        let (d, a) = exchange(&s, &s).await;
        assert_eq!(d, Ok(()));
        assert_eq!(a, Ok("zk".to_owned()));
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused_and_a_server_without_it_is_found_out() {
        let server = sasl(r#"user_zk="pw""#, "zk", "pw");
        let wrong = sasl(r#"user_zk="other""#, "zk", "nope");
        let (d, a) = exchange(&wrong, &server).await;
        assert!(d.unwrap_err().contains("refused our credentials"));
        assert!(a.unwrap_err().contains("wrong password"));
        // A server dialled that does not know our password cannot answer with the right
        // rspauth: one that takes any response and makes one up is found out.
        let (mut a, mut b) = tokio::io::duplex(8192);
        let impostor = async {
            let mut x = DigestExchange::new();
            let Mechanism::Digest { users, .. } = &server.mechanism else {
                unreachable!()
            };
            let c = x.step(users, &[]).unwrap();
            write_token(&mut b, Some(GO), &c.token).await.unwrap();
            read_token(&mut b).await.unwrap();
            write_token(
                &mut b,
                Some(GO),
                b"rspauth=0123456789abcdef0123456789abcdef",
            )
            .await
            .unwrap();
        };
        let (d, ()) = tokio::join!(server.authenticate(&mut a, "h"), impostor);
        assert!(d.unwrap_err().contains("rspauth is wrong"));
    }

    #[tokio::test]
    async fn no_sasl_on_the_other_side() {
        let s = sasl(r#"user_zk="pw""#, "zk", "pw");
        let (mut a, mut b) = tokio::io::duplex(64);
        answer_without_sasl(&mut b).await.unwrap();
        assert!(
            s.authenticate(&mut a, "h").await.is_err(),
            "learnerRequireSasl"
        );
        let mut lenient = Arc::try_unwrap(s).ok().unwrap();
        lenient.learner_require = false;
        let s = Arc::new(lenient);
        answer_without_sasl(&mut b).await.unwrap();
        assert_eq!(s.authenticate(&mut a, "h").await, Ok(()));
    }

    /// ZooKeeper's CVE-2023-44981: a quorum principal joins only as the server of its host.
    #[test]
    fn a_kerberos_principal_must_name_the_claimed_servers_host() {
        let hosts: HashMap<u64, String> = [
            (1, "zk1.example.com".to_owned()),
            (2, "10.0.0.2".to_owned()),
        ]
        .into();
        let check = |p: &str, id: u64| check_host(&hosts, p, id);
        assert!(check("zkquorum/zk1.example.com@EXAMPLE.COM", 1).is_ok());
        assert!(check("zkquorum/ZK1.example.com@EXAMPLE.COM", 1).is_ok());
        assert!(check("zkquorum/10.0.0.2@EXAMPLE.COM", 2).is_ok());
        let e = check("zkquorum/zk1.example.com@EXAMPLE.COM", 2).unwrap_err();
        assert!(e.contains("not 10.0.0.2"), "{e}");
        assert!(check("zkquorum@EXAMPLE.COM", 1)
            .unwrap_err()
            .contains("no host part"));
        assert!(check("zkquorum/zk1.example.com@EXAMPLE.COM", 9).is_err());
    }
}

//! SASL between servers (`quorum.auth.*`): DIGEST-MD5 on every peer connection, right after
//! the hello (and after TLS, when both are on).
//!
//! The dialling server authenticates with the credentials of the JAAS section
//! `quorum.auth.learner.saslLoginContext` (`QuorumLearner`: `username`, `password`); the
//! server dialled checks them against the users of `quorum.auth.server.saslLoginContext`
//! (`QuorumServer`: `user_<name>="<password>"`) and proves it knows the password too
//! (`rspauth`), so each side authenticates the other.
//!
//! On the wire (Paddock's own peer protocol, not ZooKeeper's): a dialler that wants SASL
//! opens with the hello magic `PDKS` instead of `PDKP`. The server dialled answers one status
//! byte: `NO_SASL` (SASL is off here: go on unauthenticated, unless
//! `quorum.auth.learnerRequireSasl`), or `GO` and the challenge; then the dialler's response;
//! then `GO` and `rspauth`, or `REFUSED`. Tokens are framed by a 4-byte big-endian length.
//! A dialler without SASL is refused when `quorum.auth.serverRequireSasl` is set. That gives
//! ZooKeeper's rolling move to quorum SASL: enableSasl everywhere, then learnerRequireSasl,
//! then serverRequireSasl.
//!
//! Nothing here prints a password.

use crate::config::{QuorumSasl, Secret};
use crate::sasl::{DigestExchange, DigestUsers, JaasError};
use paddock_proto::sasl::{digest_client, hex, parse_jaas};
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
/// The longest token either side accepts (a DIGEST-MD5 token is a few hundred bytes).
const MAX_TOKEN: usize = 4096;

/// Quorum SASL as this server does it.
pub struct PeerSasl {
    /// The peers' users (`QuorumServer`).
    users: DigestUsers,
    /// This server's credentials (`QuorumLearner`).
    user: String,
    password: Secret,
    learner_require: bool,
    server_require: bool,
}

impl PeerSasl {
    /// Reads both JAAS sections at start; `None` when quorum SASL is off. A missing section,
    /// or one asking for Kerberos, stops the server.
    pub fn load(q: &QuorumSasl, jaas: Option<&Path>) -> Result<Option<Arc<PeerSasl>>, JaasError> {
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
        let users = DigestUsers::load(path, &q.server_context)?.ok_or_else(|| {
            bad(format!(
                "no section {} (quorum.auth.server.saslLoginContext) with the peers' users",
                q.server_context
            ))
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let sections = parse_jaas(&text).map_err(bad)?;
        let entries = sections.get(&q.learner_context).ok_or_else(|| {
            bad(format!(
                "no section {} (quorum.auth.learner.saslLoginContext) with this server's \
                 credentials",
                q.learner_context
            ))
        })?;
        let mut creds = None;
        for e in entries {
            if !e.module.ends_with("DigestLoginModule") {
                return Err(bad(format!(
                    "section {}: the login module {} is not implemented (only \
                     org.apache.zookeeper.server.auth.DigestLoginModule is; Kerberos is not yet)",
                    q.learner_context, e.module
                )));
            }
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
        Ok(Some(Arc::new(PeerSasl {
            users,
            user,
            password,
            learner_require: q.learner_require,
            server_require: q.server_require,
        })))
    }

    /// Whether a dialler without SASL is refused.
    pub fn server_require(&self) -> bool {
        self.server_require
    }

    /// The dialler's side, after its `PDKS` hello: authenticates, and checks that the server
    /// dialled knows the password too.
    pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
    ) -> Result<(), String> {
        match io.read_u8().await.map_err(|e| e.to_string())? {
            NO_SASL if self.learner_require => {
                return Err("the peer does not authenticate by SASL \
                            (quorum.auth.learnerRequireSasl=true here)"
                    .into())
            }
            NO_SASL => return Ok(()),
            GO => {}
            other => return Err(format!("unexpected SASL status {other}")),
        }
        let challenge = read_token(io).await?;
        let challenge =
            std::str::from_utf8(&challenge).map_err(|_| "a challenge that is not UTF-8")?;
        let mut raw = [0u8; 16];
        {
            use rand::RngCore;
            rand::rngs::OsRng.fill_bytes(&mut raw);
        }
        let (response, rspauth) =
            digest_client(challenge, &self.user, self.password.expose(), &hex(&raw))?;
        write_token(io, None, response.as_bytes()).await?;
        match io.read_u8().await.map_err(|e| e.to_string())? {
            GO => {}
            REFUSED => {
                return Err(format!(
                    "the peer refused our credentials (user {:?})",
                    self.user
                ))
            }
            other => return Err(format!("unexpected SASL status {other}")),
        }
        let got = read_token(io).await?;
        if !bool::from(got.as_slice().ct_eq(rspauth.as_bytes())) {
            return Err("the peer's rspauth is wrong: it does not know our password".into());
        }
        Ok(())
    }

    /// The side of the server dialled: the user the dialler authenticated as.
    pub async fn check<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
    ) -> Result<String, String> {
        let mut x = DigestExchange::new();
        let challenge = x.step(&self.users, &[]).map_err(|e| e.to_string())?;
        write_token(io, Some(GO), &challenge.token).await?;
        let response = read_token(io).await?;
        match x.step(&self.users, &response) {
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

    fn sasl(users: &str, user: &str, password: &str) -> PeerSasl {
        let jaas = format!(
            "QuorumServer {{ org.apache.zookeeper.server.auth.DigestLoginModule required {users}; }};"
        );
        PeerSasl {
            users: DigestUsers::from_jaas(&jaas, "QuorumServer")
                .unwrap()
                .unwrap(),
            user: user.into(),
            password: Secret::new(password),
            learner_require: true,
            server_require: true,
        }
    }

    async fn exchange(
        dialler: &PeerSasl,
        dialled: &PeerSasl,
    ) -> (Result<(), String>, Result<String, String>) {
        let (mut a, mut b) = tokio::io::duplex(8192);
        tokio::join!(dialler.authenticate(&mut a), dialled.check(&mut b))
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
            let c = x.step(&server.users, &[]).unwrap();
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
        let (d, ()) = tokio::join!(server.authenticate(&mut a), impostor);
        assert!(d.unwrap_err().contains("rspauth is wrong"));
    }

    #[tokio::test]
    async fn no_sasl_on_the_other_side() {
        let mut s = sasl(r#"user_zk="pw""#, "zk", "pw");
        let (mut a, mut b) = tokio::io::duplex(64);
        answer_without_sasl(&mut b).await.unwrap();
        assert!(s.authenticate(&mut a).await.is_err(), "learnerRequireSasl");
        s.learner_require = false;
        answer_without_sasl(&mut b).await.unwrap();
        assert_eq!(s.authenticate(&mut a).await, Ok(()));
    }
}

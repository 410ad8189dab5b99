//! SASL to the server, as ZooKeeper's Java client does it: the credentials come from the
//! `Client` section (or `zookeeper.sasl.clientconfig`) of the JAAS file named by
//! `-Djava.security.auth.login.config`, and the exchange runs right after each ConnectResponse,
//! before anything else is sent on the connection. The section's login module picks the
//! mechanism: `DigestLoginModule` (DIGEST-MD5, `username` and `password`) or `Krb5LoginModule`
//! (GSSAPI: a `keyTab` and `principal` with `useKeyTab=true`, else the tickets `kinit` left),
//! with a ticket for `zookeeper/<server host>` (`zookeeper.sasl.client.username` names the
//! service).

use paddock_proto::sasl::{digest_client_response, hex, parse_jaas};
use std::path::Path;

/// How a client authenticates.
#[derive(Clone)]
pub enum SaslOptions {
    /// DIGEST-MD5 with a user and password.
    Digest { user: String, password: String },
    /// Kerberos (GSSAPI).
    Kerberos(KerberosOptions),
}

/// Kerberos credentials and the service they are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KerberosOptions {
    /// The keytab to take the principal's keys from; `None`: the default ticket cache.
    pub keytab: Option<String>,
    /// The client's principal; `None`: the cache's (or the keytab's first).
    pub principal: Option<String>,
    /// The server's service name (`zookeeper`); the principal asked for is `<service>/<host>`.
    pub service: String,
}

impl std::fmt::Debug for SaslOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslOptions::Digest { user, .. } => f
                .debug_struct("Digest")
                .field("user", user)
                .field("password", &"********")
                .finish(),
            SaslOptions::Kerberos(k) => k.fmt(f),
        }
    }
}

impl SaslOptions {
    /// DIGEST-MD5 with these credentials.
    pub fn digest(user: impl Into<String>, password: impl Into<String>) -> SaslOptions {
        SaslOptions::Digest {
            user: user.into(),
            password: password.into(),
        }
    }

    /// From the Java client's properties: `None` without a JAAS file, with
    /// `zookeeper.sasl.client=false`, or when the file has no such section (as the Java
    /// client, which then goes on without SASL).
    pub fn from_properties(props: &[(String, String)]) -> Result<Option<SaslOptions>, String> {
        let get = |k: &str| crate::property(props, k);
        let Some(path) = get("java.security.auth.login.config") else {
            return Ok(None);
        };
        if get("zookeeper.sasl.client").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            return Ok(None);
        }
        let section = get("zookeeper.sasl.clientconfig").unwrap_or("Client");
        let service = get("zookeeper.sasl.client.username").unwrap_or("zookeeper");
        Ok(
            SaslOptions::from_jaas_file(Path::new(path), section)?.map(|o| match o {
                SaslOptions::Kerberos(k) => SaslOptions::Kerberos(KerberosOptions {
                    service: service.to_owned(),
                    ..k
                }),
                d => d,
            }),
        )
    }

    /// The credentials of `section` in the JAAS file at `path`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<Option<SaslOptions>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sections = parse_jaas(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(entries) = sections.get(section) else {
            return Ok(None);
        };
        for e in entries {
            let opt = |k: &str| {
                e.options
                    .iter()
                    .find(|(o, _)| o.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            if e.module.ends_with("Krb5LoginModule") {
                let use_keytab = opt("useKeyTab").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                return Ok(Some(SaslOptions::Kerberos(KerberosOptions {
                    keytab: if use_keytab { opt("keyTab") } else { None },
                    principal: opt("principal"),
                    service: "zookeeper".into(),
                })));
            }
            if !e.module.ends_with("DigestLoginModule") {
                return Err(format!(
                    "{}: section {section}: {} is not supported (DigestLoginModule or \
                     Krb5LoginModule)",
                    path.display(),
                    e.module
                ));
            }
            if let (Some(user), Some(password)) = (opt("username"), opt("password")) {
                return Ok(Some(SaslOptions::Digest { user, password }));
            }
        }
        Err(format!(
            "{}: section {section} has no username and password",
            path.display()
        ))
    }
}

/// The DIGEST-MD5 response to the server's challenge.
fn digest_respond(user: &str, password: &str, challenge: &[u8]) -> Result<Vec<u8>, String> {
    use rand::RngCore;
    let challenge = std::str::from_utf8(challenge).map_err(|_| "a challenge that is not UTF-8")?;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    digest_client_response(challenge, user, password, &hex(&raw)).map(String::into_bytes)
}

/// A client's side of one SASL exchange, whatever carries it (crates/client's session, the
/// bench's connections): the first token from [`SaslClient::start`], then each server reply
/// through [`SaslClient::step`] until it says the client is authenticated. The transport
/// sends each token in a SASL request (opcode 102) and turns an error reply into a refusal.
pub struct SaslClient {
    state: ClientState,
}

enum ClientState {
    /// DIGEST-MD5: the challenge comes, then rspauth.
    Digest {
        user: String,
        password: String,
        answered: bool,
    },
    /// GSSAPI (RFC 4752): Kerberos tokens until the context is established (mutually).
    Kerberos {
        init: paddock_gssapi::Initiator,
        ctx: paddock_gssapi::InitContext,
        phase: GssPhase,
    },
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GssPhase {
    /// Our context is not established: the reply is the server's Kerberos token.
    Context,
    /// Established: the reply is the server's wrapped offer of security layers.
    Offer,
    /// Our answer went out: the reply ends the exchange.
    Answered,
}

/// The most round trips an exchange may take.
pub const MAX_SASL_ROUNDS: usize = 8;

impl SaslClient {
    /// Starts the exchange with the server at `host` (its host name or address, for the
    /// Kerberos service principal `<service>/<host>`); gives the first token to send. Asking
    /// the KDC for a ticket blocks, so it runs on a blocking thread.
    pub async fn start(opts: &SaslOptions, host: &str) -> Result<(SaslClient, Vec<u8>), String> {
        match opts {
            SaslOptions::Digest { user, password } => Ok((
                SaslClient {
                    state: ClientState::Digest {
                        user: user.clone(),
                        password: password.clone(),
                        answered: false,
                    },
                },
                Vec::new(),
            )),
            SaslOptions::Kerberos(k) => {
                let target = format!("{}/{host}", k.service);
                let k = k.clone();
                let started = tokio::task::spawn_blocking(move || {
                    let init = paddock_gssapi::Initiator::new(
                        k.keytab.as_deref(),
                        k.principal.as_deref(),
                    )?;
                    let mut ctx = init.context(&target)?;
                    let out = init.step(&mut ctx, None)?;
                    Ok::<_, paddock_gssapi::GssError>((init, ctx, out))
                })
                .await
                .map_err(|e| format!("the Kerberos task failed: {e}"))?
                .map_err(|e| format!("Kerberos: {e}"))?;
                let (init, ctx, out) = started;
                let (token, phase) = match out {
                    paddock_gssapi::Accepted::Continue(t) => (t, GssPhase::Context),
                    paddock_gssapi::Accepted::Complete(t) => (t, GssPhase::Offer),
                };
                Ok((
                    SaslClient {
                        state: ClientState::Kerberos { init, ctx, phase },
                    },
                    token,
                ))
            }
        }
    }

    /// Takes the server's reply: the next token to send, or `None` when authenticated.
    pub fn step(&mut self, reply: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match &mut self.state {
            ClientState::Digest {
                user,
                password,
                answered,
            } => {
                if *answered || reply.starts_with(b"rspauth=") || reply.is_empty() {
                    self.state = ClientState::Done;
                    return Ok(None);
                }
                *answered = true;
                digest_respond(user, password, reply).map(Some)
            }
            ClientState::Kerberos { init, ctx, phase } => match *phase {
                GssPhase::Context => {
                    let out = init
                        .step(ctx, Some(reply))
                        .map_err(|e| format!("Kerberos: the server's token: {e}"))?;
                    Ok(Some(match out {
                        paddock_gssapi::Accepted::Continue(t) => t,
                        paddock_gssapi::Accepted::Complete(t) => {
                            *phase = GssPhase::Offer;
                            t
                        }
                    }))
                }
                GssPhase::Offer => {
                    let layers = ctx
                        .unwrap(reply)
                        .map_err(|e| format!("Kerberos: the server's offer: {e}"))?;
                    if layers.len() != 4 || layers[0] & 1 == 0 {
                        return Err("Kerberos: the server offers no 'no security layer'".into());
                    }
                    *phase = GssPhase::Answered;
                    ctx.wrap(&[1, 0, 0, 0])
                        .map(Some)
                        .map_err(|e| format!("Kerberos: our answer: {e}"))
                }
                GssPhase::Answered => {
                    self.state = ClientState::Done;
                    Ok(None)
                }
            },
            ClientState::Done => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_client_section() {
        let dir = std::env::temp_dir().join(format!("paddock-client-jaas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("jaas.conf");
        std::fs::write(
            &f,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_u=\"p\"; };\n\
             Client { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"u\" password=\"p\"; };\n",
        )
        .unwrap();
        let props = |extra: &[(&str, &str)]| {
            let mut v = vec![(
                "java.security.auth.login.config".to_string(),
                f.display().to_string(),
            )];
            v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            v
        };
        let o = SaslOptions::from_properties(&props(&[])).unwrap().unwrap();
        let SaslOptions::Digest { user, password } = &o else {
            panic!("{o:?}")
        };
        assert_eq!((user.as_str(), password.as_str()), ("u", "p"));
        assert!(!format!("{o:?}").contains("\"p\""));
        assert!(
            SaslOptions::from_properties(&props(&[("zookeeper.sasl.client", "false")]))
                .unwrap()
                .is_none()
        );
        assert!(
            SaslOptions::from_properties(&props(&[("zookeeper.sasl.clientconfig", "Nope")]))
                .unwrap()
                .is_none()
        );
        std::fs::write(
            &f,
            "Client { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
             keyTab=\"/k/client.keytab\" principal=\"client@R\"; };\n\
             Cache { com.sun.security.auth.module.Krb5LoginModule required useTicketCache=true; };\n",
        )
        .unwrap();
        let o = SaslOptions::from_properties(&props(&[("zookeeper.sasl.client.username", "zk")]))
            .unwrap()
            .unwrap();
        let SaslOptions::Kerberos(k) = o else {
            panic!("{o:?}")
        };
        assert_eq!(k.keytab.as_deref(), Some("/k/client.keytab"));
        assert_eq!(k.principal.as_deref(), Some("client@R"));
        assert_eq!(k.service, "zk");
        let o = SaslOptions::from_properties(&props(&[("zookeeper.sasl.clientconfig", "Cache")]))
            .unwrap()
            .unwrap();
        let SaslOptions::Kerberos(k) = o else {
            panic!("{o:?}")
        };
        assert_eq!(
            (k.keytab, k.principal, k.service.as_str()),
            (None, None, "zookeeper")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

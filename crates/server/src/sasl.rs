//! SASL for clients, as ZooKeeper speaks it: SASL requests (opcode 102) after the
//! ConnectResponse, each carrying a token of the mechanism's exchange. The JAAS file ZooKeeper
//! reads (`-Djava.security.auth.login.config=`, the section named by
//! `zookeeper.sasl.serverconfig`, `Server` by default) says which mechanism the server speaks,
//! as the login module of that section does in ZooKeeper:
//! - `DigestLoginModule`: DIGEST-MD5 (RFC 2831) with its `user_<name>="<password>"` users;
//! - `Krb5LoginModule`: GSSAPI (RFC 4752, Kerberos through the system's GSS-API library) with
//!   the keys of its `principal` from its `keyTab`.
//!
//! As ZooKeeper, the realm and server name are the fixed `zk-sasl-md5` and the service
//! `zookeeper`, only `qop=auth` is offered, and a client that authenticates gets the
//! identity `sasl:<user>` (its authentication id; ZooKeeper authorizes any authorization id
//! and then uses the authentication id's short name).
//!
//! Nothing here prints a password or the JAAS file's content.

use crate::config::{KerberosNames, Secret};
use paddock_gssapi::{Accepted, Acceptor, Context};
use paddock_proto::sasl::{directives, hex, parse_jaas, DigestInputs, JaasEntry, DIGEST_URI};
use std::collections::HashMap;
use std::path::Path;
use subtle::ConstantTimeEq;
use thiserror::Error;

pub use paddock_proto::sasl::DIGEST_REALM;

/// A JAAS configuration that cannot be used, naming the key that points at it.
#[derive(Debug, Error)]
#[error("{key}: {msg}")]
pub struct JaasError {
    pub key: &'static str,
    pub msg: String,
}

/// The users a server accepts by DIGEST-MD5.
#[derive(Debug, Default)]
pub struct DigestUsers {
    users: HashMap<String, Secret>,
}

impl DigestUsers {
    /// From the JAAS text: the section `section`, `None` when the file has no such section
    /// (SASL then stays off, as in ZooKeeper).
    pub fn from_jaas(text: &str, section: &str) -> Result<Option<DigestUsers>, String> {
        let sections = parse_jaas(text)?;
        sections
            .get(section)
            .map(|entries| DigestUsers::from_entries(section, entries))
            .transpose()
    }

    /// The `user_<name>` options of a parsed section. A login module other than ZooKeeper's
    /// DigestLoginModule in it is an error: the section asks for something else.
    pub fn from_entries(section: &str, entries: &[JaasEntry]) -> Result<DigestUsers, String> {
        let mut users = HashMap::new();
        for e in entries {
            if !e.module.ends_with("DigestLoginModule") {
                return Err(format!(
                    "section {section}: the login module {} is not implemented here (a section \
                     uses org.apache.zookeeper.server.auth.DigestLoginModule or, alone, \
                     com.sun.security.auth.module.Krb5LoginModule)",
                    e.module
                ));
            }
            for (k, v) in &e.options {
                if let Some(user) = k.strip_prefix("user_") {
                    users.insert(user.to_owned(), Secret::new(v.as_str()));
                }
            }
        }
        Ok(DigestUsers { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A section's Krb5LoginModule, or `None` when it uses DIGEST-MD5.
pub(crate) fn krb5_entry(entries: &[JaasEntry]) -> Option<&JaasEntry> {
    entries
        .iter()
        .find(|e| e.module.ends_with("Krb5LoginModule"))
}

/// A login module option, by its name in any case (as Java's Krb5LoginModule reads them).
pub(crate) fn jaas_option<'a>(e: &'a JaasEntry, k: &str) -> Option<&'a str> {
    e.options
        .iter()
        .find(|(o, _)| o.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
}

/// The keytab and principal of a Krb5LoginModule, the keytab a readable file.
pub(crate) fn krb5_keys(e: &JaasEntry, section: &str) -> Result<(String, String), String> {
    let need = |k: &str| {
        jaas_option(e, k)
            .map(str::to_owned)
            .ok_or_else(|| format!("section {section}: Krb5LoginModule has no {k}"))
    };
    let (keytab, principal) = (need("keyTab")?, need("principal")?);
    if !Path::new(&keytab).is_file() {
        return Err(format!(
            "section {section}: the keyTab {keytab} is not a readable file"
        ));
    }
    Ok((keytab, principal))
}

/// How the server authenticates SASL clients: the mechanism of the JAAS section.
pub enum SaslServer {
    Digest(DigestUsers),
    Kerberos(KerberosServer),
}

/// The server's Kerberos side: its credentials and how identities are named.
pub struct KerberosServer {
    pub acceptor: Acceptor,
    pub names: KerberosNames,
    rules: std::sync::Arc<crate::auth_to_local::AuthToLocal>,
    /// The realm of the server's own principal: principals of it get ZooKeeper's DEFAULT
    /// `auth_to_local` short name.
    realm: String,
}

impl SaslServer {
    /// From the JAAS file at `path`: `None` when it has no section `section` (SASL stays off,
    /// as in ZooKeeper).
    pub fn load(
        path: &Path,
        section: &str,
        names: KerberosNames,
        rules: std::sync::Arc<crate::auth_to_local::AuthToLocal>,
    ) -> Result<Option<SaslServer>, JaasError> {
        const KEY: &str = "java.security.auth.login.config";
        let bad = |msg: String| JaasError {
            key: KEY,
            msg: format!("{}: {msg}", path.display()),
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let sections = parse_jaas(&text).map_err(bad)?;
        let Some(entries) = sections.get(section) else {
            return Ok(None);
        };
        let Some(krb) = krb5_entry(entries) else {
            return DigestUsers::from_entries(section, entries)
                .map(|u| Some(SaslServer::Digest(u)))
                .map_err(bad);
        };
        if jaas_option(krb, "useKeyTab")
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some("true")
        {
            return Err(bad(format!(
                "section {section}: Krb5LoginModule needs useKeyTab=true and a keyTab (a server \
                 accepts with the keys of its keytab)"
            )));
        }
        let (keytab, principal) = krb5_keys(krb, section).map_err(bad)?;
        let acceptor = Acceptor::new(&keytab, &principal)
            .map_err(|e| bad(format!("section {section}: {e}")))?;
        let realm = principal
            .rsplit_once('@')
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
        Ok(Some(SaslServer::Kerberos(KerberosServer {
            acceptor,
            names,
            rules,
            realm,
        })))
    }

    /// A new exchange for a connection that starts one.
    pub fn exchange(&self) -> Exchange {
        match self {
            SaslServer::Digest(_) => Exchange::Digest(DigestExchange::new()),
            SaslServer::Kerberos(k) => {
                Exchange::Gssapi(GssapiExchange::Accepting(k.acceptor.context()))
            }
        }
    }

    /// The mechanism's name, for logs.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslServer::Digest(_) => "DIGEST-MD5",
            SaslServer::Kerberos(_) => "GSSAPI",
        }
    }
}

impl KerberosServer {
    /// The `sasl` identity of an authenticated principal, as ZooKeeper names it: the
    /// `auth_to_local` short name (DEFAULT: the first component, for a principal of the
    /// server's own realm), then `/host` and `@REALM` unless `kerberos.removeHostFromPrincipal`
    /// and `kerberos.removeRealmFromPrincipal` say otherwise. A principal no rule names is its
    /// identity whole (ZooKeeper would take the authorization id the client chose).
    pub fn identity(&self, principal: &str) -> String {
        kerberos_identity(principal, &self.realm, self.names, &self.rules)
    }
}

fn kerberos_identity(
    principal: &str,
    own_realm: &str,
    names: KerberosNames,
    rules: &crate::auth_to_local::AuthToLocal,
) -> String {
    let (name, realm) = match principal.rsplit_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (principal, None),
    };
    let Some(short) = rules.short_name(principal, own_realm) else {
        return principal.to_owned();
    };
    let host = name.split_once('/').map(|(_, h)| h);
    let mut out = short;
    if let Some(h) = host.filter(|_| !names.remove_host) {
        out.push('/');
        out.push_str(h);
    }
    if let Some(r) = realm.filter(|_| !names.remove_realm) {
        out.push('@');
        out.push_str(r);
    }
    out
}

/// A connection's SASL exchange, by mechanism.
pub enum Exchange {
    Digest(DigestExchange),
    Gssapi(GssapiExchange),
    /// A GSSAPI step is running off the core (`Core::sasl_step`); the exchange comes back
    /// with its result.
    InFlight,
}

/// One GSSAPI exchange (RFC 4752), server side: Kerberos tokens until the context is
/// established, then the security layer negotiation, wrapped: Paddock offers no security
/// layer (as ZooKeeper's clients ask for none) and reads the client's choice.
pub enum GssapiExchange {
    /// Taking the client's Kerberos tokens.
    Accepting(Context),
    /// The last Kerberos token went out (mutual authentication); the client answers with an
    /// empty token before the offer.
    Established(Context),
    /// The offer went out.
    Offered(Context),
    /// Authenticated, or failed.
    Done,
}

/// The security layers offered: bit 0, none. The next three bytes: the largest message the
/// server takes (as Java's GssKrb5Server offers it).
const GSSAPI_OFFER: [u8; 4] = [0x01, 0x01, 0x00, 0x00];

impl GssapiExchange {
    /// Takes the client's token and gives the next server token; `user` is the principal once
    /// the client is authenticated. Blocking (the GSS-API library reads its keytab and replay
    /// cache): never on the core task.
    pub fn step(&mut self, token: &[u8], server: &KerberosServer) -> Result<Step, SaslError> {
        let gss = |e: paddock_gssapi::GssError| SaslError::Kerberos(e.to_string());
        match std::mem::replace(self, GssapiExchange::Done) {
            GssapiExchange::Accepting(mut ctx) => {
                match ctx.accept(&server.acceptor, token).map_err(gss)? {
                    Accepted::Continue(out) => {
                        *self = GssapiExchange::Accepting(ctx);
                        Ok(Step {
                            token: out,
                            user: None,
                        })
                    }
                    Accepted::Complete(out) if !out.is_empty() => {
                        *self = GssapiExchange::Established(ctx);
                        Ok(Step {
                            token: out,
                            user: None,
                        })
                    }
                    Accepted::Complete(_) => {
                        let offer = ctx.wrap(&GSSAPI_OFFER).map_err(gss)?;
                        *self = GssapiExchange::Offered(ctx);
                        Ok(Step {
                            token: offer,
                            user: None,
                        })
                    }
                }
            }
            GssapiExchange::Established(mut ctx) => {
                let offer = ctx.wrap(&GSSAPI_OFFER).map_err(gss)?;
                *self = GssapiExchange::Offered(ctx);
                Ok(Step {
                    token: offer,
                    user: None,
                })
            }
            GssapiExchange::Offered(mut ctx) => {
                let answer = ctx.unwrap(token).map_err(gss)?;
                if answer.len() < 4 {
                    return Err(SaslError::Malformed(
                        "the security layer answer is shorter than 4 bytes".into(),
                    ));
                }
                if answer[0] & GSSAPI_OFFER[0] == 0 {
                    return Err(SaslError::Malformed(format!(
                        "the client chose security layer {:#x}, which was not offered",
                        answer[0]
                    )));
                }
                let principal = ctx
                    .peer
                    .clone()
                    .ok_or_else(|| SaslError::Kerberos("no client principal".into()))?;
                Ok(Step {
                    token: Vec::new(),
                    user: Some(principal),
                })
            }
            GssapiExchange::Done => Err(SaslError::Complete),
        }
    }
}

impl std::fmt::Debug for GssapiExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GssapiExchange::Accepting(_) => "Accepting",
            GssapiExchange::Established(_) => "Established",
            GssapiExchange::Offered(_) => "Offered",
            GssapiExchange::Done => "Done",
        })
    }
}

/// Why an exchange failed. The client is told AUTHFAILED; the reason goes to the log only.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("malformed DIGEST-MD5 response: {0}")]
    Malformed(String),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong password for user {0:?}")]
    WrongPassword(String),
    #[error("the exchange is already complete")]
    Complete,
    #[error("Kerberos: {0}")]
    Kerberos(String),
}

/// One DIGEST-MD5 exchange, server side: a challenge, then the client's response checked and
/// answered with `rspauth`.
#[derive(Debug)]
pub enum DigestExchange {
    /// Nothing sent yet.
    Start,
    /// The challenge went out with this nonce.
    Challenged { nonce: String },
    /// Authenticated (or failed): no further step.
    Done,
}

/// What a step gives back: the token for the client, and the user once authenticated.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub token: Vec<u8>,
    pub user: Option<String>,
}

impl DigestExchange {
    pub fn new() -> DigestExchange {
        DigestExchange::Start
    }

    /// Takes the client's token and gives the next server token.
    pub fn step(&mut self, users: &DigestUsers, token: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(self, DigestExchange::Done) {
            DigestExchange::Start => {
                // DIGEST-MD5 has no initial response: whatever came is ignored.
                use rand::RngCore;
                let mut raw = [0u8; 24];
                rand::rngs::OsRng.fill_bytes(&mut raw);
                let nonce = hex(&raw);
                let challenge = format!(
                    "realm=\"{DIGEST_REALM}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,\
                     algorithm=md5-sess"
                );
                *self = DigestExchange::Challenged { nonce };
                Ok(Step {
                    token: challenge.into_bytes(),
                    user: None,
                })
            }
            DigestExchange::Challenged { nonce } => {
                let text = std::str::from_utf8(token)
                    .map_err(|_| SaslError::Malformed("not UTF-8".into()))?;
                let d = directives(text).map_err(SaslError::Malformed)?;
                let get = |k: &str| {
                    d.get(k)
                        .map(String::as_str)
                        .ok_or_else(|| SaslError::Malformed(format!("no {k}")))
                };
                let user = get("username")?;
                let realm = d.get("realm").map(String::as_str).unwrap_or("");
                let (cnonce, nc, uri, response) = (
                    get("cnonce")?,
                    get("nc")?,
                    get("digest-uri")?,
                    get("response")?,
                );
                let qop = d.get("qop").map(String::as_str).unwrap_or("auth");
                if get("nonce")? != nonce {
                    return Err(SaslError::Malformed("the nonce is not the one sent".into()));
                }
                if qop != "auth" {
                    return Err(SaslError::Malformed(format!("qop {qop} was not offered")));
                }
                if nc != "00000001" {
                    return Err(SaslError::Malformed(format!("nonce count {nc}")));
                }
                if uri != DIGEST_URI {
                    return Err(SaslError::Malformed(format!("digest-uri {uri}")));
                }
                let password = users
                    .users
                    .get(user)
                    .ok_or_else(|| SaslError::UnknownUser(user.to_owned()))?;
                let inputs = DigestInputs {
                    user,
                    realm,
                    password: password.expose(),
                    nonce: &nonce,
                    cnonce,
                    nc,
                    qop,
                    uri,
                    authzid: d.get("authzid").map(String::as_str),
                };
                let expected = inputs.digest("AUTHENTICATE");
                // In constant time: how long it takes says nothing about the expected digest.
                let lower = response.to_ascii_lowercase();
                if !bool::from(expected.as_bytes().ct_eq(lower.as_bytes())) {
                    return Err(SaslError::WrongPassword(user.to_owned()));
                }
                let rspauth = inputs.digest("");
                Ok(Step {
                    token: format!("rspauth={rspauth}").into_bytes(),
                    user: Some(user.to_owned()),
                })
            }
            DigestExchange::Done => Err(SaslError::Complete),
        }
    }
}

impl Default for DigestExchange {
    fn default() -> Self {
        DigestExchange::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As ZooKeeper's SaslServerCallbackHandler names a Kerberos client (DEFAULT rules).
    #[test]
    fn kerberos_identities() {
        let default = crate::auth_to_local::AuthToLocal::default();
        let id = |p: &str, host: bool, realm: bool| {
            kerberos_identity(
                p,
                "KAZOOTEST.ORG",
                KerberosNames {
                    remove_host: host,
                    remove_realm: realm,
                },
                &default,
            )
        };
        assert_eq!(
            id("client@KAZOOTEST.ORG", false, false),
            "client@KAZOOTEST.ORG"
        );
        assert_eq!(id("client@KAZOOTEST.ORG", false, true), "client");
        assert_eq!(
            id("zookeeper/127.0.0.1@KAZOOTEST.ORG", false, false),
            "zookeeper/127.0.0.1@KAZOOTEST.ORG"
        );
        assert_eq!(
            id("zookeeper/127.0.0.1@KAZOOTEST.ORG", true, false),
            "zookeeper@KAZOOTEST.ORG"
        );
        assert_eq!(
            id("zookeeper/127.0.0.1@KAZOOTEST.ORG", true, true),
            "zookeeper"
        );
        // Another realm: no DEFAULT rule applies; the principal is the identity, whole.
        assert_eq!(id("app/h@OTHER.ORG", true, true), "app/h@OTHER.ORG");
        // A rule for it: its short name, then host and realm as the keys say.
        let rules = crate::auth_to_local::AuthToLocal::parse(
            "RULE:[2:$1@$0](.*@OTHER\\.ORG)s/@.*// DEFAULT",
        )
        .unwrap();
        let names = KerberosNames {
            remove_host: true,
            remove_realm: false,
        };
        assert_eq!(
            kerberos_identity("app/h@OTHER.ORG", "KAZOOTEST.ORG", names, &rules),
            "app@OTHER.ORG"
        );
    }

    /// A Kerberos section that cannot work stops the server at start, naming what is missing.
    #[test]
    fn kerberos_sections_are_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("paddock-jaas-krb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("jaas.conf");
        for (options, want) in [
            (r#"useKeyTab=true principal="zookeeper/h@R""#, "no keyTab"),
            (
                r#"useKeyTab=true keyTab="/nonexistent/kt" principal="zookeeper/h@R""#,
                "not a readable file",
            ),
            (
                r#"useTicketCache=true principal="zookeeper/h@R""#,
                "useKeyTab=true",
            ),
            (r#"useKeyTab=true keyTab="/etc/hostname""#, "no principal"),
        ] {
            std::fs::write(
                &f,
                format!("Server {{ com.sun.security.auth.module.Krb5LoginModule required {options}; }};"),
            )
            .unwrap();
            let e = SaslServer::load(&f, "Server", KerberosNames::default(), Default::default())
                .err()
                .expect("refused")
                .to_string();
            assert!(e.contains(want), "{options}: {e}");
            assert!(e.starts_with("java.security.auth.login.config"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    const JAAS: &str = r#"
        // kazoo's harness writes this
        Server {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            user_super="super_secret"
            user_jaasuser="jaas_password";
        };
        /* the client's side */
        Client {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            username="jaasuser" password="jaas_password";
        };
    "#;

    #[test]
    fn jaas_sections_and_users() {
        let u = DigestUsers::from_jaas(JAAS, "Server").unwrap().unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u.users["jaasuser"].expose(), "jaas_password");
        assert!(DigestUsers::from_jaas(JAAS, "Other").unwrap().is_none());
        let krb = "Server { com.sun.security.auth.module.Krb5LoginModule required \
                   useKeyTab=true keyTab=\"/k\" principal=\"zookeeper/h@R\"; };";
        assert!(DigestUsers::from_jaas(krb, "Server")
            .unwrap_err()
            .contains("Krb5LoginModule"));
        assert!(parse_jaas("Server { x required a=\"b ; };").is_err());
        assert!(
            !format!("{u:?}").contains("jaas_password"),
            "Debug shows a password"
        );
    }

    /// The client's side, as Paddock's client sends it (with an authzid appended by hand).
    fn client_response(challenge: &str, user: &str, pw: &str, authzid: Option<&str>) -> String {
        let r = paddock_proto::sasl::digest_client_response(challenge, user, pw, "OA6MHXh6VqTrRk")
            .unwrap();
        match authzid {
            None => r,
            Some(z) => {
                // The response digest covers the authzid: recompute it with one.
                let d = directives(&r).unwrap();
                let i = DigestInputs {
                    user,
                    realm: DIGEST_REALM,
                    password: pw,
                    nonce: &d["nonce"],
                    cnonce: &d["cnonce"],
                    nc: "00000001",
                    qop: "auth",
                    uri: paddock_proto::sasl::DIGEST_URI,
                    authzid: Some(z),
                };
                let r = r.replace(&d["response"], &i.digest("AUTHENTICATE"));
                format!("{r},authzid=\"{z}\"")
            }
        }
    }

    fn run(user: &str, pw: &str, authzid: Option<&str>) -> Result<Step, SaslError> {
        let users = DigestUsers::from_jaas(JAAS, "Server").unwrap().unwrap();
        let mut x = DigestExchange::new();
        let c = x.step(&users, b"").unwrap();
        assert!(c.user.is_none());
        let challenge = String::from_utf8(c.token).unwrap();
        assert!(challenge.contains("realm=\"zk-sasl-md5\""), "{challenge}");
        let r = client_response(&challenge, user, pw, authzid);
        let done = x.step(&users, r.as_bytes());
        assert_eq!(x.step(&users, b""), Err(SaslError::Complete));
        done
    }

    #[test]
    fn digest_md5_exchange() {
        let ok = run("jaasuser", "jaas_password", None).unwrap();
        assert_eq!(ok.user.as_deref(), Some("jaasuser"));
        assert!(String::from_utf8(ok.token).unwrap().starts_with("rspauth="));
        let z = run("jaasuser", "jaas_password", Some("jaasuser")).unwrap();
        assert_eq!(z.user.as_deref(), Some("jaasuser"));
        assert_eq!(
            run("jaasuser", "wrong", None),
            Err(SaslError::WrongPassword("jaasuser".into()))
        );
        assert_eq!(
            run("baduser", "badpassword", None),
            Err(SaslError::UnknownUser("baduser".into()))
        );
    }

    #[test]
    fn a_replayed_or_garbled_response_fails() {
        let users = DigestUsers::from_jaas(JAAS, "Server").unwrap().unwrap();
        let mut a = DigestExchange::new();
        let ca = String::from_utf8(a.step(&users, b"").unwrap().token).unwrap();
        let ra = client_response(&ca, "jaasuser", "jaas_password", None);
        // The same response against another exchange's nonce.
        let mut b = DigestExchange::new();
        b.step(&users, b"").unwrap();
        assert!(matches!(
            b.step(&users, ra.as_bytes()),
            Err(SaslError::Malformed(_))
        ));
        let mut c = DigestExchange::new();
        c.step(&users, b"").unwrap();
        assert!(c.step(&users, b"username=\"x").is_err());
        assert!(c.step(&users, &[0xff, 0xfe]).is_err());
    }
}

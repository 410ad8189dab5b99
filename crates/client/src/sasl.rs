//! SASL DIGEST-MD5 to the server, as ZooKeeper's Java client does it: the credentials come from
//! the `Client` section (or `zookeeper.sasl.clientconfig`) of the JAAS file named by
//! `-Djava.security.auth.login.config`, and the exchange runs right after each ConnectResponse,
//! before anything else is sent on the connection.

use paddock_proto::sasl::{digest_client_response, hex, parse_jaas};
use std::path::Path;

/// The user and password a client authenticates with.
#[derive(Clone)]
pub struct SaslOptions {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslOptions")
            .field("user", &self.user)
            .field("password", &"********")
            .finish()
    }
}

impl SaslOptions {
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
        SaslOptions::from_jaas_file(Path::new(path), section)
    }

    /// The DigestLoginModule credentials of `section` in the JAAS file at `path`.
    pub fn from_jaas_file(path: &Path, section: &str) -> Result<Option<SaslOptions>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sections = parse_jaas(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(entries) = sections.get(section) else {
            return Ok(None);
        };
        for e in entries {
            if !e.module.ends_with("DigestLoginModule") {
                return Err(format!(
                    "{}: section {section}: {} is not supported (DIGEST-MD5 only)",
                    path.display(),
                    e.module
                ));
            }
            let opt = |k: &str| {
                e.options
                    .iter()
                    .find(|(o, _)| o == k)
                    .map(|(_, v)| v.clone())
            };
            if let (Some(user), Some(password)) = (opt("username"), opt("password")) {
                return Ok(Some(SaslOptions { user, password }));
            }
        }
        Err(format!(
            "{}: section {section} has no username and password",
            path.display()
        ))
    }

    /// The response to the server's challenge.
    pub(crate) fn respond(&self, challenge: &[u8]) -> Result<Vec<u8>, String> {
        use rand::RngCore;
        let challenge =
            std::str::from_utf8(challenge).map_err(|_| "a challenge that is not UTF-8")?;
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        digest_client_response(challenge, &self.user, &self.password, &hex(&raw))
            .map(String::into_bytes)
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
        assert_eq!((o.user.as_str(), o.password.as_str()), ("u", "p"));
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}

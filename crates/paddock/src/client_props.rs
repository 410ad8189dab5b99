//! The Java client's system properties, for Paddock's own tools: `-Dname=value` arguments
//! and the `CLIENT_JVMFLAGS` / `JVMFLAGS` environment variables zkCli.sh reads. They say whether
//! and how to speak TLS (`zookeeper.client.secure`, `zookeeper.ssl.*`, PEM files) and SASL
//! (`java.security.auth.login.config`, its `Client` section, DIGEST-MD5).

use anyhow::{anyhow, Result};
use paddock_client::{ClientBuilder, SaslOptions, TlsOptions};
use tokio_rustls::TlsConnector;

/// `-Dname=value` pairs from the environment zkCli.sh reads, then from `args` (later wins).
pub fn collect(args: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for var in ["JVMFLAGS", "CLIENT_JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            out.extend(flags.split_whitespace().filter_map(parse));
        }
    }
    out.extend(args.iter().cloned());
    out
}

/// `-Dname=value` as a pair.
pub fn parse(arg: &str) -> Option<(String, String)> {
    let (k, v) = arg.strip_prefix("-D")?.split_once('=')?;
    Some((k.to_owned(), v.to_owned()))
}

/// How Paddock's tools secure their sessions: TLS and SASL, as the properties ask.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<TlsConnector>,
    sasl: Option<SaslOptions>,
}

impl Security {
    /// From the properties; files are read and checked once, at start.
    pub fn from_props(props: &[(String, String)]) -> Result<Security> {
        let tls = match TlsOptions::from_properties(props).map_err(|e| anyhow!(e))? {
            None => None,
            Some(o) => Some(o.connector().map_err(|e| anyhow!("TLS: {e}"))?),
        };
        let sasl = SaslOptions::from_properties(props).map_err(|e| anyhow!("SASL: {e}"))?;
        Ok(Security { tls, sasl })
    }

    /// The builder, secured.
    pub fn apply(&self, mut builder: ClientBuilder) -> ClientBuilder {
        if let Some(c) = &self.tls {
            builder = builder.tls(c.clone());
        }
        if let Some(s) = &self.sasl {
            builder = builder.sasl(s.clone());
        }
        builder
    }
}

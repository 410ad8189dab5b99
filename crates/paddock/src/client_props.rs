//! The Java client's system properties, for Paddock's own tools: `-Dname=value` arguments
//! and the `CLIENT_JVMFLAGS` / `JVMFLAGS` environment variables zkCli.sh reads. Today they say
//! whether and how to speak TLS (`zookeeper.client.secure`, `zookeeper.ssl.*`, PEM files).

use anyhow::{anyhow, Result};
use paddock_client::{ClientBuilder, TlsOptions};
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

/// The TLS connector the properties ask for, if any; checked once, at start.
pub fn connector(props: &[(String, String)]) -> Result<Option<TlsConnector>> {
    match TlsOptions::from_properties(props).map_err(|e| anyhow!(e))? {
        None => Ok(None),
        Some(o) => Ok(Some(o.connector().map_err(|e| anyhow!("TLS: {e}"))?)),
    }
}

/// The builder, with TLS when `tls` is given.
pub fn with(builder: ClientBuilder, tls: &Option<TlsConnector>) -> ClientBuilder {
    match tls {
        Some(c) => builder.tls(c.clone()),
        None => builder,
    }
}

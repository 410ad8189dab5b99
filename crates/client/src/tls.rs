//! TLS to the server, as ZooKeeper's Java client speaks it with `zookeeper.client.secure=true`:
//! the server's certificate checked against a CA (`zookeeper.ssl.trustStore.location`, PEM),
//! its host name checked unless `zookeeper.ssl.hostnameVerification=false`, and the client's
//! own certificate and key (`zookeeper.ssl.keyStore.location`: ZooKeeper's PEM keystore, the
//! key and the certificate chain in one file) when the server asks for one.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How a client speaks TLS.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM file of the CA certificates that vouch for servers.
    pub ca: PathBuf,
    /// PEM file holding the client's private key and certificate chain, if it has one.
    pub identity: Option<PathBuf>,
    /// Check that the server's certificate names the host connected to (ZooKeeper's default).
    pub verify_hostname: bool,
}

impl TlsOptions {
    /// From the Java client's system properties (`-Dzookeeper.client.secure=true` and the
    /// `zookeeper.ssl.*` keys, PEM stores only): `None` unless `zookeeper.client.secure`.
    pub fn from_properties(props: &[(String, String)]) -> Result<Option<TlsOptions>, String> {
        let get = |k: &str| crate::property(props, k);
        if !get("zookeeper.client.secure").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        for k in [
            "zookeeper.ssl.keyStore.type",
            "zookeeper.ssl.trustStore.type",
        ] {
            if let Some(t) = get(k).filter(|t| !t.eq_ignore_ascii_case("PEM")) {
                return Err(format!("{k}={t}: Paddock's tools read PEM stores only"));
            }
        }
        let ca = get("zookeeper.ssl.trustStore.location")
            .ok_or("zookeeper.client.secure=true needs zookeeper.ssl.trustStore.location")?;
        Ok(Some(TlsOptions {
            ca: PathBuf::from(ca),
            identity: get("zookeeper.ssl.keyStore.location").map(PathBuf::from),
            verify_hostname: !get("zookeeper.ssl.hostnameVerification")
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
        }))
    }

    /// The connector these options describe; an unreadable file is an error naming it.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        #[allow(deprecated)] // ring, as the server: see crates/server/src/tls.rs
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.ca)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("{}: {e}", self.ca.display()))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("{}: no CA certificate", self.ca.display()));
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify_hostname {
            inner
        } else {
            Arc::new(AnyName(inner))
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cfg = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(p) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                let key = PrivateKeyDer::from_pem_file(p)
                    .map_err(|e| format!("{}: no private key: {e}", p.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("{}: {e}", p.display()))?
            }
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    }
}

/// The server's certificate checked as usual except for the name it is valid for
/// (`zookeeper.ssl.hostnameVerification=false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A connection to a server: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects to `host` (`name:port`), with TLS when `tls` is given.
    pub(crate) async fn connect(
        host: &str,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> std::io::Result<Stream> {
        let s = TcpStream::connect(host).await?;
        s.set_nodelay(true)?;
        let Some(connector) = tls else {
            return Ok(Stream::Plain(s));
        };
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let server = ServerName::try_from(name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Stream::Tls(Box::new(connector.connect(server, s).await?)))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_java_clients_properties() {
        assert!(TlsOptions::from_properties(&[]).unwrap().is_none());
        let o = TlsOptions::from_properties(&props(&[
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/ca.pem"),
            ("zookeeper.ssl.keyStore.location", "/me.pem"),
            ("zookeeper.ssl.hostnameVerification", "false"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.ca, PathBuf::from("/ca.pem"));
        assert_eq!(o.identity, Some(PathBuf::from("/me.pem")));
        assert!(!o.verify_hostname);
        assert!(
            TlsOptions::from_properties(&props(&[("zookeeper.client.secure", "true")])).is_err()
        );
        assert!(TlsOptions::from_properties(&props(&[
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/t.jks"),
            ("zookeeper.ssl.trustStore.type", "JKS"),
        ]))
        .is_err());
    }
}

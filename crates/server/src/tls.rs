//! TLS for client connections: the server's identity and the clients it trusts, read from
//! ZooKeeper's `ssl.*` keys, and the rustls configuration built from them.
//!
//! Keystores and truststores are read as ZooKeeper reads them: JKS, PKCS12 or PEM, the type
//! from `ssl.*Store.type` or else from the file's extension (`.jks`, `.p12`/`.pfx`, `.pem`).
//! Everything is loaded and checked before the server listens: a store that is missing,
//! unreadable or does not open with its password, a protocol or cipher suite rustls does not
//! offer (TLS 1.0/1.1, CBC suites), is an error at start naming the key. The server never falls
//! back to plaintext.
//!
//! Passwords are held in [`Secret`], which never prints its value.

use crate::config::{ClientAuth, Secret, StoreSpec, TlsKeys};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::UnixTime;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// A TLS setting that cannot be honoured, naming its key.
#[derive(Debug, Error)]
#[error("{key}: {msg}")]
pub struct TlsError {
    /// The zoo.cfg key at fault (`ssl.keyStore.location`, ...).
    pub key: String,
    /// What is wrong with it.
    pub msg: String,
}

fn err(key: impl Into<String>, msg: impl Into<String>) -> TlsError {
    TlsError {
        key: key.into(),
        msg: msg.into(),
    }
}

/// The kinds of store ZooKeeper reads (`ssl.keyStore.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Jks,
    Pkcs12,
    Pem,
}

impl StoreKind {
    /// From the `type` key, or else from the file name as ZooKeeper's X509Util does.
    fn of(spec: &StoreSpec, prefix: &str, location: &Path) -> Result<StoreKind, TlsError> {
        let by_name = || {
            let name = location.to_string_lossy().to_ascii_lowercase();
            if name.ends_with(".jks") {
                Some(StoreKind::Jks)
            } else if name.ends_with(".p12") || name.ends_with(".pfx") {
                Some(StoreKind::Pkcs12)
            } else if name.ends_with(".pem") {
                Some(StoreKind::Pem)
            } else {
                None
            }
        };
        match spec.kind.as_deref().map(str::to_ascii_uppercase) {
            Some(t) if t == "JKS" => Ok(StoreKind::Jks),
            Some(t) if t == "PKCS12" => Ok(StoreKind::Pkcs12),
            Some(t) if t == "PEM" => Ok(StoreKind::Pem),
            Some(t) => Err(err(
                format!("{prefix}.type"),
                format!("'{t}' is not a store type Paddock reads (JKS, PKCS12 or PEM)"),
            )),
            None => by_name().ok_or_else(|| {
                err(
                    format!("{prefix}.location"),
                    "cannot tell the store's type from its name (.jks, .p12, .pfx or .pem): \
                     set the type key",
                )
            }),
        }
    }
}

/// The store's password: `password`, else the first line of the `passwordPath` file.
fn password(spec: &StoreSpec, prefix: &str) -> Result<Option<Secret>, TlsError> {
    if let Some(p) = &spec.password {
        return Ok(Some(p.clone()));
    }
    let Some(path) = &spec.password_path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            format!("{prefix}.passwordPath"),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    // ZooKeeper reads the whole file; a trailing newline is an editor's, not the password's.
    Ok(Some(Secret::new(text.trim_end_matches(['\n', '\r']))))
}

/// What a JKS or PKCS12 store holds: keys with their chains, and trusted certificates.
#[derive(Default)]
struct StoreContents {
    keys: Vec<(
        String,
        Vec<CertificateDer<'static>>,
        PrivatePkcs8KeyDer<'static>,
    )>,
    trusted: Vec<CertificateDer<'static>>,
}

/// A JKS or PKCS12 file opened with its password (Java protects a JKS store's keys with the
/// store's password too, as ZooKeeper expects).
fn open_java_store(
    location: &Path,
    prefix: &str,
    kind: StoreKind,
    pw: Option<&Secret>,
) -> Result<StoreContents, TlsError> {
    let key = format!("{prefix}.location");
    let data = std::fs::read(location)
        .map_err(|e| err(&key, format!("cannot read {}: {e}", location.display())))?;
    let pw = pw.map(Secret::expose).unwrap_or("");
    // Neither crate's errors carry the password; a wrong one shows as a bad digest or MAC.
    let refused = |e: &dyn std::fmt::Display| {
        err(
            &key,
            format!(
                "{} does not open as {kind:?} with the configured password ({e})",
                location.display()
            ),
        )
    };
    let mut out = StoreContents::default();
    if kind == StoreKind::Jks {
        let mut ks = jks::KeyStore::new();
        ks.load(data.as_slice(), pw.as_bytes())
            .map_err(|e| refused(&e))?;
        for alias in ks.aliases() {
            if ks.is_private_key_entry(&alias) {
                let e = ks
                    .get_private_key_entry(&alias, pw.as_bytes())
                    .map_err(|e| refused(&e))?;
                let chain = e
                    .certificate_chain
                    .into_iter()
                    .map(|c| CertificateDer::from(c.content))
                    .collect();
                out.keys
                    .push((alias, chain, PrivatePkcs8KeyDer::from(e.private_key)));
            } else if let Ok(t) = ks.get_trusted_certificate_entry(&alias) {
                out.trusted
                    .push(CertificateDer::from(t.certificate.content));
            }
        }
    } else {
        use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
        // Relaxed: a truststore's certificates stand alone, linked to no key.
        let ks = KeyStore::from_pkcs12(&data, pw, Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| refused(&e))?;
        for (alias, entry) in ks.entries() {
            match entry {
                KeyStoreEntry::PrivateKeyChain(c) => out.keys.push((
                    alias.clone(),
                    c.certs()
                        .iter()
                        .map(|c| CertificateDer::from(c.as_der().to_vec()))
                        .collect(),
                    PrivatePkcs8KeyDer::from(c.key().as_der().to_vec()),
                )),
                KeyStoreEntry::Certificate(c) => {
                    out.trusted.push(CertificateDer::from(c.as_der().to_vec()))
                }
                KeyStoreEntry::Secret(_) => {}
            }
        }
    }
    Ok(out)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The server's certificate chain and private key from `<prefix>.keyStore.*`.
fn load_identity(t: &TlsKeys) -> Result<Identity, TlsError> {
    let p = format!("{}.keyStore", t.prefix);
    let (pfx, spec) = (p.as_str(), &t.key_store);
    let location = spec
        .location
        .as_deref()
        .ok_or_else(|| err(format!("{pfx}.location"), "a TLS port needs a keystore"))?;
    let kind = StoreKind::of(spec, pfx, location)?;
    let loc_key = format!("{pfx}.location");
    match kind {
        StoreKind::Pem => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(location)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| err(&loc_key, format!("{}: {e}", location.display())))?;
            let key = PrivateKeyDer::from_pem_file(location).map_err(|e| {
                let hint = if std::fs::read_to_string(location)
                    .is_ok_and(|t| t.contains("ENCRYPTED PRIVATE KEY"))
                {
                    " (encrypted PEM keys are not supported yet: use PKCS12 or JKS, or an \
                     unencrypted key file readable only by the server)"
                } else {
                    ""
                };
                err(
                    &loc_key,
                    format!("{}: no usable private key: {e}{hint}", location.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(err(
                    &loc_key,
                    format!("{}: no certificate", location.display()),
                ));
            }
            Ok((certs, key))
        }
        StoreKind::Jks | StoreKind::Pkcs12 => {
            let pw = password(spec, pfx)?;
            let store = open_java_store(location, pfx, kind, pw.as_ref())?;
            let Some((alias, certs, key)) = store.keys.into_iter().next() else {
                return Err(err(
                    &loc_key,
                    format!("{} holds no private key entry", location.display()),
                ));
            };
            if certs.is_empty() {
                return Err(err(
                    &loc_key,
                    format!("the key '{alias}' has no certificate"),
                ));
            }
            let key = PrivateKeyDer::Pkcs8(key);
            Ok((certs, key))
        }
    }
}

/// The certificates trusted for peers, from `<prefix>.trustStore.*`, read once: as roots for
/// rustls's verifiers, and as they are for [`AcceptV1`].
type Trust = (RootCertStore, Vec<CertificateDer<'static>>);

fn load_trust(t: &TlsKeys) -> Result<Trust, TlsError> {
    let p = format!("{}.trustStore", t.prefix);
    let (pfx, spec) = (p.as_str(), &t.trust_store);
    let location = spec.location.as_deref().ok_or_else(|| {
        err(
            format!("{pfx}.location"),
            "certificates are checked here, so a truststore is needed",
        )
    })?;
    let kind = StoreKind::of(spec, pfx, location)?;
    let loc_key = format!("{pfx}.location");
    let certs: Vec<CertificateDer<'static>> = match kind {
        StoreKind::Pem => CertificateDer::pem_file_iter(location)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| err(&loc_key, format!("{}: {e}", location.display())))?,
        StoreKind::Jks | StoreKind::Pkcs12 => {
            let pw = password(spec, pfx)?;
            let store = open_java_store(location, pfx, kind, pw.as_ref())?;
            // Java trusts a key entry's chain too.
            let mut certs = store.trusted;
            certs.extend(store.keys.into_iter().flat_map(|(_, chain, _)| chain));
            certs
        }
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(err(
            &loc_key,
            format!(
                "{} holds no usable certificate ({ignored} could not be parsed)",
                location.display()
            ),
        ));
    }
    Ok((roots, certs))
}

/// TLS 1.2 and 1.3 by their Java names; anything older is refused by name.
fn protocol(name: &str, key: &str) -> Result<&'static SupportedProtocolVersion, TlsError> {
    match name.trim() {
        "TLSv1.3" => Ok(&rustls::version::TLS13),
        "TLSv1.2" => Ok(&rustls::version::TLS12),
        old @ ("TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello") => Err(err(
            key,
            format!("{old} is not offered: it is obsolete and insecure (TLSv1.2 and TLSv1.3 are)"),
        )),
        other => Err(err(
            key,
            format!("'{other}' is not a TLS protocol Paddock offers (TLSv1.2, TLSv1.3)"),
        )),
    }
}

/// The protocol versions: `ssl.enabledProtocols`, else what `ssl.protocol` implies
/// (ZooKeeper enables TLSv1.3 and TLSv1.2 for TLSv1.3, and only the named one otherwise).
fn versions(t: &TlsKeys) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let main = match t.protocol.as_deref().map(str::trim) {
        None | Some("TLS") => None,
        Some(p) => Some(protocol(p, &format!("{}.protocol", t.prefix))?),
    };
    if let Some(list) = &t.enabled_protocols {
        let key = format!("{}.enabledProtocols", t.prefix);
        let mut out = Vec::new();
        for name in list {
            let v = protocol(name, &key)?;
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Err(err(key, "names no protocol"));
        }
        return Ok(out);
    }
    Ok(match main {
        Some(v) if v == &rustls::version::TLS12 => vec![&rustls::version::TLS12],
        _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    })
}

/// The suites named in `ssl.ciphersuites` (Java's names, which are IANA's), in that order.
fn suites(
    names: &[String],
    available: &[SupportedCipherSuite],
    key: &str,
) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let mut out = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        // rustls spells TLS 1.3 suites TLS13_*, Java TLS_*.
        let found = available.iter().find(|s| {
            let ours = format!("{:?}", s.suite());
            ours == name || ours.replacen("TLS13_", "TLS_", 1) == name
        });
        match found {
            Some(s) => out.push(*s),
            None if name.contains("_CBC_") => {
                return Err(err(
                    key,
                    format!("{name}: CBC suites are not offered (only AEAD suites are)"),
                ))
            }
            None => {
                return Err(err(
                    key,
                    format!("{name} is not a cipher suite Paddock offers"),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(err(key, "names no cipher suite"));
    }
    Ok(out)
}

/// The crypto provider and protocol versions the keys ask for.
fn provider(
    t: &TlsKeys,
) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), TlsError> {
    // ring, not aws-lc-rs: it builds in seconds without cmake or a C++ toolchain (CI builds
    // from scratch on 2 cores), at the cost of no post-quantum key exchange, which rustls
    // therefore marks deprecated here.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &t.ciphersuites {
        provider.cipher_suites = suites(
            names,
            &provider.cipher_suites,
            &format!("{}.ciphersuites", t.prefix),
        )?;
    }
    Ok((Arc::new(provider), versions(t)?))
}

/// The rustls server configuration for the client port(s) or the peer ports, everything
/// checked.
pub fn server_config(t: &TlsKeys) -> Result<Arc<ServerConfig>, TlsError> {
    let (provider, versions) = provider(t)?;
    let key_key = format!("{}.keyStore.location", t.prefix);
    let (certs, key) = load_identity(t)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                format!("{}.ciphersuites", t.prefix),
                format!("no suite for the protocols: {e}"),
            )
        })?;
    let builder = match t.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Want | ClientAuth::Need => {
            let (roots, anchors) = load_trust(t)?;
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let v = if t.client_auth == ClientAuth::Want {
                v.allow_unauthenticated()
            } else {
                v
            };
            let inner = v
                .build()
                .map_err(|e| err(format!("{}.trustStore.location", t.prefix), e.to_string()))?;
            builder.with_client_cert_verifier(Arc::new(AcceptV1 {
                inner,
                anchors,
                algs: provider.signature_verification_algorithms,
            }))
        }
    };
    let cfg = if is_v1(&certs[0]) {
        // Java takes X.509 v1 certificates, and kazoo's test harness makes them; rustls's
        // certificate checks do not. Our own certificate is only presented, never checked
        // here, so it is served as it is, with a warning.
        tracing::warn!(
            "{key_key}: the server certificate is X.509 v1; it is served as ZooKeeper serves \
             it, but reissue it as v3"
        );
        let signer = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| err(&key_key, format!("the private key is not usable: {e}")))?;
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            rustls::sign::CertifiedKey::new(certs, signer),
        )))
    } else {
        builder.with_single_cert(certs, key).map_err(|e| {
            err(
                &key_key,
                format!("the key does not fit the certificate or is not usable: {e}"),
            )
        })?
    };
    Ok(Arc::new(cfg))
}

/// The rustls client configuration a server dials its peers with: its own certificate as
/// the client certificate, the peer's checked against the truststore and, with
/// `hostnameVerification`, against the host of the `server.N` line dialled.
pub fn peer_client_config(t: &TlsKeys) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let (provider, versions) = provider(t)?;
    let key_key = format!("{}.keyStore.location", t.prefix);
    let (certs, key) = load_identity(t)?;
    if is_v1(&certs[0]) {
        return Err(err(
            key_key,
            "an X.509 v1 certificate cannot be checked by the other servers: reissue it as v3",
        ));
    }
    let (roots, _) = load_trust(t)?;
    let trust_key = format!("{}.trustStore.location", t.prefix);
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| err(&trust_key, e.to_string()))?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = if t.hostname_verification {
        webpki
    } else {
        Arc::new(AnyName(webpki))
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                format!("{}.ciphersuites", t.prefix),
                format!("no suite for the protocols: {e}"),
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certs, key)
        .map_err(|e| {
            err(
                key_key,
                format!("the key does not fit the certificate or is not usable: {e}"),
            )
        })?;
    Ok(Arc::new(cfg))
}

/// The end-entity certificate of a keystore, for checks at start (which hosts it names).
pub fn own_certificate(t: &TlsKeys) -> Result<CertificateDer<'static>, TlsError> {
    Ok(load_identity(t)?.0.swap_remove(0))
}

/// Whether a certificate names `host` (an IP address or a DNS name) among its subject
/// alternative names, as a TLS client checks a server it dialled by that name.
pub fn names_host(cert: &CertificateDer<'_>, host: &str) -> Result<(), String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("'{host}' is not a host name or an IP address: {e}"))?;
    let parsed = rustls::server::ParsedCertificate::try_from(cert)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    rustls::client::verify_server_name(&parsed, &name).map_err(|e| e.to_string())
}

/// A server certificate check without the name: `ssl.quorum.hostnameVerification=false`.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
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

/// Whether a DER certificate is X.509 v1 (no version field, so no extensions).
fn is_v1(der: &[u8]) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.version() == X509Version::V1)
}

/// Client certificate checks as rustls does them, except that an X.509 v1 client certificate
/// (which rustls refuses outright, and Java accepts) is accepted when a trust anchor signed it
/// directly and it is within its validity period. A v1 certificate cannot carry
/// basicConstraints, so it is never taken as an issuer; only as the client's own. Its
/// handshake signature is checked with its public key under TLS 1.3 (TLS 1.2 is refused for
/// such a client).
#[derive(Debug)]
struct AcceptV1 {
    inner: Arc<dyn ClientCertVerifier>,
    anchors: Vec<CertificateDer<'static>>,
    algs: WebPkiSupportedAlgorithms,
}

fn unsupported_version(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(CertificateError::Other(o))
        if format!("{o:?}").contains("UnsupportedCertVersion"))
}

impl AcceptV1 {
    fn check_v1(&self, ee: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
        let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
        let (_, cert) =
            X509Certificate::from_der(ee).map_err(|_| bad(CertificateError::BadEncoding))?;
        if cert.version() != X509Version::V1 {
            return Err(bad(CertificateError::BadEncoding));
        }
        let t = now.as_secs() as i64;
        let v = cert.validity();
        if t < v.not_before.timestamp() {
            return Err(bad(CertificateError::NotValidYet));
        }
        if t > v.not_after.timestamp() {
            return Err(bad(CertificateError::Expired));
        }
        for der in &self.anchors {
            let Ok((_, anchor)) = X509Certificate::from_der(der) else {
                continue;
            };
            if anchor.subject().as_raw() == cert.issuer().as_raw()
                && cert.verify_signature(Some(anchor.public_key())).is_ok()
            {
                return Ok(());
            }
        }
        Err(bad(CertificateError::UnknownIssuer))
    }
}

impl ClientCertVerifier for AcceptV1 {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(e) if unsupported_version(&e) => self
                .check_v1(end_entity, now)
                .map(|_| ClientCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match self.inner.verify_tls13_signature(message, cert, dss) {
            Err(e) if unsupported_version(&e) => {
                use x509_parser::prelude::{FromDer, X509Certificate};
                let (_, c) = X509Certificate::from_der(cert).map_err(|_| {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(c.public_key().raw);
                rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs)
            }
            r => r,
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration new connections get. With `client.certReload=true` a watcher thread
/// replaces it when the store files change; connections already open keep the one they
/// started with (rustls holds it per connection).
#[derive(Clone)]
pub struct Certs {
    current: Arc<std::sync::RwLock<Arc<ServerConfig>>>,
}

impl Certs {
    pub fn new(cfg: Arc<ServerConfig>) -> Certs {
        Certs {
            current: Arc::new(std::sync::RwLock::new(cfg)),
        }
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let cfg = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(cfg)
    }

    pub(crate) fn replace(&self, cfg: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    /// Watches the files `t` names (stores and password files) and reloads when one changes,
    /// as ZooKeeper's `client.certReload` does.
    pub fn watch(&self, t: TlsKeys, every: std::time::Duration) -> std::io::Result<()> {
        let certs = self.clone();
        let files = t.clone();
        watch_files(&files, every, "client TLS (client.certReload)", move || {
            certs.replace(server_config(&t)?);
            Ok(())
        })
    }
}

/// Calls `reload` when a file `t` names (stores and password files) changes. A change that
/// does not load (a half-written file, a wrong password) is logged and the current
/// certificates stay; the watcher tries again at the next change.
pub fn watch_files(
    t: &TlsKeys,
    every: std::time::Duration,
    what: &'static str,
    mut reload: impl FnMut() -> Result<(), TlsError> + Send + 'static,
) -> std::io::Result<()> {
    let files: Vec<std::path::PathBuf> = [
        &t.key_store.location,
        &t.key_store.password_path,
        &t.trust_store.location,
        &t.trust_store.password_path,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let stamp = move || -> Vec<Option<(std::time::SystemTime, u64, u64)>> {
        use std::os::unix::fs::MetadataExt;
        files
            .iter()
            .map(|f| {
                std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))
            })
            .collect()
    };
    std::thread::Builder::new()
        .name("cert-reload".into())
        .spawn(move || {
            let mut seen = stamp();
            loop {
                std::thread::sleep(every);
                let now = stamp();
                if now == seen {
                    continue;
                }
                seen = now;
                match reload() {
                    Ok(()) => tracing::info!(what, "TLS certificates reloaded"),
                    Err(e) => tracing::warn!(
                        what,
                        error = %e,
                        "TLS certificates changed but do not load; keeping the current ones"
                    ),
                }
            }
        })
        .map(|_| ())
}

/// Whether the first byte of a connection starts a TLS handshake (a TLS record of type
/// handshake), which no ZooKeeper frame or four-letter word does: a ConnectRequest begins with
/// its length, under 16 MB, so its first byte is 0, and four-letter words are letters.
pub fn starts_tls(first: u8) -> bool {
    first == 0x16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TlsKeys {
        TlsKeys::new("ssl")
    }

    #[test]
    fn protocols_by_their_java_names() {
        // ZooKeeper's default protocol enables 1.3 and 1.2.
        assert_eq!(versions(&t()).unwrap().len(), 2);
        let only12 = TlsKeys {
            protocol: Some("TLSv1.2".into()),
            ..t()
        };
        assert_eq!(versions(&only12).unwrap(), vec![&rustls::version::TLS12]);
        let listed = TlsKeys {
            enabled_protocols: Some(vec!["TLSv1.3".into()]),
            ..t()
        };
        assert_eq!(versions(&listed).unwrap(), vec![&rustls::version::TLS13]);
        for bad in ["TLSv1.1", "TLSv1", "SSLv3", "TLSv9"] {
            let c = TlsKeys {
                enabled_protocols: Some(vec!["TLSv1.2".into(), bad.into()]),
                ..t()
            };
            let e = versions(&c).unwrap_err();
            assert_eq!(e.key, "ssl.enabledProtocols", "{bad}");
        }
    }

    #[test]
    fn cipher_suites_by_their_java_names() {
        #[allow(deprecated)]
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = suites(
            &names(&[
                "TLS_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            ]),
            &all,
            "ssl.ciphersuites",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(format!("{:?}", got[0].suite()), "TLS13_AES_128_GCM_SHA256");
        let cbc = suites(&names(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]), &all, "k").unwrap_err();
        assert!(cbc.msg.contains("CBC"), "{}", cbc.msg);
        assert!(suites(&names(&["TLS_NOT_A_SUITE"]), &all, "k").is_err());
        assert!(suites(&names(&[" "]), &all, "k").is_err());
    }

    #[test]
    fn store_types_from_the_key_or_the_name() {
        let spec = |kind: Option<&str>| StoreSpec {
            kind: kind.map(str::to_owned),
            ..StoreSpec::default()
        };
        let of = |kind, name: &str| StoreKind::of(&spec(kind), "ssl.keyStore", Path::new(name));
        assert_eq!(of(None, "/k.JKS").unwrap(), StoreKind::Jks);
        assert_eq!(of(None, "/k.pfx").unwrap(), StoreKind::Pkcs12);
        assert_eq!(of(None, "/k.pem").unwrap(), StoreKind::Pem);
        assert_eq!(of(Some("pkcs12"), "/k.bin").unwrap(), StoreKind::Pkcs12);
        assert_eq!(of(None, "/k.bin").unwrap_err().key, "ssl.keyStore.location");
        assert_eq!(
            of(Some("BCFKS"), "/k.bin").unwrap_err().key,
            "ssl.keyStore.type"
        );
    }

    #[test]
    fn a_password_file_loses_its_trailing_newline_only() {
        let dir = std::env::temp_dir().join(format!("paddock-tls-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, " s3cret \n").unwrap();
        let spec = StoreSpec {
            password_path: Some(f),
            ..StoreSpec::default()
        };
        assert_eq!(
            password(&spec, "ssl.trustStore").unwrap().unwrap().expose(),
            " s3cret "
        );
        let missing = StoreSpec {
            password_path: Some(dir.join("nope")),
            ..StoreSpec::default()
        };
        assert_eq!(
            password(&missing, "ssl.trustStore").unwrap_err().key,
            "ssl.trustStore.passwordPath"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_is_told_from_zookeeper_by_its_first_byte() {
        assert!(starts_tls(0x16));
        // A ConnectRequest's length prefix starts with 0; four-letter words with a letter.
        assert!(!starts_tls(0) && !starts_tls(b'r') && !starts_tls(b's'));
    }
}

//! TLS for SIP between domains (RFC 5922): our certificate for the domains we serve, the roots we
//! trust for other domains, and the identity a peer proved. Connections themselves are the
//! stream code in `stream.rs`; this is only what TLS adds.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where our certificate, its key and the trusted roots are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: our certificate chain, naming every domain we serve.
    pub cert: PathBuf,
    /// PEM: its private key.
    pub key: PathBuf,
    /// PEM: the roots other domains' certificates must chain to.
    pub roots: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read as PEM.
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    /// The file held nothing usable.
    #[error("{0}: no {1} found")]
    Empty(PathBuf, &'static str),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("TLS client verifier: {0}")]
    Verifier(String),
}

/// Both sides of TLS, ready for connections.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    /// For `wss:`: no client certificate asked for. A browser asked for one shows a picker,
    /// or headless cancels the WebSocket ("opening handshake was canceled", seen with
    /// chromium), so browsers get an acceptor of their own.
    pub(crate) browsers: tokio_rustls::TlsAcceptor,
    pub(crate) connector: tokio_rustls::TlsConnector,
}

/// The TLS configuration in use, replaceable while running (SIGHUP reloads certificates:
/// connections made after the swap use the new ones; those up keep theirs).
#[derive(Clone, Debug)]
pub(crate) struct TlsSlot(Arc<std::sync::RwLock<Tls>>);

impl TlsSlot {
    pub(crate) fn new(tls: Tls) -> Self {
        TlsSlot(Arc::new(std::sync::RwLock::new(tls)))
    }

    /// The configuration now.
    pub(crate) fn current(&self) -> Tls {
        match self.0.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `tls` in place.
    pub(crate) fn replace(&self, tls: Tls) {
        match self.0.write() {
            Ok(mut t) => *t = tls,
            Err(poisoned) => *poisoned.into_inner() = tls,
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem(path.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(path.to_path_buf(), "certificate"));
    }
    Ok(certs)
}

impl Tls {
    /// Loads the files: servers present the certificate and ask clients for theirs (optional:
    /// phones have none); as a client we present it too, so the other domain can tell who we are.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let chain = certificates(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| TlsError::Pem(files.key.clone(), e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certificates(&files.roots)?);
        if added == 0 {
            return Err(TlsError::Empty(
                files.roots.clone(),
                "usable root certificate",
            ));
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            Arc::clone(&provider),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let mut browsers = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())?;
        browsers.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            browsers: tokio_rustls::TlsAcceptor::from(Arc::new(browsers)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The certificate a TLS peer proved it holds, verified against our roots: a server we
/// connected to, or a client that presented one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    certificate: CertificateDer<'static>,
}

impl PeerIdentity {
    /// The identity a peer proved with `chain` (verified by rustls during the handshake): its
    /// end-entity certificate, if it presented one.
    pub(crate) fn of(chain: Option<&[CertificateDer<'_>]>) -> Option<Arc<Self>> {
        let certificate = chain?.first()?.clone().into_owned();
        Some(Arc::new(PeerIdentity { certificate }))
    }

    /// Whether the certificate names `domain` as RFC 5922 section 7 says: by its `sip:` URI
    /// subjectAltNames when it has any, else by its DNS ones, compared whole and without case;
    /// a wildcard matches nothing (7.2). The chain was verified when the connection was made.
    pub fn covers(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        let Ok(ee) = webpki::EndEntityCert::try_from(&self.certificate) else {
            return false;
        };
        let sip_uris: Vec<&str> = ee
            .valid_uri_names()
            .filter_map(|u| u.strip_prefix("sip:"))
            .collect();
        if !sip_uris.is_empty() {
            return sip_uris.iter().any(|u| u.eq_ignore_ascii_case(domain));
        }
        ee.valid_dns_names()
            .any(|n| !n.contains('*') && n.trim_end_matches('.').eq_ignore_ascii_case(domain))
    }
}

//! The HTTPS side: our certificate (the one SIP over TLS serves, no client certificates
//! asked: browsers would show a picker), replaceable while running, and the TLS-ALPN-01
//! answer for a CA that asks for `acme-tls/1`.

use openline_certs::{ACME_TLS_ALPN, Challenges};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}: {1}")]
pub struct WebTlsError(String, String);

/// The certificate served over HTTPS now (cheap to clone; clones see replacements).
#[derive(Debug, Clone, Default)]
pub struct WebTls {
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
    challenges: Challenges,
}

impl WebTls {
    /// Serves nothing but the challenge answers in `challenges` until [`WebTls::load`].
    pub fn new(challenges: Challenges) -> Self {
        WebTls {
            current: Arc::default(),
            challenges,
        }
    }

    /// Puts the chain at `cert` with its key at `key` in place for new connections.
    pub fn load(&self, cert: &Path, key: &Path) -> Result<(), WebTlsError> {
        let fail = |p: &Path, e: String| WebTlsError(p.display().to_string(), e);
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| fail(cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(fail(cert, "no certificate found".into()));
        }
        let der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, e.to_string()))?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| fail(key, e.to_string()))?;
        let certified = CertifiedKey::new(chain, signer);
        certified
            .keys_match()
            .map_err(|e| fail(key, format!("does not match the certificate: {e}")))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(certified));
        Ok(())
    }

    /// The rustls configuration for new connections.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for WebTls {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            // RFC 8737 section 3: only the answer, only for the name asked.
            return hello.server_name().and_then(|n| self.challenges.alpn(n));
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

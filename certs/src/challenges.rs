//! The answers to the CA's challenges while an order is open, shared with whatever serves
//! them: HTTP-01 (RFC 8555 section 8.3, `/.well-known/acme-challenge/TOKEN` on port 80) and
//! TLS-ALPN-01 (RFC 8737: a handshake on port 443 offering `acme-tls/1` gets a certificate
//! carrying the digest for the name it asks for).

use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The ALPN protocol of the TLS-ALPN-01 challenge.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Challenge answers now on offer (cheap to clone; every clone sees the same).
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<RwLock<Answers>>);

#[derive(Default)]
struct Answers {
    http: HashMap<String, String>,
    alpn: HashMap<String, Arc<CertifiedKey>>,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("http", &self.http.len())
            .field("alpn", &self.alpn.len())
            .finish()
    }
}

/// Why a TLS-ALPN-01 answer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("TLS-ALPN-01 certificate for {0}: {1}")]
pub struct AlpnCertError(String, String);

impl Challenges {
    /// No answers.
    pub fn new() -> Self {
        Challenges::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Answers> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Answers> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The key authorization for an HTTP-01 `token`, if one is on offer.
    pub fn http(&self, token: &str) -> Option<String> {
        self.read().http.get(token).cloned()
    }

    /// The TLS-ALPN-01 certificate for `name`, if one is on offer.
    pub fn alpn(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.read().alpn.get(&name.to_ascii_lowercase()).cloned()
    }

    /// Offers `key_authorization` at `token`.
    pub fn offer_http(&self, token: &str, key_authorization: &str) {
        self.write()
            .http
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Offers, for `name`, a self-signed certificate carrying the SHA-256 `digest` of the key
    /// authorization in the critical acmeIdentifier extension (RFC 8737 section 3).
    pub fn offer_alpn(&self, name: &str, digest: &[u8]) -> Result<(), AlpnCertError> {
        let fail = |e: String| AlpnCertError(name.to_owned(), e);
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
            .map_err(|e| fail(e.to_string()))?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let key = rcgen::KeyPair::generate().map_err(|e| fail(e.to_string()))?;
        let cert = params.self_signed(&key).map_err(|e| fail(e.to_string()))?;
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| fail(e.to_string()))?;
        let certified = CertifiedKey::new(vec![cert.der().clone()], signer);
        self.write()
            .alpn
            .insert(name.to_ascii_lowercase(), Arc::new(certified));
        Ok(())
    }

    /// Withdraws every answer (the order is over).
    pub fn clear(&self) {
        let mut answers = self.write();
        answers.http.clear();
        answers.alpn.clear();
    }
}

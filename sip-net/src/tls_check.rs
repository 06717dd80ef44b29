//! What is wrong with our certificate, as `openline doctor` says it: unreadable files, a chain
//! that does not reach the configured roots, a domain it does not name (RFC 5922), and an
//! expiry that has passed or is near. Reads files only; changes nothing.

use crate::tls::{PeerIdentity, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::time::{Duration, SystemTime};

/// How long before expiry a certificate is worth a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// One finding about the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertFinding {
    /// It is fine for these domains.
    Fine(Vec<String>),
    /// A file could not be read: which, why.
    Unreadable(String),
    /// The chain does not verify against the roots at all: why.
    Untrusted(String),
    /// It expired or is not valid yet.
    NotValidNow,
    /// It expires within [`EXPIRY_WARNING`].
    ExpiresSoon,
    /// It does not name this domain.
    MissingName(String),
}

/// Checks `files` for serving `domains` at `now`.
pub fn check_certificate(
    files: &TlsFiles,
    domains: &[String],
    now: SystemTime,
) -> Vec<CertFinding> {
    let read = |path: &std::path::Path| {
        CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| CertFinding::Unreadable(format!("{}: {e}", path.display())))
    };
    let chain = match read(&files.cert) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            return vec![CertFinding::Unreadable(format!(
                "{}: no certificate in it",
                files.cert.display()
            ))];
        }
        Err(e) => return vec![e],
    };
    if let Err(e) = PrivateKeyDer::from_pem_file(&files.key) {
        return vec![CertFinding::Unreadable(format!(
            "{}: {e}",
            files.key.display()
        ))];
    }
    let roots = match read(&files.roots) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots);
    let Ok(end) = webpki::EndEntityCert::try_from(&chain[0]) else {
        return vec![CertFinding::Unreadable(format!(
            "{}: not an X.509 certificate",
            files.cert.display()
        ))];
    };
    let at = |t: SystemTime| {
        UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
    };
    let verify = |t: SystemTime| {
        end.verify_for_usage(
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
            &store.roots,
            &chain[1..],
            at(t),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    let mut findings = Vec::new();
    match verify(now) {
        Ok(()) => {
            if verify(now + EXPIRY_WARNING).is_err() {
                findings.push(CertFinding::ExpiresSoon);
            }
        }
        Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }) => {
            findings.push(CertFinding::NotValidNow)
        }
        Err(e) => findings.push(CertFinding::Untrusted(format!("{e:?}"))),
    }
    let identity = PeerIdentity::of(Some(&chain));
    let mut named = Vec::new();
    for d in domains {
        if identity.as_ref().is_some_and(|i| i.covers(d)) {
            named.push(d.clone());
        } else {
            findings.push(CertFinding::MissingName(d.clone()));
        }
    }
    if findings.is_empty() {
        findings.push(CertFinding::Fine(named));
    }
    findings
}

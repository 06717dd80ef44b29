//! What the certificate in use says about itself: when it is valid, which names it covers,
//! whether anyone but itself signed it. Read once when it is loaded or issued.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::path::Path;

/// The facts about a certificate that decide when to renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Valid from (seconds since the epoch).
    pub not_before: u64,
    /// Valid until (seconds since the epoch).
    pub not_after: u64,
    /// Its DNS subjectAltNames, lower case.
    pub names: Vec<String>,
    /// Issued by itself: the stand-in used until a CA issues one.
    pub self_signed: bool,
}

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertReadError {
    /// The file could not be read or holds no PEM certificate.
    #[error("{0}: {1}")]
    Pem(String, String),
    /// The DER inside is not an X.509 certificate.
    #[error("{0}: not an X.509 certificate: {1}")]
    X509(String, String),
}

impl CertInfo {
    /// Reads the first (end-entity) certificate of the PEM file at `path`.
    pub fn from_pem_file(path: &Path) -> Result<CertInfo, CertReadError> {
        let name = path.display().to_string();
        let der = CertificateDer::from_pem_file(path)
            .map_err(|e| CertReadError::Pem(name.clone(), e.to_string()))?;
        CertInfo::from_der(&der).map_err(|e| CertReadError::X509(name, e))
    }

    /// Reads the first certificate of `pem`.
    pub fn from_pem(pem: &str) -> Result<CertInfo, CertReadError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CertReadError::Pem("certificate".into(), e.to_string()))?;
        CertInfo::from_der(&der).map_err(|e| CertReadError::X509("certificate".into(), e))
    }

    fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let seconds = |t: i64| u64::try_from(t).unwrap_or(0);
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                    names.push(n.to_ascii_lowercase());
                }
            }
        }
        Ok(CertInfo {
            not_before: seconds(cert.validity().not_before.timestamp()),
            not_after: seconds(cert.validity().not_after.timestamp()),
            names,
            self_signed: cert.issuer() == cert.subject(),
        })
    }

    /// Whether it names every one of `domains` (exactly: we never ask for wildcards).
    pub fn covers(&self, domains: &[String]) -> bool {
        domains.iter().all(|d| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            self.names.contains(&d)
        })
    }

    /// Its whole lifetime, in seconds.
    pub fn lifetime(&self) -> u64 {
        self.not_after.saturating_sub(self.not_before)
    }
}

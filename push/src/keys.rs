//! Reading the keys the services give (PEM PKCS#8: Google's service account, Apple's `.p8`).

use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// The DER of the first `PRIVATE KEY` block of `pem`.
pub fn pkcs8_from_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    PrivatePkcs8KeyDer::from_pem_slice(pem)
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|e| format!("no PKCS#8 PRIVATE KEY block ({e})"))
}

/// `der` as a PEM `PRIVATE KEY` block, for the key files we write ourselves.
pub fn pkcs8_to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

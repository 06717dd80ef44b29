//! A self-signed certificate for the served domains, so TLS listeners can start before the
//! CA has issued one (the first order needs the listeners up to be validated). It is
//! replaced at the first successful order; the schedule treats it as missing.

use crate::files::write_whole;
use std::path::Path;

/// Why the stand-in could not be made or written.
#[derive(Debug, thiserror::Error)]
#[error("stand-in certificate: {0}")]
pub struct StandInError(String);

/// Writes a self-signed certificate for `domains` to `cert` and its key to `key`, unless a
/// certificate is already there.
pub fn ensure(cert: &Path, key: &Path, domains: &[String]) -> Result<bool, StandInError> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    let fail = |e: String| StandInError(e);
    let mut params =
        rcgen::CertificateParams::new(domains.to_vec()).map_err(|e| fail(e.to_string()))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "openline stand-in (until ACME issues)",
    );
    let pair = rcgen::KeyPair::generate().map_err(|e| fail(e.to_string()))?;
    let made = params.self_signed(&pair).map_err(|e| fail(e.to_string()))?;
    write_whole(key, pair.serialize_pem().as_bytes(), true)
        .map_err(|e| fail(format!("{}: {e}", key.display())))?;
    write_whole(cert, made.pem().as_bytes(), false)
        .map_err(|e| fail(format!("{}: {e}", cert.display())))?;
    Ok(true)
}

//! Where ACME keeps what it obtained: the account's credentials, the certificate chain and
//! its key, each written whole (a temporary file renamed over the old one), the key readable
//! by its owner only.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The files of one ACME set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeFiles {
    /// The account's credentials (JSON, secret).
    pub account: PathBuf,
    /// The certificate chain (PEM), the one TLS serves.
    pub cert: PathBuf,
    /// Its private key (PEM, secret).
    pub key: PathBuf,
}

impl AcmeFiles {
    /// The account in `dir`, the certificate and key where TLS reads them.
    pub fn new(dir: &Path, cert: PathBuf, key: PathBuf) -> Self {
        AcmeFiles {
            account: dir.join("account.json"),
            cert,
            key,
        }
    }
}

/// Writes `bytes` to `path` whole: readers see the old file or the new one, never half.
pub fn write_whole(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.new"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

//! Binding TURN's sockets as the settings name them: UDP, TCP listeners (`tcp:` and `tls:`,
//! each taking both plain and TLS clients) and the certificate TLS clients are shown.

use super::TurnSockets;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TURN listener over TCP: `tcp:IP:PORT` or `tls:IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamListen {
    /// Whether TLS is what it is for (then a certificate is required).
    pub tls: bool,
    /// Where.
    pub addr: SocketAddr,
}

impl std::str::FromStr for StreamListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (tls, addr) = if let Some(a) = s.strip_prefix("tcp:") {
            (false, a)
        } else if let Some(a) = s.strip_prefix("tls:") {
            (true, a)
        } else {
            return Err(format!("`{s}`: expected tcp:IP:PORT or tls:IP:PORT"));
        };
        let addr = addr
            .parse()
            .map_err(|e| format!("`{addr}`: not an IP:PORT ({e})"))?;
        Ok(StreamListen { tls, addr })
    }
}

/// Why TURN's sockets could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TurnBindError {
    /// A socket could not be bound.
    #[error("binding {0}: {1}")]
    Bind(String, std::io::Error),
    /// A second UDP listener that is not IPv6 beside an IPv4 one.
    #[error("{0}: the second TURN UDP listener is for IPv6, beside an IPv4 one")]
    Family(String),
    /// A `tls:` listener without a certificate.
    #[error("{0}: TURN over TLS needs a certificate and key")]
    NoCertificate(String),
    /// The certificate or key could not be read.
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    /// rustls refused them.
    #[error("TURN's TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Binds `udp` (and `udp_v6`, an IPv6 one beside an IPv4 `udp`) and every stream listener;
/// with `certificate` (chain and key, PEM), TLS too.
pub fn bind_turn(
    udp: SocketAddr,
    udp_v6: Option<SocketAddr>,
    streams: &[StreamListen],
    certificate: Option<(&Path, &Path)>,
) -> Result<TurnSockets, TurnBindError> {
    let tls = certificate.map(|(c, k)| tls_config(c, k)).transpose()?;
    let udp_socket =
        std::net::UdpSocket::bind(udp).map_err(|e| TurnBindError::Bind(format!("udp:{udp}"), e))?;
    let udp_v6 = match udp_v6 {
        None => None,
        Some(v6) if v6.is_ipv6() && udp.is_ipv4() => Some(bind_v6_only(v6)?),
        Some(v6) => return Err(TurnBindError::Family(format!("udp:{v6}"))),
    };
    let mut listeners = Vec::new();
    for s in streams {
        let name = format!("{}:{}", if s.tls { "tls" } else { "tcp" }, s.addr);
        if s.tls && tls.is_none() {
            return Err(TurnBindError::NoCertificate(name));
        }
        listeners
            .push(std::net::TcpListener::bind(s.addr).map_err(|e| TurnBindError::Bind(name, e))?);
    }
    Ok(TurnSockets {
        udp: udp_socket,
        udp_v6,
        streams: listeners,
        tls,
        stream_idle: super::turn::STREAM_IDLE,
    })
}

/// An IPv6 UDP socket that takes IPv6 only (the IPv4 one takes the rest).
fn bind_v6_only(at: SocketAddr) -> Result<std::net::UdpSocket, TurnBindError> {
    let failed = |e| TurnBindError::Bind(format!("udp:{at}"), e);
    let socket =
        socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).map_err(failed)?;
    socket.set_only_v6(true).map_err(failed)?;
    socket.bind(&at.into()).map_err(failed)?;
    Ok(socket.into())
}

/// A TLS server configuration presenting `cert` with `key`, read again when the certificate
/// file changes (ACME renewals, an operator's new file), as SIP's TLS is on SIGHUP.
fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TurnBindError> {
    let files = FileCert::load(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(files));
    Ok(Arc::new(config))
}

/// The certificate in `cert`/`key`, and the certificate file's modification time it was read at.
#[derive(Debug)]
struct FileCert {
    cert: PathBuf,
    key: PathBuf,
    current: std::sync::RwLock<(
        Option<std::time::SystemTime>,
        Arc<rustls::sign::CertifiedKey>,
    )>,
}

impl FileCert {
    fn load(cert: &Path, key: &Path) -> Result<FileCert, TurnBindError> {
        let (at, certified) = read_pair(cert, key)?;
        Ok(FileCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: std::sync::RwLock::new((at, certified)),
        })
    }
}

/// Reads a chain and its key, with the chain file's modification time.
fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<
    (
        Option<std::time::SystemTime>,
        Arc<rustls::sign::CertifiedKey>,
    ),
    TurnBindError,
> {
    let pem = |path: &Path, e: rustls::pki_types::pem::Error| {
        TurnBindError::Pem(path.to_path_buf(), e.to_string())
    };
    let at = std::fs::metadata(cert).and_then(|m| m.modified()).ok();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem(cert, e))?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)?;
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    certified.keys_match()?;
    Ok((at, Arc::new(certified)))
}

impl rustls::server::ResolvesServerCert for FileCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let now = std::fs::metadata(&self.cert)
            .and_then(|m| m.modified())
            .ok();
        let current = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if now.is_none() || now == current.0 {
            return Some(current.1);
        }
        // Changed on disk: a pair that does not read (half written, a key that does not
        // match) keeps the one in use until the next handshake looks again.
        match read_pair(&self.cert, &self.key) {
            Ok(fresh) => {
                tracing::info!(cert = %self.cert.display(), "TURN over TLS: the new certificate is in use");
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
                Some(fresh.1)
            }
            Err(e) => {
                tracing::debug!(error = %e, "TURN over TLS: keeping the certificate in use");
                Some(current.1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_listeners_read_or_say_why_not() {
        assert_eq!(
            "tls:0.0.0.0:443".parse(),
            Ok(StreamListen {
                tls: true,
                addr: ([0, 0, 0, 0], 443).into()
            })
        );
        assert!("tcp:[::]:3478".parse::<StreamListen>().is_ok());
        assert!(
            "udp:0.0.0.0:3478"
                .parse::<StreamListen>()
                .is_err_and(|e| e.contains("expected tcp:"))
        );
        assert!(
            "tcp:nowhere"
                .parse::<StreamListen>()
                .is_err_and(|e| e.contains("not an IP:PORT"))
        );
    }
}

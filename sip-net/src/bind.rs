//! Opening listeners, with errors an operator can act on: which listener, and why in words
//! (an address this machine does not have, IPv6 switched off, a port that needs privileges).

use crate::ListenSpec;
use crate::addresses::LocalAddresses;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Why a listener could not be opened, in words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The address is not one of this machine's.
    #[error("this machine has no address {0} (it has {1})")]
    NotHere(IpAddr, String),
    /// IPv6 is switched off (or not built into the kernel).
    #[error("IPv6 is disabled on this machine")]
    NoIpv6,
    /// A port below 1024 without the privilege to bind it.
    #[error("port {0} needs root or CAP_NET_BIND_SERVICE (or use a port above 1023)")]
    Privileged(u16),
}

/// Whether this machine can open IPv6 sockets at all.
pub fn ipv6_available() -> bool {
    std::net::UdpSocket::bind("[::]:0").is_ok()
}

/// A bound, non-blocking UDP socket for `spec`. On [::] only IPv6 is received (IPV6_V6ONLY),
/// so that 0.0.0.0 and [::] can both be listened on, each answering from its own family.
pub(crate) fn udp(
    spec: &ListenSpec,
    addresses: &LocalAddresses,
) -> io::Result<tokio::net::UdpSocket> {
    let socket = open(spec, Type::DGRAM, Protocol::UDP, addresses)?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// A listening, non-blocking TCP socket for `spec` (IPV6_V6ONLY on IPv6, as for UDP).
pub(crate) fn tcp(
    spec: &ListenSpec,
    addresses: &LocalAddresses,
) -> io::Result<tokio::net::TcpListener> {
    let socket = open(spec, Type::STREAM, Protocol::TCP, addresses)?;
    socket.listen(1024).map_err(|e| naming(spec, e))?;
    tokio::net::TcpListener::from_std(socket.into())
}

fn open(
    spec: &ListenSpec,
    kind: Type,
    protocol: Protocol,
    addresses: &LocalAddresses,
) -> io::Result<Socket> {
    let addr = spec.addr;
    let explain = |e: io::Error| naming(spec, explained(addr, e, addresses));
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol)).map_err(explain)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(explain)?;
    }
    if kind == Type::STREAM {
        // A restarted server takes its port back at once, TIME_WAIT or not.
        socket.set_reuse_address(true).map_err(explain)?;
    }
    socket.set_nonblocking(true).map_err(explain)?;
    socket.bind(&addr.into()).map_err(explain)?;
    Ok(socket)
}

/// The OS error in words for the common cases.
fn explained(addr: SocketAddr, e: io::Error, addresses: &LocalAddresses) -> io::Error {
    let words = match e.raw_os_error() {
        Some(97) => Some(BindError::NoIpv6), // EAFNOSUPPORT
        Some(99) if addr.is_ipv6() && !addresses.interfaces().iter().any(IpAddr::is_ipv6) => {
            Some(BindError::NoIpv6)
        }
        Some(99) => {
            // EADDRNOTAVAIL
            let have: Vec<String> = addresses
                .interfaces()
                .iter()
                .map(ToString::to_string)
                .collect();
            Some(BindError::NotHere(addr.ip(), have.join(", ")))
        }
        Some(13) if addr.port() < 1024 => Some(BindError::Privileged(addr.port())), // EACCES
        _ => None,
    };
    match words {
        Some(w) => io::Error::new(e.kind(), w),
        None => e,
    }
}

/// A bind error that says which listen address failed (an operator with several cannot tell
/// which one is taken from "Address already in use" alone).
fn naming(spec: &ListenSpec, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("listening on {spec}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_address_not_here_is_named() {
        let spec: ListenSpec = "udp:198.51.100.7:5060".parse().unwrap();
        let e = udp(&spec, &LocalAddresses::read()).unwrap_err().to_string();
        assert!(
            e.starts_with("listening on udp:198.51.100.7:5060: this machine has no address 198.51.100.7 (it has "),
            "{e}"
        );
        assert!(e.contains("127.0.0.1"), "{e}");
    }

    #[tokio::test]
    async fn both_families_share_a_port() {
        let a = LocalAddresses::read();
        let v6: ListenSpec = "udp:[::]:0".parse().unwrap();
        let s6 = udp(&v6, &a).unwrap();
        let port = s6.local_addr().unwrap().port();
        let v4: ListenSpec = format!("udp:0.0.0.0:{port}").parse().unwrap();
        udp(&v4, &a).unwrap();
    }
}

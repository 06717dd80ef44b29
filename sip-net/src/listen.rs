//! `udp:IP:PORT` / `tcp:IP:PORT` listen specifications.

use openline_sip::Transport;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where to listen, and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// The transport.
    pub transport: Transport,
    /// The local address; port 0 picks a free one.
    pub addr: SocketAddr,
}

/// A listen specification that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not TRANSPORT:IP:PORT (udp:127.0.0.1:5060, tcp:[::1]:5060)")]
pub struct ListenSpecError(pub String);

impl FromStr for ListenSpec {
    type Err = ListenSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ListenSpecError(s.to_string());
        let (transport, addr) = s.split_once(':').ok_or_else(err)?;
        let transport = match transport.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            _ => return Err(err()),
        };
        let addr = addr.parse().map_err(|_| err())?;
        Ok(ListenSpec { transport, addr })
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_via().to_ascii_lowercase(),
            self.addr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_specs() {
        let s: ListenSpec = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(s.transport, Transport::Udp);
        assert_eq!(s.to_string(), "udp:127.0.0.1:5060");
        let s: ListenSpec = "TCP:[::1]:5070".parse().unwrap();
        assert_eq!(s.addr, "[::1]:5070".parse().unwrap());
        assert!("udp:127.0.0.1".parse::<ListenSpec>().is_err());
        assert!("sctp:127.0.0.1:5060".parse::<ListenSpec>().is_err());
    }
}

//! `udp:IP:PORT` / `tcp:IP:PORT` listen specifications, with an optional `advertise ADDR`.

use openline_sip::Transport;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Where to listen, over what, and what to call ourselves there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// The transport.
    pub transport: Transport,
    /// The local address; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The address written into Via, Record-Route and Contact instead of the local one: the
    /// public address of a server behind 1:1 NAT (a cloud VM), as Kamailio's `advertise`.
    pub advertise: Option<SocketAddr>,
}

/// A listen specification that does not read: the whole message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ListenSpecError(pub String);

impl FromStr for ListenSpec {
    type Err = ListenSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        let first = words.next().unwrap_or("");
        let err = || {
            ListenSpecError(format!(
                "`{s}` is not TRANSPORT:IP:PORT (udp:127.0.0.1:5060, tcp:[::1]:5060), \
                 optionally followed by `advertise IP[:PORT]`"
            ))
        };
        let (transport, addr) = first.split_once(':').ok_or_else(err)?;
        let transport = match transport.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            _ => return Err(err()),
        };
        let addr: SocketAddr = addr.parse().map_err(|_| err())?;
        let advertise = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some(w), Some(value), None) if w.eq_ignore_ascii_case("advertise") => {
                Some(parse_advertise(value, addr.port()).ok_or_else(|| {
                    ListenSpecError(format!(
                        "`{s}`: advertise `{value}` is not an address (IP or IP:PORT, \
                         [IPv6]:PORT)"
                    ))
                })?)
            }
            _ => return Err(err()),
        };
        if advertise.is_some_and(|a| a.ip().is_unspecified()) {
            return Err(ListenSpecError(format!(
                "`{s}`: the advertised address must be one others can reach, not a wildcard"
            )));
        }
        Ok(ListenSpec {
            transport,
            addr,
            advertise,
        })
    }
}

/// `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`; the listener's port when none is written.
fn parse_advertise(value: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(a) = value.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_via().to_ascii_lowercase(),
            self.addr
        )?;
        if let Some(a) = self.advertise {
            write!(f, " advertise {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    #[test]
    fn reads_advertise() {
        let s: ListenSpec = "udp:0.0.0.0:5060 advertise 203.0.113.5:5060"
            .parse()
            .unwrap();
        assert_eq!(s.advertise, Some("203.0.113.5:5060".parse().unwrap()));
        assert_eq!(s.to_string(), "udp:0.0.0.0:5060 advertise 203.0.113.5:5060");
        let s: ListenSpec = "tcp:[::]:5070 advertise 2001:db8::5".parse().unwrap();
        assert_eq!(s.advertise, Some("[2001:db8::5]:5070".parse().unwrap()));
        let e = "udp:0.0.0.0:5060 advertise sip.club-a.test"
            .parse::<ListenSpec>()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("advertise `sip.club-a.test` is not an address"),
            "{e}"
        );
        assert!("udp:0.0.0.0:5060 advertise".parse::<ListenSpec>().is_err());
        assert!(
            "udp:0.0.0.0:5060 advertise 0.0.0.0"
                .parse::<ListenSpec>()
                .is_err()
        );
        assert!(
            "udp:0.0.0.0:5060 announce 1.2.3.4"
                .parse::<ListenSpec>()
                .is_err()
        );
    }
}

//! Via (RFC 3261 section 20.42, RFC 3581 rport).

use super::params::Params;
use crate::lex::{Cursor, is_token};
use crate::transport::Transport;
use crate::uri::{Host, split_host_port};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The magic cookie that marks an RFC 3261 branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via entry: `SIP/2.0/UDP host:port;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `WS`, an extension...).
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port, when given.
    pub port: Option<u16>,
    /// All parameters.
    pub params: Params<'a>,
    /// The branch parameter, when present.
    pub branch: Option<&'a str>,
}

impl<'a> Via<'a> {
    /// Parses one Via entry (one element of a comma-separated Via header).
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let name = c.token()?;
        if !c.eat_separator(b'/') {
            return None;
        }
        let version = c.token()?;
        if !name.eq_ignore_ascii_case("SIP")
            || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return None;
        }
        if !c.eat_separator(b'/') {
            return None;
        }
        let transport = c.token()?;
        if !c.skip_lws() {
            return None;
        }
        let sent_by = c.take_while(|b| is_token(b) || matches!(b, b':' | b'[' | b']'));
        let (host, port) = split_host_port(sent_by).ok()?;
        let mut branch = None;
        let mut flag_branch = false;
        let params = Params::read_each(&mut c, |name, value| {
            if branch.is_none() && name.eq_ignore_ascii_case("branch") {
                branch = value;
                flag_branch |= value.is_none();
            }
        })?;
        c.skip_lws();
        if !c.at_end() || flag_branch {
            return None;
        }
        Some(Via {
            transport,
            host,
            port,
            params,
            branch,
        })
    }

    /// The transport, when it is one we speak.
    pub fn transport(&self) -> Option<Transport> {
        Transport::from_via(self.transport)
    }

    /// Whether the branch carries RFC 3261's magic cookie.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// The `rport` parameter: `Some(None)` when asked for, `Some(Some(p))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The port to answer at when there is no rport: sent-by's port or the transport default.
    pub fn sent_by_port(&self) -> u16 {
        self.port.unwrap_or_else(|| {
            if self.transport.eq_ignore_ascii_case("TLS") {
                5061
            } else {
                5060
            }
        })
    }

    /// Writes this entry as a server transport stamps it on receipt (RFC 3261 18.2.1,
    /// RFC 3581 section 4): `received` when the sent-by host is not the source address,
    /// and `rport` filled in when the client asked for it.
    pub fn write_received(&self, out: &mut String, source: SocketAddr) {
        let _ = write!(out, "SIP/2.0/{} {}", self.transport, self.host);
        if let Some(p) = self.port {
            let _ = write!(out, ":{p}");
        }
        let wants_rport = self.rport().is_some();
        for (name, value) in self.params.iter() {
            if name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("rport") {
                continue;
            }
            match value {
                Some(v) => {
                    let _ = write!(out, ";{name}={v}");
                }
                None => {
                    let _ = write!(out, ";{name}");
                }
            }
        }
        if wants_rport || self.host.ip() != Some(source.ip()) {
            match source.ip() {
                std::net::IpAddr::V4(a) => {
                    let _ = write!(out, ";received={a}");
                }
                std::net::IpAddr::V6(a) => {
                    let _ = write!(out, ";received=[{a}]");
                }
            }
        }
        if wants_rport {
            let _ = write!(out, ";rport={}", source.port());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_via_from_wsinv() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch, Some("390skdjuw"));
        assert!(!v.is_rfc3261_branch());
        let v = Via::parse(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(v.branch, Some("z9hG4bK9ikj8"));
        assert_eq!(v.host, Host::Name("spindle.example.com"));
    }

    #[test]
    fn ipv6_sent_by_and_rport() {
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;rport").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        let mut s = String::new();
        v.write_received(&mut s, "[2001:db8::9:1]:40000".parse().unwrap());
        assert_eq!(
            s,
            "SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;received=[2001:db8::9:1];rport=40000"
        );
    }

    #[test]
    fn received_added_only_when_host_differs() {
        let v = Via::parse("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1").unwrap();
        let mut s = String::new();
        v.write_received(&mut s, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(s, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1");
        let v = Via::parse("SIP/2.0/UDP host.example.com;branch=z9hG4bK1").unwrap();
        s.clear();
        v.write_received(&mut s, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(
            s,
            "SIP/2.0/UDP host.example.com;branch=z9hG4bK1;received=127.0.0.1"
        );
    }

    #[test]
    fn malformed_vias() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(Via::parse("SIP/2.0/UDP").is_none());
        assert!(Via::parse("SIP/2.0 UDP host").is_none());
        assert!(Via::parse("SIP/2.0/UDP host;branch").is_none());
        assert!(Via::parse("SIP/2.0/UDP host:70000").is_none());
    }
}

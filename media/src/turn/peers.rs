//! Which peers an allocation may reach. A TURN server on a public address must not become a
//! way into the network it sits on (RFC 8656 21.2.3 and 21.3): loopback, private, link-local,
//! unspecified, multicast and broadcast peers are refused unless the operator allows them.

use std::net::IpAddr;

/// The operator's choice of which peer addresses may be relayed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Relay to 127.0.0.0/8 and ::1 (tests and single-host setups).
    pub allow_loopback: bool,
    /// Relay to private ranges: 10/8, 172.16/12, 192.168/16, 100.64/10 and fc00::/7.
    pub allow_private: bool,
}

impl PeerPolicy {
    /// Whether `ip` may be a peer.
    pub fn allows(self, ip: IpAddr) -> bool {
        let ip = match ip {
            // An IPv4-mapped IPv6 address is the IPv4 address it maps (no way round the rules).
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        if ip.is_unspecified() || ip.is_multicast() || is_link_local(ip) || is_broadcast(ip) {
            return false;
        }
        if is_private(ip) {
            return self.allow_private;
        }
        true
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast() || v4.octets()[0] == 0)
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            // 100.64.0.0/10 is carrier-grade NAT space: private to someone.
            v4.is_private() || (o[0] == 100 && o[1] & 0xc0 == 64)
        }
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_public_peers_unless_allowed() {
        let strict = PeerPolicy::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for public in ["8.8.8.8", "2001:4860::8888", "100.128.0.1", "172.32.0.1"] {
            assert!(strict.allows(ip(public)), "{public}");
        }
        for refused in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::ffff:192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "169.254.1.1",
            "fe80::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
        ] {
            assert!(!strict.allows(ip(refused)), "{refused}");
        }
        let loopback = PeerPolicy {
            allow_loopback: true,
            ..PeerPolicy::default()
        };
        assert!(loopback.allows(ip("127.0.0.1")) && loopback.allows(ip("::1")));
        assert!(!loopback.allows(ip("10.0.0.1")));
        let private = PeerPolicy {
            allow_private: true,
            ..PeerPolicy::default()
        };
        assert!(private.allows(ip("10.0.0.1")) && !private.allows(ip("127.0.0.1")));
        assert!(
            !private.allows(ip("169.254.1.1")),
            "link-local stays refused"
        );
    }
}

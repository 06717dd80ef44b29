//! Sources that limits per source never apply to: the office NAT, where one bad phone must not
//! get the whole office refused, and the server's own machine.

use ipnet::IpNet;
use std::net::IpAddr;

/// Networks exempt from limits per source. Loopback is always in it: what runs on the
/// server's own machine is the operator's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<IpNet>,
}

/// An entry that is not an address or a network.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not an address or a network (198.18.0.0/24, 2001:2::/48, 198.18.0.7)")]
pub struct AllowListError(pub String);

impl AllowList {
    /// Reads entries such as `198.18.0.0/24`, `2001:2::/48` or a single address.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowListError> {
        let networks = entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| AllowListError(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { networks })
    }

    /// Whether `ip` is exempt.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv4 address reached over an IPv6 socket (`::ffff:198.18.0.7`) as the IPv4 it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn networks_addresses_and_loopback() {
        let list = AllowList::parse(&["198.18.0.0/24", "2001:2::7"]).unwrap();
        assert!(list.contains("198.18.0.200".parse().unwrap()));
        assert!(list.contains("::ffff:198.18.0.9".parse().unwrap()));
        assert!(!list.contains("198.18.1.1".parse().unwrap()));
        assert!(list.contains("2001:2::7".parse().unwrap()));
        assert!(!list.contains("2001:2::8".parse().unwrap()));
        assert!(list.contains("127.0.0.1".parse().unwrap()));
        assert!(AllowList::default().contains("::1".parse().unwrap()));
    }

    #[test]
    fn a_bad_entry_is_named() {
        assert_eq!(
            AllowList::parse(&["198.18.0.0/24", "office"]),
            Err(AllowListError("office".into()))
        );
        assert!(AllowList::parse(&["198.18.0.0/33"]).is_err());
    }
}

//! This machine's addresses, and which one a packet to a given peer leaves from.
//!
//! A socket bound to a wildcard (0.0.0.0, [::]) has no address of its own to write into Via,
//! Record-Route or Contact. What goes there is the address the packet actually leaves from:
//! for a peer that sent to us, the address its packets came to (learnt per datagram with
//! IP_PKTINFO / IPV6_RECVPKTINFO, per connection from the accepted socket); for anyone else,
//! the source the kernel's routing table picks (learnt by connecting a UDP socket, which sends
//! nothing). The sender uses the same memory to send from that address, so what we write and
//! where we send from agree.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

/// Most peers whose arrival address is remembered; beyond it the memory starts afresh (peers
/// that still talk to us are learnt again with their next packet).
const MAX_FLOWS: usize = 65_536;

/// Most destinations whose route source is cached.
const MAX_ROUTES: usize = 4096;

/// This machine's addresses and the source address per peer; cheap to clone, shared by the
/// receive tasks, the sender and the core.
#[derive(Clone, Default)]
pub struct LocalAddresses {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The interfaces' addresses, as last read.
    interfaces: RwLock<Vec<IpAddr>>,
    /// Peer → the local address its packets arrived on (wildcard sockets only).
    flows: Mutex<HashMap<SocketAddr, IpAddr>>,
    /// Destination → the source the routing table picks (None: no route).
    routes: Mutex<HashMap<IpAddr, Option<IpAddr>>>,
}

impl std::fmt::Debug for LocalAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAddresses")
            .field("interfaces", &self.interfaces())
            .finish_non_exhaustive()
    }
}

impl LocalAddresses {
    /// Reads the interfaces' addresses now.
    pub fn read() -> Self {
        let a = LocalAddresses::default();
        a.refresh();
        a
    }

    /// Reads the interfaces again (an address added or gone, DHCP, a VPN coming up); true
    /// when they changed, and then the cached routes are forgotten too.
    pub fn refresh(&self) -> bool {
        let mut now = interface_addresses();
        now.sort();
        now.dedup();
        let changed = match self.inner.interfaces.write() {
            Ok(mut held) if *held != now => {
                *held = now;
                true
            }
            _ => false,
        };
        if changed {
            if let Ok(mut r) = self.inner.routes.lock() {
                r.clear();
            }
        }
        changed
    }

    /// The interfaces' addresses, as last read.
    pub fn interfaces(&self) -> Vec<IpAddr> {
        self.inner
            .interfaces
            .read()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Whether `ip` is one of this machine's addresses (any loopback address counts).
    pub fn is_local(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.inner.interfaces.read().is_ok_and(|i| i.contains(&ip))
    }

    /// Remembers that packets from `remote` arrive on our `local` address.
    pub(crate) fn note_flow(&self, remote: SocketAddr, local: IpAddr) {
        let Ok(mut flows) = self.inner.flows.lock() else {
            return;
        };
        if flows.get(&remote) == Some(&local) {
            return;
        }
        if flows.len() >= MAX_FLOWS {
            flows.clear();
        }
        flows.insert(remote, local);
    }

    /// The local address packets from `remote` last arrived on, if it sent to a wildcard
    /// socket of ours.
    pub fn arrival(&self, remote: SocketAddr) -> Option<IpAddr> {
        self.inner.flows.lock().ok()?.get(&remote).copied()
    }

    /// The source address the routing table picks for `remote` (cached).
    pub fn route_source(&self, remote: IpAddr) -> Option<IpAddr> {
        if let Some(hit) = self.inner.routes.lock().ok()?.get(&remote) {
            return *hit;
        }
        let learnt = kernel_route_source(remote);
        if let Ok(mut routes) = self.inner.routes.lock() {
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
            routes.insert(remote, learnt);
        }
        learnt
    }

    /// The address a packet to `remote` leaves from: the one its packets came to, else the
    /// routing table's choice.
    pub fn source_for(&self, remote: SocketAddr) -> Option<IpAddr> {
        self.arrival(remote)
            .or_else(|| self.route_source(remote.ip()))
    }
}

/// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The source address the kernel would send from to `remote`: connecting a UDP socket picks
/// it without sending anything.
fn kernel_route_source(remote: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match remote {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(SocketAddr::new(remote, 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Every address of every interface that is up (link-local IPv6 left out: it needs a scope
/// that Via and SDP cannot carry).
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let address = a.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            let v6 = address.as_sockaddr_in6()?.ip();
            (!is_link_local(v6)).then_some(IpAddr::V6(v6))
        })
        .collect()
}

/// fe80::/10.
fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn knows_its_own_addresses_and_routes() {
        let a = LocalAddresses::read();
        assert!(a.is_local("127.0.0.1".parse().unwrap()));
        assert!(
            a.is_local("127.0.0.2".parse().unwrap()),
            "all of 127/8 is ours"
        );
        assert!(a.is_local("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!a.is_local("198.51.100.9".parse().unwrap()));
        // Loopback is routed from loopback.
        assert_eq!(
            a.route_source("127.0.0.1".parse().unwrap()),
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn a_peer_is_answered_from_where_it_sent_to() {
        let a = LocalAddresses::read();
        let peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        a.note_flow(peer, "127.0.0.9".parse().unwrap());
        assert_eq!(a.source_for(peer), Some("127.0.0.9".parse().unwrap()));
        let other: SocketAddr = "127.0.0.1:5071".parse().unwrap();
        assert_eq!(a.source_for(other), Some("127.0.0.1".parse().unwrap()));
    }
}

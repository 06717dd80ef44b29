//! How we name ourselves to a given peer: the Via, Record-Route and Contact address.
//!
//! A listener bound to a specific address names itself by it; one with `advertise` by what it
//! advertises; a wildcard one (0.0.0.0, [::]) by the local address a packet to that peer leaves
//! from, which the network layer learns from the kernel (see sip-net's addresses.rs). A wildcard
//! is never written anywhere: a phone would send its BYE to 0.0.0.0.

use super::ServerCore;
use openline_sip::Transport;
use std::net::SocketAddr;
use std::sync::Arc;

/// How we name ourselves over one transport from one address, formatted once: formatting the
/// address for every forwarded request was 3 % of the CPU at 1,000 calls/s.
#[derive(Debug)]
pub(super) struct Hop {
    /// The address named.
    pub(super) addr: SocketAddr,
    /// `SIP/2.0/UDP IP:PORT;branch=`, the branch to follow.
    pub(super) via: String,
    /// `<sip:IP:PORT;lr>` (with the transport when not UDP).
    pub(super) record_route: String,
    /// `<sip:IP:PORT>` (with the transport when not UDP).
    pub(super) contact: String,
}

impl Hop {
    fn new(transport: Transport, addr: SocketAddr) -> Self {
        let param = match transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.as_via().to_ascii_lowercase()),
        };
        Hop {
            addr,
            via: format!("SIP/2.0/{} {addr};branch=", transport.as_via()),
            record_route: format!("<sip:{addr}{param};lr>"),
            contact: format!("<sip:{addr}{param}>"),
        }
    }
}

/// The hops made so far, by transport and address named (a handful: one per local address
/// and transport in use).
#[derive(Debug, Default)]
pub(super) struct Hops {
    made: Vec<((Transport, SocketAddr), Arc<Hop>)>,
}

/// Most hops kept; a machine with more addresses in use than this formats them afresh.
const MAX_HOPS: usize = 64;

impl ServerCore {
    /// How we name ourselves to `to` over `transport`; None when no listener has that
    /// transport (or a wildcard one has no route to `to`).
    pub(super) fn hop_for(&mut self, transport: Transport, to: SocketAddr) -> Option<Arc<Hop>> {
        let addr = self.named_address(transport, to)?;
        let key = (transport, addr);
        if let Some((_, hop)) = self.hops.made.iter().find(|(k, _)| *k == key) {
            return Some(Arc::clone(hop));
        }
        let hop = Arc::new(Hop::new(transport, addr));
        if self.hops.made.len() >= MAX_HOPS {
            self.hops.made.remove(0);
        }
        self.hops.made.push((key, Arc::clone(&hop)));
        Some(hop)
    }

    /// The address we go by towards `to` over `transport`: the first listener of that
    /// transport and `to`'s family (else of that transport), by what it advertises, its own
    /// address, or for a wildcard the address the kernel sends to `to` from.
    fn named_address(&self, transport: Transport, to: SocketAddr) -> Option<SocketAddr> {
        let listeners = || self.us.local.iter().filter(|l| l.transport == transport);
        let to_v4 = openline_sip_net::canonical(to.ip()).is_ipv4();
        let listener = listeners()
            .find(|l| l.bound.is_ipv4() == to_v4)
            .or_else(|| listeners().next())?;
        let bound = listener.bound;
        if let Some(a) = listener.advertised {
            return Some(a);
        }
        if !bound.ip().is_unspecified() {
            return Some(bound);
        }
        let source = self.us.addresses.as_ref()?.source_for(to)?;
        Some(SocketAddr::new(
            openline_sip_net::canonical(source),
            bound.port(),
        ))
    }

    /// The Record-Route for a request that came from `source` over `arrival` and leaves
    /// through `out`: one entry when both sides see the same address and transport, else two
    /// (RFC 5658), the one facing the next hop on top, so in-dialog requests from either side
    /// reach us on the address and transport that side can reach.
    pub(super) fn record_route_for(
        &mut self,
        (arrival, source): (Option<Transport>, SocketAddr),
        out: (Transport, &Hop),
    ) -> String {
        let inbound = arrival.and_then(|t| self.hop_for(t, source).map(|h| (t, h)));
        match inbound {
            Some((t, hop)) if t != out.0 || hop.addr != out.1.addr => {
                format!("{}, {}", out.1.record_route, hop.record_route)
            }
            _ => out.1.record_route.clone(),
        }
    }
}

//! The TURN server (RFC 8656), sans-IO, over UDP. A client's datagrams arrive with its address
//! and come out as what to do: answer it, relay a payload from its relayed port to a peer, or
//! bind a new relayed port (the driver binds it, then calls [`TurnServer::allocated`], or
//! [`TurnServer::port_unavailable`] for another). A
//! peer's datagrams to a relayed port come out as ChannelData or a Data indication for the
//! client. STUN Binding is answered as by [`StunServer`], which also checks credentials
//! (long-term, or coturn's shared secret). Requests are in `requests.rs`, data in `data.rs`.

mod allocate;
mod allocation;
mod data;
pub mod framing;
mod peers;
mod ports;
mod requests;
mod reservations;

pub use allocation::{CHANNEL_LIFETIME, MAX_PEERS, PERMISSION_LIFETIME};
pub use data::CHANNEL_HEADROOM;
pub use peers::PeerPolicy;
pub use ports::RelayPorts;
pub use reservations::RESERVATION_LIFETIME;

use crate::stun::{Authenticated, StunServer};
use allocation::Allocation;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stun_rs::StunMessage;

/// How a client reaches the server (RFC 8656 3.1): UDP, or a TCP connection, plain or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientTransport {
    /// Datagrams on the server socket.
    Udp,
    /// A TCP connection.
    Tcp,
    /// A TLS connection over TCP.
    Tls,
}

/// A client as its allocation knows it: the transport and its address (with our listener,
/// the 5-tuple of RFC 8656 2.2). Over TCP and TLS the address names one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientAddr {
    /// UDP, TCP or TLS.
    pub transport: ClientTransport,
    /// Its source address.
    pub addr: SocketAddr,
}

impl ClientAddr {
    /// A client over UDP.
    pub fn udp(addr: SocketAddr) -> Self {
        ClientAddr {
            transport: ClientTransport::Udp,
            addr,
        }
    }

    /// Whether it reaches us over a stream (TCP or TLS): ChannelData is padded to four bytes
    /// there (RFC 8656 12.5) and the allocation ends with the connection.
    pub fn is_stream(&self) -> bool {
        self.transport != ClientTransport::Udp
    }
}

/// What a TURN server may hand out.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The address relayed ports are bound on.
    pub relay_ip: IpAddr,
    /// An IPv6 address relayed ports are bound on too, when `relay_ip` is IPv4: clients may
    /// ask for IPv6 (REQUESTED-ADDRESS-FAMILY) or for both (ADDITIONAL-ADDRESS-FAMILY).
    pub relay_ip_v6: Option<IpAddr>,
    /// The address XOR-RELAYED-ADDRESS names, when peers reach us by another (behind 1:1 NAT).
    pub advertise: Option<IpAddr>,
    /// The relayed port range, LOW-HIGH.
    pub ports: (u16, u16),
    /// Allocations one user may hold at once (486 beyond).
    pub user_quota: usize,
    /// Allocations the server holds at once (508 beyond).
    pub total_quota: usize,
    /// Which peers may be relayed to.
    pub peers: PeerPolicy,
    /// The lifetime given when a client asks for none or less (RFC 8656: 10 minutes).
    pub default_lifetime: Duration,
    /// The longest lifetime given (RFC 8656 suggests an hour).
    pub max_lifetime: Duration,
}

impl TurnConfig {
    /// Defaults for relaying on `relay_ip` within `ports`.
    pub fn new(relay_ip: IpAddr, ports: (u16, u16)) -> Self {
        TurnConfig {
            relay_ip,
            relay_ip_v6: None,
            advertise: None,
            ports,
            user_quota: 10,
            total_quota: usize::from(ports.1 - ports.0) + 1,
            peers: PeerPolicy::default(),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Why a datagram was dropped (the driver counts them; the sender is never told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Neither STUN nor ChannelData.
    NotTurn,
    /// STUN or ChannelData that does not decode, or an indication we cannot act on.
    Malformed,
    /// A response, or an indication other than Send.
    NotARequest,
    /// From a client with no allocation, or to a port with none.
    NoAllocation,
    /// To or from a peer without a permission.
    NoPermission,
    /// ChannelData on a channel not bound.
    NoChannel,
}

/// What to do with a client's datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum FromClient<'a> {
    /// Answer the client with these bytes.
    Reply(Vec<u8>),
    /// Send `payload` from relayed port `port` to `peer`.
    Relay {
        /// Our relayed port.
        port: u16,
        /// Where it goes.
        peer: SocketAddr,
        /// What goes (borrowed from a ChannelData message).
        payload: Cow<'a, [u8]>,
    },
    /// Bind this port, then report with [`TurnServer::allocated`].
    Bind(PendingAllocation),
    /// Nothing to do: why.
    Drop(Dropped),
}

/// What to do with a peer's datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum ToClient<'a> {
    /// Send these bytes to `client` from the TURN socket.
    Send {
        /// The allocation's client.
        client: ClientAddr,
        /// ChannelData (borrowed from the receive buffer) or a Data indication.
        bytes: Cow<'a, [u8]>,
    },
    /// Nothing to do: why.
    Drop(Dropped),
}

/// An Allocate that passed every check and waits for its port to be bound.
#[derive(Debug)]
pub struct PendingAllocation {
    /// The port to bind on the relay address of its family.
    pub port: u16,
    /// Whether that family is IPv6.
    v6: bool,
    /// A second port, on the IPv6 relay address (ADDITIONAL-ADDRESS-FAMILY).
    also_v6: Option<u16>,
    /// Whether IPv6 was asked for besides and we relay none (ADDRESS-ERROR-CODE 440).
    refused_v6: bool,
    client: ClientAddr,
    request: StunMessage,
    auth: Authenticated,
    lifetime: Duration,
    /// Whether the client asked for an even port.
    even: bool,
    /// Whether the next port is held too, for a RESERVATION-TOKEN in the answer.
    reserve: bool,
    /// Whether this port was reserved by a token: no other will do.
    reserved: bool,
    /// Ports tried before this one (held by someone else).
    tried: u8,
    /// The address XOR-RELAYED-ADDRESS names when the relay is bound to a wildcard.
    relayed_ip: Option<IpAddr>,
}

impl PendingAllocation {
    /// The addresses to bind, the first for [`PendingAllocation::port`].
    pub fn binds(&self, server: &TurnServer) -> Vec<SocketAddr> {
        let first = server
            .relay_ip_for(self.v6)
            .unwrap_or(server.config.relay_ip);
        let mut all = vec![SocketAddr::new(first, self.port)];
        if let (Some(port), Some(ip)) = (self.also_v6, server.relay_ip_for(true)) {
            all.push(SocketAddr::new(ip, port));
        }
        all
    }

    /// Names the relayed port by `ip` (the local address the client reached us on), when the
    /// relay is bound to a wildcard and nothing is advertised.
    pub fn name_relay(&mut self, ip: Option<IpAddr>) {
        self.relayed_ip = ip;
    }
}

/// Two pending allocations are the same when they are for the same port and client.
impl PartialEq for PendingAllocation {
    fn eq(&self, other: &Self) -> bool {
        (self.port, self.client) == (other.port, other.client)
    }
}

impl Eq for PendingAllocation {}

/// Every allocation, by client and by port, and their expiries.
#[derive(Debug)]
pub struct TurnServer {
    stun: StunServer,
    config: TurnConfig,
    ports: RelayPorts,
    allocations: HashMap<ClientAddr, Allocation>,
    by_port: HashMap<u16, ClientAddr>,
    per_user: HashMap<String, usize>,
    /// Ports being bound: they count against the quotas already.
    pending: usize,
    /// (when, client); stale entries (refreshed or deleted allocations) are skipped.
    expiries: BinaryHeap<Reverse<(Instant, ClientAddr)>>,
    /// Ports given back since the driver last looked: it closes their sockets.
    closed: VecDeque<u16>,
    /// Odd ports held for a second Allocate (EVEN-PORT with R).
    reservations: reservations::Reservations,
}

impl TurnServer {
    /// A server answering STUN and authenticating with `stun`, relaying as `config` says.
    pub fn new(stun: StunServer, config: TurnConfig) -> Self {
        TurnServer {
            stun,
            ports: RelayPorts::new(config.ports.0, config.ports.1),
            config,
            allocations: HashMap::new(),
            by_port: HashMap::new(),
            per_user: HashMap::new(),
            pending: 0,
            expiries: BinaryHeap::new(),
            closed: VecDeque::new(),
            reservations: reservations::Reservations::default(),
        }
    }

    /// Handles a datagram from `client` at `now` (`wall`: seconds since the epoch, for nonces
    /// and shared-secret expiry).
    pub fn handle_client<'a>(
        &mut self,
        now: Instant,
        wall: u64,
        client: ClientAddr,
        packet: &'a [u8],
    ) -> FromClient<'a> {
        if framing::is_channel_data(packet) {
            return self.channel_data(now, client, packet);
        }
        let message = match self.stun.read(packet) {
            Ok(m) => m,
            Err(crate::stun::Outcome::Reply(r)) => return FromClient::Reply(r),
            Err(crate::stun::Outcome::Dropped(why)) => {
                return FromClient::Drop(match why {
                    crate::stun::Dropped::NotStun => Dropped::NotTurn,
                    crate::stun::Dropped::Malformed => Dropped::Malformed,
                    crate::stun::Dropped::NotARequest => Dropped::NotARequest,
                });
            }
        };
        self.message(now, wall, client, packet, message)
    }

    /// The address relayed ports of a family are bound on, if we relay that family.
    pub fn relay_ip_for(&self, v6: bool) -> Option<IpAddr> {
        let main = self.config.relay_ip;
        if main.is_ipv6() == v6 {
            Some(main)
        } else if v6 {
            self.config.relay_ip_v6.filter(IpAddr::is_ipv6)
        } else {
            None
        }
    }

    /// Whether `client` holds an allocation.
    pub fn has_allocation(&self, client: ClientAddr) -> bool {
        self.allocations.contains_key(&client)
    }

    /// Allocations held now.
    pub fn allocations(&self) -> usize {
        self.allocations.len()
    }

    /// When [`TurnServer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.expiries.peek().map(|Reverse((at, _))| *at);
        match (expiry, self.reservations.next_lapse()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends the allocations whose lifetime is over at `now`, and frees lapsed reservations.
    pub fn handle_timeout(&mut self, now: Instant) {
        for port in self.reservations.lapse(now) {
            self.ports.give_back(port);
        }
        while let Some(Reverse((at, client))) = self.expiries.peek().copied() {
            if at > now {
                break;
            }
            self.expiries.pop();
            if self
                .allocations
                .get(&client)
                .is_some_and(|a| a.expires <= now)
            {
                self.deallocate(client);
            }
        }
    }

    /// A relayed port whose socket should close, if any.
    pub fn poll_closed_port(&mut self) -> Option<u16> {
        self.closed.pop_front()
    }

    /// A stream client's connection closed: its allocation ends with it (RFC 8656 3.1).
    pub fn client_gone(&mut self, client: ClientAddr) {
        self.deallocate(client);
    }

    /// Ends `client`'s allocation: its port goes back (and is closed), its user's count drops.
    fn deallocate(&mut self, client: ClientAddr) {
        let Some(a) = self.allocations.remove(&client) else {
            return;
        };
        for r in &a.relayed {
            self.by_port.remove(&r.port);
            self.ports.give_back(r.port);
            self.closed.push_back(r.port);
        }
        self.release_quota(&a.user);
    }

    fn release_quota(&mut self, user: &str) {
        if let Some(n) = self.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
    }
}

#[cfg(test)]
mod tests;

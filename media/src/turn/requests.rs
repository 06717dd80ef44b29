//! TURN's requests (RFC 8656 7-11): Allocate, Refresh, CreatePermission, ChannelBind; every
//! one authenticated, and every one after Allocate made by the allocation's own user.

use super::allocation::{Allocation, ChannelRefusal};
use super::{ClientAddr, Dropped, FromClient, PendingAllocation, TurnServer};
use crate::stun::{Authenticated, Outcome};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::attributes::turn::{
    ChannelNumber, DontFragment, EvenPort, LifeTime, RequestedAddressFamily, RequestedTrasport,
    ReservationToken, XorPeerAddress, XorRelayedAddress,
};
use stun_rs::methods::{ALLOCATE, BINDING, CHANNEL_BIND, CREATE_PERMMISSION, REFRESH, SEND};
use stun_rs::{AddressFamily, MessageClass, StunMessage};

/// UDP's protocol number, the only REQUESTED-TRANSPORT served (RFC 8656 7.2).
const UDP: u8 = 17;
/// DONT-FRAGMENT's type: named in UNKNOWN-ATTRIBUTES when refused (RFC 8656 7.2).
const DONT_FRAGMENT: u16 = 0x001a;
/// Ports tried for one allocation before it is refused with 508.
const BIND_ATTEMPTS: u8 = 16;

impl TurnServer {
    /// A decoded STUN message from `client`.
    pub(super) fn message<'a>(
        &mut self,
        now: Instant,
        wall: u64,
        client: ClientAddr,
        packet: &'a [u8],
        message: StunMessage,
    ) -> FromClient<'a> {
        match message.class() {
            MessageClass::Indication if message.method() == SEND => {
                return self.send_indication(now, client, &message);
            }
            MessageClass::Request => {}
            _ => return FromClient::Drop(Dropped::NotARequest),
        }
        let method = message.method();
        if method == BINDING {
            return reply(self.stun.binding(packet, &message, client.addr, wall));
        }
        if ![ALLOCATE, REFRESH, CREATE_PERMMISSION, CHANNEL_BIND].contains(&method) {
            return self.refuse(&message, 400, "Bad Request: unknown method", None);
        }
        let auth = match self.stun.authenticate(packet, &message, wall) {
            Ok(auth) => auth,
            Err(refusal) => return reply(self.stun.refused(&message, refusal, wall)),
        };
        if method == ALLOCATE {
            return self.allocate(client, message, auth);
        }
        // Every other request acts on the client's allocation, made by the same user.
        let Some(allocation) = self.allocations.get_mut(&client) else {
            return self.refuse(&message, 437, "Allocation Mismatch: none here", Some(&auth));
        };
        if allocation.user != auth.user {
            return self.refuse(&message, 441, "Wrong Credentials", Some(&auth));
        }
        if method == REFRESH {
            self.refresh(now, client, &message, &auth)
        } else if method == CREATE_PERMMISSION {
            self.create_permission(now, client, &message, &auth)
        } else {
            self.channel_bind(now, client, &message, &auth)
        }
    }

    /// Allocate (RFC 8656 7.2): checks, quotas, then a port for the driver to bind.
    fn allocate<'a>(
        &mut self,
        client: ClientAddr,
        request: StunMessage,
        auth: Authenticated,
    ) -> FromClient<'a> {
        if let Some(existing) = self.allocations.get(&client) {
            // A retransmission gets the same answer; another Allocate on this 5-tuple is a
            // mismatch.
            if existing.made_by.0 == *request.transaction_id() {
                return FromClient::Reply(existing.made_by.1.clone());
            }
            return self.refuse(&request, 437, "Allocation Mismatch", Some(&auth));
        }
        let transport = request
            .get::<RequestedTrasport>()
            .and_then(|a| a.as_requested_trasport().ok())
            .map(|t| t.protocol().as_u8());
        match transport {
            None => {
                return self.refuse(
                    &request,
                    400,
                    "Bad Request: REQUESTED-TRANSPORT needed",
                    Some(&auth),
                );
            }
            Some(UDP) => {}
            Some(_) => {
                return self.refuse(&request, 442, "Unsupported Transport Protocol", Some(&auth));
            }
        }
        if request.get::<DontFragment>().is_some() {
            // We cannot set DF on relayed datagrams: RFC 8656 7.2 says to treat it as unknown.
            return reply(self.stun.unknown(&request, &[DONT_FRAGMENT]));
        }
        let family = request
            .get::<RequestedAddressFamily>()
            .and_then(|a| a.as_requested_address_family().ok())
            .map(|f| f.family());
        let ours = match self.config.relay_ip {
            IpAddr::V4(_) => AddressFamily::IPv4,
            IpAddr::V6(_) => AddressFamily::IPv6,
        };
        if family.is_some_and(|f| f != ours) {
            return self.refuse(&request, 440, "Address Family not Supported", Some(&auth));
        }
        // Some(whether to reserve the next port) when EVEN-PORT is present.
        let even = request
            .get::<EvenPort>()
            .and_then(|a| a.as_even_port().ok())
            .map(EvenPort::reserve);
        let token = request
            .get::<ReservationToken>()
            .and_then(|a| a.as_reservation_token().ok())
            .map(|t| t.token().to_vec());
        if token.is_some() && (even.is_some() || family.is_some()) {
            return self.refuse(
                &request,
                400,
                "Bad Request: RESERVATION-TOKEN with EVEN-PORT or REQUESTED-ADDRESS-FAMILY",
                Some(&auth),
            );
        }
        let held = self.per_user.get(&auth.user).copied().unwrap_or(0);
        if held >= self.config.user_quota {
            return self.refuse(&request, 486, "Allocation Quota Reached", Some(&auth));
        }
        if self.allocations.len() + self.pending >= self.config.total_quota {
            return self.refuse(&request, 508, "Insufficient Capacity", Some(&auth));
        }
        let reserve = even == Some(true);
        let port = match &token {
            Some(token) => self.reservations.claim(token),
            None if reserve => self.ports.take_pair(),
            None => self.ports.take(even.is_some()),
        };
        let Some(port) = port else {
            let why = if token.is_some() {
                "Insufficient Capacity: no port reserved for that token"
            } else {
                "Insufficient Capacity: no free port"
            };
            return self.refuse(&request, 508, why, Some(&auth));
        };
        let asked = lifetime(&request).unwrap_or(self.config.default_lifetime);
        let lifetime = asked
            .min(self.config.max_lifetime)
            .max(self.config.default_lifetime);
        *self.per_user.entry(auth.user.clone()).or_insert(0) += 1;
        self.pending += 1;
        FromClient::Bind(PendingAllocation {
            port,
            client,
            request,
            auth,
            lifetime,
            even: even.is_some(),
            reserve,
            reserved: token.is_some(),
            tried: 0,
            relayed_ip: None,
        })
    }

    /// The driver could not bind a pending allocation's port (another program holds it):
    /// another port to try, or, after [`BIND_ATTEMPTS`], the 508 for the client.
    pub fn port_unavailable(
        &mut self,
        mut pending: PendingAllocation,
    ) -> Result<PendingAllocation, Vec<u8>> {
        self.ports.give_back(pending.port);
        if pending.reserve {
            self.ports.give_back(pending.port + 1);
        }
        pending.tried += 1;
        if pending.tried < BIND_ATTEMPTS && !pending.reserved {
            let next = if pending.reserve {
                self.ports.take_pair()
            } else {
                self.ports.take(pending.even)
            };
            if let Some(port) = next {
                pending.port = port;
                return Ok(pending);
            }
        }
        self.pending -= 1;
        self.release_quota(&pending.auth.user);
        Err(bytes(self.stun.refuse(
            &pending.request,
            508,
            "Insufficient Capacity: no relayed port could be bound",
            None,
            Some(&pending.auth),
        )))
    }

    /// The driver bound a pending allocation's port at `now`: the success answer for the
    /// client.
    pub fn allocated(&mut self, now: Instant, pending: PendingAllocation) -> Vec<u8> {
        let PendingAllocation {
            port,
            client,
            request,
            auth,
            lifetime,
            reserve,
            relayed_ip,
            ..
        } = pending;
        self.pending -= 1;
        let bound = self.config.relay_ip;
        let advertised = match (self.config.advertise, relayed_ip) {
            (Some(ip), _) => ip,
            (None, Some(ip)) if bound.is_unspecified() && ip.is_ipv4() == bound.is_ipv4() => ip,
            _ => bound,
        };
        let relayed = SocketAddr::new(advertised, port);
        let mut attributes = vec![
            XorRelayedAddress::from(relayed).into(),
            LifeTime::new(seconds(lifetime)).into(),
            XorMappedAddress::from(client.addr).into(),
        ];
        if reserve {
            match self.reservations.hold(port + 1, now) {
                Some(token) => attributes.push(ReservationToken::from(token).into()),
                None => self.ports.give_back(port + 1),
            }
        }
        let answer = bytes(self.stun.answer(&request, attributes, Some(&auth)));
        let expires = now + lifetime;
        let made_by = (*request.transaction_id(), answer.clone());
        self.allocations
            .insert(client, Allocation::new(port, auth.user, expires, made_by));
        self.by_port.insert(port, client);
        self.expiries.push(std::cmp::Reverse((expires, client)));
        answer
    }

    /// Refresh (RFC 8656 7.3): a new lifetime, or the end of the allocation at 0.
    fn refresh<'a>(
        &mut self,
        now: Instant,
        client: ClientAddr,
        request: &StunMessage,
        auth: &Authenticated,
    ) -> FromClient<'a> {
        let granted = lifetime(request)
            .unwrap_or(self.config.default_lifetime)
            .min(self.config.max_lifetime);
        if granted.is_zero() {
            self.deallocate(client);
        } else if let Some(a) = self.allocations.get_mut(&client) {
            a.expires = now + granted;
            self.expiries.push(std::cmp::Reverse((a.expires, client)));
        }
        let lifetime = LifeTime::new(seconds(granted)).into();
        reply(self.stun.answer(request, vec![lifetime], Some(auth)))
    }

    /// CreatePermission (RFC 8656 9.2): every XOR-PEER-ADDRESS allowed, or none installed.
    fn create_permission<'a>(
        &mut self,
        now: Instant,
        client: ClientAddr,
        request: &StunMessage,
        auth: &Authenticated,
    ) -> FromClient<'a> {
        let peers: Vec<SocketAddr> = request
            .attributes()
            .iter()
            .filter_map(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address())
            .collect();
        if peers.is_empty() {
            return self.refuse(
                request,
                400,
                "Bad Request: XOR-PEER-ADDRESS needed",
                Some(auth),
            );
        }
        if let Some(refusal) = self.check_peers(&peers) {
            return self.refuse(request, refusal.0, refusal.1, Some(auth));
        }
        let ips: Vec<IpAddr> = peers.iter().map(SocketAddr::ip).collect();
        let installed = self
            .allocations
            .get_mut(&client)
            .is_some_and(|a| a.permit(&ips, now));
        if !installed {
            return self.refuse(
                request,
                508,
                "Insufficient Capacity: too many permissions",
                Some(auth),
            );
        }
        reply(self.stun.answer(request, vec![], Some(auth)))
    }

    /// ChannelBind (RFC 8656 11.2): a number in 0x4000-0x7FFF for one allowed peer.
    fn channel_bind<'a>(
        &mut self,
        now: Instant,
        client: ClientAddr,
        request: &StunMessage,
        auth: &Authenticated,
    ) -> FromClient<'a> {
        let number = request
            .get::<ChannelNumber>()
            .and_then(|a| a.as_channel_number().ok())
            .map(ChannelNumber::number);
        let peer = request
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let (Some(number), Some(peer)) = (number, peer) else {
            return self.refuse(
                request,
                400,
                "Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS needed",
                Some(auth),
            );
        };
        // RFC 8656 narrowed channels to 0x4000-0x4FFF, leaving the rest to DTLS-SRTP demultiplexing
        // at the client; RFC 5766 clients (coturn's own among them) still use up to 0x7FFF, and
        // nothing but TURN arrives on this socket, so the old range is served too.
        if !(0x4000..=0x7fff).contains(&number) {
            return self.refuse(
                request,
                400,
                "Bad Request: channel number out of range",
                Some(auth),
            );
        }
        if let Some(refusal) = self.check_peers(&[peer]) {
            return self.refuse(request, refusal.0, refusal.1, Some(auth));
        }
        let Some(a) = self.allocations.get_mut(&client) else {
            return FromClient::Drop(Dropped::NoAllocation);
        };
        match a.bind_channel(number, peer, now) {
            Ok(()) => reply(self.stun.answer(request, vec![], Some(auth))),
            Err(ChannelRefusal::NumberTaken) => self.refuse(
                request,
                400,
                "Bad Request: channel bound to another peer",
                Some(auth),
            ),
            Err(ChannelRefusal::PeerTaken) => self.refuse(
                request,
                400,
                "Bad Request: peer bound to another channel",
                Some(auth),
            ),
            Err(ChannelRefusal::TooMany) => self.refuse(
                request,
                508,
                "Insufficient Capacity: too many channels",
                Some(auth),
            ),
        }
    }

    /// The error for peers an allocation may not reach: 443 for another address family than
    /// the relay's, 403 for an address the policy refuses.
    fn check_peers(&self, peers: &[SocketAddr]) -> Option<(u16, &'static str)> {
        for p in peers {
            if p.is_ipv4() != self.config.relay_ip.is_ipv4() {
                return Some((443, "Peer Address Family Mismatch"));
            }
            if !self.config.peers.allows(p.ip()) {
                return Some((403, "Forbidden: that peer address is not relayed to"));
            }
        }
        None
    }

    /// An error answer to `request`, signed when it was authenticated.
    fn refuse<'a>(
        &self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        auth: Option<&Authenticated>,
    ) -> FromClient<'a> {
        reply(self.stun.refuse(request, code, reason, None, auth))
    }
}

/// The LIFETIME a request asks for.
fn lifetime(request: &StunMessage) -> Option<Duration> {
    request
        .get::<LifeTime>()
        .and_then(|a| a.as_life_time().ok())
        .map(|l| Duration::from_secs(u64::from(l.as_u32())))
}

fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn reply<'a>(outcome: Outcome) -> FromClient<'a> {
    match outcome {
        Outcome::Reply(r) => FromClient::Reply(r),
        Outcome::Dropped(_) => FromClient::Drop(Dropped::Malformed),
    }
}

fn bytes(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Reply(r) => r,
        Outcome::Dropped(_) => Vec::new(),
    }
}

//! TURN's requests (RFC 8656 7-11): Allocate, Refresh, CreatePermission, ChannelBind; every
//! one authenticated, and every one after Allocate made by the allocation's own user.

use super::allocate::{lifetime, seconds};
use super::allocation::ChannelRefusal;
use super::{ClientAddr, Dropped, FromClient, TurnServer};
use crate::stun::{Authenticated, Outcome};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use stun_rs::attributes::turn::{ChannelNumber, LifeTime, XorPeerAddress};
use stun_rs::methods::{ALLOCATE, BINDING, CHANNEL_BIND, CREATE_PERMMISSION, REFRESH, SEND};
use stun_rs::{MessageClass, StunMessage};

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
        if let Some(refusal) = self.check_peers(client, &peers) {
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
        if let Some(refusal) = self.check_peers(client, &[peer]) {
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

    /// The error for peers `client`'s allocation may not reach: 443 for an address family it
    /// relays none of, 403 for an address the policy refuses.
    fn check_peers(&self, client: ClientAddr, peers: &[SocketAddr]) -> Option<(u16, &'static str)> {
        let allocation = self.allocations.get(&client)?;
        for p in peers {
            if allocation.port_for(p.ip()).is_none() {
                return Some((443, "Peer Address Family Mismatch"));
            }
            if !self.config.peers.allows(p.ip()) {
                return Some((403, "Forbidden: that peer address is not relayed to"));
            }
        }
        None
    }

    /// An error answer to `request`, signed when it was authenticated.
    pub(super) fn refuse<'a>(
        &self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        auth: Option<&Authenticated>,
    ) -> FromClient<'a> {
        reply(self.stun.refuse(request, code, reason, None, auth))
    }
}

pub(super) fn reply<'a>(outcome: Outcome) -> FromClient<'a> {
    match outcome {
        Outcome::Reply(r) => FromClient::Reply(r),
        Outcome::Dropped(_) => FromClient::Drop(Dropped::Malformed),
    }
}

pub(super) fn bytes(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Reply(r) => r,
        Outcome::Dropped(_) => Vec::new(),
    }
}

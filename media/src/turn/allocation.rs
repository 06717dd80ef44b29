//! One allocation (RFC 8656 section 2.2): a client's relayed port, its lifetime, the peers it
//! has permission to hear from, and the channels it bound. Times are `Instant`s the caller
//! passes in; nothing here reads a clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stun_rs::TransactionId;

/// How long a permission lasts (RFC 8656 9: exactly 300 s).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lasts (RFC 8656 12: 10 minutes).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel expires, neither its number nor its peer may be bound otherwise for this
/// long (RFC 8656 12: 5 minutes), so late data is not misdelivered.
const CHANNEL_QUIET: Duration = Duration::from_secs(300);
/// Permissions or channels one allocation may hold: a client cannot grow our memory without
/// bound (RFC 8656 leaves the limit to the server).
pub const MAX_PEERS: usize = 1024;

/// Why a channel could not be bound: every case is a 400 to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelRefusal {
    /// The number is bound to another peer.
    NumberTaken,
    /// The peer is bound to another number.
    PeerTaken,
    /// [`MAX_PEERS`] channels already.
    TooMany,
}

/// One relayed port of an allocation and the family it relays.
#[derive(Debug, Clone, Copy)]
pub(super) struct Relayed {
    pub(super) port: u16,
    pub(super) v6: bool,
}

/// A client's allocation.
#[derive(Debug)]
pub(super) struct Allocation {
    /// Our relayed ports: one, or one per family (RFC 8656 dual allocation).
    pub(super) relayed: Vec<Relayed>,
    /// The USERNAME that made it: later requests must use the same (441 otherwise).
    pub(super) user: String,
    /// When it ends unless refreshed.
    pub(super) expires: Instant,
    /// The Allocate that made it and our answer: a retransmission gets the same answer.
    pub(super) made_by: (TransactionId, Vec<u8>),
    /// Peer IP -> when its permission ends.
    permissions: HashMap<IpAddr, Instant>,
    /// Channel number -> (peer, when the binding ends).
    channels: HashMap<u16, (SocketAddr, Instant)>,
    /// Peer -> its channel number.
    channel_of: HashMap<SocketAddr, u16>,
}

impl Allocation {
    /// A new allocation on `relayed` for `user`, until `expires`.
    pub(super) fn new(
        relayed: Vec<Relayed>,
        user: String,
        expires: Instant,
        made_by: (TransactionId, Vec<u8>),
    ) -> Self {
        Allocation {
            relayed,
            user,
            expires,
            made_by,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_of: HashMap::new(),
        }
    }

    /// The relayed port that reaches peers of `peer`'s family, if any.
    pub(super) fn port_for(&self, peer: IpAddr) -> Option<u16> {
        self.relayed
            .iter()
            .find(|r| r.v6 == peer.is_ipv6())
            .map(|r| r.port)
    }

    /// Whether `peer`'s IP may be relayed to and heard from at `now`.
    pub(super) fn permits(&self, peer: IpAddr, now: Instant) -> bool {
        self.permissions
            .get(&peer)
            .is_some_and(|&until| until > now)
    }

    /// Installs or refreshes a permission for each of `peers`; false (and nothing installed)
    /// when that would pass [`MAX_PEERS`].
    pub(super) fn permit(&mut self, peers: &[IpAddr], now: Instant) -> bool {
        self.permissions.retain(|_, until| *until > now);
        let new = peers
            .iter()
            .filter(|p| !self.permissions.contains_key(p))
            .count();
        if self.permissions.len() + new > MAX_PEERS {
            return false;
        }
        for &p in peers {
            self.permissions.insert(p, now + PERMISSION_LIFETIME);
        }
        true
    }

    /// The peer bound to channel `number`, while the binding lasts.
    pub(super) fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        match self.channels.get(&number) {
            Some(&(peer, until)) if until > now => Some(peer),
            _ => None,
        }
    }

    /// The channel bound to `peer`, while the binding lasts.
    pub(super) fn channel_to(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let number = *self.channel_of.get(&peer)?;
        self.channel_peer(number, now).map(|_| number)
    }

    /// Binds (or refreshes) channel `number` to `peer`, with a permission for its IP (RFC 8656
    /// 11.2). A number or peer bound otherwise, even lately expired, stays refused.
    pub(super) fn bind_channel(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), ChannelRefusal> {
        self.channels
            .retain(|_, (_, until)| *until + CHANNEL_QUIET > now);
        let channels = &self.channels;
        self.channel_of.retain(|_, n| channels.contains_key(n));
        match self.channels.get(&number) {
            Some(&(bound, _)) if bound != peer => return Err(ChannelRefusal::NumberTaken),
            _ => {}
        }
        match self.channel_of.get(&peer) {
            Some(&n) if n != number => return Err(ChannelRefusal::PeerTaken),
            _ => {}
        }
        if !self.channels.contains_key(&number) && self.channels.len() >= MAX_PEERS {
            return Err(ChannelRefusal::TooMany);
        }
        if !self.permit(&[peer.ip()], now) {
            return Err(ChannelRefusal::TooMany);
        }
        self.channels.insert(number, (peer, now + CHANNEL_LIFETIME));
        self.channel_of.insert(peer, number);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #![allow(clippy::disallowed_methods)] // Instant::now() is the origin of virtual time here
    use super::*;

    fn allocation(now: Instant) -> Allocation {
        let txn = TransactionId::from([1u8; 12]);
        Allocation::new(
            vec![Relayed {
                port: 50_000,
                v6: false,
            }],
            "alice".into(),
            now + Duration::from_secs(600),
            (txn, vec![]),
        )
    }

    #[test]
    fn permissions_last_five_minutes() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let peer: IpAddr = "8.8.8.8".parse().unwrap();
        assert!(!a.permits(peer, t0));
        assert!(a.permit(&[peer], t0));
        assert!(a.permits(peer, t0 + Duration::from_secs(299)));
        assert!(!a.permits(peer, t0 + PERMISSION_LIFETIME));
        assert!(!a.permits("8.8.4.4".parse().unwrap(), t0), "per IP");
    }

    #[test]
    fn a_channel_is_one_number_for_one_peer_and_stays_reserved_after_expiry() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let p1: SocketAddr = "8.8.8.8:5000".parse().unwrap();
        let p2: SocketAddr = "8.8.8.8:5001".parse().unwrap();
        a.bind_channel(0x4000, p1, t0).unwrap();
        assert_eq!(a.channel_peer(0x4000, t0), Some(p1));
        assert_eq!(a.channel_to(p1, t0), Some(0x4000));
        assert!(a.permits(p1.ip(), t0), "a binding is a permission");
        assert_eq!(
            a.bind_channel(0x4000, p2, t0),
            Err(ChannelRefusal::NumberTaken)
        );
        assert_eq!(
            a.bind_channel(0x4001, p1, t0),
            Err(ChannelRefusal::PeerTaken)
        );
        a.bind_channel(0x4000, p1, t0).unwrap();
        let expired = t0 + CHANNEL_LIFETIME;
        assert_eq!(a.channel_peer(0x4000, expired), None);
        assert_eq!(
            a.bind_channel(0x4000, p2, expired + Duration::from_secs(1)),
            Err(ChannelRefusal::NumberTaken),
            "still quiet"
        );
        a.bind_channel(0x4000, p2, expired + CHANNEL_QUIET).unwrap();
        assert_eq!(a.channel_to(p1, expired + CHANNEL_QUIET), None);
    }

    #[test]
    fn permissions_are_bounded() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let many: Vec<IpAddr> = (0..MAX_PEERS as u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0800_0000 + i)))
            .collect();
        assert!(a.permit(&many, t0));
        assert!(!a.permit(&["9.9.9.9".parse().unwrap()], t0));
        assert!(a.permit(&many[..3], t0), "refreshing is not growing");
        assert!(
            a.permit(&["9.9.9.9".parse().unwrap()], t0 + PERMISSION_LIFETIME),
            "expired ones go"
        );
    }
}

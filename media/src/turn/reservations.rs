//! Port reservations (RFC 8656 7.2, EVEN-PORT with the R bit): an allocation on an even port
//! keeps the next one for a while, for a second Allocate naming its RESERVATION-TOKEN (RTP and
//! RTCP on adjacent ports, which coturn's `turnutils_uclient` asks for by default).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a reserved port waits for its Allocate (RFC 8656 suggests about 30 seconds).
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// A RESERVATION-TOKEN: eight random bytes, so one client cannot claim another's port.
pub(super) type Token = [u8; 8];

/// Ports held for a token, and when each reservation lapses.
#[derive(Debug, Default)]
pub(super) struct Reservations {
    /// The port and whether it is on the IPv6 relay address.
    by_token: HashMap<Token, (u16, bool)>,
    /// In the order made, which is the order they lapse (one lifetime for all).
    lapses: VecDeque<(Instant, Token)>,
}

impl Reservations {
    /// Holds `port` (of the family: IPv6 or not) from `now`: its token, or None without
    /// randomness to make one.
    pub(super) fn hold(&mut self, port: (u16, bool), now: Instant) -> Option<Token> {
        let mut token = [0u8; 8];
        getrandom::fill(&mut token).ok()?;
        self.by_token.insert(token, port);
        self.lapses.push_back((now + RESERVATION_LIFETIME, token));
        Some(token)
    }

    /// The port held for `token` and its family, no longer held.
    pub(super) fn claim(&mut self, token: &[u8]) -> Option<(u16, bool)> {
        let token: Token = token.try_into().ok()?;
        self.by_token.remove(&token)
    }

    /// The ports whose reservations lapsed by `now`, to give back.
    pub(super) fn lapse(&mut self, now: Instant) -> Vec<u16> {
        let mut freed = Vec::new();
        while let Some((at, token)) = self.lapses.front().copied() {
            if at > now {
                break;
            }
            self.lapses.pop_front();
            // Claimed tokens are gone from the map already.
            freed.extend(self.by_token.remove(&token).map(|(port, _)| port));
        }
        freed
    }

    /// When the next reservation lapses.
    pub(super) fn next_lapse(&self) -> Option<Instant> {
        self.lapses.front().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)] // Instant::now() starts virtual time
    use super::*;

    #[test]
    fn a_token_claims_its_port_once_and_unclaimed_ports_lapse() {
        let now = Instant::now();
        let mut r = Reservations::default();
        let a = r.hold((50_003, false), now).unwrap();
        let b = r.hold((50_005, true), now).unwrap();
        assert_ne!(a, b);
        assert_eq!(r.claim(&a), Some((50_003, false)));
        assert_eq!(r.claim(&a), None, "a token is good once");
        assert_eq!(r.claim(&[1, 2, 3]), None);
        assert_eq!(r.next_lapse(), Some(now + RESERVATION_LIFETIME));
        assert!(r.lapse(now + Duration::from_secs(29)).is_empty());
        assert_eq!(r.lapse(now + RESERVATION_LIFETIME), vec![50_005]);
        assert_eq!(r.claim(&b), None);
        assert_eq!(r.next_lapse(), None);
    }
}

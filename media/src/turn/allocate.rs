//! Allocate (RFC 8656 7.2): the checks, the address families asked for
//! (REQUESTED-ADDRESS-FAMILY, or ADDITIONAL-ADDRESS-FAMILY for one relayed address of each),
//! even ports and reservations, quotas; then ports for the driver to bind and, once bound,
//! the answer.

use super::allocation::{Allocation, Relayed};
use super::requests::{bytes, reply};
use super::{ClientAddr, FromClient, PendingAllocation, TurnServer};
use crate::stun::Authenticated;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::attributes::turn::{
    AdditionalAddressFamily, AddressErrorCode, DontFragment, EvenPort, LifeTime,
    RequestedAddressFamily, RequestedTrasport, ReservationToken, XorRelayedAddress,
};
use stun_rs::{AddressFamily, ErrorCode, StunAttribute, StunMessage};

/// UDP's protocol number, the only REQUESTED-TRANSPORT served (RFC 8656 7.2).
const UDP: u8 = 17;
/// DONT-FRAGMENT's type: named in UNKNOWN-ATTRIBUTES when refused (RFC 8656 7.2).
const DONT_FRAGMENT: u16 = 0x001a;
/// Ports tried for one allocation before it is refused with 508.
const BIND_ATTEMPTS: u8 = 16;

/// The families an Allocate asks for: the first relayed address's, and whether an IPv6 one
/// is wanted besides.
struct Families {
    v6: bool,
    also_v6: bool,
}

impl TurnServer {
    /// Allocate: checks, quotas, then ports for the driver to bind.
    pub(super) fn allocate<'a>(
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
                let why = "Bad Request: REQUESTED-TRANSPORT needed";
                return self.refuse(&request, 400, why, Some(&auth));
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
        let families = match self.families(&request) {
            Ok(f) => f,
            Err((code, why)) => return self.refuse(&request, code, why, Some(&auth)),
        };
        // Some(whether to reserve the next port) when EVEN-PORT is present.
        let even = request
            .get::<EvenPort>()
            .and_then(|a| a.as_even_port().ok())
            .map(EvenPort::reserve);
        let token = request
            .get::<ReservationToken>()
            .and_then(|a| a.as_reservation_token().ok())
            .map(|t| t.token().to_vec());
        let asked_family = request.get::<RequestedAddressFamily>().is_some()
            || request.get::<AdditionalAddressFamily>().is_some();
        if token.is_some() && (even.is_some() || asked_family) {
            let why = "Bad Request: RESERVATION-TOKEN with EVEN-PORT or an address family";
            return self.refuse(&request, 400, why, Some(&auth));
        }
        let held = self.per_user.get(&auth.user).copied().unwrap_or(0);
        if held >= self.config.user_quota {
            return self.refuse(&request, 486, "Allocation Quota Reached", Some(&auth));
        }
        if self.allocations.len() + self.pending >= self.config.total_quota {
            return self.refuse(&request, 508, "Insufficient Capacity", Some(&auth));
        }
        let reserve = even == Some(true);
        let (port, v6) = match &token {
            Some(token) => match self.reservations.claim(token) {
                Some(held) => (Some(held.0), held.1),
                None => (None, families.v6),
            },
            None if reserve => (self.ports.take_pair(), families.v6),
            None => (self.ports.take(even.is_some()), families.v6),
        };
        let also_v6 = if families.also_v6 {
            match self.ports.take(false) {
                Some(p) => Some(p),
                None => {
                    port.into_iter().for_each(|p| self.ports.give_back(p));
                    None
                }
            }
        } else {
            None
        };
        let (Some(port), true) = (port, also_v6.is_some() == families.also_v6) else {
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
        let refused_v6 = request.get::<AdditionalAddressFamily>().is_some() && !families.also_v6;
        FromClient::Bind(PendingAllocation {
            port,
            v6,
            also_v6,
            refused_v6,
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

    /// The families asked for, or the error: REQUESTED-ADDRESS-FAMILY names one (440 when we
    /// relay no such addresses), ADDITIONAL-ADDRESS-FAMILY asks for IPv6 besides IPv4 (RFC
    /// 8656 7.2; granted when we can, ADDRESS-ERROR-CODE otherwise), never both.
    fn families(&self, request: &StunMessage) -> Result<Families, (u16, &'static str)> {
        let requested = request
            .get::<RequestedAddressFamily>()
            .and_then(|a| a.as_requested_address_family().ok())
            .map(|f| f.family() == AddressFamily::IPv6);
        let additional = request
            .get::<AdditionalAddressFamily>()
            .and_then(|a| a.as_additional_address_family().ok())
            .map(|f| f.family() == AddressFamily::IPv6);
        let serves = |v6: bool| self.relay_ip_for(v6).is_some();
        match (requested, additional) {
            (Some(_), Some(_)) => Err((
                400,
                "Bad Request: REQUESTED- and ADDITIONAL-ADDRESS-FAMILY together",
            )),
            (None, Some(false)) => Err((400, "Bad Request: ADDITIONAL-ADDRESS-FAMILY is IPv6")),
            (Some(v6), None) if !serves(v6) => Err((440, "Address Family not Supported")),
            (Some(v6), None) => Ok(Families { v6, also_v6: false }),
            (None, Some(true)) if !serves(false) => Err((440, "Address Family not Supported")),
            (None, Some(true)) => Ok(Families {
                v6: false,
                also_v6: serves(true),
            }),
            // IPv4 unless the relay serves IPv6 only.
            (None, None) => Ok(Families {
                v6: !serves(false),
                also_v6: false,
            }),
        }
    }

    /// The driver could not bind a pending allocation's ports (another program holds one):
    /// others to try, or, after [`BIND_ATTEMPTS`], the 508 for the client.
    pub fn port_unavailable(
        &mut self,
        mut pending: PendingAllocation,
    ) -> Result<PendingAllocation, Vec<u8>> {
        self.ports.give_back(pending.port);
        if pending.reserve {
            self.ports.give_back(pending.port + 1);
        }
        let wants_v6 = pending
            .also_v6
            .take()
            .inspect(|&p| self.ports.give_back(p))
            .is_some();
        pending.tried += 1;
        if pending.tried < BIND_ATTEMPTS && !pending.reserved {
            let next = if pending.reserve {
                self.ports.take_pair()
            } else {
                self.ports.take(pending.even)
            };
            let extra = if wants_v6 {
                self.ports.take(false)
            } else {
                None
            };
            match (next, extra, wants_v6) {
                (Some(port), extra, wants) if extra.is_some() == wants => {
                    pending.port = port;
                    pending.also_v6 = extra;
                    return Ok(pending);
                }
                (next, extra, _) => {
                    next.into_iter()
                        .chain(extra)
                        .for_each(|p| self.ports.give_back(p));
                }
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

    /// The driver bound a pending allocation's ports at `now`: the success answer for the
    /// client.
    pub fn allocated(&mut self, now: Instant, pending: PendingAllocation) -> Vec<u8> {
        self.pending -= 1;
        let mut relayed = vec![Relayed {
            port: pending.port,
            v6: pending.v6,
        }];
        relayed.extend(pending.also_v6.map(|port| Relayed { port, v6: true }));
        let mut attributes: Vec<StunAttribute> = relayed
            .iter()
            .map(|r| XorRelayedAddress::from(self.relayed_address(r, &pending)).into())
            .collect();
        attributes.push(LifeTime::new(seconds(pending.lifetime)).into());
        attributes.push(XorMappedAddress::from(pending.client.addr).into());
        if pending.refused_v6 {
            if let Ok(code) = ErrorCode::new(440, "Address Family not Supported") {
                attributes.push(AddressErrorCode::new(AddressFamily::IPv6, code).into());
            }
        }
        if pending.reserve {
            match self.reservations.hold((pending.port + 1, pending.v6), now) {
                Some(token) => attributes.push(ReservationToken::from(token).into()),
                None => self.ports.give_back(pending.port + 1),
            }
        }
        let PendingAllocation {
            client,
            request,
            auth,
            lifetime,
            ..
        } = pending;
        let answer = bytes(self.stun.answer(&request, attributes, Some(&auth)));
        let expires = now + lifetime;
        let made_by = (*request.transaction_id(), answer.clone());
        for r in &relayed {
            self.by_port.insert(r.port, client);
        }
        self.allocations.insert(
            client,
            Allocation::new(relayed, auth.user, expires, made_by),
        );
        self.expiries.push(std::cmp::Reverse((expires, client)));
        answer
    }

    /// What XOR-RELAYED-ADDRESS says for `r`: the advertised address of its family, else the
    /// address the client reached us on when the relay is bound to a wildcard, else the
    /// address bound.
    fn relayed_address(&self, r: &Relayed, pending: &PendingAllocation) -> SocketAddr {
        let bound = self.relay_ip_for(r.v6).unwrap_or(self.config.relay_ip);
        let same = |ip: &std::net::IpAddr| ip.is_ipv6() == r.v6;
        let ip = match (
            self.config.advertise.filter(same),
            pending.relayed_ip.filter(same),
        ) {
            (Some(ip), _) => ip,
            (None, Some(ip)) if bound.is_unspecified() => ip,
            _ => bound,
        };
        SocketAddr::new(ip, r.port)
    }
}

/// The LIFETIME a request asks for.
pub(super) fn lifetime(request: &StunMessage) -> Option<Duration> {
    request
        .get::<LifeTime>()
        .and_then(|a| a.as_life_time().ok())
        .map(|l| Duration::from_secs(u64::from(l.as_u32())))
}

pub(super) fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

//! Relay sessions, sans-IO: a session has two legs, one per party, each with a port pair of
//! ours (RTP, and RTCP one above). What a party sends to its leg's port goes out of the other
//! leg's port to the other party. A leg latches on the first packet it receives: that source
//! is the party from then on, and packets from any other address are dropped (no RTP bleed).
//! Until a party has sent anything, it is sent to where its SDP said. A session with no media
//! for the idle time ends by itself. The driver maps ports to sockets; nothing here does I/O.

mod gateway;
mod ports;
mod sdes;

pub use gateway::Datagram;
pub use ports::{PortCheck, PortPool, parse_range};
pub use sdes::{SrtpKey, srtp_context};

use gateway::Gateway;

use crate::quality::{LegQuality, Receiving};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Names a session.
pub type SessionId = u64;

/// One of the two parties of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Who made the offer.
    Offerer,
    /// Who answered it.
    Answerer,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Offerer => 0,
            Side::Answerer => 1,
        }
    }
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// No session has that port.
    UnknownPort,
    /// Not RTP, RTCP, STUN or DTLS (RFC 7983): too short, or a first byte none of them has.
    Malformed,
    /// From an address other than the one the leg latched on.
    WrongSource,
    /// The other party has neither sent anything nor been described by SDP yet.
    NoDestination,
    /// To or from an address family the port's socket does not carry (an IPv6 party on a
    /// relay bound to IPv4 only).
    WrongFamily,
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Send it from our port `from` to `to`.
    To {
        /// Our port it leaves from.
        from: u16,
        /// Where it goes.
        to: SocketAddr,
    },
    /// Drop it, for this reason (the driver counts them).
    Drop(Dropped),
    /// Taken by a browser leg: what it made is in [`Relay::poll_datagram`].
    Gateway,
}

/// A relay that cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Every port pair is in use.
    #[error("no free ports in the relay's range")]
    PortsExhausted,
    /// No such session.
    #[error("no session {0}")]
    UnknownSession(SessionId),
}

/// Packets and bytes a leg received and forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets received from its party and forwarded.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets received and dropped (wrong source, nowhere to go).
    pub dropped: u64,
}

#[derive(Debug)]
struct Leg {
    /// Our RTP port for this party (RTCP is one above).
    port: u16,
    /// Where its SDP said it receives RTP (RTCP one above unless rtcp-mux).
    described: Option<SocketAddr>,
    /// Where its RTP and RTCP came from, once they came.
    latched: [Option<SocketAddr>; 2],
    counters: Counters,
    /// What its party sends, for quality reports.
    receiving: Receiving,
}

#[derive(Debug)]
struct Session {
    legs: [Leg; 2],
    last_media: Instant,
    /// When one party is a browser.
    gateway: Option<Gateway>,
}

/// Every session, and the ports they hold.
#[derive(Debug)]
pub struct Relay {
    ports: PortPool,
    sessions: HashMap<SessionId, Session>,
    /// Our port (RTP or RTCP) -> the session and side it belongs to.
    by_port: HashMap<u16, (SessionId, Side)>,
    /// Idle checks: (when, session); stale entries are skipped when they come due.
    idle_checks: BinaryHeap<Reverse<(Instant, SessionId)>>,
    idle: Duration,
    next_id: SessionId,
    /// Ports opened (true) or closed (false) since the driver last looked: it binds and drops
    /// sockets to match.
    port_events: std::collections::VecDeque<(u16, bool)>,
    /// Counters of the sessions that ended, per side.
    finished: [Counters; 2],
    /// The quality of sessions that ended, until their call takes it.
    final_quality: HashMap<SessionId, [LegQuality; 2]>,
    /// The browser legs' timers: (when, session), one entry per leg that waits, ordered.
    gateway_wakes: std::collections::BTreeSet<(Instant, SessionId)>,
    /// Scratch for the legs due at one timeout, kept to spare an allocation per run.
    gateways_due: Vec<SessionId>,
    /// What browser legs made, for the driver to send.
    outbox: std::collections::VecDeque<Datagram>,
    /// Sessions whose browser went away, for the call's signalling to hang up.
    browsers_gone: std::collections::VecDeque<SessionId>,
}

impl Leg {
    /// Latches RTP (`slot` 0) or RTCP (1) on `source` if nothing came yet; false, counted as
    /// dropped, for a packet from anywhere else once latched.
    fn latch(&mut self, slot: usize, source: SocketAddr) -> bool {
        match self.latched[slot] {
            None => self.latched[slot] = Some(source),
            Some(latched) if latched != source => {
                self.counters.dropped += 1;
                return false;
            }
            Some(_) => {}
        }
        true
    }
}

impl Counters {
    fn add(&mut self, other: Counters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.dropped += other.dropped;
    }
}

/// The kind of a packet, by its first byte (RFC 7983 section 7).
fn is_forwardable(packet: &[u8]) -> bool {
    match packet.first() {
        // STUN (connectivity checks pass through to the other party untouched).
        Some(0..=3) => packet.len() >= 20,
        // DTLS (DTLS-SRTP key exchange, relayed untouched: the relay never needs the keys).
        Some(20..=63) => packet.len() >= 13,
        // RTP or RTCP, version 2.
        Some(128..=191) => packet.len() >= 8,
        _ => false,
    }
}

/// Whether an RTP-port packet is RTCP multiplexed with RTP (RFC 5761 4: payload types
/// 192-223 are RTCP's).
fn is_rtcp(packet: &[u8]) -> bool {
    packet.first().is_some_and(|&b| b >= 128)
        && packet.get(1).is_some_and(|pt| (192..=223).contains(pt))
}

impl Relay {
    /// A relay handing out pairs from `ports`; a session with no media for `idle` ends.
    pub fn new(ports: PortPool, idle: Duration) -> Self {
        Relay {
            ports,
            sessions: HashMap::new(),
            by_port: HashMap::new(),
            idle_checks: BinaryHeap::new(),
            idle,
            next_id: 1,
            port_events: std::collections::VecDeque::new(),
            finished: [Counters::default(); 2],
            final_quality: HashMap::new(),
            gateway_wakes: std::collections::BTreeSet::new(),
            gateways_due: Vec::new(),
            outbox: std::collections::VecDeque::new(),
            browsers_gone: std::collections::VecDeque::new(),
        }
    }

    /// Has every port pair checked before a session gets it ([`PortPool::set_check`]).
    pub fn set_port_check(&mut self, check: PortCheck) {
        self.ports.set_check(check);
    }

    /// A new session with a port pair for each side: its id and the RTP ports (offerer's,
    /// answerer's) to write into the SDP each side is sent.
    pub fn create(&mut self, now: Instant) -> Result<(SessionId, [u16; 2]), RelayError> {
        let first = self.ports.take().ok_or(RelayError::PortsExhausted)?;
        let Some(second) = self.ports.take() else {
            self.ports.give_back(first);
            return Err(RelayError::PortsExhausted);
        };
        let id = self.next_id;
        self.next_id += 1;
        let leg = |port| Leg {
            port,
            described: None,
            latched: [None, None],
            counters: Counters::default(),
            receiving: Receiving::default(),
        };
        for (port, side) in [(first, Side::Offerer), (second, Side::Answerer)] {
            for p in [port, port + 1] {
                self.by_port.insert(p, (id, side));
                self.port_events.push_back((p, true));
            }
        }
        self.sessions.insert(
            id,
            Session {
                legs: [leg(first), leg(second)],
                last_media: now,
                gateway: None,
            },
        );
        self.idle_checks.push(Reverse((now + self.idle, id)));
        Ok((id, [first, second]))
    }

    /// Where `side` said (in its SDP) it receives RTP: used until it sends from elsewhere.
    pub fn describe(
        &mut self,
        id: SessionId,
        side: Side,
        rtp: SocketAddr,
    ) -> Result<(), RelayError> {
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or(RelayError::UnknownSession(id))?;
        s.legs[side.index()].described = Some(rtp);
        Ok(())
    }

    /// A session's RTP ports (offerer's leg, answerer's leg).
    pub fn ports_of(&self, id: SessionId) -> Result<[u16; 2], RelayError> {
        let s = self
            .sessions
            .get(&id)
            .ok_or(RelayError::UnknownSession(id))?;
        Ok([s.legs[0].port, s.legs[1].port])
    }

    /// Ends a session and frees its ports; its counters, per side, as it ended.
    pub fn delete(&mut self, id: SessionId) -> Result<[Counters; 2], RelayError> {
        let s = self
            .sessions
            .remove(&id)
            .ok_or(RelayError::UnknownSession(id))?;
        for leg in &s.legs {
            for p in [leg.port, leg.port + 1] {
                self.by_port.remove(&p);
                self.port_events.push_back((p, false));
            }
            self.ports.give_back(leg.port);
        }
        if let Some(at) = s.gateway.as_ref().and_then(|g| g.wake) {
            self.gateway_wakes.remove(&(at, id));
        }
        self.finished[0].add(s.legs[0].counters);
        self.finished[1].add(s.legs[1].counters);
        // As of its last media: a party's silence is measured against the other's.
        let end = s.last_media;
        self.final_quality.insert(
            id,
            [
                s.legs[0].receiving.quality(end),
                s.legs[1].receiving.quality(end),
            ],
        );
        Ok([s.legs[0].counters, s.legs[1].counters])
    }

    /// A packet from `source` arrived on our port `port` at `now`: where it goes.
    pub fn handle(
        &mut self,
        now: Instant,
        port: u16,
        source: SocketAddr,
        packet: &[u8],
    ) -> Forward {
        let Some(&(id, side)) = self.by_port.get(&port) else {
            return Forward::Drop(Dropped::UnknownPort);
        };
        if !is_forwardable(packet) {
            return Forward::Drop(Dropped::Malformed);
        }
        let Some(s) = self.sessions.get_mut(&id) else {
            return Forward::Drop(Dropped::UnknownPort);
        };
        if s.gateway.is_some() {
            return self.gateway_packet(now, (id, side, port), source, packet);
        }
        // Odd ports carry RTCP: it goes to the other side's RTCP.
        let offset: u16 = port % 2;
        let rtcp = usize::from(offset);
        let (from_leg, to_leg) = match side {
            Side::Offerer => (0, 1),
            Side::Answerer => (1, 0),
        };
        if !s.legs[from_leg].latch(rtcp, source) {
            return Forward::Drop(Dropped::WrongSource);
        }
        let other = &s.legs[to_leg];
        let to = other.latched[rtcp].or_else(|| {
            other.described.map(|mut a| {
                a.set_port(a.port().saturating_add(offset));
                a
            })
        });
        let from = other.port + offset;
        let leg = &mut s.legs[from_leg];
        let Some(to) = to else {
            leg.counters.dropped += 1;
            return Forward::Drop(Dropped::NoDestination);
        };
        leg.counters.packets += 1;
        leg.counters.bytes += packet.len() as u64;
        if rtcp == 1 || is_rtcp(packet) {
            leg.receiving.rtcp(packet);
        } else if packet.first().is_some_and(|&b| b >= 128) && packet.len() >= 12 {
            leg.receiving.rtp(now, packet);
        }
        s.last_media = now;
        Forward::To { from, to }
    }

    /// The quality of a session's legs at `now` (what each side sent: offerer, answerer).
    pub fn quality(&self, id: SessionId, now: Instant) -> Option<[LegQuality; 2]> {
        self.sessions.get(&id).map(|s| {
            [
                s.legs[0].receiving.quality(now),
                s.legs[1].receiving.quality(now),
            ]
        })
    }

    /// The quality of an ended session as of its last media, once.
    pub fn take_final_quality(&mut self, id: SessionId) -> Option<[LegQuality; 2]> {
        self.final_quality.remove(&id)
    }

    /// The next port to bind (true) or to close (false).
    pub fn poll_port_event(&mut self) -> Option<(u16, bool)> {
        self.port_events.pop_front()
    }

    /// A session's counters per side.
    pub fn counters(&self, id: SessionId) -> Option<[Counters; 2]> {
        self.sessions
            .get(&id)
            .map(|s| [s.legs[0].counters, s.legs[1].counters])
    }

    /// Everything relayed since start, ended sessions included, per side (offerer,
    /// answerer).
    pub fn totals(&self) -> [Counters; 2] {
        let mut totals = self.finished;
        for s in self.sessions.values() {
            totals[0].add(s.legs[0].counters);
            totals[1].add(s.legs[1].counters);
        }
        totals
    }

    /// Sessions alive.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Port pairs still free.
    pub fn free_pairs(&self) -> usize {
        self.ports.free()
    }

    /// When [`Relay::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.idle_checks.peek().map(|Reverse((at, _))| *at)
    }

    /// Ends the sessions idle at `now`; their ids.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<SessionId> {
        let mut ended = Vec::new();
        while let Some(&Reverse((at, id))) = self.idle_checks.peek() {
            if at > now {
                break;
            }
            self.idle_checks.pop();
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            let due = s.last_media + self.idle;
            if due > now {
                // Media came since this check was set: look again when it could be idle.
                self.idle_checks.push(Reverse((due, id)));
            } else if self.delete(id).is_ok() {
                ended.push(id);
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests;

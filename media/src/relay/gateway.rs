//! A session one of whose parties is a browser: that side's port speaks WebRTC through a
//! [`BrowserLeg`] (ICE-lite, DTLS-SRTP, rtcp-mux), the other side's port plain RTP. Audio
//! crosses without transcoding: the browser's RTP comes out of the leg decrypted and goes to
//! the phone with the browser's sequence numbers and timestamps; the phone's RTP goes into the
//! leg and out to the browser over SRTP. RTCP is each side's own: the leg makes the
//! browser's, the phone's reports end here.

use super::sdes::{PhoneSrtp, SrtpKey};
use super::{Counters, Dropped, Forward, Leg, Relay, RelayError, Session, SessionId, Side};
use crate::quality::Receiving;
use crate::webrtc::{BrowserLeg, LegOutput, PlainRtp};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// A datagram for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Our port it leaves from.
    pub from: u16,
    /// Where it goes.
    pub to: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The browser side of a session.
#[derive(Debug)]
pub(super) struct Gateway {
    /// Which party is the browser.
    pub(super) browser: Side,
    /// Its leg, once its SDP is settled (a browser's offer waits for the phone's answer).
    pub(super) leg: Option<BrowserLeg>,
    /// When the leg next wants [`BrowserLeg::handle_timeout`].
    pub(super) wake: Option<Instant>,
    /// ICE and DTLS done.
    pub(super) connected: bool,
    /// The browser went away (reported once).
    pub(super) closed: bool,
    /// SDES-SRTP with the phone, when it gave a key.
    pub(super) phone_srtp: Option<PhoneSrtp>,
}

/// The phone side as a gateway session sees it.
pub(super) struct PhoneSide<'a> {
    /// Our port facing it.
    pub(super) port: u16,
    /// Where it receives RTP: latched, else described.
    pub(super) to: Option<SocketAddr>,
    pub(super) counters: &'a mut Counters,
    pub(super) receiving: &'a mut Receiving,
}

/// The browser side as a gateway session sees it.
pub(super) struct BrowserSide<'a> {
    /// Our port facing it.
    pub(super) port: u16,
    pub(super) counters: &'a mut Counters,
    pub(super) receiving: &'a mut Receiving,
}

/// What happened to a gateway's leg while it was driven.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Driven {
    /// The leg reported the browser gone.
    pub(super) closed: bool,
}

impl Gateway {
    pub(super) fn new(browser: Side) -> Self {
        Gateway {
            browser,
            leg: None,
            wake: None,
            connected: false,
            closed: false,
            phone_srtp: None,
        }
    }

    /// A datagram from the browser.
    pub(super) fn browser_sent(
        &mut self,
        now: Instant,
        (source, packet): (SocketAddr, &[u8]),
        browser: BrowserSide<'_>,
        phone: PhoneSide<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<Driven, Dropped> {
        let Some(leg) = self.leg.as_mut() else {
            return Err(Dropped::NoDestination);
        };
        if leg.handle_datagram(now, source, packet).is_err() {
            browser.counters.dropped += 1;
            return Err(Dropped::Malformed);
        }
        browser.counters.bytes += packet.len() as u64;
        Ok(self.drive(now, browser, phone, out))
    }

    /// A datagram from the phone on its RTP port (RTCP ends here).
    pub(super) fn phone_sent(
        &mut self,
        now: Instant,
        packet: &[u8],
        browser: BrowserSide<'_>,
        phone: PhoneSide<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Result<Driven, Dropped> {
        let clear;
        let packet = match self.phone_srtp.as_mut() {
            Some(srtp) => {
                let Some(p) = srtp.decrypt(packet) else {
                    phone.counters.dropped += 1;
                    return Err(Dropped::Malformed);
                };
                clear = p;
                &clear[..]
            }
            None => packet,
        };
        let Some(rtp) = parse_rtp(packet) else {
            return Err(Dropped::Malformed);
        };
        phone.receiving.rtp(now, packet);
        let connected = self.connected;
        let Some(leg) = self.leg.as_mut().filter(|l| l.has_media() && connected) else {
            phone.counters.dropped += 1;
            return Err(Dropped::NoDestination);
        };
        if leg.write_rtp(now, rtp).is_err() {
            phone.counters.dropped += 1;
            return Err(Dropped::NoDestination);
        }
        phone.counters.packets += 1;
        phone.counters.bytes += packet.len() as u64;
        Ok(self.drive(now, browser, phone, out))
    }

    /// The leg's timer came due.
    pub(super) fn timeout(
        &mut self,
        now: Instant,
        browser: BrowserSide<'_>,
        phone: PhoneSide<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Driven {
        self.wake = None;
        let ran = self.leg.as_mut().map(|leg| leg.handle_timeout(now).is_ok());
        match ran {
            Some(true) => self.drive(now, browser, phone, out),
            _ => Driven::default(),
        }
    }

    /// Takes everything the leg has to say until it waits.
    fn drive(
        &mut self,
        now: Instant,
        browser: BrowserSide<'_>,
        phone: PhoneSide<'_>,
        out: &mut VecDeque<Datagram>,
    ) -> Driven {
        let mut driven = Driven::default();
        let Some(leg) = self.leg.as_mut() else {
            return driven;
        };
        // Bounded: a leg yields a few datagrams per input; a runaway one is cut short, and
        // run again at the next timer tick for the rest.
        self.wake = Some(now);
        for _ in 0..256 {
            match leg.poll() {
                Ok(LegOutput::Wait(at)) => {
                    self.wake = Some(at);
                    break;
                }
                Ok(LegOutput::Transmit { to, data }) => out.push_back(Datagram {
                    from: browser.port,
                    to,
                    data,
                }),
                Ok(LegOutput::Rtp(rtp)) => {
                    let mut data = write_rtp(&rtp);
                    browser.counters.packets += 1;
                    browser.receiving.rtp(now, &data);
                    if let Some(srtp) = self.phone_srtp.as_mut() {
                        match srtp.encrypt(&data) {
                            Some(encrypted) => data = encrypted,
                            None => {
                                browser.counters.dropped += 1;
                                continue;
                            }
                        }
                    }
                    match phone.to {
                        Some(to) => out.push_back(Datagram {
                            from: phone.port,
                            to,
                            data,
                        }),
                        None => browser.counters.dropped += 1,
                    }
                }
                Ok(LegOutput::Connected) => self.connected = true,
                Ok(LegOutput::Closed) | Err(_) => {
                    if !self.closed {
                        self.closed = true;
                        driven.closed = true;
                    }
                    self.wake = None;
                    break;
                }
            }
        }
        driven
    }
}

/// The relay's gateway sessions.
impl Relay {
    /// Makes `browser`'s side of session `id` a browser's: its leg is set with
    /// [`Relay::set_browser_leg`] once its SDP is settled.
    pub fn make_gateway(&mut self, id: SessionId, browser: Side) -> Result<(), RelayError> {
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or(RelayError::UnknownSession(id))?;
        if s.gateway.is_none() {
            s.gateway = Some(Gateway::new(browser));
        }
        Ok(())
    }

    /// The browser leg of session `id`, once negotiated at `now`; it is driven from then on.
    pub fn set_browser_leg(
        &mut self,
        now: Instant,
        id: SessionId,
        leg: BrowserLeg,
    ) -> Result<(), RelayError> {
        let g = self
            .sessions
            .get_mut(&id)
            .and_then(|s| s.gateway.as_mut())
            .ok_or(RelayError::UnknownSession(id))?;
        g.leg = Some(leg);
        let woke = g.wake.replace(now);
        refile(&mut self.gateway_wakes, id, (woke, g.wake));
        Ok(())
    }

    /// SDES-SRTP on the phone's side of gateway session `id`: its key `theirs`, ours
    /// `ours` (false: a key the SRTP library refuses).
    pub fn set_phone_srtp(
        &mut self,
        id: SessionId,
        ours: &SrtpKey,
        theirs: &SrtpKey,
    ) -> Result<bool, RelayError> {
        let g = self
            .sessions
            .get_mut(&id)
            .and_then(|s| s.gateway.as_mut())
            .ok_or(RelayError::UnknownSession(id))?;
        g.phone_srtp = PhoneSrtp::new(ours, theirs);
        Ok(g.phone_srtp.is_some())
    }

    /// The browser leg of session `id`, if it has one (for a re-offer).
    pub fn browser_leg(&mut self, id: SessionId) -> Option<&mut BrowserLeg> {
        self.sessions.get_mut(&id)?.gateway.as_mut()?.leg.as_mut()
    }

    /// Which side of session `id` is a browser, if one is.
    pub fn browser_side(&self, id: SessionId) -> Option<Side> {
        self.sessions.get(&id)?.gateway.as_ref().map(|g| g.browser)
    }

    /// The next datagram a browser leg made, to send.
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.outbox.pop_front()
    }

    /// A session whose browser went away (ICE consent lost): its call should end.
    pub fn poll_browser_gone(&mut self) -> Option<SessionId> {
        self.browsers_gone.pop_front()
    }

    /// When the earliest browser leg's timer is due.
    pub fn poll_gateway_timeout(&self) -> Option<Instant> {
        self.gateway_wakes.first().map(|&(at, _)| at)
    }

    /// Runs the browser legs' timers due at `now`.
    pub fn handle_gateway_timeout(&mut self, now: Instant) {
        // Taken first: a leg run here files its next wake, which may be due already.
        let mut due = std::mem::take(&mut self.gateways_due);
        while let Some(&(at, id)) = self.gateway_wakes.first() {
            if at > now {
                break;
            }
            self.gateway_wakes.pop_first();
            due.push(id);
        }
        for id in due.drain(..) {
            let Some(Session { legs, gateway, .. }) = self.sessions.get_mut(&id) else {
                continue;
            };
            let Some(g) = gateway.as_mut() else {
                continue;
            };
            // Its entry was taken above: whatever wake it files now is new.
            let (browser, phone) = sides(legs, g.browser);
            let driven = g.timeout(now, browser, phone, &mut self.outbox);
            refile(&mut self.gateway_wakes, id, (None, g.wake));
            if driven.closed {
                self.browsers_gone.push_back(id);
            }
        }
        self.gateways_due = due;
    }

    /// A packet on a gateway session's port: the browser's go through its leg; the phone's
    /// RTP goes into it.
    pub(super) fn gateway_packet(
        &mut self,
        now: Instant,
        (id, side, port): (SessionId, Side, u16),
        source: SocketAddr,
        packet: &[u8],
    ) -> Forward {
        // The session's fields borrowed apart: the leg (str0m's state, kilobytes) stays put.
        let Some(Session {
            legs,
            gateway: Some(g),
            last_media,
        }) = self.sessions.get_mut(&id)
        else {
            return Forward::Drop(Dropped::UnknownPort);
        };
        let rtcp = port % 2 == 1;
        let from_browser = side == g.browser;
        // The phone latches as in any session; its RTCP ends here.
        if !from_browser && !legs[side.index()].latch(usize::from(rtcp), source) {
            return Forward::Drop(Dropped::WrongSource);
        }
        let woke = g.wake;
        let result = if rtcp && !from_browser {
            legs[side.index()].receiving.rtcp(packet);
            Ok(Driven::default())
        } else if rtcp {
            // A browser muxes RTCP (RFC 8843 needs it): nothing comes on the port above.
            Err(Dropped::Malformed)
        } else {
            let (browser, phone) = sides(legs, g.browser);
            if from_browser {
                g.browser_sent(now, (source, packet), browser, phone, &mut self.outbox)
            } else {
                g.phone_sent(now, packet, browser, phone, &mut self.outbox)
            }
        };
        refile(&mut self.gateway_wakes, id, (woke, g.wake));
        match result {
            Ok(driven) => {
                *last_media = now;
                if driven.closed {
                    self.browsers_gone.push_back(id);
                }
                Forward::Gateway
            }
            Err(why) => Forward::Drop(why),
        }
    }
}

/// Moves session `id`'s entry in the legs' timers from `before` to `after`.
fn refile(
    wakes: &mut std::collections::BTreeSet<(Instant, SessionId)>,
    id: SessionId,
    (before, after): (Option<Instant>, Option<Instant>),
) {
    if before == after {
        return;
    }
    if let Some(at) = before {
        wakes.remove(&(at, id));
    }
    if let Some(at) = after {
        wakes.insert((at, id));
    }
}

/// A gateway session's two sides, browser first.
fn sides(legs: &mut [Leg; 2], browser: Side) -> (BrowserSide<'_>, PhoneSide<'_>) {
    let [first, second] = legs;
    let (b, p) = match browser {
        Side::Offerer => (first, second),
        Side::Answerer => (second, first),
    };
    (
        BrowserSide {
            port: b.port,
            counters: &mut b.counters,
            receiving: &mut b.receiving,
        },
        PhoneSide {
            port: p.port,
            to: p.latched[0].or(p.described),
            counters: &mut p.counters,
            receiving: &mut p.receiving,
        },
    )
}

/// An RTP packet's fields (RFC 3550 5.1), CSRCs, extension and padding stripped.
pub(super) fn parse_rtp(packet: &[u8]) -> Option<PlainRtp> {
    let (&first, &second) = (packet.first()?, packet.get(1)?);
    if first >> 6 != 2 || (192..=223).contains(&second) {
        return None;
    }
    let csrcs = usize::from(first & 0x0F) * 4;
    let mut start = 12 + csrcs;
    if first & 0x10 != 0 {
        let ext = packet.get(start + 2..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
    }
    let mut end = packet.len();
    if first & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    let payload = packet.get(start..end)?.to_vec();
    Some(PlainRtp {
        pt: second & 0x7F,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        marker: second & 0x80 != 0,
        payload,
    })
}

/// The packet for `rtp`: a 12-byte header and the payload.
pub(super) fn write_rtp(rtp: &PlainRtp) -> Vec<u8> {
    let mut data = Vec::with_capacity(12 + rtp.payload.len());
    data.push(0x80);
    data.push(rtp.pt & 0x7F | if rtp.marker { 0x80 } else { 0 });
    data.extend_from_slice(&rtp.seq.to_be_bytes());
    data.extend_from_slice(&rtp.timestamp.to_be_bytes());
    data.extend_from_slice(&rtp.ssrc.to_be_bytes());
    data.extend_from_slice(&rtp.payload);
    data
}

//! Call quality as the relay sees it, sans-IO: per leg, what its party sent (RTP sequence
//! numbers for loss, RFC 3550 A.1; timestamps against arrival times for interarrival jitter,
//! A.8) and what its RTCP says about what it receives (receiver report blocks, RFC 3550 6.4;
//! the VoIP metrics block of RFC 3611 4.7 where present), folded into an R-factor and MOS
//! estimate (ITU-T G.107's E-model, simplified as G.113 Appendix I does for G.711 with PLC).
//! `rtcp.rs` reads RTCP; `emodel.rs` scores.

mod emodel;
mod rtcp;

pub use emodel::{mos, r_factor};
pub use rtcp::Reported;

use std::time::{Duration, Instant};

/// A jump in sequence numbers beyond this is a restart (a new source), not loss (RFC 3550
/// A.1's MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// One party's RTP as the relay receives it, and what its RTCP reported.
#[derive(Debug, Clone, Default)]
pub struct Receiving {
    ssrc: Option<u32>,
    /// The first sequence number of the current source, extended.
    base: u64,
    /// The highest sequence number seen, extended (cycles in the high bits).
    highest: u64,
    /// Packets received of the current source.
    received: u64,
    /// Expected and received packets of sources before this one.
    earlier: (u64, u64),
    /// The payload type jitter is measured on (the first seen: DTMF events are left out).
    payload_type: Option<u8>,
    clock_rate: u32,
    /// Arrival minus RTP timestamp of the last packet, in timestamp units.
    transit: Option<i64>,
    /// RFC 3550's running jitter estimate, in timestamp units.
    jitter: f64,
    first: Option<Instant>,
    last: Option<Instant>,
    reported: Option<Reported>,
}

/// A leg's quality, for logs, status and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegQuality {
    /// RTP packets received from the party.
    pub packets: u64,
    /// Packets missing from its sequence.
    pub lost: u64,
    /// `lost` over the packets expected, 0 to 1.
    pub loss: f64,
    /// Interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// E-model R-factor of what it sent, as it arrived here.
    pub r_factor: f64,
    /// Its MOS estimate (1 to 4.5).
    pub mos: f64,
    /// What the party's RTCP said about what it receives, if it sent any.
    pub reported: Option<Reported>,
    /// How long since its last RTP packet; None when it sent none.
    pub silent_for: Option<Duration>,
}

impl Receiving {
    /// An RTP packet at `now` (the caller checked it is RTP, version 2, at least 12 bytes).
    pub fn rtp(&mut self, now: Instant, packet: &[u8]) {
        let Some(header) = packet.get(..12) else {
            return;
        };
        let payload_type = header[1] & 0x7f;
        let seq = u16::from_be_bytes([header[2], header[3]]);
        let timestamp = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let ssrc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if self.ssrc != Some(ssrc) {
            self.restart(ssrc, seq, payload_type);
        } else {
            let max = (self.highest & 0xffff) as u16;
            let ahead = seq.wrapping_sub(max);
            if ahead == 0 {
                // A duplicate: neither new nor lost.
                return;
            } else if ahead < MAX_DROPOUT {
                if seq < max {
                    self.highest += 0x1_0000;
                }
                self.highest = (self.highest & !0xffff) | u64::from(seq);
            } else if ahead <= u16::MAX - 100 {
                // Far ahead or far behind: the source restarted its numbering.
                self.restart(ssrc, seq, payload_type);
            }
            // Otherwise a little late (reordered): counted, the highest kept.
        }
        self.received += 1;
        if self.first.is_none() {
            self.first = Some(now);
        }
        self.last = Some(now);
        if Some(payload_type) == self.payload_type {
            self.jitter(now, timestamp);
        }
    }

    /// A new source (or numbering): what came before is kept aside.
    fn restart(&mut self, ssrc: u32, seq: u16, payload_type: u8) {
        if self.ssrc.is_some() {
            self.earlier.0 += self.expected_now();
            self.earlier.1 += self.received;
        }
        self.ssrc = Some(ssrc);
        self.base = u64::from(seq);
        self.highest = u64::from(seq);
        self.received = 0;
        self.transit = None;
        if self.payload_type.is_none() {
            self.payload_type = Some(payload_type);
            self.clock_rate = clock_rate(payload_type);
        }
    }

    /// RFC 3550 A.8: J += (|D| - J) / 16, with arrival measured in the stream's clock.
    fn jitter(&mut self, now: Instant, timestamp: u32) {
        let Some(first) = self.first else {
            return;
        };
        let arrival = now.duration_since(first).as_secs_f64() * f64::from(self.clock_rate);
        // Both clocks wrap: transit in i64 of the low 32 bits is enough between two packets.
        let transit = (arrival as i64 as u32).wrapping_sub(timestamp) as i32 as i64;
        if let Some(previous) = self.transit {
            let d = (transit - previous).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// An RTCP compound packet from the party: what it reports about what it receives (its
    /// first report block, and its RFC 3611 VoIP metrics when present).
    pub fn rtcp(&mut self, packet: &[u8]) {
        if let Some(reported) = rtcp::read(packet, self.reported) {
            self.reported = Some(reported);
        }
    }

    fn expected_now(&self) -> u64 {
        if self.ssrc.is_none() {
            0
        } else {
            self.highest - self.base + 1
        }
    }

    /// The quality so far, at `now`.
    pub fn quality(&self, now: Instant) -> LegQuality {
        let expected = self.earlier.0 + self.expected_now();
        let packets = self.earlier.1 + self.received;
        let lost = expected.saturating_sub(packets);
        let loss = if expected == 0 {
            0.0
        } else {
            lost as f64 / expected as f64
        };
        let jitter_ms = if self.clock_rate == 0 {
            0.0
        } else {
            self.jitter * 1000.0 / f64::from(self.clock_rate)
        };
        let r = r_factor(loss, jitter_ms);
        LegQuality {
            packets,
            lost,
            loss,
            jitter_ms,
            r_factor: r,
            mos: mos(r),
            reported: self.reported,
            silent_for: self.last.map(|at| now.saturating_duration_since(at)),
        }
    }
}

/// The RTP clock of a payload type: the static ones of RFC 3551, 48 kHz (Opus) for dynamic
/// ones, which SDP would name (jitter is then off by the ratio for an 8 kHz dynamic codec).
fn clock_rate(payload_type: u8) -> u32 {
    match payload_type {
        6 => 16_000,
        10 | 11 => 44_100,
        16 => 11_025,
        17 => 22_050,
        14 | 25 | 26 | 28 | 31..=34 => 90_000,
        0..=18 => 8_000,
        _ => 48_000,
    }
}

#[cfg(test)]
mod tests;

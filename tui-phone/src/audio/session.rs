//! One call's media, sans-IO: every 20 ms it takes a frame from the device, encodes it and
//! sends it (or a DTMF event, RFC 4733, while one plays), and plays the next frame from the
//! jitter buffer; datagrams from the other side go into the buffer (SRTP removed when keyed);
//! an RTCP report goes out every 5 seconds.

use super::codec::{CodecError, Decoder, Encoder, FRAME};
use super::device::AudioDevice;
use super::jitter::{JitterBuffer, Playout};
use super::rtp::{self, RtpHeader};
use crate::ua::offer::Negotiated;
use rtc_srtp::context::Context;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A DTMF digit lasts 100 ms (5 packets), then 3 end packets, then 60 ms of audio.
const DTMF_PACKETS: u16 = 5;

/// Why media could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The codec would not open.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The SRTP keys were refused.
    #[error("SRTP: {0}")]
    Srtp(String),
}

/// What the session counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets sent.
    pub sent: u64,
    /// RTP packets of our codec received.
    pub received: u64,
    /// Datagrams that failed SRTP authentication or were not RTP.
    pub rejected: u64,
}

/// A DTMF digit being sent.
#[derive(Debug)]
struct DtmfSending {
    event: u8,
    timestamp: u32,
    packets: u16,
}

/// One call's media.
pub struct MediaSession {
    negotiated: Negotiated,
    encoder: Encoder,
    decoder: Decoder,
    jitter: JitterBuffer,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    srtp_out: Option<Context>,
    srtp_in: Option<Context>,
    next_tick: Instant,
    next_report: Instant,
    cname: String,
    octets: u32,
    remote_ssrc: Option<u32>,
    dtmf_queue: VecDeque<u8>,
    dtmf: Option<DtmfSending>,
    /// Ticks of audio still to send before the next digit.
    dtmf_gap: u8,
    /// Timestamps of DTMF events already reported.
    dtmf_seen: Option<u32>,
    digits: VecDeque<char>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    stats: MediaStats,
    scratch: Vec<u8>,
    /// Silence goes out instead of the device's sound (while we hold the other side).
    muted: bool,
}

fn srtp_context(key: &[u8; 30]) -> Result<Context, MediaError> {
    openline_media::relay::srtp_context(key).map_err(MediaError::Srtp)
}

impl MediaSession {
    /// Starts media as negotiated; `ssrc` is random, `cname` names us in RTCP.
    pub fn new(
        now: Instant,
        negotiated: Negotiated,
        ssrc: u32,
        cname: &str,
    ) -> Result<Self, MediaError> {
        let (srtp_out, srtp_in) = match &negotiated.srtp {
            Some((ours, theirs)) => (Some(srtp_context(ours)?), Some(srtp_context(theirs)?)),
            None => (None, None),
        };
        Ok(MediaSession {
            encoder: Encoder::new(negotiated.codec)?,
            decoder: Decoder::new(negotiated.codec)?,
            negotiated,
            jitter: JitterBuffer::new(3, 12),
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            srtp_out,
            srtp_in,
            next_tick: now,
            next_report: now + REPORT_EVERY,
            cname: cname.to_string(),
            octets: 0,
            remote_ssrc: None,
            dtmf_queue: VecDeque::new(),
            dtmf: None,
            dtmf_gap: 0,
            dtmf_seen: None,
            digits: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: MediaStats::default(),
            scratch: Vec::with_capacity(1_500),
            muted: false,
        })
    }

    /// Sends silence instead of the device's sound (hold keeps the line, not the room).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// What was settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The counters.
    pub fn stats(&self) -> MediaStats {
        self.stats
    }

    /// The jitter buffer's counters.
    pub fn jitter_stats(&self) -> super::jitter::JitterStats {
        self.jitter.stats()
    }

    /// A re-INVITE settled new terms: same codec and keys keep their state.
    pub fn update(&mut self, now: Instant, negotiated: Negotiated) -> Result<(), MediaError> {
        if negotiated.codec != self.negotiated.codec || negotiated.srtp != self.negotiated.srtp {
            let (ssrc, muted) = (self.ssrc, self.muted);
            let cname = self.cname.clone();
            *self = MediaSession::new(now, negotiated, ssrc, &cname)?;
            self.muted = muted;
        } else {
            self.negotiated = negotiated;
        }
        Ok(())
    }

    /// Queues DTMF digits (0-9, *, #, A-D) to send as RFC 4733 events; others are ignored.
    /// Returns how many were queued (0 when the other side took no telephone-event).
    pub fn send_dtmf(&mut self, digits: &str) -> usize {
        if self.negotiated.dtmf_pt.is_none() {
            return 0;
        }
        let before = self.dtmf_queue.len();
        self.dtmf_queue
            .extend(digits.chars().filter_map(dtmf_event));
        self.dtmf_queue.len() - before
    }

    /// A digit the other side sent (RFC 4733), once per event.
    pub fn poll_digit(&mut self) -> Option<char> {
        self.digits.pop_front()
    }

    /// When to call [`MediaSession::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick.min(self.next_report)
    }

    /// A datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The time passed `now`: one frame out and one played per 20 ms due.
    pub fn handle_timeout(&mut self, now: Instant, device: &mut dyn AudioDevice) {
        if now.saturating_duration_since(self.next_tick) > Duration::from_millis(200) {
            // We were not woken for a while (a stopped process): start afresh, no burst.
            self.next_tick = now;
        }
        while self.next_tick <= now {
            self.tick(device);
            self.next_tick += TICK;
        }
        if self.next_report <= now {
            self.report(now);
            self.next_report = now + REPORT_EVERY;
        }
    }

    fn tick(&mut self, device: &mut dyn AudioDevice) {
        let mut frame = [0i16; FRAME];
        device.capture(&mut frame);
        if self.muted {
            frame.fill(0);
        }
        if self.negotiated.direction.sends()
            && !self.send_dtmf_packet()
            && self.encoder.encode(&frame, &mut self.scratch).is_ok()
        {
            let payload = std::mem::take(&mut self.scratch);
            self.send_rtp(self.negotiated.pt, false, self.timestamp, &payload);
            self.scratch = payload;
        }
        self.timestamp = self.timestamp.wrapping_add(self.encoder.timestamp_step());
        let mut out = [0i16; FRAME];
        match self.jitter.pop() {
            Playout::Frame(payload) => self.decoder.decode(Some(&payload), &mut out),
            Playout::Lost => self.decoder.decode(None, &mut out),
            Playout::Waiting => {}
        }
        if !self.negotiated.direction.receives() {
            // Held: silence keeps the device's timeline (a recording stays in step).
            out.fill(0);
        }
        device.play(&out);
    }

    /// Sends the next DTMF packet instead of audio, when a digit is under way or due.
    fn send_dtmf_packet(&mut self) -> bool {
        let Some(pt) = self.negotiated.dtmf_pt else {
            return false;
        };
        if self.dtmf.is_none() {
            if self.dtmf_gap > 0 {
                self.dtmf_gap -= 1;
                return false;
            }
            let Some(event) = self.dtmf_queue.pop_front() else {
                return false;
            };
            self.dtmf = Some(DtmfSending {
                event,
                timestamp: self.timestamp,
                packets: 0,
            });
        }
        let Some(d) = &mut self.dtmf else {
            return false;
        };
        d.packets += 1;
        let end = d.packets > DTMF_PACKETS;
        // Duration in the 8 kHz telephone-event clock: 160 per 20 ms packet.
        let duration = 160 * d.packets.min(DTMF_PACKETS);
        let payload = [
            d.event,
            (u8::from(end) << 7) | 10, // E bit, volume -10 dBm0
            (duration >> 8) as u8,
            duration as u8,
        ];
        let (first, timestamp) = (d.packets == 1, d.timestamp);
        if d.packets >= DTMF_PACKETS + 3 {
            // The end packet went three times (RFC 4733 2.5.1.4).
            self.dtmf = None;
            self.dtmf_gap = 3;
        }
        self.send_rtp(pt, first, timestamp, &payload);
        true
    }

    fn send_rtp(&mut self, pt: u8, marker: bool, timestamp: u32, payload: &[u8]) {
        let header = RtpHeader {
            marker,
            pt,
            seq: self.seq,
            timestamp,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut packet = Vec::with_capacity(payload.len() + 12 + 10);
        rtp::write_rtp(&header, payload, &mut packet);
        let packet = match &mut self.srtp_out {
            Some(ctx) => match ctx.encrypt_rtp(&packet) {
                Ok(p) => p.to_vec(),
                Err(_) => return,
            },
            None => packet,
        };
        self.stats.sent += 1;
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        self.transmits
            .push_back((self.negotiated.remote_rtp, packet));
    }

    fn report(&mut self, now: Instant) {
        let _ = now;
        let highest = self.jitter.highest().unwrap_or(0) as u32;
        let stats = self.jitter.stats();
        let report = rtp::Report {
            ssrc: self.ssrc,
            ntp: ntp_now(),
            rtp_timestamp: self.timestamp,
            packets: self.stats.sent as u32,
            octets: self.octets,
            source: self.remote_ssrc.map(|ssrc| rtp::ReceptionReport {
                ssrc,
                fraction_lost: 0,
                lost: stats.lost as u32,
                highest,
                jitter: 0,
            }),
        };
        let mut packet = Vec::with_capacity(128);
        rtp::write_report(&report, &self.cname, &mut packet);
        let packet = match &mut self.srtp_out {
            Some(ctx) => match ctx.encrypt_rtcp(&packet) {
                Ok(p) => p.to_vec(),
                Err(_) => return,
            },
            None => packet,
        };
        let to = self
            .negotiated
            .remote_rtcp
            .unwrap_or(self.negotiated.remote_rtp);
        self.transmits.push_back((to, packet));
    }

    /// A datagram arrived on our media port(s).
    pub fn handle_datagram(&mut self, data: &[u8]) {
        if rtp::is_rtcp(data) {
            return; // what they report is not acted on
        }
        let decrypted;
        let data = match &mut self.srtp_in {
            Some(ctx) => match ctx.decrypt_rtp(data) {
                Ok(p) => {
                    decrypted = p;
                    &decrypted[..]
                }
                Err(_) => {
                    self.stats.rejected += 1;
                    return;
                }
            },
            None => data,
        };
        let Some((header, payload)) = rtp::read_rtp(data) else {
            self.stats.rejected += 1;
            return;
        };
        self.remote_ssrc = Some(header.ssrc);
        if header.pt == self.negotiated.pt {
            self.stats.received += 1;
            self.jitter.push(header.seq, payload);
        } else if Some(header.pt) == self.negotiated.dtmf_pt && payload.len() >= 4 {
            let end = payload[1] & 0x80 != 0;
            if end && self.dtmf_seen != Some(header.timestamp) {
                self.dtmf_seen = Some(header.timestamp);
                if let Some(c) = dtmf_char(payload[0]) {
                    self.digits.push_back(c);
                }
            }
        }
    }
}

/// RFC 4733 event codes: 0-9, * (10), # (11), A-D (12-15).
fn dtmf_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

fn dtmf_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// The wall clock as NTP (RTCP sender reports carry it).
#[allow(clippy::disallowed_methods)] // RTCP's NTP field is wall-clock time by definition
fn ntp_now() -> u64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_unix.as_secs() + 2_208_988_800;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests;

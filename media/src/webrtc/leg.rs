//! One browser's leg: the answer to its offer, then its datagrams in and out. The RTP it
//! sends comes out decrypted and whole (header fields and payload, as the SIP side will send
//! it on); RTP written to it goes to the browser over SRTP. Audio codecs only: Opus, PCMU,
//! PCMA, which SIP phones share with browsers, so nothing is transcoded.

use super::codecs::{Codec, Kind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::FormatParams;
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// Why a browser leg could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegError {
    /// The browser's SDP does not read, or offers nothing we can answer.
    #[error("the browser's offer cannot be answered: {0}")]
    Offer(String),
    /// RTP to send before the browser's audio was negotiated.
    #[error("no audio negotiated with the browser yet")]
    NoMedia,
    /// What str0m refused (a datagram it cannot take, a state it cannot leave).
    #[error("WebRTC: {0}")]
    Rtc(String),
}

fn rtc_error(e: impl std::fmt::Display) -> LegError {
    LegError::Rtc(e.to_string())
}

/// An RTP packet in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainRtp {
    /// Payload type.
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What the leg asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegOutput {
    /// Send this datagram from the leg's port.
    Transmit {
        /// To.
        to: SocketAddr,
        /// The bytes (STUN, DTLS or SRTP).
        data: Vec<u8>,
    },
    /// RTP from the browser, decrypted.
    Rtp(PlainRtp),
    /// ICE and DTLS are done: media flows.
    Connected,
    /// The browser went away (ICE consent lost): the call's SIP side should hang up.
    Closed,
    /// Nothing more now; call [`BrowserLeg::handle_timeout`] at this time.
    Wait(Instant),
}

/// A browser's media leg.
pub struct BrowserLeg {
    rtc: Rtc,
    local: SocketAddr,
    mid: Option<Mid>,
    /// Our offer, until the browser answers it.
    pending: Option<SdpPendingOffer>,
}

impl std::fmt::Debug for BrowserLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLeg")
            .field("local", &self.local)
            .field("mid", &self.mid)
            .finish()
    }
}

/// A str0m configured as the gateway's browser side: ICE-lite with the relay port as its one
/// host candidate, RTP mode, and exactly `codecs` (their payload type numbers kept).
fn rtc_for(local: SocketAddr, codecs: &[Codec], now: Instant) -> Result<Rtc, LegError> {
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let mut config = Rtc::builder()
        .set_crypto_provider(crypto)
        .set_ice_lite(true)
        .set_rtp_mode(true)
        // Audio level and mid only: transport-wide congestion control (TWCC, abs-send-time)
        // steers video bitrates, and for a voice call cost a feedback report to parse per
        // handful of packets (webrtc_rate.sh measured it).
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(4, Extension::RtpMid)
        .clear_codecs();
    for c in codecs {
        let codec = match c.kind() {
            Some(Kind::Opus) => str0m::format::Codec::Opus,
            Some(Kind::Pcmu) => str0m::format::Codec::PCMU,
            Some(Kind::Pcma) => str0m::format::Codec::PCMA,
            Some(Kind::TelephoneEvent) => str0m::format::Codec::Tele,
            None => continue,
        };
        let format = c
            .fmtp
            .as_deref()
            .map(FormatParams::parse_line)
            .unwrap_or_default();
        let Some(clock) = Frequency::new(c.clock) else {
            continue;
        };
        config
            .codec_config()
            .add_config(Pt::from(c.pt), None, codec, clock, c.channels, format);
    }
    let mut rtc = config.build(now);
    let candidate = Candidate::host(local, "udp").map_err(rtc_error)?;
    rtc.add_local_candidate(candidate);
    Ok(rtc)
}

impl BrowserLeg {
    /// Answers `offer` from a browser, media on `local` (the relay port it is reached at),
    /// with only `codecs` (what the SIP side chose): DTLS as str0m's answerer, audio only.
    pub fn answer(
        offer: &str,
        local: SocketAddr,
        codecs: &[Codec],
        now: Instant,
    ) -> Result<(Self, String), LegError> {
        let mut rtc = rtc_for(local, codecs, now)?;
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| LegError::Offer(e.to_string()))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| LegError::Offer(e.to_string()))?;
        let leg = BrowserLeg {
            rtc,
            local,
            mid: None,
            pending: None,
        };
        Ok((leg, answer.to_sdp_string()))
    }

    /// Offers a browser audio with `codecs` (what the SIP side offered that browsers share),
    /// media on `local`; [`BrowserLeg::accept_answer`] takes the browser's answer.
    pub fn offer(
        local: SocketAddr,
        codecs: &[Codec],
        now: Instant,
    ) -> Result<(Self, String), LegError> {
        let mut rtc = rtc_for(local, codecs, now)?;
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| LegError::Rtc("no offer made".into()))?;
        let leg = BrowserLeg {
            rtc,
            local,
            mid: Some(mid),
            pending: Some(pending),
        };
        Ok((leg, offer.to_sdp_string()))
    }

    /// The browser's answer to [`BrowserLeg::offer`].
    pub fn accept_answer(&mut self, answer: &str) -> Result<(), LegError> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| LegError::Offer("an answer to no offer".into()))?;
        let answer =
            SdpAnswer::from_sdp_string(answer).map_err(|e| LegError::Offer(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| LegError::Offer(e.to_string()))
    }

    /// A new offer from the browser in the same call (hold, resume, an ICE restart): the
    /// answer to send back.
    pub fn reanswer(&mut self, offer: &str) -> Result<String, LegError> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| LegError::Offer(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| LegError::Offer(e.to_string()))?;
        Ok(answer.to_sdp_string())
    }

    /// A new offer to the browser in the same call, with the SIP side's new direction
    /// (`sendonly` on hold); an ICE restart when nothing changed (a session refresh), since
    /// str0m makes no offer without a change.
    pub fn reoffer(&mut self, direction: &str) -> Result<String, LegError> {
        let mid = self.mid.ok_or(LegError::NoMedia)?;
        let direction = match direction {
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => Direction::SendRecv,
        };
        let mut change = self.rtc.sdp_api();
        change.set_direction(mid, direction);
        if !change.has_changes() {
            change.ice_restart(true);
        }
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| LegError::Rtc("no offer made".into()))?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    /// Whether audio was negotiated (RTP can be written).
    pub fn has_media(&self) -> bool {
        self.mid.is_some()
    }

    /// A datagram from the browser (`from`) arrived at the leg's port.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), LegError> {
        let contents = data
            .try_into()
            .map_err(|_| LegError::Rtc("a datagram that is not STUN, DTLS or RTP".into()))?;
        self.rtc
            .handle_input(Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: self.local,
                    contents,
                },
            ))
            .map_err(rtc_error)
    }

    /// The time asked for by [`LegOutput::Wait`] has come.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), LegError> {
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(rtc_error)
    }

    /// The next thing to do; [`LegOutput::Wait`] when there is nothing until then.
    pub fn poll(&mut self) -> Result<LegOutput, LegError> {
        loop {
            match self.rtc.poll_output().map_err(rtc_error)? {
                Output::Timeout(at) => return Ok(LegOutput::Wait(at)),
                Output::Transmit(t) => {
                    return Ok(LegOutput::Transmit {
                        to: t.destination,
                        data: t.contents.to_vec(),
                    });
                }
                Output::Event(event) => match event {
                    Event::Connected => return Ok(LegOutput::Connected),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Ok(LegOutput::Closed);
                    }
                    Event::MediaAdded(m) => self.mid = Some(m.mid),
                    Event::RtpPacket(p) => {
                        return Ok(LegOutput::Rtp(PlainRtp {
                            pt: *p.header.payload_type,
                            seq: p.header.sequence_number,
                            timestamp: p.header.timestamp,
                            ssrc: *p.header.ssrc,
                            marker: p.header.marker,
                            payload: p.payload.to_vec(),
                        }));
                    }
                    _ => {}
                },
            }
        }
    }

    /// Sends `rtp` to the browser (over SRTP, on the leg's own SSRC; sequence numbers and
    /// timestamps as given, so the SIP side's stream carries through unchanged).
    pub fn write_rtp(&mut self, now: Instant, rtp: PlainRtp) -> Result<(), LegError> {
        let mid = self.mid.ok_or(LegError::NoMedia)?;
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).ok_or(LegError::NoMedia)?;
        let write = RtpWrite::new(
            Pt::from(rtp.pt),
            u64::from(rtp.seq).into(),
            rtp.timestamp,
            now,
            rtp.payload,
        )
        .marker(rtp.marker);
        tx.write_rtp(write);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! One browser's leg: the answer to its offer, then its datagrams in and out. The RTP it
//! sends comes out decrypted and whole (header fields and payload, as the SIP side will send
//! it on); RTP written to it goes to the browser over SRTP. Audio codecs only: Opus, PCMU,
//! PCMA, which SIP phones share with browsers, so nothing is transcoded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
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
}

impl std::fmt::Debug for BrowserLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLeg")
            .field("local", &self.local)
            .field("mid", &self.mid)
            .finish()
    }
}

impl BrowserLeg {
    /// Answers `offer` from a browser, media on `local` (the relay port it is reached at):
    /// ICE-lite with that one host candidate, DTLS as str0m's answerer, audio only.
    pub fn answer(
        offer: &str,
        local: SocketAddr,
        now: Instant,
    ) -> Result<(Self, String), LegError> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let mut rtc = Rtc::builder()
            .set_crypto_provider(crypto)
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        let candidate = Candidate::host(local, "udp").map_err(rtc_error)?;
        rtc.add_local_candidate(candidate);
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| LegError::Offer(e.to_string()))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| LegError::Offer(e.to_string()))?;
        let leg = BrowserLeg {
            rtc,
            local,
            mid: None,
        };
        Ok((leg, answer.to_sdp_string()))
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
    pub fn write_rtp(&mut self, now: Instant, rtp: &PlainRtp) -> Result<(), LegError> {
        let mid = self.mid.ok_or(LegError::NoMedia)?;
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).ok_or(LegError::NoMedia)?;
        let write = RtpWrite::new(
            Pt::from(rtp.pt),
            u64::from(rtp.seq).into(),
            rtp.timestamp,
            now,
            rtp.payload.clone(),
        )
        .marker(rtp.marker);
        tx.write_rtp(write);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

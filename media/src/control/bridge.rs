//! Calls between a browser and a SIP phone (issue #23): one relay session whose browser side
//! is a [`BrowserLeg`] and whose phone side is plain RTP/AVP. The offer and answer each side
//! gets are made here rather than rewritten, since the two sides speak different SDP:
//!
//! - A browser calls: the phone is offered RTP/AVP with the browser's codecs that phones
//!   share (Opus, PCMU, PCMA, telephone events), on the relay. The browser's answer is made
//!   once the phone answered, with only the codec the phone chose, so both sides send the
//!   same payload type and nothing is transcoded.
//! - A phone calls a browser: the browser is offered the phone's shared codecs by the leg
//!   (ICE-lite, DTLS-SRTP); the phone's answer carries the codec the browser chose.
//! - Re-offers (hold, resume) from the browser are answered by the leg and passed to the
//!   phone as a new RTP/AVP offer; from the phone, the leg offers the new direction.

use super::calls::{Call, Calls, ControlError};
use crate::relay::{SessionId, Side};
use crate::sdp::Description;
use crate::webrtc::BrowserLeg;
use crate::webrtc::codecs::{self, Codec, Sdes};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A bridged call's negotiation.
#[derive(Debug)]
pub(super) struct Bridge {
    session: SessionId,
    browser: Side,
    /// The browser's offer, until the phone answers it.
    browser_offer: Option<String>,
    /// The leg's answer to a browser's re-offer, until the phone answers that too.
    reanswer: Option<String>,
    /// The leg made an offer to the browser and waits for its answer.
    awaiting_browser: bool,
    /// What the last answer said (sent again for a repeated answer: 183 then 200).
    last_answer: Option<String>,
    /// The codecs in use (all shared ones until an answer chose).
    codecs: Vec<Codec>,
    /// The o= version of the SDP the phone gets.
    version: u64,
    /// Our SDES key for the phone (offered to it, or given in answer to its own).
    ours: Sdes,
    /// The m= transport the phone gets (RTP/AVP, or RTP/SAVP when it offered that).
    phone_transport: String,
    /// Whether the phone gave a key: SRTP with it (else plain RTP, and our key unused).
    phone_keyed: bool,
}

/// Which way an SDP goes through [`Calls::bridge`].
pub(super) struct Leg<'a> {
    pub(super) call_id: &'a str,
    pub(super) tag: &'a str,
    pub(super) sdp: &'a str,
    pub(super) offer: bool,
    /// The relay's address for the party the result goes to.
    pub(super) facing: Option<IpAddr>,
}

/// A fresh SDES key (tag 1).
fn new_key() -> Result<Sdes, ControlError> {
    let mut key = [0u8; 30];
    getrandom::fill(&mut key).map_err(|e| ControlError::Browser(format!("no randomness: {e}")))?;
    Ok(Sdes { tag: 1, key })
}

fn browser_error(e: impl std::fmt::Display) -> ControlError {
    ControlError::Browser(e.to_string())
}

/// The first audio stream's RTP address of a phone's SDP.
fn phone_rtp(sdp: &str) -> Result<SocketAddr, ControlError> {
    let d = Description::parse(sdp)?;
    let audio = d.media().find(|m| m.kind == "audio");
    audio
        .map(|m| m.rtp)
        .ok_or(ControlError::NoSharedCodec("no audio".into()))
}

impl Calls {
    /// Whether an SDP of `call_id` is the bridge's: the call is bridged already, or it is a new
    /// offer whose kind (WebRTC or not) is not what its receiver speaks.
    pub(super) fn is_bridged(
        &self,
        call_id: &str,
        offer: bool,
        sdp: &str,
        to_browser: bool,
    ) -> bool {
        match self.calls.get(call_id) {
            Some(call) => call.bridge.is_some(),
            None => offer && codecs::is_webrtc(sdp) != to_browser,
        }
    }

    /// An offer or answer of a bridged call: the SDP the other side gets.
    pub(super) fn bridge(&mut self, now: Instant, leg: &Leg<'_>) -> Result<String, ControlError> {
        let exists = self.calls.contains_key(leg.call_id);
        match (exists, leg.offer) {
            (false, true) => self.bridge_first_offer(now, leg),
            (false, false) => Err(ControlError::UnknownCall),
            (true, true) => self.bridge_reoffer(leg),
            (true, false) => self.bridge_answer(now, leg),
        }
    }

    fn bridge_first_offer(&mut self, now: Instant, leg: &Leg<'_>) -> Result<String, ControlError> {
        let offered = codecs::audio_codecs(leg.sdp);
        let shared = codecs::shared(&offered);
        if !shared.iter().any(Codec::is_audio) {
            return Err(ControlError::NoSharedCodec(codecs::names(&offered)));
        }
        let from_browser = codecs::is_webrtc(leg.sdp);
        // Found now, not once the phone has answered and rings.
        if let Some(problem) = codecs::webrtc_problem(leg.sdp).filter(|_| from_browser) {
            return Err(ControlError::Browser(problem.to_string()));
        }
        let browser = if from_browser {
            Side::Offerer
        } else {
            Side::Answerer
        };
        let mut ours = new_key()?;
        let (id, ports) = self.relay.create(now)?;
        self.relay.make_gateway(id, browser)?;
        let at = SocketAddr::new(leg.facing.unwrap_or(self.advertised), ports[1]);
        let mut bridge = Bridge {
            session: id,
            browser,
            browser_offer: None,
            reanswer: None,
            awaiting_browser: false,
            last_answer: None,
            codecs: shared,
            version: 1,
            ours,
            phone_transport: "RTP/AVP".to_string(),
            phone_keyed: false,
        };
        let result = if from_browser {
            // SDES offered in the best-effort form (RTP/AVP with a=crypto): phones that
            // speak SRTP take it, the others ignore it.
            bridge.browser_offer = Some(leg.sdp.to_string());
            Ok(codecs::phone_sdp(
                at,
                &bridge.codecs,
                (codecs::direction(leg.sdp), 1),
                ("RTP/AVP", Some(ours)),
            ))
        } else {
            if let Some(theirs) = codecs::sdes(leg.sdp) {
                ours.tag = theirs.tag;
                bridge.ours = ours;
                bridge.phone_keyed = self.relay.set_phone_srtp(id, &ours.key, &theirs.key)?;
            }
            if let Some(t) = codecs::transport(leg.sdp) {
                bridge.phone_transport = t.to_string();
            }
            phone_rtp(leg.sdp)
                .and_then(|rtp| Ok(self.relay.describe(id, Side::Offerer, rtp)?))
                .and_then(|()| BrowserLeg::offer(at, &bridge.codecs, now).map_err(browser_error))
                .and_then(|(browser_leg, offer)| {
                    self.relay.set_browser_leg(now, id, browser_leg)?;
                    bridge.awaiting_browser = true;
                    Ok(offer)
                })
        };
        match result {
            Ok(sdp) => {
                self.calls
                    .insert(leg.call_id.to_string(), Call::bridged(leg.tag, id, bridge));
                Ok(sdp)
            }
            Err(e) => {
                // Nothing half-made stays.
                let _ = self.relay.delete(id);
                let _ = self.relay.take_final_quality(id);
                Err(e)
            }
        }
    }

    fn bridge_answer(&mut self, now: Instant, leg: &Leg<'_>) -> Result<String, ControlError> {
        let advertised = self.advertised;
        let call = self
            .calls
            .get_mut(leg.call_id)
            .ok_or(ControlError::UnknownCall)?;
        let b = call.bridge.as_mut().ok_or(ControlError::UnknownCall)?;
        let id = b.session;
        let ports = self.relay.ports_of(id)?;
        let facing = leg.facing.unwrap_or(advertised);
        if let Some(offer) = b.browser_offer.clone() {
            // The phone answered a browser's offer: the browser's answer, with its choice
            // (of what the browser offered: a phone answering more is not believed).
            let answered: Vec<Codec> = codecs::audio_codecs(leg.sdp)
                .into_iter()
                .filter(|c| b.codecs.iter().any(|o| o.pt == c.pt))
                .collect();
            let chosen = codecs::chosen(&answered);
            if chosen.is_empty() {
                return Err(ControlError::NoSharedCodec(codecs::names(&b.codecs)));
            }
            self.relay
                .describe(id, Side::Answerer, phone_rtp(leg.sdp)?)?;
            if let Some(theirs) = codecs::sdes(leg.sdp) {
                b.phone_keyed = self.relay.set_phone_srtp(id, &b.ours.key, &theirs.key)?;
            }
            let (browser_leg, answer) =
                BrowserLeg::answer(&offer, SocketAddr::new(facing, ports[0]), &chosen, now)
                    .map_err(browser_error)?;
            self.relay.set_browser_leg(now, id, browser_leg)?;
            b.browser_offer = None;
            b.codecs = chosen;
            b.last_answer = Some(answer.clone());
            return Ok(answer);
        }
        if let Some(answer) = b.reanswer.take() {
            // The phone answered a browser's re-offer: the leg's answer goes back.
            self.relay
                .describe(id, Side::Answerer, phone_rtp(leg.sdp)?)?;
            if let Some(theirs) = codecs::sdes(leg.sdp) {
                b.phone_keyed = self.relay.set_phone_srtp(id, &b.ours.key, &theirs.key)?;
            }
            b.last_answer = Some(answer.clone());
            return Ok(answer);
        }
        if b.awaiting_browser {
            // The browser answered the leg's offer: the phone learns what it chose.
            let browser_leg = self
                .relay
                .browser_leg(id)
                .ok_or(ControlError::UnknownCall)?;
            if let Some(problem) = codecs::webrtc_problem(leg.sdp) {
                return Err(ControlError::Browser(problem.to_string()));
            }
            browser_leg.accept_answer(leg.sdp).map_err(browser_error)?;
            let chosen = codecs::chosen(&codecs::audio_codecs(leg.sdp));
            if chosen.is_empty() {
                return Err(ControlError::NoSharedCodec(codecs::names(&b.codecs)));
            }
            b.awaiting_browser = false;
            b.codecs = chosen;
            b.version += 1;
            let phone_port = ports[phone_index(b.browser)];
            let answer = codecs::phone_sdp(
                SocketAddr::new(facing, phone_port),
                &b.codecs,
                (codecs::direction(leg.sdp), b.version),
                (&b.phone_transport, b.phone_keyed.then_some(b.ours)),
            );
            b.last_answer = Some(answer.clone());
            return Ok(answer);
        }
        // The same answer again (a 183 then the 200).
        b.last_answer.clone().ok_or(ControlError::UnknownCall)
    }

    fn bridge_reoffer(&mut self, leg: &Leg<'_>) -> Result<String, ControlError> {
        let advertised = self.advertised;
        let call = self
            .calls
            .get_mut(leg.call_id)
            .ok_or(ControlError::UnknownCall)?;
        let side = if call.offerer_tag == leg.tag {
            Side::Offerer
        } else {
            Side::Answerer
        };
        let b = call.bridge.as_mut().ok_or(ControlError::UnknownCall)?;
        let id = b.session;
        let ports = self.relay.ports_of(id)?;
        let facing = leg.facing.unwrap_or(advertised);
        let browser_leg = self.relay.browser_leg(id).ok_or(ControlError::Browser(
            "the browser's leg is not set up yet".into(),
        ))?;
        if side == b.browser {
            let answer = browser_leg.reanswer(leg.sdp).map_err(browser_error)?;
            b.reanswer = Some(answer);
            b.version += 1;
            let at = SocketAddr::new(facing, ports[phone_index(b.browser)]);
            return Ok(codecs::phone_sdp(
                at,
                &b.codecs,
                (codecs::direction(leg.sdp), b.version),
                (&b.phone_transport, b.phone_keyed.then_some(b.ours)),
            ));
        }
        // The phone re-offers (hold, resume, a new address): the leg offers the browser the
        // same direction.
        let offer = browser_leg
            .reoffer(codecs::direction(leg.sdp))
            .map_err(browser_error)?;
        self.relay.describe(id, side, phone_rtp(leg.sdp)?)?;
        if let Some(theirs) = codecs::sdes(leg.sdp) {
            b.ours.tag = theirs.tag;
            b.phone_keyed = self.relay.set_phone_srtp(id, &b.ours.key, &theirs.key)?;
        }
        b.awaiting_browser = true;
        Ok(offer)
    }
}

/// The index of the phone's side in a session whose browser is `browser`.
fn phone_index(browser: Side) -> usize {
    match browser {
        Side::Offerer => 1,
        Side::Answerer => 0,
    }
}

#[cfg(test)]
mod tests;

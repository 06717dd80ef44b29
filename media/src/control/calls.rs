//! Calls as a signalling side sees them: an offer and an answer per call, each rewritten to
//! point at the relay, one relay session per media stream. The same API serves the proxy
//! (in-process) and the rtpengine ng protocol (`ng.rs`).

use super::bridge::{Bridge, Leg};
use super::report::CallReport;
use crate::quality::LegQuality;
use crate::relay::{Counters, Relay, RelayError, SessionId, Side};
use crate::sdp::{Description, Relayed, SdpError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Why an offer, answer or delete could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The description does not read.
    #[error("{0}")]
    Sdp(#[from] SdpError),
    /// The body is not UTF-8 text.
    #[error("SDP is not UTF-8 text")]
    NotText,
    /// The relay is out of ports (or another relay refusal).
    #[error("{0}")]
    Relay(#[from] RelayError),
    /// An answer or delete for a call never offered.
    #[error("unknown call-id")]
    UnknownCall,
    /// More streams than one call may have.
    #[error("too many media streams ({0}; at most {MAX_STREAMS})")]
    TooManyStreams(usize),
    /// Another relay (rtpengine, over ng) refused, for this reason.
    #[error("the relay refused: {0}")]
    Remote(String),
    /// Another relay did not answer.
    #[error("the relay did not answer")]
    NoAnswer,
    /// A browser and a phone share no codec (those offered, named).
    #[error("no codec shared by the browser and the phone (offered: {0})")]
    NoSharedCodec(String),
    /// A browser's SDP the WebRTC leg cannot take (no rtcp-mux, no fingerprint...).
    #[error("{0}")]
    Browser(String),
}

/// A request to the call table from inside the process (the proxy anchoring its calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An offer from the party tagged `tag`.
    Offer {
        /// The call.
        call_id: String,
        /// The offering party's tag.
        tag: String,
        /// Who it is (`alice@club-a.test`), for quality reports; None: its tag names it.
        party: Option<String>,
        /// Its SDP.
        sdp: Vec<u8>,
        /// The relay's address for the party the rewritten offer goes to (the one it can reach:
        /// its family, its side of a multi-homed host); None for the configured one.
        facing: Option<IpAddr>,
        /// Whether the party the offer goes to is a browser (a WebSocket device): it gets
        /// WebRTC SDP, whatever the offerer speaks.
        to_browser: bool,
    },
    /// The answer from the party tagged `tag`.
    Answer {
        /// The call.
        call_id: String,
        /// The answering party's tag.
        tag: String,
        /// Who it is, for quality reports; None: its tag names it.
        party: Option<String>,
        /// Its SDP.
        sdp: Vec<u8>,
        /// The relay's address for the offerer, who gets the rewritten answer; None for the
        /// configured one.
        facing: Option<IpAddr>,
    },
    /// The call ended.
    Delete {
        /// The call.
        call_id: String,
    },
}

/// What a [`Command`] gave: the rewritten SDP (empty for a delete), or why not.
pub type CommandResult = Result<String, ControlError>;

/// The most m= streams relayed for one call: a port pair per side each.
pub const MAX_STREAMS: usize = 8;
/// Ended calls' reports kept for the driver.
const MAX_ENDED: usize = 1024;

#[derive(Debug)]
pub(super) struct Call {
    /// The tag of whoever sent the first offer: that party is the session's offerer side.
    pub(super) offerer_tag: String,
    /// Who each side is (offerer, answerer), for quality reports: a name, else the tag.
    parties: [String; 2],
    /// A relay session per m= stream, by index (None: the stream is off).
    streams: Vec<Option<SessionId>>,
    /// Between a browser and a phone: the one session's negotiation.
    pub(super) bridge: Option<Bridge>,
}

impl Call {
    /// A call between a browser and a phone, on session `id`.
    pub(super) fn bridged(offerer_tag: &str, id: SessionId, bridge: Bridge) -> Self {
        Call {
            offerer_tag: offerer_tag.to_string(),
            parties: [format!("tag {offerer_tag}"), "the answerer".to_string()],
            streams: vec![Some(id)],
            bridge: Some(bridge),
        }
    }
}

/// The calls the relay anchors.
#[derive(Debug)]
pub struct Calls {
    pub(super) relay: Relay,
    pub(super) calls: HashMap<String, Call>,
    /// The address written into rewritten SDP: where parties reach the relay.
    pub(super) advertised: IpAddr,
    /// Reports of calls that ended, for the driver to log and count.
    ended: std::collections::VecDeque<CallReport>,
}

impl Calls {
    /// Calls on `relay`, which parties reach at `advertised`.
    pub fn new(relay: Relay, advertised: IpAddr) -> Self {
        Calls {
            relay,
            calls: HashMap::new(),
            advertised,
            ended: std::collections::VecDeque::new(),
        }
    }

    /// The relay (for packets, time-outs and port events).
    pub fn relay(&mut self) -> &mut Relay {
        &mut self.relay
    }

    /// An offer (or re-offer) from the party tagged `from_tag` in call `call_id`: the SDP to
    /// send on, pointing at the relay.
    pub fn offer(
        &mut self,
        now: Instant,
        call_id: &str,
        from_tag: &str,
        sdp: &[u8],
    ) -> Result<String, ControlError> {
        self.describe(now, (call_id, from_tag), sdp, (true, None, None))
    }

    /// An offer whose receiver speaks `to_browser` (true: WebRTC, false: plain RTP), as the
    /// ng protocol's `transport-protocol` says: bridged when the offer speaks the other.
    pub fn offer_to(
        &mut self,
        now: Instant,
        (call_id, from_tag): (&str, &str),
        sdp: &[u8],
        to_browser: bool,
    ) -> Result<String, ControlError> {
        self.describe(
            now,
            (call_id, from_tag),
            sdp,
            (true, None, Some(to_browser)),
        )
    }

    /// The answer from the party tagged `to_tag`: the SDP to send on to the offerer.
    pub fn answer(
        &mut self,
        now: Instant,
        call_id: &str,
        to_tag: &str,
        sdp: &[u8],
    ) -> Result<String, ControlError> {
        self.describe(now, (call_id, to_tag), sdp, (false, None, None))
    }

    /// Carries out a command from inside the process.
    pub fn command(&mut self, now: Instant, command: &Command) -> CommandResult {
        match command {
            Command::Offer {
                call_id,
                tag,
                party,
                sdp,
                facing,
                to_browser,
            } => {
                let answer =
                    self.describe(now, (call_id, tag), sdp, (true, *facing, Some(*to_browser)));
                self.name(call_id, tag, party.as_deref());
                answer
            }
            Command::Answer {
                call_id,
                tag,
                party,
                sdp,
                facing,
            } => {
                let answer = self.describe(now, (call_id, tag), sdp, (false, *facing, None));
                self.name(call_id, tag, party.as_deref());
                answer
            }
            Command::Delete { call_id } => self.delete(call_id).map(|_| String::new()),
        }
    }

    /// Ends a call and frees its ports: the counters of each stream, per side. Its quality
    /// report waits in [`Calls::poll_ended`].
    pub fn delete(&mut self, call_id: &str) -> Result<Vec<[Counters; 2]>, ControlError> {
        let call = self
            .calls
            .remove(call_id)
            .ok_or(ControlError::UnknownCall)?;
        let mut counters = Vec::new();
        let mut streams = Vec::new();
        for id in call.streams.into_iter().flatten() {
            if let Ok(c) = self.relay.delete(id) {
                counters.push(c);
            }
            streams.extend(self.relay.take_final_quality(id));
        }
        self.finish(call_id, call.parties, streams);
        Ok(counters)
    }

    /// Queues an ended call's report (none for a call whose media never started).
    fn finish(&mut self, call_id: &str, parties: [String; 2], streams: Vec<[LegQuality; 2]>) {
        if streams.is_empty() {
            return;
        }
        // Nobody reads them: the oldest go.
        if self.ended.len() >= MAX_ENDED {
            self.ended.pop_front();
        }
        self.ended.push_back(CallReport {
            call_id: call_id.to_string(),
            parties,
            streams,
        });
    }

    /// The report of a call that ended, oldest first.
    pub fn poll_ended(&mut self) -> Option<CallReport> {
        self.ended.pop_front()
    }

    /// Every call's quality so far, at `now`.
    pub fn reports(&self, now: Instant) -> Vec<CallReport> {
        self.calls
            .iter()
            .map(|(call_id, call)| CallReport {
                call_id: call_id.clone(),
                parties: call.parties.clone(),
                streams: call
                    .streams
                    .iter()
                    .flatten()
                    .filter_map(|id| self.relay.quality(*id, now))
                    .collect(),
            })
            .collect()
    }

    /// Names `tag`'s party in `call_id` (the proxy knows who it is).
    fn name(&mut self, call_id: &str, tag: &str, party: Option<&str>) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let side = usize::from(call.offerer_tag != tag);
        call.parties[side] = match party {
            Some(p) => p.to_string(),
            None => format!("tag {tag}"),
        };
    }

    /// The counters of a call's streams, per side (offerer, answerer).
    pub fn counters(&self, call_id: &str) -> Option<Vec<[Counters; 2]>> {
        let call = self.calls.get(call_id)?;
        Some(
            call.streams
                .iter()
                .flatten()
                .filter_map(|id| self.relay.counters(*id))
                .collect(),
        )
    }

    /// A call whose browser went away (its leg lost ICE consent): the signalling side should
    /// hang it up. Its session is gone with it.
    pub fn poll_browser_gone(&mut self) -> Option<String> {
        while let Some(session) = self.relay.poll_browser_gone() {
            let call_id = self
                .calls
                .iter()
                .find(|(_, c)| c.streams.contains(&Some(session)))
                .map(|(id, _)| id.clone());
            if let Some(call_id) = call_id {
                let _ = self.delete(&call_id);
                return Some(call_id);
            }
        }
        None
    }

    /// Calls anchored.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Sessions that ended idle: forgets them in their calls, and calls left with none (their
    /// reports wait in [`Calls::poll_ended`]).
    pub fn forget_sessions(&mut self, ended: &[SessionId]) {
        let mut gone = Vec::new();
        for (call_id, call) in &mut self.calls {
            let mut mine = Vec::new();
            for s in call.streams.iter_mut() {
                if let Some(id) = s.filter(|id| ended.contains(id)) {
                    mine.push(id);
                    *s = None;
                }
            }
            if call.streams.iter().all(Option::is_none) {
                gone.push((call_id.clone(), mine));
            }
        }
        for (call_id, ids) in gone {
            if let Some(call) = self.calls.remove(&call_id) {
                let streams = ids
                    .iter()
                    .filter_map(|id| self.relay.take_final_quality(*id))
                    .collect();
                self.finish(&call_id, call.parties, streams);
            }
        }
        // Sessions of calls still up keep no final quality.
        for id in ended {
            self.relay.take_final_quality(*id);
        }
    }

    /// The SDP of `tag`'s party: it describes where that party receives; the rewrite, for the
    /// other party, points each stream at the port the other party sends to.
    fn describe(
        &mut self,
        now: Instant,
        (call_id, tag): (&str, &str),
        sdp: &[u8],
        (offer, facing, to_browser): (bool, Option<IpAddr>, Option<bool>),
    ) -> Result<String, ControlError> {
        let text = std::str::from_utf8(sdp).map_err(|_| ControlError::NotText)?;
        let description = Description::parse(text)?;
        // Unsaid, the receiver speaks what the offer does (media passes through).
        let to_browser = to_browser.unwrap_or_else(|| crate::webrtc::codecs::is_webrtc(text));
        if self.is_bridged(call_id, offer, text, to_browser) {
            let leg = Leg {
                call_id,
                tag,
                sdp: text,
                offer,
                facing,
            };
            return self.bridge(now, &leg);
        }
        let media: Vec<_> = description.media().cloned().collect();
        if media.len() > MAX_STREAMS {
            return Err(ControlError::TooManyStreams(media.len()));
        }
        if !offer && !self.calls.contains_key(call_id) {
            return Err(ControlError::UnknownCall);
        }
        let call = self
            .calls
            .entry(call_id.to_string())
            .or_insert_with(|| Call {
                offerer_tag: tag.to_string(),
                parties: [format!("tag {tag}"), "the answerer".to_string()],
                streams: Vec::new(),
                bridge: None,
            });
        let side = if call.offerer_tag == tag {
            Side::Offerer
        } else {
            Side::Answerer
        };
        let other = match side {
            Side::Offerer => 1,
            Side::Answerer => 0,
        };
        let mut plan = Vec::with_capacity(media.len());
        for (i, m) in media.iter().enumerate() {
            if m.rtp.port() == 0 {
                plan.push(None);
                continue;
            }
            if call.streams.len() <= i {
                call.streams.resize(i + 1, None);
            }
            let ports = match call.streams[i] {
                Some(id) => self.relay.ports_of(id)?,
                None => {
                    let (id, ports) = match self.relay.create(now) {
                        Ok(created) => created,
                        Err(e) => {
                            // Nothing half-made stays: a failed first offer leaves no call.
                            if call.streams.iter().all(Option::is_none) {
                                self.calls.remove(call_id);
                            }
                            return Err(e.into());
                        }
                    };
                    call.streams[i] = Some(id);
                    ports
                }
            };
            if let Some(id) = call.streams[i] {
                self.relay.describe(id, side, m.rtp)?;
            }
            plan.push(Some(Relayed {
                addr: facing.unwrap_or(self.advertised),
                port: ports[other],
            }));
        }
        Ok(description.rewrite(&plan))
    }
}

#[cfg(test)]
mod tests;

//! The phone, sans-IO: one account's registration, its text messages and its call over the
//! transaction layer. Datagrams, commands and the time go in; datagrams to send, events for
//! the user and the next wake-up come out. The headless driver and the TUI drive the same core.
//! `calls.rs` has the call and its media.

mod calls;
mod nat;
mod watching;

use crate::audio::device::{AudioDevice, Silence};
use crate::audio::session::MediaSession;
use crate::ua::call::{Call, CallState};
use crate::ua::chat::{Incoming, Outgoing, incoming};
use crate::ua::{Account, Next, RegEvent, Registration};
use openline_sip::endpoint::Transmit;
use openline_sip::header::HeaderName;
use openline_sip::message::ResponseBuilder;
use openline_sip::transaction::{Destination, TransactionEvent, TransactionId};
use openline_sip::{
    Endpoint, EndpointConfig, Entropy, Inbound, Message, Output, Transport, Verdict,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// What the user is told (one JSON line each in headless mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEvent {
    /// Registration news.
    Registration(RegEvent),
    /// A message arrived (or a copy of one this user sent elsewhere).
    Message(Incoming),
    /// A message we sent was accepted (`status` 200 delivered, 202 stored) or refused.
    MessageResult {
        /// To whom.
        to: String,
        /// The final status, 0 when no answer came.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Someone calls.
    IncomingCall {
        /// Who, `sip:user@domain`.
        from: String,
    },
    /// The call moved on.
    CallState {
        /// Where it stands.
        state: CallState,
        /// The other side.
        remote: String,
        /// The codec, once media run.
        codec: Option<&'static str>,
        /// Whether the media are SRTP.
        srtp: bool,
    },
    /// The call is over.
    CallEnded {
        /// The other side.
        remote: String,
        /// The status that ended it (0 when none did: a hang-up, no answer).
        code: u16,
        /// Why, for the user.
        reason: String,
    },
    /// A call command could not be carried out, or a call was refused.
    CallRefused(String),
    /// The other side pressed a key (RFC 4733).
    Dtmf(char),
    /// STUN told the address our media socket has outside (calls offer it from now on).
    MediaAddress(SocketAddr),
    /// What a watched contact's presence says now.
    Presence {
        /// Whose, `sip:user@domain`.
        who: String,
        /// What is known.
        seen: crate::ua::presence::Seen,
    },
    /// Our note was published (or not).
    NoteSet {
        /// Whether the server took it.
        ok: bool,
        /// The note.
        note: Option<String>,
    },
    /// A call's media stopped: what was sent and received, and how the jitter buffer fared.
    MediaStats(
        crate::audio::session::MediaStats,
        crate::audio::jitter::JitterStats,
    ),
}

/// A MESSAGE of ours under way.
#[derive(Debug)]
struct Sending {
    to: String,
    text: String,
    call_id: String,
    /// Whether it already carried credentials (a second 407 is a refusal).
    authorized: bool,
}

/// One account's phone.
pub struct Phone {
    endpoint: Endpoint,
    account: Account,
    local: SocketAddr,
    proxy: Destination,
    registration: Registration,
    register_txn: Option<TransactionId>,
    /// `urn:uuid:...`: this phone as one device across restarts (RFC 5626 4.1), so the server
    /// hands it what was stored for it while it was away.
    instance: Option<String>,
    sending: HashMap<TransactionId, Sending>,
    /// The last proxy challenge: MESSAGEs answer it up front once it is known.
    events: VecDeque<PhoneEvent>,
    transmits: VecDeque<Transmit>,
    /// Our RTP address as the other side should see it.
    rtp: SocketAddr,
    /// Whether calls offer and accept SDES-SRTP.
    srtp: bool,
    call: Option<Call>,
    media: Option<MediaSession>,
    device: Box<dyn AudioDevice>,
    /// The STUN Binding under way, if any.
    stun: Option<openline_media::stun::BindingClient>,
    /// Media-socket datagrams that are not the call's (STUN requests).
    media_out: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Contacts whose presence we watch.
    watches: Vec<crate::ua::presence::Watch>,
    /// What we publish of ourselves.
    publication: crate::ua::presence::Publication,
    /// SUBSCRIBEs and PUBLISHes under way.
    presence_txns: HashMap<TransactionId, watching::PresenceTxn>,
}

impl Phone {
    /// A phone for `account` on `local`, through the proxy at `proxy`, known as the device
    /// `instance` (a `urn:uuid:`) when given; registers at once.
    pub fn new(
        account: Account,
        (local, proxy): (SocketAddr, SocketAddr),
        instance: Option<String>,
        entropy: Box<dyn Entropy>,
        now: Instant,
    ) -> Self {
        let mut endpoint = Endpoint::new(EndpointConfig::default(), entropy);
        let (call_id, tag) = (endpoint.new_tag(), endpoint.new_tag());
        let registration = Registration::new(account.clone(), 600, call_id, tag);
        let mut phone = Phone {
            endpoint,
            account,
            local,
            proxy: Destination {
                transport: Transport::Udp,
                addr: proxy,
            },
            registration,
            register_txn: None,
            instance,
            sending: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            rtp: SocketAddr::new(local.ip(), 0),
            srtp: true,
            call: None,
            media: None,
            device: Box::new(Silence),
            stun: None,
            media_out: VecDeque::new(),
            watches: Vec::new(),
            publication: crate::ua::presence::Publication::default(),
            presence_txns: HashMap::new(),
        };
        phone.register(now);
        phone
    }

    /// Where calls' media go: our RTP address (as seen from outside), the sound device, and
    /// whether SRTP is offered and accepted.
    pub fn set_media(&mut self, rtp: SocketAddr, device: Box<dyn AudioDevice>, srtp: bool) {
        self.rtp = rtp;
        self.device = device;
        self.srtp = srtp;
    }

    fn via(&mut self) -> String {
        format!(
            "SIP/2.0/UDP {};branch={};rport",
            self.local,
            self.endpoint.new_branch()
        )
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.account.user, self.account.domain)
    }

    fn register(&mut self, now: Instant) {
        let (via, cnonce) = (self.via(), self.endpoint.new_tag());
        let mut contact = format!("<sip:{}@{}>", self.account.user, self.local);
        if let Some(instance) = &self.instance {
            contact.push_str(&format!(";+sip.instance=\"<{instance}>\""));
        }
        let request = self.registration.request(&via, &contact, &cnonce);
        match self.endpoint.send_request(now, request, self.proxy) {
            Ok(id) => self.register_txn = Some(id),
            Err(_) => {
                let e = self.registration.on_no_answer(now);
                self.events.push_back(PhoneEvent::Registration(e));
            }
        }
        self.drain(now);
    }

    /// Hangs up any call and says goodbye to the registrar (its answer comes as
    /// [`RegEvent::Unregistered`]).
    pub fn quit(&mut self, now: Instant) {
        if self.call.is_some() {
            self.hangup(now);
        }
        self.stop_presence(now);
        self.registration.leave();
        self.register(now);
    }

    /// Sends `text` to `to` (`sip:user@domain`, or `user@domain`).
    pub fn send_message(&mut self, now: Instant, to: &str, text: &str) {
        let to = if to.starts_with("sip:") {
            to.to_string()
        } else {
            format!("sip:{to}")
        };
        let call_id = self.endpoint.new_tag();
        let pending = Sending {
            to,
            text: text.to_string(),
            call_id,
            authorized: false,
        };
        self.send(now, pending, None);
    }

    fn send(&mut self, now: Instant, mut pending: Sending, credentials: Option<String>) {
        let (via, tag, from) = (self.via(), self.endpoint.new_tag(), self.aor());
        let mut request = Outgoing {
            from: &from,
            from_tag: &tag,
            to: &pending.to,
            call_id: &pending.call_id,
            via: &via,
            text: &pending.text,
        }
        .request();
        if let Some(value) = credentials {
            request = with_header(&request, "Proxy-Authorization", &value);
            pending.authorized = true;
        }
        match self.endpoint.send_request(now, request, self.proxy) {
            Ok(id) => {
                self.sending.insert(id, pending);
            }
            Err(e) => self.events.push_back(PhoneEvent::MessageResult {
                to: pending.to,
                status: 0,
                reason: e.to_string(),
            }),
        }
        self.drain(now);
    }

    /// A datagram from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let verdict = self.endpoint.handle(
            now,
            Inbound {
                transport: Transport::Udp,
                source,
                data,
            },
        );
        match verdict {
            Verdict::Response {
                response,
                transaction,
            } => self.on_response(now, transaction, &response),
            Verdict::Request {
                request,
                transaction,
            } if !self.on_call_request(now, transaction, source, &request) => {
                if let Some(id) = transaction {
                    self.on_request(now, id, source, &request);
                }
            }
            _ => {}
        }
        self.drain(now);
    }

    fn on_response(&mut self, now: Instant, id: TransactionId, response: &Message<'_>) {
        if self.on_presence_response(now, id, response) {
            return;
        }
        if let Some(call) = self.call.as_mut().filter(|c| c.owns(id)) {
            call.on_response(now, &mut self.endpoint, id, response);
            self.after_call(now);
            return;
        }
        if Some(id) == self.register_txn {
            match self.registration.on_response(now, response) {
                Next::Send => self.register(now),
                Next::Tell(e) => self.events.push_back(PhoneEvent::Registration(e)),
                Next::Nothing => {}
            }
            return;
        }
        let Some(code) = response.status().filter(|&c| c >= 200) else {
            return;
        };
        let Some(pending) = self.sending.remove(&id) else {
            return;
        };
        if code == 407 && !pending.authorized {
            if let Some(value) = self.credentials(response, "MESSAGE", &pending.to) {
                self.send(now, pending, Some(value));
                return;
            }
        }
        let reason = match response.start {
            openline_sip::StartLine::Response { reason, .. } => reason.to_string(),
            openline_sip::StartLine::Request { .. } => String::new(),
        };
        self.events.push_back(PhoneEvent::MessageResult {
            to: pending.to,
            status: code,
            reason,
        });
    }

    /// The Proxy-Authorization answering a 407 to our `method` for `uri`.
    fn credentials(&mut self, response: &Message<'_>, method: &str, uri: &str) -> Option<String> {
        let challenge = response.header(HeaderName::ProxyAuthenticate)?;
        let cnonce = self.endpoint.new_tag();
        self.account.answer(challenge, (method, uri), (&cnonce, 1))
    }

    fn on_request(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &Message<'_>,
    ) {
        let (code, reason) = if request.method() == openline_sip::Method::Notify {
            let code = self.on_notify(now, request);
            (code, openline_sip::message::standard_reason(code))
        } else if request.method() == openline_sip::Method::Message {
            match incoming(request) {
                Ok(m) => {
                    self.events.push_back(PhoneEvent::Message(m));
                    (200, "OK")
                }
                Err(refusal) => refusal,
            }
        } else {
            (405, "Method Not Allowed")
        };
        let tag = self.endpoint.new_tag();
        let response =
            ResponseBuilder::new(code, reason, &request.echo(), source, Some(&tag)).finish();
        let _ = self.endpoint.respond(now, id, response);
    }

    /// The time passed `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.handle_call_timeout(now);
        self.handle_stun_timeout(now);
        self.handle_presence_timeout(now);
        if self.registration.handle_timeout(now) {
            self.register(now);
        }
        self.drain(now);
    }

    /// Moves the endpoint's output into datagrams and events.
    fn drain(&mut self, now: Instant) {
        while let Some(out) = self.endpoint.poll_output() {
            match out {
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Event(
                    TransactionEvent::TimedOut(id) | TransactionEvent::TransportError(id),
                ) if self.call.as_ref().is_some_and(|c| c.owns(id)) => {
                    let transport =
                        matches!(out, Output::Event(TransactionEvent::TransportError(_)));
                    if let Some(call) = &mut self.call {
                        call.on_no_answer(now, id, transport);
                    }
                    self.after_call(now);
                }
                Output::Event(TransactionEvent::Terminated(id)) => {
                    if let Some(call) = &mut self.call {
                        call.on_terminated(id);
                    }
                }
                Output::Event(
                    TransactionEvent::TimedOut(id) | TransactionEvent::TransportError(id),
                ) => {
                    if Some(id) == self.register_txn {
                        self.register_txn = None;
                        let e = self.registration.on_no_answer(now);
                        self.events.push_back(PhoneEvent::Registration(e));
                    } else if let Some(p) = self.sending.remove(&id) {
                        self.events.push_back(PhoneEvent::MessageResult {
                            to: p.to,
                            status: 0,
                            reason: "no answer".into(),
                        });
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    /// A datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// An event for the user.
    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    /// When to call [`Phone::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.endpoint.poll_timeout(),
            self.registration.poll_timeout(),
            self.call_timeout(),
            self.stun_timeout(),
            self.presence_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// `request` with one more header line, before the body.
fn with_header(request: &[u8], name: &str, value: &str) -> Vec<u8> {
    let split = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |i| i + 2);
    let mut out = Vec::with_capacity(request.len() + name.len() + value.len() + 4);
    out.extend_from_slice(&request[..split]);
    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    out.extend_from_slice(&request[split..]);
    out
}

#[cfg(test)]
mod tests;

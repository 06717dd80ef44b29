//! Media anchoring (issue #6 item 3): an INVITE's SDP offer goes to the relay before the
//! INVITE goes on, and the answer in the 18x/2xx before the response goes back, each rewritten
//! to point at the relay; a BYE, or a call that fails, ends the relay's session. Relay work is
//! an output like a store operation, answered through [`ServerCore::handle_media`].

use super::ServerCore;
use crate::routing::Target;
use openline_media::control::{Command, CommandResult, ControlError};
use openline_media::webrtc::codecs;
use openline_sip::message::{Refusal, RouteEdit};
use openline_sip::transaction::TransactionId;
use openline_sip::{Message, Method};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// When calls' media goes through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaMode {
    /// Every call routed with SDP.
    #[default]
    Always,
    /// Never: media flows between the parties.
    Never,
    /// When the offer's SDP address is not where the INVITE came from (a party behind NAT).
    Nat,
}

/// Work for the relay: a command, with the id its answer comes back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOp {
    /// Names it in [`ServerCore::handle_media`].
    pub id: u64,
    /// What to do.
    pub command: Command,
}

/// What waits for the relay's answer.
#[derive(Debug)]
enum Parked {
    /// An INVITE to forward once its offer is rewritten.
    Request {
        server: TransactionId,
        source: SocketAddr,
        request: Vec<u8>,
        targets: Vec<Target>,
        route: RouteEdit,
    },
    /// A response of server transaction `server` to pass upstream once its answer is
    /// rewritten (it waits in `responses`).
    Response { server: TransactionId },
}

/// A response held back: the relay op it waits for (None: ready), and its bytes.
type Held = (Option<u64>, Vec<u8>);

/// The anchoring state of the core.
#[derive(Debug, Default)]
pub(super) struct Anchoring {
    next_id: u64,
    ops: VecDeque<MediaOp>,
    waiting: HashMap<u64, Parked>,
    /// INVITE server transactions whose media the relay carries: their Call-ID, and where
    /// the caller sent it from (the answer's relay address must be one the caller reaches).
    anchored: HashMap<TransactionId, (String, SocketAddr)>,
    /// Whether the relay is on this host and bound to a wildcard: then each party is given the
    /// relay's address on the side and family it reaches us on.
    pub(super) facing: bool,
    /// The relay addresses advertised per family (IPv4, IPv6), if given.
    pub(super) advertised: [Option<std::net::IpAddr>; 2],
    /// Responses held per server transaction, in order.
    responses: HashMap<TransactionId, VecDeque<Held>>,
    /// Flows whose REGISTER said it came from behind NAT (its Via or Contact named another
    /// address than its source): a phone that rewrote its Contact to its public address still
    /// gives its private one in SDP, so calls to it are anchored (`--media nat`).
    natted: std::collections::HashSet<SocketAddr>,
    /// Mixed forks under way (browsers and SIP phones among the targets), per INVITE.
    pub(super) split: HashMap<TransactionId, super::splitting::SplitFork>,
    /// Calls whose media is in the relay under another call id than their own (a mixed
    /// fork's browser session won): the call id, the relay's.
    pub(super) relay_ids: HashMap<String, String>,
}

/// Most flows remembered as behind NAT; beyond it the memory starts afresh (each device's
/// next REGISTER tells again).
const MOST_NATTED: usize = 100_000;

impl Anchoring {
    pub(super) fn queue(&mut self, command: Command) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.ops.push_back(MediaOp { id, command });
        id
    }

    /// The next command for the relay.
    pub(super) fn poll(&mut self) -> Option<MediaOp> {
        self.ops.pop_front()
    }

    /// Transaction `id` ended: nothing more of it is anchored or held.
    pub(super) fn forget(&mut self, id: TransactionId) {
        self.anchored.remove(&id);
        self.responses.remove(&id);
        self.split.remove(&id);
    }

    /// We answered `server` ourselves with a failure: its media session goes (both, for a
    /// mixed fork).
    pub(super) fn failed(&mut self, server: TransactionId) {
        if let Some((call_id, _)) = self.anchored.remove(&server) {
            self.queue(Command::Delete { call_id });
        }
        if let Some(call_id) = self.split.remove(&server).and_then(|s| s.browsers) {
            self.queue(Command::Delete { call_id });
        }
    }

    /// The relay's call id for call `call_id`.
    pub(super) fn relay_id(&self, call_id: &str) -> String {
        self.relay_ids
            .get(call_id)
            .cloned()
            .unwrap_or_else(|| call_id.to_string())
    }

    /// Call `call_id` ends: its relay session is deleted, and its relay id forgotten.
    pub(super) fn delete_call(&mut self, call_id: &str) {
        let call_id = self
            .relay_ids
            .remove(call_id)
            .unwrap_or_else(|| call_id.to_string());
        self.queue(Command::Delete { call_id });
    }
}

/// The SDP body of a message, if it has one.
pub(super) fn sdp<'m>(m: &Message<'m>) -> Option<&'m [u8]> {
    let is_sdp = m
        .content_type()
        .flatten()
        .is_some_and(|t| t.is("application", "sdp"));
    (is_sdp && !m.body.is_empty()).then_some(m.body)
}

/// Whether the offer's media address is other than where the request came from.
fn behind_nat(body: &[u8], source: SocketAddr) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return true;
    };
    match openline_media::sdp::Description::parse(text) {
        Ok(d) => d
            .media()
            .any(|m| m.rtp.port() != 0 && m.rtp.ip() != source.ip()),
        // Unreadable: the relay says why (488).
        Err(_) => true,
    }
}

/// Whether the sender's Via names another address than the one the request came from (it
/// does not know its public address: behind NAT), as Kamailio's nathelper checks.
fn sent_from_elsewhere(request: &Message<'_>, source: SocketAddr) -> bool {
    request.top_via.host.ip().is_none_or(|ip| {
        openline_sip_net::canonical(ip) != openline_sip_net::canonical(source.ip())
    })
}

/// Whether a callee's binding was registered from behind NAT: its Contact names another
/// address than the flow it is reached over.
fn callee_behind_nat(target: &Target) -> bool {
    let Some(uri) = target.request_uri.as_deref() else {
        return false;
    };
    let contact = openline_sip::uri::Uri::parse(uri).ok();
    match contact.as_ref().and_then(|u| u.sip()).map(|u| u.host.ip()) {
        Some(Some(ip)) => {
            openline_sip_net::canonical(ip)
                != openline_sip_net::canonical(target.destination.addr.ip())
        }
        // A name, or unreadable: it cannot be where the flow is; anchoring is the safe side.
        _ => true,
    }
}

/// Whether a target is a browser tab: its flow is a WebSocket (RFC 7118).
pub(super) fn to_a_browser(target: &Target) -> bool {
    matches!(
        target.destination.transport,
        openline_sip::Transport::Ws | openline_sip::Transport::Wss
    )
}

/// `message` with `body` instead of its own (Content-Length to match).
fn with_body(message: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut m = Message::parse(message).ok()?;
    m.body = body;
    Some(m.to_bytes())
}

impl ServerCore {
    /// The relay is on this host, bound to a wildcard: each party gets the relay's address on
    /// the side and in the family it reaches us by.
    pub fn set_media_facing(&mut self, facing: bool) {
        self.anchoring.facing = facing;
    }

    /// The relay's advertised addresses per family (IPv4, IPv6): a party of a family given
    /// one gets it.
    pub fn set_media_advertised(&mut self, by_family: [Option<std::net::IpAddr>; 2]) {
        self.anchoring.advertised = by_family;
    }

    /// The relay's address for a party at `party`, when it is chosen per party: the one
    /// advertised for its family, else its side of this host when the relay is on a wildcard.
    fn media_facing(&self, party: SocketAddr) -> Option<std::net::IpAddr> {
        let family = usize::from(openline_sip_net::canonical(party.ip()).is_ipv6());
        if let Some(ip) = self.anchoring.advertised[family] {
            return Some(ip);
        }
        if !self.anchoring.facing {
            return None;
        }
        let ip = self.us.addresses.as_ref()?.source_for(party)?;
        Some(openline_sip_net::canonical(ip))
    }

    /// A REGISTER from `source`: remembered when it shows the device is behind NAT.
    pub(super) fn note_register(&mut self, request: &Message<'_>, source: SocketAddr) {
        if self.config.media != MediaMode::Nat {
            return;
        }
        let contact_elsewhere = request
            .header(openline_sip::header::HeaderName::Contact)
            .and_then(openline_sip::header::NameAddr::parse)
            .and_then(|c| c.uri.sip().and_then(|u| u.host.ip()))
            .is_some_and(|ip| {
                openline_sip_net::canonical(ip) != openline_sip_net::canonical(source.ip())
            });
        let natted = &mut self.anchoring.natted;
        if sent_from_elsewhere(request, source) || contact_elsewhere {
            if natted.len() >= MOST_NATTED {
                natted.clear();
            }
            natted.insert(source);
        } else {
            natted.remove(&source);
        }
    }

    /// Parks a new INVITE with SDP until the relay rewrote its offer; true if it did.
    pub(super) fn anchor_request(
        &mut self,
        now: Instant,
        server: Option<TransactionId>,
        source: SocketAddr,
        request: &Message<'_>,
        (targets, route): (&[Target], RouteEdit),
    ) -> bool {
        let Some(server) = server else { return false };
        if request.method() != Method::Invite || self.anchoring.anchored.contains_key(&server) {
            return false;
        }
        let Some(body) = sdp(request) else {
            return false;
        };
        // A browser and a SIP phone speak different media (WebRTC, plain RTP): such a call
        // is always bridged by the relay; two browsers' media passes between them untouched.
        let from_browser = std::str::from_utf8(body).is_ok_and(codecs::is_webrtc);
        let browsers = targets.iter().filter(|t| to_a_browser(t)).count();
        if browsers > 0 && browsers < targets.len() && self.config.media != MediaMode::Never {
            // Each kind of device its own offer (a person's desk phone and tab ring at once).
            return self.anchor_split(
                now,
                (server, source),
                request,
                (targets, route),
                from_browser,
            );
        }
        let to_browser = !targets.is_empty() && targets.iter().all(to_a_browser);
        if from_browser && to_browser {
            return false;
        }
        let bridged = from_browser != to_browser;
        if !bridged
            && self.config.media == MediaMode::Nat
            && !behind_nat(body, source)
            && !sent_from_elsewhere(request, source)
            && !targets.iter().any(|t| {
                callee_behind_nat(t) || self.anchoring.natted.contains(&t.destination.addr)
            })
        {
            return false;
        }
        if self.config.media == MediaMode::Never {
            if bridged {
                // No relay runs: a browser and a phone have no media in common without it.
                let refusal = Refusal::new(
                    488,
                    "Not Acceptable Here (a browser and a SIP phone need the media relay, and media is never relayed here)",
                );
                if let Err(e) = self.refuse(now, server, source, request, refusal) {
                    tracing::debug!(error = %e, "could not refuse an INVITE");
                }
                return true;
            }
            return false;
        }
        if bridged {
            self.note_bridged_invite(request, source);
        }
        let relay_id = self.anchoring.relay_id(request.call_id);
        self.park_offer(
            (server, source),
            request,
            (targets, route),
            (relay_id, to_browser),
        );
        true
    }

    /// Sends `request`'s offer to the relay as call `relay_id` (its receivers `to_browser`
    /// or not) and parks the INVITE for `targets` until the relay rewrote it.
    pub(super) fn park_offer(
        &mut self,
        (server, source): (TransactionId, SocketAddr),
        request: &Message<'_>,
        (targets, route): (&[Target], RouteEdit),
        (relay_id, to_browser): (String, bool),
    ) {
        let Some(body) = sdp(request) else {
            return;
        };
        let tag = request.from_tag.unwrap_or("").to_string();
        let facing = targets
            .first()
            .and_then(|t| self.media_facing(t.destination.addr));
        let party = request
            .from()
            .and_then(|f| f.uri.sip().map(super::presencing::aor_of));
        let id = self.anchoring.queue(Command::Offer {
            call_id: relay_id.clone(),
            tag,
            party,
            sdp: body.to_vec(),
            facing,
            to_browser,
        });
        // A mixed fork's first: its answers find their session by kind (splitting.rs).
        self.anchoring
            .anchored
            .entry(server)
            .or_insert((relay_id, source));
        tracing::debug!(?facing, "offer sent to the relay");
        self.anchoring.waiting.insert(
            id,
            Parked::Request {
                server,
                source,
                request: request.to_bytes(),
                targets: targets.to_vec(),
                route,
            },
        );
    }

    /// A response for server transaction `server`: sent now, or held for the relay (an answer
    /// to rewrite, or one behind a held response, so they keep their order).
    pub(super) fn respond_anchored(
        &mut self,
        now: Instant,
        server: TransactionId,
        response: Vec<u8>,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        let Some((mut call_id, caller)) = self.anchoring.anchored.get(&server).cloned() else {
            return self.endpoint.respond(now, server, response);
        };
        let facing = self.media_facing(caller);
        let parsed = Message::parse(&response).ok();
        let code = parsed.as_ref().and_then(Message::status).unwrap_or(500);
        let mut answer = parsed
            .as_ref()
            .filter(|_| (180..300).contains(&code))
            .and_then(|m| sdp(m).map(|b| (m.to_tag.unwrap_or("").to_string(), b.to_vec())));
        if let Some(m) = parsed.as_ref() {
            // A mixed fork: the answer goes to its kind's session, the winner's stays.
            let webrtc = answer
                .as_ref()
                .is_some_and(|(_, b)| std::str::from_utf8(b).is_ok_and(codecs::is_webrtc));
            match self.split_session(server, m, (code, webrtc)) {
                Some(Some(id)) => call_id = id,
                Some(None) => answer = None,
                None => {}
            }
        }
        let party = parsed
            .as_ref()
            .and_then(|m| m.to())
            .and_then(|t| t.uri.sip().map(super::presencing::aor_of));
        let op = answer.map(|(tag, sdp)| {
            let id = self.anchoring.queue(Command::Answer {
                call_id: call_id.clone(),
                tag,
                party,
                sdp,
                facing,
            });
            self.anchoring
                .waiting
                .insert(id, Parked::Response { server });
            id
        });
        if code >= 300 {
            // The call failed: its media session goes, and nothing is left to hang up.
            if let Some(m) = parsed.as_ref() {
                self.forget_bridged(m.call_id);
            }
            self.anchoring.failed(server);
        }
        let held = self.anchoring.responses.entry(server).or_default();
        held.push_back((op, response));
        self.flush_responses(now, server)
    }

    /// Sends the held responses of `server` that no longer wait for the relay, in order.
    fn flush_responses(
        &mut self,
        now: Instant,
        server: TransactionId,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        let mut ready = Vec::new();
        if let Some(held) = self.anchoring.responses.get_mut(&server) {
            while held.front().is_some_and(|(op, _)| op.is_none()) {
                ready.extend(held.pop_front().map(|(_, response)| response));
            }
            // Nothing held: the next response goes out at once (an empty queue is the same).
            if held.is_empty() {
                self.anchoring.responses.remove(&server);
            }
        }
        let mut result = Ok(());
        for response in ready {
            result = result.and(self.endpoint.respond(now, server, response));
        }
        result
    }

    /// The caller cancelled INVITE `server` while its offer was at the relay: it gets 487 and
    /// never goes out, and the relay forgets the call. False if it was not waiting there.
    pub(super) fn cancel_parked(&mut self, now: Instant, server: TransactionId) -> bool {
        let parked: Vec<u64> = self
            .anchoring
            .waiting
            .iter()
            .filter_map(|(id, p)| match p {
                Parked::Request { server: s, .. } if *s == server => Some(*id),
                _ => None,
            })
            .collect();
        let Some((&id, others)) = parked.split_first() else {
            return false;
        };
        for other in others {
            self.anchoring.waiting.remove(other);
        }
        if self.forwarding.has(server) {
            // Part of a mixed fork already rings: the CANCEL goes to it as to any fork.
            self.anchoring.waiting.remove(&id);
            return false;
        }
        let Some(Parked::Request {
            source, request, ..
        }) = self.anchoring.waiting.remove(&id)
        else {
            return false;
        };
        self.anchoring.failed(server);
        if let Ok(m) = Message::parse(&request) {
            self.forget_bridged(m.call_id);
            let refusal = Refusal::new(487, "Request Terminated");
            if let Err(e) = self.refuse(now, server, source, &m, refusal) {
                tracing::debug!(error = %e, "could not answer a cancelled INVITE");
            }
        }
        true
    }

    /// A call's media ends (a BYE went through, or a CANCEL): the relay forgets it.
    pub(super) fn release_media(&mut self, request: &Message<'_>) {
        if self.config.media != MediaMode::Never {
            self.anchoring.delete_call(request.call_id);
        }
    }

    /// The next command for the relay.
    pub fn poll_media_op(&mut self) -> Option<MediaOp> {
        self.anchoring.poll()
    }

    /// The relay answered command `id`.
    pub fn handle_media(&mut self, now: Instant, id: u64, result: CommandResult) {
        match self.anchoring.waiting.remove(&id) {
            Some(Parked::Request {
                server,
                source,
                request,
                targets,
                route,
            }) => self.offer_answered(now, (server, source), &request, (targets, route), result),
            Some(Parked::Response { server }) => self.answer_answered(now, (server, id), result),
            None => {}
        }
        self.pump(now);
    }

    fn offer_answered(
        &mut self,
        now: Instant,
        (server, source): (TransactionId, SocketAddr),
        request: &[u8],
        (targets, route): (Vec<Target>, RouteEdit),
        result: CommandResult,
    ) {
        tracing::debug!(ok = result.is_ok(), "the relay rewrote an offer");
        let last_of_split = self.anchoring.split.get_mut(&server).map(|s| {
            s.pending = s.pending.saturating_sub(1);
            s.pending == 0
        });
        let rewritten = match result {
            Ok(sdp) => with_body(request, sdp.as_bytes()),
            // One kind of a mixed fork cannot be offered (no codec a browser has): the others
            // still ring, unless none is left.
            Err(e)
                if last_of_split == Some(false)
                    || (last_of_split.is_some() && self.forwarding.has(server)) =>
            {
                tracing::info!(error = %e, "a mixed fork's offer for one kind of device failed");
                return;
            }
            Err(e) => {
                self.anchoring.anchored.remove(&server);
                let refusal = match e {
                    ControlError::Sdp(_)
                    | ControlError::NotText
                    | ControlError::TooManyStreams(_)
                    | ControlError::NoSharedCodec(_)
                    | ControlError::Browser(_) => {
                        Refusal::new(488, format!("Not Acceptable Here ({e})"))
                    }
                    _ => Refusal::new(503, format!("Service Unavailable (media relay: {e})"))
                        .with("Retry-After", "5"),
                };
                if let Ok(m) = Message::parse(request) {
                    if let Err(e) = self.refuse(now, server, source, &m, refusal) {
                        tracing::debug!(error = %e, "could not refuse an INVITE");
                    }
                }
                return;
            }
        };
        match rewritten.as_deref().map(Message::parse) {
            Some(Ok(m)) => self.forward(now, Some(server), source, &m, targets, route),
            _ => tracing::warn!("an offer rewritten by the relay does not parse"),
        }
    }

    fn answer_answered(
        &mut self,
        now: Instant,
        (server, id): (TransactionId, u64),
        result: CommandResult,
    ) {
        let entry = self
            .anchoring
            .responses
            .get_mut(&server)
            .and_then(|held| held.iter_mut().find(|(op, _)| *op == Some(id)));
        let Some(entry) = entry else {
            return;
        };
        entry.0 = None;
        let mut refused = None;
        match result {
            Ok(sdp) => {
                if let Some(rewritten) = with_body(&entry.1, sdp.as_bytes()) {
                    entry.1 = rewritten;
                }
            }
            // A bridged call's answer cannot pass unbridged (neither side could use the
            // other's SDP): a 2xx still goes on, as a proxy must, and the call is then ended.
            Err(e) => {
                tracing::warn!(error = %e, "the relay refused an answer");
                refused = Message::parse(&entry.1)
                    .ok()
                    .filter(|m| m.status().is_some_and(|c| (200..300).contains(&c)))
                    .map(|m| (m.call_id.to_string(), e));
            }
        }
        if let Err(e) = self.flush_responses(now, server) {
            tracing::debug!(error = %e, "could not pass a response on");
        }
        if let Some((call_id, e)) = refused {
            let reason = format!("SIP;cause=488;text=\"{}\"", e.to_string().replace('"', "'"));
            self.hang_up_bridged(now, &call_id, &reason);
        }
    }
}

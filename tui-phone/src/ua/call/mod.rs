//! One call, sans-IO (RFC 3261 sections 12-15, RFC 3264): the INVITE dialog from either side,
//! with its offer/answer, CANCEL, BYE, and hold/resume by re-INVITE. It drives client and
//! server transactions through the [`Endpoint`] it is handed, and says what happened as
//! [`CallEvent`]s, including the media the phone should run.
//!
//! `uac.rs` is the calling side (INVITE, digest, CANCEL, ACK for 2xx); `uas.rs` the called
//! side (ringing, answer or reject, 2xx retransmitted until the ACK, CANCEL); this file the
//! dialog both share (tags, route set, in-dialog requests, BYE, re-INVITE).

mod uac;
mod uas;

use crate::ua::Account;
use crate::ua::offer::{self, Direction, Local, Negotiated, OfferError, SrtpKey};
use openline_sip::header::HeaderName;
use openline_sip::message::RequestBuilder;
use openline_sip::transaction::{Destination, TransactionId};
use openline_sip::{Endpoint, Message, Method, StartLine, Transport};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a call stands, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Our INVITE is out.
    Calling,
    /// The other side rings (a 180/183 came).
    Ringing,
    /// Someone calls us: answer or reject.
    Incoming,
    /// Talking.
    Established,
    /// We hold the other side.
    OnHold,
    /// The other side holds us.
    HeldByPeer,
}

impl CallState {
    /// The word used in headless events and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Calling => "calling",
            CallState::Ringing => "ringing",
            CallState::Incoming => "incoming",
            CallState::Established => "established",
            CallState::OnHold => "on_hold",
            CallState::HeldByPeer => "held_by_peer",
        }
    }
}

/// What a call tells the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new state.
    State(CallState),
    /// The call is over: the status that ended it (0 when nothing answered) and why.
    Ended {
        /// The SIP status, or 0.
        code: u16,
        /// The reason, for the user.
        reason: String,
    },
    /// Run media as settled (again, after a re-INVITE), or stop it (`None`).
    Media(Option<Negotiated>),
    /// A request the user made could not be carried out (e.g. hold while ringing).
    Refused(String),
}

/// Who we are in the call, and where our media listen.
#[derive(Debug, Clone)]
pub struct Me {
    /// The account (digest answers).
    pub account: Account,
    /// Our SIP address (for Via and Contact).
    pub sip: SocketAddr,
    /// The outbound proxy.
    pub proxy: SocketAddr,
    /// Our RTP address as the other side should see it.
    pub rtp: SocketAddr,
    /// Our SDES key, offered and accepted when given.
    pub key: Option<SrtpKey>,
}

impl Me {
    fn aor(&self) -> String {
        format!("sip:{}@{}", self.account.user, self.account.domain)
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.account.user, self.sip)
    }
}

/// 2xx retransmission until the ACK (RFC 3261 13.3.1.4): T1 doubling to T2, 64*T1 at most.
#[derive(Debug)]
pub(crate) struct OkRetransmit {
    transaction: TransactionId,
    response: Vec<u8>,
    next: Instant,
    interval: std::time::Duration,
    give_up: Instant,
}

/// A request of ours under way in this call, by what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Invite,
    Cancel,
    Bye,
    ReInvite(Direction),
    /// An INVITE or re-INVITE whose 2xx came: a retransmitted 2xx gets the ACK again.
    Answered,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    me: Me,
    call_id: String,
    local_tag: String,
    /// Our URI in the dialog (From when we call, the To we were called at otherwise).
    local_uri: String,
    /// The other side's URI (To when we call, From otherwise).
    remote_uri: String,
    remote_tag: Option<String>,
    /// Where in-dialog requests go (the other side's Contact).
    remote_target: String,
    /// Record-Route, in the order our requests carry it.
    route_set: Vec<String>,
    local_cseq: u32,
    state: Option<CallState>,
    ended: bool,
    requests: Vec<(TransactionId, Pending)>,
    /// The INVITE we sent (CANCEL copies it), and whether it carried credentials.
    invite: Option<(Vec<u8>, bool)>,
    provisional_seen: bool,
    cancel_wanted: bool,
    /// The incoming INVITE's transaction and offer, until answered.
    incoming: Option<uas::Ringing>,
    pub(crate) ok_retransmit: Option<OkRetransmit>,
    /// Hang up as soon as the ACK for our 2xx arrives.
    bye_after_ack: bool,
    /// The last ACK we sent for a 2xx: sent again for each retransmitted 2xx.
    last_ack: Option<(Vec<u8>, Destination)>,
    /// o= session id and version (the version grows with each description we send).
    session: (u64, u64),
    /// How we want audio to flow (SendOnly while we hold).
    wish: Direction,
    media: Option<Negotiated>,
    events: VecDeque<CallEvent>,
}

impl Call {
    fn new(me: Me, call_id: String, local_tag: String, session: u64) -> Self {
        Call {
            me,
            call_id,
            local_tag,
            local_uri: String::new(),
            remote_uri: String::new(),
            remote_tag: None,
            remote_target: String::new(),
            route_set: Vec::new(),
            local_cseq: 0,
            state: None,
            ended: false,
            requests: Vec::new(),
            invite: None,
            provisional_seen: false,
            cancel_wanted: false,
            incoming: None,
            ok_retransmit: None,
            bye_after_ack: false,
            last_ack: None,
            session: (session, 0),
            wish: Direction::SendRecv,
            media: None,
            events: VecDeque::new(),
        }
    }

    /// The Call-ID (requests of this call carry it).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The other side, `sip:user@domain`.
    pub fn remote(&self) -> &str {
        &self.remote_uri
    }

    /// Where the call stands; `None` once ended.
    pub fn state(&self) -> Option<CallState> {
        if self.ended { None } else { self.state }
    }

    /// Whether the call is over (the phone may forget it).
    pub fn is_ended(&self) -> bool {
        self.ended && self.ok_retransmit.is_none()
    }

    /// What media run now.
    pub fn media(&self) -> Option<&Negotiated> {
        self.media.as_ref()
    }

    /// Whether `id` is one of this call's client transactions.
    pub fn owns(&self, id: TransactionId) -> bool {
        self.requests.iter().any(|(t, _)| *t == id)
            || self.incoming.as_ref().is_some_and(|r| r.transaction == id)
    }

    /// Whether an in-dialog request belongs to this call.
    pub fn matches(&self, request: &Message<'_>) -> bool {
        request.call_id == self.call_id
            && request.to_tag == Some(self.local_tag.as_str())
            && request.from_tag == self.remote_tag.as_deref()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    fn set_state(&mut self, state: CallState) {
        if self.state != Some(state) && !self.ended {
            self.state = Some(state);
            self.events.push_back(CallEvent::State(state));
        }
    }

    fn end(&mut self, code: u16, reason: impl Into<String>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.media.take().is_some() {
            self.events.push_back(CallEvent::Media(None));
        }
        self.events.push_back(CallEvent::Ended {
            code,
            reason: reason.into(),
        });
    }

    fn set_media(&mut self, negotiated: Negotiated) {
        let state = match (negotiated.direction, self.wish) {
            (_, Direction::SendOnly | Direction::Inactive) => CallState::OnHold,
            (Direction::RecvOnly | Direction::Inactive, _) => CallState::HeldByPeer,
            _ => CallState::Established,
        };
        self.media = Some(negotiated.clone());
        self.events.push_back(CallEvent::Media(Some(negotiated)));
        self.set_state(state);
    }

    /// Our description's parameters (a new version each time one is written).
    fn local(&mut self) -> (SocketAddr, (u64, u64), Direction) {
        self.session.1 += 1;
        (self.me.rtp, self.session, self.wish)
    }

    fn offer(&mut self) -> (String, Direction) {
        let (rtp, session, direction) = self.local();
        let key = self.me.key;
        let local = Local {
            rtp,
            session,
            direction,
            key: key.as_ref(),
        };
        (offer::offer(&local), direction)
    }

    /// The settings our last offer was made with (to read its answer).
    fn offered(&self, direction: Direction) -> (SocketAddr, Direction, Option<SrtpKey>) {
        (self.me.rtp, direction, self.me.key)
    }

    fn read_answer(&self, body: &[u8], direction: Direction) -> Result<Negotiated, OfferError> {
        let text = std::str::from_utf8(body).map_err(|_| OfferError::NoAudio)?;
        let (rtp, direction, key) = self.offered(direction);
        offer::read_answer(
            text,
            &Local {
                rtp,
                session: self.session,
                direction,
                key: key.as_ref(),
            },
        )
    }

    fn via(&self, endpoint: &mut Endpoint) -> String {
        format!(
            "SIP/2.0/UDP {};branch={};rport",
            self.me.sip,
            endpoint.new_branch()
        )
    }

    /// Where in-dialog requests go: the first route, else the remote target, when it names an
    /// address; otherwise the outbound proxy.
    fn next_hop(&self) -> Destination {
        let first = self
            .route_set
            .first()
            .map(|r| r.trim().trim_start_matches('<'))
            .map(|r| r.split(['>', ';']).next().unwrap_or(r).to_string())
            .unwrap_or_else(|| self.remote_target.clone());
        let addr = openline_sip::uri::Uri::parse(&first)
            .ok()
            .and_then(|u| {
                let sip = u.sip()?;
                Some(SocketAddr::new(sip.host.ip()?, sip.port.unwrap_or(5060)))
            })
            .unwrap_or(self.me.proxy);
        Destination {
            transport: Transport::Udp,
            addr,
        }
    }

    /// An in-dialog request (BYE, re-INVITE, ACK) with its next hop; ACK reuses `cseq`.
    fn in_dialog(
        &mut self,
        endpoint: &mut Endpoint,
        method: Method<'_>,
        cseq: Option<u32>,
        body: Option<&str>,
    ) -> (Vec<u8>, Destination) {
        let cseq = cseq.unwrap_or_else(|| {
            self.local_cseq += 1;
            self.local_cseq
        });
        let mut b = RequestBuilder::new(method, &self.remote_target)
            .header("Via", self.via(endpoint))
            .header("Max-Forwards", 70);
        for route in &self.route_set {
            b = b.header("Route", route);
        }
        let tag = self.remote_tag.as_deref().unwrap_or("");
        let b = b
            .header(
                "From",
                format!("<{}>;tag={}", self.local_uri, self.local_tag),
            )
            .header("To", format!("<{}>;tag={tag}", self.remote_uri))
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{cseq} {method}"))
            .header("Contact", self.me.contact());
        let request = match body {
            Some(sdp) => b.body(Some("application/sdp"), sdp.as_bytes()),
            None => b.finish(),
        };
        (request, self.next_hop())
    }

    fn send(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        request: Vec<u8>,
        destination: Destination,
        what: Pending,
    ) -> bool {
        match endpoint.send_request(now, request, destination) {
            Ok(id) => {
                self.requests.push((id, what));
                true
            }
            Err(e) => {
                self.end(0, format!("could not send: {e}"));
                false
            }
        }
    }

    /// Hangs up, whatever the state: CANCEL while it rings out, a rejection while it rings
    /// here, BYE once answered.
    pub fn hangup(&mut self, now: Instant, endpoint: &mut Endpoint) {
        if self.ended {
            return;
        }
        match self.state {
            Some(CallState::Calling | CallState::Ringing) => self.cancel(now, endpoint),
            Some(CallState::Incoming) => self.reject(now, endpoint, 603, "Decline"),
            _ if self.ok_retransmit.is_some() => self.bye_after_ack = true,
            _ => self.bye(now, endpoint, 0, "hung up".into()),
        }
    }

    /// Ends the dialog with a BYE; the call ends with `code` and `reason`.
    fn bye(&mut self, now: Instant, endpoint: &mut Endpoint, code: u16, reason: String) {
        let (request, destination) = self.in_dialog(endpoint, Method::Bye, None, None);
        if self.send(now, endpoint, request, destination, Pending::Bye) {
            self.end(code, reason);
        }
    }

    /// The request `what` got its 2xx.
    fn mark_answered(&mut self, what: Pending) {
        for (_, p) in self.requests.iter_mut().filter(|(_, p)| *p == what) {
            *p = Pending::Answered;
        }
    }

    /// A client transaction of this call is over (the endpoint forgot it).
    pub fn on_terminated(&mut self, id: TransactionId) {
        self.requests.retain(|(t, _)| *t != id);
    }

    /// Holds the other side (re-INVITE with a=sendonly), or takes it off hold.
    pub fn hold(&mut self, now: Instant, endpoint: &mut Endpoint, hold: bool) {
        let talking = matches!(
            self.state(),
            Some(CallState::Established | CallState::OnHold | CallState::HeldByPeer)
        );
        if !talking || self.ok_retransmit.is_some() {
            self.events
                .push_back(CallEvent::Refused("not in an answered call".into()));
            return;
        }
        if self
            .requests
            .iter()
            .any(|(_, p)| matches!(p, Pending::ReInvite(_)))
        {
            self.events
                .push_back(CallEvent::Refused("a re-INVITE is still under way".into()));
            return;
        }
        self.wish = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let (sdp, direction) = self.offer();
        let (request, destination) = self.in_dialog(endpoint, Method::Invite, None, Some(&sdp));
        self.send(
            now,
            endpoint,
            request,
            destination,
            Pending::ReInvite(direction),
        );
    }

    /// A response to one of our requests in this call.
    pub fn on_response(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        id: TransactionId,
        response: &Message<'_>,
    ) {
        let Some(&(_, what)) = self.requests.iter().find(|(t, _)| *t == id) else {
            return;
        };
        let code = response.status().unwrap_or(0);
        if code >= 200 && matches!(what, Pending::Cancel | Pending::Bye) {
            self.requests.retain(|(t, _)| *t != id);
        }
        match what {
            Pending::Invite => self.on_invite_response(now, endpoint, response),
            Pending::ReInvite(direction) => {
                self.on_reinvite_response(endpoint, id, response, direction)
            }
            Pending::Answered if (200..300).contains(&code) => {
                if response.to_tag == self.remote_tag.as_deref() {
                    if let Some((ack, destination)) = self.last_ack.clone() {
                        endpoint.send_stateless(destination, ack);
                    }
                }
            }
            Pending::Answered | Pending::Cancel | Pending::Bye => {}
        }
    }

    fn on_reinvite_response(
        &mut self,
        endpoint: &mut Endpoint,
        id: TransactionId,
        response: &Message<'_>,
        direction: Direction,
    ) {
        let code = response.status().unwrap_or(0);
        if code < 200 {
            return;
        }
        if code >= 300 {
            self.requests.retain(|(t, _)| *t != id);
            self.wish = Direction::SendRecv;
            self.events.push_back(CallEvent::Refused(format!(
                "{} {}",
                code,
                reason_of(response)
            )));
            return;
        }
        self.ack(endpoint, response.cseq.seq);
        self.mark_answered(Pending::ReInvite(direction));
        match self.read_answer(response.body, direction) {
            Ok(n) => self.set_media(n),
            Err(e) => self.events.push_back(CallEvent::Refused(e.to_string())),
        }
    }

    /// A client transaction of ours got no answer or could not be sent.
    pub fn on_no_answer(&mut self, _now: Instant, id: TransactionId, transport_error: bool) {
        let Some(&(_, what)) = self.requests.iter().find(|(t, _)| *t == id) else {
            return;
        };
        self.requests.retain(|(t, _)| *t != id);
        let (code, reason) = if transport_error {
            (503, "the network refused the request")
        } else {
            (408, "no answer")
        };
        match what {
            Pending::Invite if self.media.is_none() => self.end(code, reason),
            Pending::ReInvite(_) => {
                // RFC 3261 14.1: a re-INVITE that times out ends the dialog.
                self.end(code, reason);
            }
            _ => {}
        }
    }

    /// When to call [`Call::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ok_retransmit.as_ref().map(|r| r.next.min(r.give_up))
    }

    /// The time passed `now`: retransmits our 2xx, or gives up on its ACK.
    pub fn handle_timeout(&mut self, now: Instant, endpoint: &mut Endpoint) {
        self.retransmit_ok(now, endpoint);
    }
}

/// A response's reason phrase.
fn reason_of(response: &Message<'_>) -> String {
    match response.start {
        StartLine::Response { reason, .. } => reason.to_string(),
        StartLine::Request { .. } => String::new(),
    }
}

/// The URI of a From/To/Contact value, without display name or parameters.
fn uri_of(value: &str) -> Option<String> {
    openline_sip::header::NameAddr::parse(value.trim()).map(|n| n.uri.as_str().to_string())
}

/// The route set from a message's Record-Route entries, in the order they appear.
fn record_route(message: &Message<'_>) -> Vec<String> {
    message
        .list(HeaderName::RecordRoute)
        .map(|r| r.trim().to_string())
        .collect()
}

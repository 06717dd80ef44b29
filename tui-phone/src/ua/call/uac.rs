//! The calling side: the INVITE with our offer (answered again with credentials on a
//! challenge), ringing, the 2xx and its ACK, CANCEL, and failures.

use super::{Call, CallState, Me, Pending, reason_of, record_route, uri_of};
use openline_sip::header::HeaderName;
use openline_sip::message::RequestBuilder;
use openline_sip::transaction::Destination;
use openline_sip::{Endpoint, Message, Method, Transport};
use std::time::Instant;

impl Call {
    /// Calls `to` (`sip:user@domain`) through the proxy: the INVITE goes out at once.
    pub fn dial(now: Instant, endpoint: &mut Endpoint, me: Me, to: &str, session: u64) -> Call {
        let (call_id, tag) = (endpoint.new_tag(), endpoint.new_tag());
        let mut call = Call::new(me, call_id, tag, session);
        call.local_uri = call.me.aor();
        call.remote_uri = to.to_string();
        call.remote_target = to.to_string();
        call.set_state(CallState::Calling);
        call.send_invite(now, endpoint, None);
        call
    }

    /// The INVITE (again with `credentials`, a new CSeq and branch).
    fn send_invite(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        credentials: Option<(&str, String)>,
    ) {
        let (sdp, _) = self.offer();
        self.local_cseq += 1;
        let mut b = RequestBuilder::new(Method::Invite, &self.remote_uri)
            .header("Via", self.via(endpoint))
            .header("Max-Forwards", 70)
            .header(
                "From",
                format!("<{}>;tag={}", self.local_uri, self.local_tag),
            )
            .header("To", format!("<{}>", self.remote_uri))
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} INVITE", self.local_cseq))
            .header("Contact", self.me.contact())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, MESSAGE, OPTIONS");
        let authorized = credentials.is_some();
        if let Some((name, value)) = credentials {
            b = b.header(name, value);
        }
        let request = b.body(Some("application/sdp"), sdp.as_bytes());
        self.invite = Some((request.clone(), authorized));
        self.provisional_seen = false;
        let proxy = Destination {
            transport: Transport::Udp,
            addr: self.me.proxy,
        };
        self.send(now, endpoint, request, proxy, Pending::Invite);
    }

    pub(super) fn on_invite_response(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        response: &Message<'_>,
    ) {
        let code = response.status().unwrap_or(0);
        match code {
            100..=199 => {
                self.provisional_seen = true;
                if self.cancel_wanted {
                    self.cancel(now, endpoint);
                } else if code > 100 {
                    self.set_state(CallState::Ringing);
                }
            }
            200..=299 => self.on_invite_ok(now, endpoint, response),
            401 | 407 if !self.invite.as_ref().is_some_and(|(_, a)| *a) && !self.cancel_wanted => {
                self.requests.retain(|(_, p)| *p != Pending::Invite);
                let (challenge, header) = if code == 401 {
                    (HeaderName::WwwAuthenticate, "Authorization")
                } else {
                    (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
                };
                let challenge = response.header(challenge).unwrap_or("");
                let cnonce = endpoint.new_tag();
                let answered =
                    self.me
                        .account
                        .answer(challenge, ("INVITE", &self.remote_uri), (&cnonce, 1));
                match answered {
                    Some(value) => self.send_invite(now, endpoint, Some((header, value))),
                    None => self.end(code, "a challenge we cannot answer"),
                }
            }
            _ => {
                self.requests.retain(|(_, p)| *p != Pending::Invite);
                let reason = if code == 487 && self.cancel_wanted {
                    "cancelled".to_string()
                } else {
                    reason_of(response)
                };
                self.end(code, reason);
            }
        }
    }

    fn on_invite_ok(&mut self, now: Instant, endpoint: &mut Endpoint, response: &Message<'_>) {
        self.mark_answered(Pending::Invite);
        self.remote_tag = response.to_tag.map(str::to_string);
        if let Some(target) = response.header(HeaderName::Contact).and_then(uri_of) {
            self.remote_target = target;
        }
        self.route_set = record_route(response);
        self.route_set.reverse();
        self.ack(endpoint, response.cseq.seq);
        if self.cancel_wanted {
            // Answered while we were cancelling: it has to be ended with a BYE.
            self.bye(now, endpoint, 487, "cancelled".into());
            return;
        }
        match self.read_answer(response.body, self.wish) {
            Ok(negotiated) => self.set_media(negotiated),
            Err(e) => self.bye(now, endpoint, 488, format!("unusable answer: {e}")),
        }
    }

    /// Sends the ACK for a 2xx to the INVITE with CSeq `cseq` (it has no transaction).
    pub(super) fn ack(&mut self, endpoint: &mut Endpoint, cseq: u32) {
        let (ack, destination) = self.in_dialog(endpoint, Method::Ack, Some(cseq), None);
        self.last_ack = Some((ack.clone(), destination));
        endpoint.send_stateless(destination, ack);
    }

    /// CANCEL for our INVITE (RFC 3261 9.1): at once if something provisional came, else as
    /// soon as it does.
    pub(super) fn cancel(&mut self, now: Instant, endpoint: &mut Endpoint) {
        self.cancel_wanted = true;
        if !self.provisional_seen || self.requests.iter().any(|(_, p)| *p == Pending::Cancel) {
            return;
        }
        let Some((invite, _)) = &self.invite else {
            return;
        };
        let Ok(parsed) = Message::parse(invite) else {
            return;
        };
        let mut b = RequestBuilder::new(Method::Cancel, &self.remote_uri);
        for (name, value) in parsed.headers.iter().map(|h| (h.name, h.value)) {
            match name {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::Route
                | HeaderName::MaxForwards => b = b.header(name.as_str(), value),
                _ => {}
            }
        }
        let cancel = b
            .header("CSeq", format!("{} CANCEL", parsed.cseq.seq))
            .finish();
        drop(parsed);
        let proxy = Destination {
            transport: Transport::Udp,
            addr: self.me.proxy,
        };
        if let Ok(id) = endpoint.send_request(now, cancel, proxy) {
            self.requests.push((id, Pending::Cancel));
        }
    }
}

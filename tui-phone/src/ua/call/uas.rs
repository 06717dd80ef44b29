//! The called side: a new INVITE rings (180) until the user answers (200 with our answer,
//! retransmitted until the ACK) or rejects; the caller's CANCEL ends it with 487. In-dialog
//! requests (BYE, re-INVITE) from the other side are answered here too.

use super::{Call, CallState, Me, OkRetransmit, Pending, record_route, uri_of};
use crate::ua::offer::{self, Local, OfferError};
use openline_sip::header::HeaderName;
use openline_sip::message::{ResponseBuilder, standard_reason};
use openline_sip::transaction::TransactionId;
use openline_sip::{Endpoint, Message, Method};
use std::net::SocketAddr;
use std::time::Instant;

/// An INVITE waiting for the user (or a re-INVITE being answered).
#[derive(Debug)]
pub(super) struct Ringing {
    pub(super) transaction: TransactionId,
    source: SocketAddr,
    /// The request, kept to build responses from.
    request: Vec<u8>,
}

/// Why an incoming INVITE was refused at once, with the status to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
}

impl Call {
    /// A new INVITE for us: checks its offer and rings (180), or says how to refuse it.
    pub fn incoming(
        now: Instant,
        endpoint: &mut Endpoint,
        me: Me,
        (transaction, source): (TransactionId, SocketAddr),
        request: &Message<'_>,
        session: u64,
    ) -> Result<Call, Refusal> {
        let refuse = |code: u16, reason: String| Refusal { code, reason };
        let remote_tag = request
            .from_tag
            .ok_or_else(|| refuse(400, "From has no tag".into()))?;
        let from = request.header(HeaderName::From).and_then(uri_of);
        let to = request.header(HeaderName::To).and_then(uri_of);
        let (Some(from), Some(to)) = (from, to) else {
            return Err(refuse(400, "unreadable From or To".into()));
        };
        let target = request
            .header(HeaderName::Contact)
            .and_then(uri_of)
            .ok_or_else(|| refuse(400, "INVITE without a Contact".into()))?;
        let mut call = Call::new(me, request.call_id.to_string(), endpoint.new_tag(), session);
        call.local_uri = to;
        call.remote_uri = from;
        call.remote_tag = Some(remote_tag.to_string());
        call.remote_target = target;
        call.route_set = record_route(request);
        call.local_cseq = 0;
        if !request.body.is_empty() {
            // Try the answer now, so an offer we cannot take is refused before ringing.
            call.answer_sdp(request.body)
                .map_err(|e| refuse(488, e.to_string()))?;
        }
        call.incoming = Some(Ringing {
            transaction,
            source,
            request: request_bytes(request),
        });
        call.respond(now, endpoint, 180, None);
        call.set_state(CallState::Incoming);
        Ok(call)
    }

    /// Our answer to an offer body, and what it settles.
    fn answer_sdp(&mut self, body: &[u8]) -> Result<(String, offer::Negotiated), OfferError> {
        let text = std::str::from_utf8(body).map_err(|_| OfferError::NoAudio)?;
        let (rtp, session, direction) = self.local();
        let key = self.me.key;
        offer::answer(
            text,
            &Local {
                rtp,
                session,
                direction,
                key: key.as_ref(),
            },
        )
    }

    /// Sends `code` (with `body` as SDP) through the ringing transaction.
    fn respond(&mut self, now: Instant, endpoint: &mut Endpoint, code: u16, body: Option<&str>) {
        let Some(ringing) = &self.incoming else {
            return;
        };
        let Ok(request) = Message::parse(&ringing.request) else {
            return;
        };
        let mut b = ResponseBuilder::new(
            code,
            standard_reason(code),
            &request.echo(),
            ringing.source,
            Some(&self.local_tag),
        );
        if code < 300 {
            for route in record_route(&request) {
                b = b.header("Record-Route", route);
            }
            b = b.header("Contact", self.me.contact());
        }
        let response = match body {
            Some(sdp) => b.body(Some("application/sdp"), sdp.as_bytes()),
            None => b.finish(),
        };
        let id = ringing.transaction;
        if (200..300).contains(&code) {
            let t1 = endpoint.timers().t1;
            self.ok_retransmit = Some(OkRetransmit {
                transaction: id,
                response: response.clone(),
                next: now + t1,
                interval: t1,
                give_up: now + t1 * 64,
            });
        }
        let _ = endpoint.respond(now, id, response);
    }

    /// Answers the ringing call: 200 with our answer (or our offer, when the INVITE had none).
    pub fn answer(&mut self, now: Instant, endpoint: &mut Endpoint) {
        if self.state() != Some(CallState::Incoming) {
            self.events
                .push_back(super::CallEvent::Refused("no call is ringing".into()));
            return;
        }
        let offer_body = self
            .incoming
            .as_ref()
            .and_then(|r| Message::parse(&r.request).ok().map(|m| m.body.to_vec()))
            .unwrap_or_default();
        if offer_body.is_empty() {
            // Late offer (RFC 3261 13.2.1): ours goes in the 200, theirs comes in the ACK.
            let (sdp, _) = self.offer();
            self.respond(now, endpoint, 200, Some(&sdp));
            self.set_state(CallState::Established);
            return;
        }
        match self.answer_sdp(&offer_body) {
            Ok((sdp, negotiated)) => {
                self.respond(now, endpoint, 200, Some(&sdp));
                self.set_media(negotiated);
            }
            Err(e) => {
                self.respond(now, endpoint, 488, None);
                self.end(488, e.to_string());
            }
        }
    }

    /// Rejects the ringing call with `code` (486 busy, 603 decline).
    pub fn reject(&mut self, now: Instant, endpoint: &mut Endpoint, code: u16, reason: &str) {
        if self.state() != Some(CallState::Incoming) {
            return;
        }
        self.respond(now, endpoint, code, None);
        self.incoming = None;
        self.end(code, reason);
    }

    /// The caller cancelled (the phone answered the CANCEL itself): 487 to the INVITE.
    pub fn on_cancel(&mut self, now: Instant, endpoint: &mut Endpoint) {
        if self.state() == Some(CallState::Incoming) {
            self.respond(now, endpoint, 487, None);
            self.incoming = None;
            self.end(487, "the caller hung up");
        }
    }

    /// The ACK for our 2xx (late offers carry the answer in it).
    pub fn on_ack(&mut self, now: Instant, endpoint: &mut Endpoint, ack: &Message<'_>) {
        let Some(r) = &self.ok_retransmit else {
            return;
        };
        let Ok(cseq) = Message::parse(&r.response).map(|m| m.cseq.seq) else {
            return;
        };
        if ack.cseq.seq != cseq {
            return;
        }
        self.ok_retransmit = None;
        self.incoming = None;
        if self.media.is_none() && !ack.body.is_empty() {
            let direction = self.wish;
            match self.read_answer(ack.body, direction) {
                Ok(n) => self.set_media(n),
                Err(e) => {
                    self.bye(now, endpoint, 488, format!("unusable answer: {e}"));
                    return;
                }
            }
        }
        if self.bye_after_ack {
            self.bye(now, endpoint, 0, "hung up".into());
        }
    }

    /// A request inside this dialog; returns the status the phone should answer with, or
    /// `None` when the call answered it itself (a re-INVITE).
    pub fn on_request(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        (transaction, source): (TransactionId, SocketAddr),
        request: &Message<'_>,
    ) -> Option<u16> {
        match request.method() {
            Method::Bye => {
                self.ok_retransmit = None;
                self.end(0, "the other side hung up");
                Some(200)
            }
            Method::Invite => {
                let busy = self.ok_retransmit.is_some()
                    || self
                        .requests
                        .iter()
                        .any(|(_, p)| matches!(p, Pending::ReInvite(_)) || *p == Pending::Invite);
                if busy {
                    return Some(491);
                }
                self.incoming = Some(Ringing {
                    transaction,
                    source,
                    request: request_bytes(request),
                });
                if let Some(target) = request.header(HeaderName::Contact).and_then(uri_of) {
                    self.remote_target = target;
                }
                if request.body.is_empty() {
                    let (sdp, _) = self.offer();
                    self.respond(now, endpoint, 200, Some(&sdp));
                    return None;
                }
                match self.answer_sdp(request.body) {
                    Ok((sdp, negotiated)) => {
                        self.respond(now, endpoint, 200, Some(&sdp));
                        self.set_media(negotiated);
                    }
                    Err(_) => {
                        self.respond(now, endpoint, 488, None);
                        self.incoming = None;
                    }
                }
                None
            }
            Method::Info | Method::Options | Method::Update => Some(200),
            _ => Some(405),
        }
    }

    /// Retransmits our 2xx (T1, 2*T1, ... T2) until the ACK, or ends the call after 64*T1.
    pub(super) fn retransmit_ok(&mut self, now: Instant, endpoint: &mut Endpoint) {
        let t2 = endpoint.timers().t2;
        let Some(r) = &mut self.ok_retransmit else {
            return;
        };
        if now >= r.give_up {
            self.ok_retransmit = None;
            self.incoming = None;
            // RFC 3261 13.3.1.4: no ACK, so the dialog ends with a BYE.
            self.bye(now, endpoint, 408, "no ACK for our answer".into());
            return;
        }
        if now >= r.next {
            let _ = endpoint.respond(now, r.transaction, r.response.clone());
            r.interval = (r.interval * 2).min(t2);
            r.next = now + r.interval;
        }
    }
}

/// The bytes of a parsed request, to keep past the datagram it came in.
fn request_bytes(request: &Message<'_>) -> Vec<u8> {
    request.to_bytes()
}

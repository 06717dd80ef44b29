//! The phone's one call at a time: commands (dial, answer, hang up, hold, DTMF), INVITE and
//! in-dialog requests routed to the [`Call`], and the [`MediaSession`] started, changed and
//! stopped as the call settles its media.

use super::{Phone, PhoneEvent};
use crate::audio::session::MediaSession;
use crate::ua::call::{Call, CallEvent, CallState, Me};
use openline_sip::message::ResponseBuilder;
use openline_sip::transaction::TransactionId;
use openline_sip::{Message, Method};
use std::net::SocketAddr;
use std::time::Instant;

impl Phone {
    fn me(&mut self) -> Me {
        let key = self.srtp.then(|| {
            let mut k = [0u8; 30];
            self.endpoint.random(&mut k);
            k
        });
        Me {
            account: self.account.clone(),
            sip: self.local,
            proxy: self.proxy.addr,
            rtp: self.rtp,
            key,
        }
    }

    fn session_id(&mut self) -> u64 {
        let mut b = [0u8; 4];
        self.endpoint.random(&mut b);
        u64::from(u32::from_le_bytes(b))
    }

    /// Calls `to` (`user@domain` or `sip:user@domain`).
    pub fn dial(&mut self, now: Instant, to: &str) {
        if self.call.is_some() {
            self.events
                .push_back(PhoneEvent::CallRefused("already in a call".into()));
            return;
        }
        let to = if to.starts_with("sip:") {
            to.to_string()
        } else {
            format!("sip:{to}")
        };
        if openline_sip::uri::Uri::parse(&to).is_err() {
            self.events
                .push_back(PhoneEvent::CallRefused(format!("not an address: {to}")));
            return;
        }
        let (me, session) = (self.me(), self.session_id());
        self.call = Some(Call::dial(now, &mut self.endpoint, me, &to, session));
        self.after_call(now);
        self.drain(now);
    }

    /// Answers the ringing call.
    pub fn answer(&mut self, now: Instant) {
        self.with_call(now, "no call is ringing", |call, endpoint| {
            call.answer(now, endpoint);
        });
    }

    /// Hangs up (or cancels, or declines) the call.
    pub fn hangup(&mut self, now: Instant) {
        self.with_call(now, "no call", |call, endpoint| call.hangup(now, endpoint));
    }

    /// Puts the other side on hold, or takes it off.
    pub fn hold(&mut self, now: Instant, hold: bool) {
        self.with_call(now, "no call", |call, endpoint| {
            call.hold(now, endpoint, hold);
        });
    }

    /// Runs a user's command on the call, or says `without` when there is none.
    fn with_call(
        &mut self,
        now: Instant,
        without: &str,
        command: impl FnOnce(&mut Call, &mut openline_sip::Endpoint),
    ) {
        match &mut self.call {
            Some(call) => command(call, &mut self.endpoint),
            None => self
                .events
                .push_back(PhoneEvent::CallRefused(without.into())),
        }
        self.after_call(now);
        self.drain(now);
    }

    /// Sends DTMF digits in the call's audio (RFC 4733).
    pub fn dtmf(&mut self, digits: &str) {
        let queued = self.media.as_mut().map_or(0, |m| m.send_dtmf(digits));
        if queued == 0 {
            self.events.push_back(PhoneEvent::CallRefused(
                "no answered call that takes DTMF".into(),
            ));
        }
    }

    /// A datagram on the media port.
    pub fn handle_media(&mut self, now: Instant, data: &[u8]) {
        if self.handle_stun(data) {
            return;
        }
        if let Some(m) = &mut self.media {
            m.handle_datagram(data);
            while let Some(digit) = m.poll_digit() {
                self.events.push_back(PhoneEvent::Dtmf(digit));
            }
        }
        let _ = now;
    }

    /// A media datagram to send, and where.
    pub fn poll_media_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some(out) = self.media_out.pop_front() {
            return Some(out);
        }
        self.media.as_mut()?.poll_transmit()
    }

    /// An INVITE, CANCEL, ACK or in-dialog request: true when it was dealt with here.
    pub(super) fn on_call_request(
        &mut self,
        now: Instant,
        id: Option<TransactionId>,
        source: SocketAddr,
        request: &Message<'_>,
    ) -> bool {
        let method = request.method();
        let Some(id) = id else {
            if method == Method::Ack {
                if let Some(call) = self.call.as_mut().filter(|c| c.matches(request)) {
                    call.on_ack(now, &mut self.endpoint, request);
                }
                self.after_call(now);
            }
            return true;
        };
        if method == Method::Cancel {
            let invite = self.endpoint.find_invite_for_cancel(request);
            let code = if invite.is_some() { 200 } else { 481 };
            self.reply(now, id, source, request, code, None);
            if let (Some(invite), Some(call)) = (invite, self.call.as_mut()) {
                if call.owns(invite) {
                    call.on_cancel(now, &mut self.endpoint);
                }
            }
            self.after_call(now);
            return true;
        }
        if request.to_tag.is_some() {
            let code = match self.call.as_mut().filter(|c| c.matches(request)) {
                Some(call) => call.on_request(now, &mut self.endpoint, (id, source), request),
                // MESSAGE outside a dialog we know is still a message (some phones tag it);
                // a NOTIFY is for a presence watch.
                None if matches!(method, Method::Message | Method::Notify) => return false,
                None => Some(481),
            };
            if let Some(code) = code {
                self.reply(now, id, source, request, code, None);
            }
            self.after_call(now);
            return true;
        }
        if method != Method::Invite {
            return false;
        }
        if self.call.is_some() {
            self.reply(now, id, source, request, 486, None);
            return true;
        }
        let (me, session) = (self.me(), self.session_id());
        match Call::incoming(now, &mut self.endpoint, me, (id, source), request, session) {
            Ok(call) => {
                self.events.push_back(PhoneEvent::IncomingCall {
                    from: call.remote().to_string(),
                });
                self.call = Some(call);
            }
            Err(refusal) => {
                self.reply(
                    now,
                    id,
                    source,
                    request,
                    refusal.code,
                    Some(&refusal.reason),
                );
                self.events.push_back(PhoneEvent::CallRefused(format!(
                    "refused a call: {} {}",
                    refusal.code, refusal.reason
                )));
            }
        }
        self.after_call(now);
        true
    }

    fn reply(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &Message<'_>,
        code: u16,
        reason: Option<&str>,
    ) {
        let tag = self.endpoint.new_tag();
        let reason = reason.unwrap_or(openline_sip::message::standard_reason(code));
        let response =
            ResponseBuilder::new(code, reason, &request.echo(), source, Some(&tag)).finish();
        let _ = self.endpoint.respond(now, id, response);
    }

    /// Moves the call's news into media changes and user events; forgets an ended call.
    pub(super) fn after_call(&mut self, now: Instant) {
        let Some(call) = &mut self.call else {
            return;
        };
        let mut news = Vec::new();
        while let Some(e) = call.poll_event() {
            news.push(e);
        }
        let remote = call.remote().to_string();
        for e in news {
            match e {
                CallEvent::State(state) => {
                    if let Some(m) = &mut self.media {
                        m.set_muted(state == CallState::OnHold);
                    }
                    let (codec, srtp) = match (&self.media, state) {
                        (
                            Some(m),
                            CallState::Established | CallState::OnHold | CallState::HeldByPeer,
                        ) => (
                            Some(m.negotiated().codec.name()),
                            m.negotiated().srtp.is_some(),
                        ),
                        _ => (None, false),
                    };
                    self.events.push_back(PhoneEvent::CallState {
                        state,
                        remote: remote.clone(),
                        codec,
                        srtp,
                    });
                }
                CallEvent::Media(Some(negotiated)) => self.start_media(now, negotiated),
                CallEvent::Media(None) => self.stop_media(),
                CallEvent::Ended { code, reason } => {
                    self.stop_media();
                    self.events.push_back(PhoneEvent::CallEnded {
                        remote: remote.clone(),
                        code,
                        reason,
                    });
                }
                CallEvent::Refused(reason) => {
                    self.events.push_back(PhoneEvent::CallRefused(reason));
                }
            }
        }
        if self.call.as_ref().is_some_and(Call::is_ended) {
            self.call = None;
        }
    }

    fn start_media(&mut self, now: Instant, negotiated: crate::ua::offer::Negotiated) {
        let result = match &mut self.media {
            Some(m) => m.update(now, negotiated),
            None => {
                let mut b = [0u8; 4];
                self.endpoint.random(&mut b);
                let cname = format!("{}@{}", self.account.user, self.account.domain);
                MediaSession::new(now, negotiated, u32::from_le_bytes(b), &cname).map(|m| {
                    self.device.call_started();
                    self.media = Some(m);
                })
            }
        };
        if let Err(e) = result {
            self.events
                .push_back(PhoneEvent::CallRefused(format!("media: {e}")));
            if let Some(call) = &mut self.call {
                call.hangup(now, &mut self.endpoint);
            }
        }
    }

    fn stop_media(&mut self) {
        if let Some(m) = self.media.take() {
            self.device.call_ended();
            self.events
                .push_back(PhoneEvent::MediaStats(m.stats(), m.jitter_stats()));
        }
    }

    /// The call's and the media's timers.
    pub(super) fn call_timeout(&self) -> Option<Instant> {
        let call = self.call.as_ref().and_then(Call::poll_timeout);
        let media = self.media.as_ref().map(MediaSession::poll_timeout);
        match (call, media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn handle_call_timeout(&mut self, now: Instant) {
        if let Some(call) = &mut self.call {
            call.handle_timeout(now, &mut self.endpoint);
        }
        if let Some(m) = &mut self.media {
            m.handle_timeout(now, self.device.as_mut());
        }
        self.after_call(now);
    }
}

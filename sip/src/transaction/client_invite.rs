//! INVITE client transaction (RFC 3261 section 17.1.1, figure 5; RFC 6026 section 7.2).

use super::timer::{Timer, TimerSet};
use super::{Destination, State, Step, TransactionEvent, terminate};
use crate::header::HeaderName;
use crate::message::{Message, RequestBuilder};
use crate::method::Method;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct ClientInvite {
    pub(crate) state: State,
    pub(crate) timers: TimerSet,
    request: Arc<[u8]>,
    ack: Option<Arc<[u8]>>,
    pub(crate) destination: Destination,
    interval_a: Duration,
}

impl ClientInvite {
    /// Sends the INVITE and starts Timers A (unreliable only) and B.
    pub(crate) fn start(step: &mut Step<'_>, request: Arc<[u8]>, destination: Destination) -> Self {
        let mut t = ClientInvite {
            state: State::Calling,
            timers: TimerSet::default(),
            request,
            ack: None,
            destination,
            interval_a: step.config.t1,
        };
        step.send(destination, &t.request);
        if !destination.transport.is_reliable() {
            step.arm(&mut t.timers, Timer::A, t.interval_a);
        }
        step.arm(&mut t.timers, Timer::B, step.config.timeout());
        t
    }

    pub(crate) fn on_response(&mut self, step: &mut Step<'_>, response: &Message<'_>) -> bool {
        let code = response.status().unwrap_or(0);
        match (self.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.timers.clear(Timer::A);
                self.timers.clear(Timer::B);
                true
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.timers.clear(Timer::A);
                self.timers.clear(Timer::B);
                step.arm(&mut self.timers, Timer::M, step.config.timeout());
                true
            }
            // RFC 6026: 2xx retransmissions (and forks' 2xx) go to the user, who ACKs them.
            (State::Accepted, 200..=299) => true,
            (State::Calling | State::Proceeding, 300..=699) => {
                self.state = State::Completed;
                self.timers.clear(Timer::A);
                self.timers.clear(Timer::B);
                let ack: Arc<[u8]> = build_ack(&self.request, response).into();
                step.send(self.destination, &ack);
                self.ack = Some(ack);
                let d = step
                    .config
                    .timer_d(self.destination.transport.is_reliable());
                step.arm(&mut self.timers, Timer::D, d);
                true
            }
            (State::Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    step.send(self.destination, ack);
                }
                false
            }
            _ => false,
        }
    }

    pub(crate) fn on_timer(&mut self, step: &mut Step<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Calling, Timer::A) => {
                step.send(self.destination, &self.request);
                self.interval_a = step.config.backoff(self.interval_a, false);
                step.arm(&mut self.timers, Timer::A, self.interval_a);
            }
            (State::Calling, Timer::B) => {
                step.event(TransactionEvent::TimedOut(step.id));
                terminate(&mut self.state, &mut self.timers, step);
            }
            (State::Completed, Timer::D) | (State::Accepted, Timer::M) => {
                terminate(&mut self.state, &mut self.timers, step);
            }
            _ => {}
        }
    }
}

/// The ACK for a non-2xx final response (RFC 3261 section 17.1.1.3): same Request-URI, top Via,
/// Route, From, Call-ID and CSeq number as the INVITE; To from the response.
pub(crate) fn build_ack(request: &[u8], response: &Message<'_>) -> Vec<u8> {
    let Ok(invite) = Message::parse(request) else {
        return Vec::new();
    };
    let uri = invite.request_uri().map_or("", |u| u.as_str());
    let top_via = invite.list(HeaderName::Via).next().unwrap_or("");
    let mut b = RequestBuilder::new(Method::Ack, uri).header("Via", top_via);
    for route in invite.headers_named(HeaderName::Route) {
        b = b.header("Route", route);
    }
    let from = invite.header(HeaderName::From).unwrap_or("");
    let to = response.header(HeaderName::To).unwrap_or("");
    b.header("Max-Forwards", 70)
        .header("From", from)
        .header("To", to)
        .header("Call-ID", invite.call_id)
        .header("CSeq", format_args!("{} ACK", invite.cseq.seq))
        .finish()
}

//! INVITE server transaction (RFC 3261 section 17.2.1, figure 7, as amended by RFC 6026
//! section 7.1: a 2xx moves it to Accepted, where INVITE retransmissions are absorbed).

use super::timer::{Timer, TimerSet};
use super::{Destination, State, Step, TransactionEvent, terminate};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct ServerInvite {
    pub(crate) state: State,
    pub(crate) timers: TimerSet,
    destination: Destination,
    last_response: Arc<[u8]>,
    interval_g: Duration,
}

impl ServerInvite {
    /// Starts in Proceeding, having sent `trying` (a 100) at once so the client stops
    /// retransmitting; a proxy always answers within 200 ms this way (17.2.1).
    pub(crate) fn start(step: &mut Step<'_>, destination: Destination, trying: Arc<[u8]>) -> Self {
        step.send(destination, &trying);
        ServerInvite {
            state: State::Proceeding,
            timers: TimerSet::default(),
            destination,
            last_response: trying,
            interval_g: step.config.t1,
        }
    }

    pub(crate) fn on_request(&mut self, step: &mut Step<'_>, is_ack: bool) {
        match (self.state, is_ack) {
            (State::Proceeding | State::Completed, false) => {
                step.send(self.destination, &self.last_response)
            }
            (State::Completed, true) => {
                self.state = State::Confirmed;
                self.timers.clear(Timer::G);
                self.timers.clear(Timer::H);
                let i = if self.destination.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    step.config.t4
                };
                step.arm(&mut self.timers, Timer::I, i);
            }
            // Accepted: INVITE retransmissions are absorbed; the user retransmits its 2xx.
            _ => {}
        }
    }

    pub(crate) fn on_user_response(
        &mut self,
        step: &mut Step<'_>,
        code: u16,
        payload: Arc<[u8]>,
    ) -> bool {
        match (self.state, code) {
            (State::Proceeding, 100..=199) => {}
            (State::Proceeding | State::Accepted, 200..=299) => {
                if self.state == State::Proceeding {
                    self.state = State::Accepted;
                    step.arm(&mut self.timers, Timer::L, step.config.timeout());
                }
            }
            (State::Proceeding, 300..=699) => {
                self.state = State::Completed;
                if !self.destination.transport.is_reliable() {
                    step.arm(&mut self.timers, Timer::G, self.interval_g);
                }
                step.arm(&mut self.timers, Timer::H, step.config.timeout());
            }
            _ => return false,
        }
        step.send(self.destination, &payload);
        self.last_response = payload;
        true
    }

    pub(crate) fn on_timer(&mut self, step: &mut Step<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Completed, Timer::G) => {
                step.send(self.destination, &self.last_response);
                self.interval_g = step.config.backoff(self.interval_g, true);
                step.arm(&mut self.timers, Timer::G, self.interval_g);
            }
            (State::Completed, Timer::H) => {
                step.event(TransactionEvent::AckNotReceived(step.id));
                terminate(&mut self.state, &mut self.timers, step);
            }
            (State::Confirmed, Timer::I) | (State::Accepted, Timer::L) => {
                terminate(&mut self.state, &mut self.timers, step);
            }
            _ => {}
        }
    }
}

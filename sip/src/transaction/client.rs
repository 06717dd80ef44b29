//! Non-INVITE client transaction (RFC 3261 section 17.1.2, figure 6).

use super::timer::{Timer, TimerSet};
use super::{Destination, State, Step, TransactionEvent, terminate};
use crate::message::Message;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) state: State,
    pub(crate) timers: TimerSet,
    request: Arc<[u8]>,
    pub(crate) destination: Destination,
    interval_e: Duration,
}

impl Client {
    /// Sends the request and starts Timers E (unreliable only) and F.
    pub(crate) fn start(step: &mut Step<'_>, request: Arc<[u8]>, destination: Destination) -> Self {
        let mut t = Client {
            state: State::Trying,
            timers: TimerSet::default(),
            request,
            destination,
            interval_e: step.config.t1,
        };
        step.send(destination, &t.request);
        if !destination.transport.is_reliable() {
            step.arm(&mut t.timers, Timer::E, t.interval_e);
        }
        step.arm(&mut t.timers, Timer::F, step.config.timeout());
        t
    }

    pub(crate) fn on_response(&mut self, step: &mut Step<'_>, response: &Message<'_>) -> bool {
        let code = response.status().unwrap_or(0);
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                true
            }
            (State::Trying | State::Proceeding, 200..=699) => {
                self.state = State::Completed;
                self.timers.clear(Timer::E);
                self.timers.clear(Timer::F);
                let k = if self.destination.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    step.config.t4
                };
                step.arm(&mut self.timers, Timer::K, k);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn on_timer(&mut self, step: &mut Step<'_>, timer: Timer) {
        match (self.state, timer) {
            (State::Trying | State::Proceeding, Timer::E) => {
                step.send(self.destination, &self.request);
                // In Proceeding the interval is T2 from then on (17.1.2.2).
                self.interval_e = if self.state == State::Proceeding {
                    step.config.t2
                } else {
                    step.config.backoff(self.interval_e, true)
                };
                step.arm(&mut self.timers, Timer::E, self.interval_e);
            }
            (State::Trying | State::Proceeding, Timer::F) => {
                step.event(TransactionEvent::TimedOut(step.id));
                terminate(&mut self.state, &mut self.timers, step);
            }
            (State::Completed, Timer::K) => terminate(&mut self.state, &mut self.timers, step),
            _ => {}
        }
    }
}

//! Non-INVITE server transaction (RFC 3261 section 17.2.2, figure 8).

use super::timer::{Timer, TimerSet};
use super::{Destination, State, Step, terminate};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) state: State,
    pub(crate) timers: TimerSet,
    destination: Destination,
    last_response: Option<Arc<[u8]>>,
}

impl Server {
    pub(crate) fn start(destination: Destination) -> Self {
        Server {
            state: State::Trying,
            timers: TimerSet::default(),
            destination,
            last_response: None,
        }
    }

    /// Where its responses go.
    pub(crate) fn destination(&self) -> Destination {
        self.destination
    }

    /// A retransmission of the request: repeat the last response, if any.
    pub(crate) fn on_request(&mut self, step: &mut Step<'_>) {
        if let (State::Proceeding | State::Completed, Some(r)) = (self.state, &self.last_response) {
            step.send(self.destination, r);
        }
    }

    pub(crate) fn on_user_response(
        &mut self,
        step: &mut Step<'_>,
        code: u16,
        payload: Arc<[u8]>,
    ) -> bool {
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
            }
            (State::Trying | State::Proceeding, 200..=699) => {
                self.state = State::Completed;
                let j = if self.destination.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    step.config.timeout()
                };
                step.arm(&mut self.timers, Timer::J, j);
            }
            _ => return false,
        }
        step.send(self.destination, &payload);
        self.last_response = Some(payload);
        true
    }

    pub(crate) fn on_timer(&mut self, step: &mut Step<'_>, timer: Timer) {
        if (self.state, timer) == (State::Completed, Timer::J) {
            terminate(&mut self.state, &mut self.timers, step);
        }
    }
}

//! The four transaction machines of RFC 3261 section 17 (with RFC 6026's Accepted state), their
//! matching keys, and the timer table.

mod client;
mod client_invite;
pub(crate) mod key;
mod server;
mod server_invite;
pub mod timer;

pub(crate) use client::Client;
pub(crate) use client_invite::ClientInvite;
pub(crate) use server::Server;
pub(crate) use server_invite::ServerInvite;
pub use timer::{Timer, TimerConfig};

use crate::endpoint::{Output, Transmit};
use crate::message::Message;
use crate::transport::Transport;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::TimerSet;

/// Names one transaction for as long as the endpoint lives; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub(crate) u64);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// Where a transaction sends: a transport and the peer's address (for a stream, the connection
/// to that address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The transport.
    pub transport: Transport,
    /// The peer.
    pub addr: SocketAddr,
}

/// The states of RFC 3261 figures 5 to 8, plus RFC 6026's Accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE client: request sent, nothing heard.
    Calling,
    /// Non-INVITE: request sent or received, no response yet.
    Trying,
    /// A provisional response was sent or received.
    Proceeding,
    /// A final response (non-2xx for INVITE) was sent or received; absorbing retransmissions.
    Completed,
    /// INVITE server: the ACK arrived.
    Confirmed,
    /// INVITE, RFC 6026: a 2xx was sent or received.
    Accepted,
    /// Done; the transaction is forgotten.
    Terminated,
}

/// What a transaction tells its user besides responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEvent {
    /// No final response in time (Timer B or F): the user acts as on a 408.
    TimedOut(TransactionId),
    /// The request could not be sent (connection refused, no route; RFC 3261 17.1.4): the
    /// user acts as on a 503, and the transaction is over.
    TransportError(TransactionId),
    /// An INVITE server transaction never got its ACK (Timer H).
    AckNotReceived(TransactionId),
    /// The transaction ended and was removed.
    Terminated(TransactionId),
}

/// What the machines need from the endpoint for one step.
pub(crate) struct Step<'o> {
    pub(crate) now: Instant,
    pub(crate) config: &'o TimerConfig,
    pub(crate) out: &'o mut VecDeque<Output>,
    pub(crate) id: TransactionId,
}

impl Step<'_> {
    pub(crate) fn send(&mut self, destination: Destination, payload: &Arc<[u8]>) {
        self.out.push_back(Output::Transmit(Transmit {
            destination,
            payload: Arc::clone(payload),
        }));
    }

    pub(crate) fn event(&mut self, event: TransactionEvent) {
        self.out.push_back(Output::Event(event));
    }

    /// Arms `timer` after `after`; a zero wait fires on the next timeout check.
    pub(crate) fn arm(&self, timers: &mut TimerSet, timer: Timer, after: Duration) {
        timers.set(timer, self.now + after);
    }
}

/// One live transaction.
#[derive(Debug)]
pub(crate) enum Transaction {
    ClientInvite(ClientInvite),
    Client(Client),
    ServerInvite(ServerInvite),
    Server(Server),
}

impl Transaction {
    pub(crate) fn state(&self) -> State {
        match self {
            Transaction::ClientInvite(t) => t.state,
            Transaction::Client(t) => t.state,
            Transaction::ServerInvite(t) => t.state,
            Transaction::Server(t) => t.state,
        }
    }

    fn timers(&mut self) -> &mut TimerSet {
        match self {
            Transaction::ClientInvite(t) => &mut t.timers,
            Transaction::Client(t) => &mut t.timers,
            Transaction::ServerInvite(t) => &mut t.timers,
            Transaction::Server(t) => &mut t.timers,
        }
    }

    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.timers().next()
    }

    /// Fires every timer due at `step.now`.
    pub(crate) fn handle_timeout(&mut self, step: &mut Step<'_>) {
        while let Some(timer) = self.timers().take_due(step.now) {
            match self {
                Transaction::ClientInvite(t) => t.on_timer(step, timer),
                Transaction::Client(t) => t.on_timer(step, timer),
                Transaction::ServerInvite(t) => t.on_timer(step, timer),
                Transaction::Server(t) => t.on_timer(step, timer),
            }
        }
    }

    /// A response from the network for a client transaction; true if the user should see it.
    pub(crate) fn handle_response(&mut self, step: &mut Step<'_>, response: &Message<'_>) -> bool {
        match self {
            Transaction::ClientInvite(t) => t.on_response(step, response),
            Transaction::Client(t) => t.on_response(step, response),
            _ => false,
        }
    }

    /// A retransmitted request, or the ACK for a non-2xx, for a server transaction.
    pub(crate) fn handle_request(&mut self, step: &mut Step<'_>, is_ack: bool) {
        match self {
            Transaction::ServerInvite(t) => t.on_request(step, is_ack),
            Transaction::Server(t) => t.on_request(step),
            _ => {}
        }
    }

    /// Sending the request failed (RFC 3261 17.1.4): a client transaction still waiting for
    /// its final response tells the user and ends; anything else ignores it.
    /// A client transaction that sent to `destination` and has heard nothing back yet.
    pub(crate) fn awaits_first_answer_from(&self, destination: &Destination) -> bool {
        match self {
            Transaction::ClientInvite(t) => {
                t.state == State::Calling && t.destination == *destination
            }
            Transaction::Client(t) => t.state == State::Trying && t.destination == *destination,
            _ => false,
        }
    }

    pub(crate) fn handle_transport_error(&mut self, step: &mut Step<'_>) {
        let (state, timers) = match self {
            Transaction::ClientInvite(t) => (&mut t.state, &mut t.timers),
            Transaction::Client(t) => (&mut t.state, &mut t.timers),
            _ => return,
        };
        if matches!(*state, State::Calling | State::Trying | State::Proceeding) {
            step.event(TransactionEvent::TransportError(step.id));
            terminate(state, timers, step);
        }
    }

    /// A response from the user for a server transaction.
    pub(crate) fn send_response(
        &mut self,
        step: &mut Step<'_>,
        code: u16,
        payload: Arc<[u8]>,
    ) -> bool {
        match self {
            Transaction::ServerInvite(t) => t.on_user_response(step, code, payload),
            Transaction::Server(t) => t.on_user_response(step, code, payload),
            _ => false,
        }
    }
}

/// Moves a machine to Terminated and tells the user.
pub(crate) fn terminate(state: &mut State, timers: &mut TimerSet, step: &mut Step<'_>) {
    *state = State::Terminated;
    timers.clear_all();
    step.event(TransactionEvent::Terminated(step.id));
}

//! The endpoint: every inbound message gets exactly one [`Verdict`], and transactions live here.
//!
//! The driver feeds it `handle(now, inbound)` and `handle_timeout(now)`, and drains
//! `poll_output()` (datagrams to send, transaction events) and `poll_timeout()` (when to call
//! again). Nothing here blocks or reads the clock.

use crate::ParseError;
use crate::entropy::{Entropy, random_token};
use crate::header::Via;
use crate::header::via::MAGIC_COOKIE;
use crate::message::{Message, RequestEcho, ResponseBuilder, Salvaged};
use crate::method::Method;
use crate::table::{IdMap, StrMap};
use crate::transaction::{
    Client, ClientInvite, Destination, Server, ServerInvite, State, Step, TimerConfig, Transaction,
    TransactionEvent, TransactionId, key,
};
use crate::transport::Transport;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Endpoint settings.
#[derive(Debug, Clone, Default)]
pub struct EndpointConfig {
    /// T1, T2, T4 and Timer C.
    pub timers: TimerConfig,
}

/// A message as it arrived: bytes, the transport, and who sent them.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The transport it came over.
    pub transport: Transport,
    /// The sender's address (for a stream, the connection's peer).
    pub source: SocketAddr,
    /// One datagram, or one framed stream message.
    pub data: &'a [u8],
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: Destination,
    /// What; shared with the transaction that may retransmit it.
    pub payload: Arc<[u8]>,
}

/// What the endpoint wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// Tell the transaction user.
    Event(TransactionEvent),
}

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Malformed, and either a response or without a Via to answer to.
    Unanswerable(ParseError),
    /// A malformed ACK: ACKs are never answered.
    MalformedAck(ParseError),
}

/// The one outcome of an inbound message.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// A new request for the transaction user; `transaction` is the server transaction created
    /// for it (none for an ACK, which has none).
    Request {
        /// The request.
        request: Message<'a>,
        /// Its server transaction.
        transaction: Option<TransactionId>,
    },
    /// A response that a client transaction passes to its user.
    Response {
        /// The response.
        response: Message<'a>,
        /// The client transaction it belongs to.
        transaction: TransactionId,
    },
    /// Belongs to a transaction that dealt with it (a retransmission, an ACK for a non-2xx).
    Absorbed(TransactionId),
    /// A response no transaction matches (a proxy forwards it statelessly; a UA drops it).
    StrayResponse(Message<'a>),
    /// Answered without a transaction: a malformed request that still had a usable Via.
    StatelessReply {
        /// The status sent.
        status: u16,
        /// What was wrong.
        error: ParseError,
    },
    /// Dropped.
    Discarded(DropReason),
}

/// Misuse of the endpoint by its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No live transaction has that id.
    #[error("no transaction {0}")]
    UnknownTransaction(TransactionId),
    /// The transaction is not in a state that takes this response.
    #[error("transaction {0} cannot send a {1} now")]
    WrongState(TransactionId, u16),
    /// The bytes handed in are not a valid message of the expected kind.
    #[error("not a valid {0}: {1}")]
    InvalidMessage(&'static str, String),
    /// A request to send without an RFC 3261 branch in its top Via.
    #[error("the top Via of an outgoing request needs a z9hG4bK branch")]
    NoBranch,
    /// A branch already in use by a live client transaction.
    #[error("branch already in use")]
    DuplicateBranch,
}

struct Slot {
    transaction: Transaction,
    key: Box<str>,
    server: bool,
    scheduled: Option<Instant>,
}

/// The transaction layer and dispatcher.
pub struct Endpoint {
    config: EndpointConfig,
    entropy: Box<dyn Entropy>,
    next_id: u64,
    /// Boxed: a table of 200-byte slots took tens of milliseconds to move when it doubled.
    slots: IdMap<TransactionId, Box<Slot>>,
    server_index: StrMap<TransactionId>,
    client_index: StrMap<TransactionId>,
    wakeups: BinaryHeap<Reverse<(Instant, TransactionId)>>,
    out: VecDeque<Output>,
    key_buf: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("transactions", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Where responses to a request go (RFC 3261 section 18.2.2, RFC 3581 section 4): back over the
/// same connection on a stream; over UDP to the source address at the rport, or at the sent-by
/// port when no rport was asked for. (A `maddr` is not honoured: answering to an address the
/// request names but did not come from would let anyone aim our responses at a third party.)
pub fn response_destination(
    via: &Via<'_>,
    transport: Transport,
    source: SocketAddr,
) -> Destination {
    if transport.is_reliable() || via.rport().is_some() {
        return Destination {
            transport,
            addr: source,
        };
    }
    Destination {
        transport,
        addr: SocketAddr::new(source.ip(), via.sent_by_port()),
    }
}

impl Endpoint {
    /// An endpoint with no transactions.
    pub fn new(config: EndpointConfig, entropy: Box<dyn Entropy>) -> Self {
        Endpoint {
            config,
            entropy,
            next_id: 1,
            slots: IdMap::default(),
            server_index: StrMap::new(),
            client_index: StrMap::new(),
            wakeups: BinaryHeap::new(),
            out: VecDeque::new(),
            key_buf: String::with_capacity(128),
        }
    }

    /// The timer settings.
    pub fn timers(&self) -> &TimerConfig {
        &self.config.timers
    }

    /// A fresh branch with the magic cookie.
    pub fn new_branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}{}", random_token(self.entropy.as_mut(), 16))
    }

    /// A fresh tag for From or To.
    pub fn new_tag(&mut self) -> String {
        random_token(self.entropy.as_mut(), 16)
    }

    /// Random bytes from the endpoint's entropy (for a user agent's SDES keys and SSRCs).
    pub fn random(&mut self, dest: &mut [u8]) {
        self.entropy.fill(dest);
    }

    /// How many transactions are alive.
    pub fn transaction_count(&self) -> usize {
        self.slots.len()
    }

    /// The state of a live transaction.
    pub fn state(&self, id: TransactionId) -> Option<State> {
        self.slots.get(&id).map(|s| s.transaction.state())
    }

    /// Whether `id` is a live INVITE server transaction.
    pub fn is_invite_server(&self, id: TransactionId) -> bool {
        self.slots
            .get(&id)
            .is_some_and(|s| matches!(s.transaction, Transaction::ServerInvite(_)))
    }

    /// Every live transaction and its state.
    pub fn transactions(&self) -> impl Iterator<Item = (TransactionId, State)> + '_ {
        self.slots
            .iter()
            .map(|(id, slot)| (*id, slot.transaction.state()))
    }

    /// Classifies one inbound message and does what the transaction layer must.
    pub fn handle<'a>(&mut self, now: Instant, inbound: Inbound<'a>) -> Verdict<'a> {
        let message = match Message::parse(inbound.data) {
            Ok(m) => m,
            Err(e) => return self.refuse(inbound, e),
        };
        if message.is_request() {
            if let Err(e) = message.check_headers() {
                return self.refuse(inbound, e);
            }
            self.handle_request(now, inbound, message)
        } else {
            self.handle_response(now, message)
        }
    }

    fn refuse<'a>(&mut self, inbound: Inbound<'a>, error: ParseError) -> Verdict<'a> {
        let Some(salvaged) = Salvaged::scan(inbound.data).filter(|s| s.is_request) else {
            return Verdict::Discarded(DropReason::Unanswerable(error));
        };
        if salvaged.is_ack {
            return Verdict::Discarded(DropReason::MalformedAck(error));
        }
        let destination =
            response_destination(salvaged.top_via(), inbound.transport, inbound.source);
        let status = error.status();
        let tag = self.new_tag();
        let reply = ResponseBuilder::new(
            status,
            &error.reason(),
            &salvaged.echo(),
            inbound.source,
            Some(&tag),
        )
        .finish();
        self.out.push_back(Output::Transmit(Transmit {
            destination,
            payload: reply.into(),
        }));
        Verdict::StatelessReply { status, error }
    }

    fn handle_request<'a>(
        &mut self,
        now: Instant,
        inbound: Inbound<'a>,
        request: Message<'a>,
    ) -> Verdict<'a> {
        key::server_key(&mut self.key_buf, &request);
        let is_ack = request.method() == Method::Ack;
        if let Some(&id) = self.server_index.get(self.key_buf.as_str()) {
            // An ACK for a 2xx has its own branch and so never lands here; one that does
            // belongs to a non-2xx answered by this transaction.
            self.step(now, id, |t, step| t.handle_request(step, is_ack));
            return Verdict::Absorbed(id);
        }
        if is_ack {
            return Verdict::Request {
                request,
                transaction: None,
            };
        }
        let destination = response_destination(&request.top_via, inbound.transport, inbound.source);
        let id = self.allocate_id();
        let mut step = self.new_step(now, id);
        let transaction = if request.method() == Method::Invite {
            let trying =
                ResponseBuilder::new(100, "Trying", &request.echo(), inbound.source, None).finish();
            Transaction::ServerInvite(ServerInvite::start(&mut step, destination, trying.into()))
        } else {
            Transaction::Server(Server::start(destination))
        };
        let key: Box<str> = self.key_buf.as_str().into();
        self.add(id, transaction, key, true);
        Verdict::Request {
            request,
            transaction: Some(id),
        }
    }

    fn handle_response<'a>(&mut self, now: Instant, response: Message<'a>) -> Verdict<'a> {
        key::client_key_of_response(&mut self.key_buf, &response);
        let Some(&id) = self.client_index.get(self.key_buf.as_str()) else {
            return Verdict::StrayResponse(response);
        };
        let mut pass_up = false;
        self.step(now, id, |t, step| {
            pass_up = t.handle_response(step, &response)
        });
        if pass_up {
            Verdict::Response {
                response,
                transaction: id,
            }
        } else {
            Verdict::Absorbed(id)
        }
    }

    /// Sends a response through a server transaction; the transaction retransmits it as needed.
    pub fn respond(
        &mut self,
        now: Instant,
        id: TransactionId,
        response: Vec<u8>,
    ) -> Result<(), EndpointError> {
        let code = status_of(&response)?;
        let slot = self
            .slots
            .get(&id)
            .ok_or(EndpointError::UnknownTransaction(id))?;
        if !slot.server {
            return Err(EndpointError::UnknownTransaction(id));
        }
        let payload: Arc<[u8]> = response.into();
        let mut accepted = false;
        self.step(now, id, |t, step| {
            accepted = t.send_response(step, code, payload)
        });
        if accepted {
            Ok(())
        } else {
            Err(EndpointError::WrongState(id, code))
        }
    }

    /// Sends a final response to a non-INVITE request and forgets its transaction at once, as a
    /// stateless UAS does (RFC 3261 8.2.7): a retransmission of the request is then processed
    /// afresh. Meant for challenges, whose natural answer to a retransmission is a new
    /// challenge; it spares holding the response for Timer J (32 s over UDP).
    pub fn respond_statelessly(
        &mut self,
        id: TransactionId,
        response: Vec<u8>,
    ) -> Result<(), EndpointError> {
        let code = status_of(&response)?;
        let destination = match self.slots.get(&id).map(|s| &s.transaction) {
            Some(Transaction::Server(t)) if code >= 200 => t.destination(),
            Some(_) => return Err(EndpointError::WrongState(id, code)),
            None => return Err(EndpointError::UnknownTransaction(id)),
        };
        if let Some(slot) = self.slots.remove(&id) {
            self.server_index.remove(&slot.key);
        }
        self.out.push_back(Output::Transmit(Transmit {
            destination,
            payload: response.into(),
        }));
        self.out
            .push_back(Output::Event(TransactionEvent::Terminated(id)));
        Ok(())
    }

    /// Builds and sends a response to `request` through its server transaction: the common case
    /// of a status, a To tag and a few headers.
    pub fn reply(
        &mut self,
        now: Instant,
        id: TransactionId,
        echo: &RequestEcho<'_, '_>,
        source: SocketAddr,
        code: u16,
        headers: &[(&str, &str)],
    ) -> Result<(), EndpointError> {
        let tag = (code > 100).then(|| self.new_tag());
        let mut b = ResponseBuilder::new(
            code,
            crate::message::standard_reason(code),
            echo,
            source,
            tag.as_deref(),
        );
        for (name, value) in headers {
            b = b.header(name, value);
        }
        self.respond(now, id, b.finish())
    }

    /// Starts a client transaction for `request`, whose top Via must carry a fresh branch.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Vec<u8>,
        destination: Destination,
    ) -> Result<TransactionId, EndpointError> {
        let parsed = Message::parse(&request)
            .map_err(|e| EndpointError::InvalidMessage("request", e.to_string()))?;
        if !parsed.is_request() {
            return Err(EndpointError::InvalidMessage(
                "request",
                "a response".into(),
            ));
        }
        if !parsed.top_via.is_rfc3261_branch() {
            return Err(EndpointError::NoBranch);
        }
        let method = parsed.method();
        if method == Method::Ack {
            return Err(EndpointError::InvalidMessage(
                "request",
                "ACK has no transaction; use send_stateless".into(),
            ));
        }
        key::client_key(
            &mut self.key_buf,
            parsed.top_via.branch.unwrap_or(""),
            method,
        );
        if self.client_index.contains_key(self.key_buf.as_str()) {
            return Err(EndpointError::DuplicateBranch);
        }
        let key: Box<str> = self.key_buf.as_str().into();
        drop(parsed);
        let id = self.allocate_id();
        let mut step = self.new_step(now, id);
        let transaction = if method == Method::Invite {
            Transaction::ClientInvite(ClientInvite::start(&mut step, request.into(), destination))
        } else {
            Transaction::Client(Client::start(&mut step, request.into(), destination))
        };
        self.add(id, transaction, key, false);
        Ok(id)
    }

    /// Sends bytes outside any transaction (an ACK for a 2xx, a stateless forward).
    pub fn send_stateless(&mut self, destination: Destination, payload: Vec<u8>) {
        self.out.push_back(Output::Transmit(Transmit {
            destination,
            payload: payload.into(),
        }));
    }

    /// The network could not send `transmit`: when it carried a request of a client
    /// transaction still waiting for an answer, that transaction reports
    /// [`TransactionEvent::TransportError`] and ends (RFC 3261 17.1.4).
    pub fn handle_transport_error(&mut self, now: Instant, transmit: &Transmit) {
        let Ok(parsed) = Message::parse(&transmit.payload) else {
            return;
        };
        if !parsed.is_request() || parsed.method() == Method::Ack {
            return;
        }
        key::client_key(
            &mut self.key_buf,
            parsed.top_via.branch.unwrap_or(""),
            parsed.method(),
        );
        let Some(&id) = self.client_index.get(self.key_buf.as_str()) else {
            return;
        };
        self.step(now, id, |t, step| t.handle_transport_error(step));
    }

    /// The connection to `destination` (TCP or TLS) ended: each request sent over it that has
    /// heard nothing back was lost with it (a peer that reset, or refused our certificate
    /// after the handshake), and fails now as a transport error (RFC 3261 18.4) rather than at
    /// Timer B or F. One that heard a provisional waits on: its answer may come over a new
    /// connection (RFC 3261 18.2.2).
    pub fn handle_connection_lost(&mut self, now: Instant, destination: Destination) {
        let lost: Vec<TransactionId> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.server && s.transaction.awaits_first_answer_from(&destination))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.step(now, id, |t, step| t.handle_transport_error(step));
        }
    }

    /// The INVITE server transaction a CANCEL refers to (RFC 3261 section 9.2).
    pub fn find_invite_for_cancel(&mut self, cancel: &Message<'_>) -> Option<TransactionId> {
        key::server_key(&mut self.key_buf, cancel);
        // Same key as the INVITE but for the method at its end.
        let cut = self.key_buf.rfind('\u{1}')?;
        self.key_buf.truncate(cut + 1);
        self.key_buf.push_str("INVITE");
        self.server_index.get(self.key_buf.as_str()).copied()
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.wakeups.peek() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            match self.slots.get_mut(&id) {
                Some(slot) if slot.scheduled == Some(at) => slot.scheduled = None,
                _ => continue, // stale: rescheduled or gone
            }
            self.step(now, id, |t, step| t.handle_timeout(step));
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeups.peek().map(|Reverse((at, _))| *at)
    }

    fn new_step(&mut self, now: Instant, id: TransactionId) -> Step<'_> {
        Step {
            now,
            config: &self.config.timers,
            out: &mut self.out,
            id,
        }
    }

    /// Registers a new transaction under its matching key and schedules its timers.
    fn add(&mut self, id: TransactionId, transaction: Transaction, key: Box<str>, server: bool) {
        let index = if server {
            &mut self.server_index
        } else {
            &mut self.client_index
        };
        index.insert(key.clone(), id);
        self.slots.insert(
            id,
            Box::new(Slot {
                transaction,
                key,
                server,
                scheduled: None,
            }),
        );
        self.reschedule(id);
    }

    fn allocate_id(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id += 1;
        id
    }

    fn step(
        &mut self,
        now: Instant,
        id: TransactionId,
        f: impl FnOnce(&mut Transaction, &mut Step<'_>),
    ) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        // Field by field: `slot` already borrows `self.slots`.
        let mut step = Step {
            now,
            config: &self.config.timers,
            out: &mut self.out,
            id,
        };
        f(&mut slot.transaction, &mut step);
        if slot.transaction.state() == State::Terminated {
            if let Some(slot) = self.slots.remove(&id) {
                let index = if slot.server {
                    &mut self.server_index
                } else {
                    &mut self.client_index
                };
                index.remove(&slot.key);
            }
        } else {
            self.reschedule(id);
        }
    }

    fn reschedule(&mut self, id: TransactionId) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let next = slot.transaction.next_deadline();
        if next != slot.scheduled {
            slot.scheduled = next;
            if let Some(at) = next {
                self.wakeups.push(Reverse((at, id)));
            }
        }
    }
}

/// The status code of a response we are about to send.
fn status_of(response: &[u8]) -> Result<u16, EndpointError> {
    let line = response
        .get(..12)
        .ok_or_else(|| EndpointError::InvalidMessage("response", "too short".into()))?;
    if !line.starts_with(b"SIP/2.0 ") || line[11] != b' ' && line[11] != b'\r' {
        return Err(EndpointError::InvalidMessage(
            "response",
            "no status line".into(),
        ));
    }
    std::str::from_utf8(&line[8..11])
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..=699).contains(c))
        .ok_or_else(|| EndpointError::InvalidMessage("response", "bad status code".into()))
}

#[cfg(test)]
mod tests;

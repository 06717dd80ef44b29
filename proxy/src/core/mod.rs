//! The server's sans-IO core: bytes and time in; transmits and store operations out. The tokio
//! loop in [`crate::server`] only feeds and drains it.

mod anchoring;
mod awaiting;
mod clustering;
mod dialogs;
mod draining;
mod guarding;
mod hangups;
mod hops;
mod levels;
mod locating;
mod presencing;
mod proxying;
mod splitting;
mod storing;
mod texting;
mod waking;

pub use anchoring::{MediaMode, MediaOp};

pub use clustering::ALONE;
pub use guarding::GuardConfig;
pub use locating::Lookup;
pub use storing::{StoreOp, StoreOutcome, StoreWork};

use crate::forward::{Action, Forwarding};
use crate::register::{RegisterAction, Registrar};
use crate::repeated::Event;
use crate::routing::{self, Decision, Us};
use openline_registrar::auth::{AuthConfig, Authenticator};
use openline_registrar::store::KnownDevice;
use openline_registrar::{Binding, ChangeSet, Location, RegistrarConfig, User};
use openline_sip::endpoint::{DropReason, Output, Transmit, Verdict};
use openline_sip::table::IdMap;
use openline_sip::transaction::{TransactionEvent, TransactionId};
use openline_sip::{Endpoint, EndpointConfig, Entropy, Inbound, Method, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// How the core is set up.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Domains served.
    pub domains: Vec<String>,
    /// Transaction timers.
    pub endpoint: EndpointConfig,
    /// Registrar limits.
    pub registrar: RegistrarConfig,
    /// Digest policy.
    pub auth: AuthConfig,
    /// How long a forwarded INVITE may ring unanswered before the caller hears 480 (or 408
    /// when nothing even rang) and the branches are cancelled.
    pub ring_timeout: std::time::Duration,
    /// Most requests under way to one other domain: a domain that never answers costs at
    /// most this many contexts (each with its transactions and timers); beyond it, 503.
    pub max_per_domain: usize,
    /// Servers of other domains (`--peer`), used instead of DNS for those domains.
    pub peers: Vec<(String, openline_sip::transaction::Destination)>,
    /// Text messages.
    pub text: crate::text::TextConfig,
    /// When calls' media goes through the relay.
    pub media: MediaMode,
    /// Presence: subscription and publication limits.
    pub presence: crate::presence::agent::PresenceConfig,
    /// Push notifications: the services configured and what a push may say.
    pub push: crate::wake::PushPolicy,
    /// What one source or user may cost, and how often repeated events are logged.
    pub guard: GuardConfig,
}

#[derive(Debug)]
struct Pending {
    transaction: TransactionId,
    reply: Vec<u8>,
    aor: String,
    previous: Vec<Binding>,
    /// The devices the REGISTER bound: owed messages are delivered once it is durable.
    devices: Vec<String>,
}

/// What a store operation under way is for.
#[derive(Debug)]
enum Waiter {
    Register(Pending),
    Text(texting::TextWaiter),
    /// Nothing waits on it (a presence permission; the log says when it fails).
    Nobody,
}

/// The server: transaction layer plus what it decides.
pub struct ServerCore {
    endpoint: Endpoint,
    config: CoreConfig,
    server_header: String,
    entropy: Box<dyn Entropy>,
    users: HashMap<String, User>,
    location: Location,
    auth: Authenticator,
    next_op: u64,
    store_ops: VecDeque<StoreOp>,
    pending: IdMap<u64, Waiter>,
    text: texting::Texting,
    presence: presencing::Presencing,
    anchoring: anchoring::Anchoring,
    us: Us,
    forwarding: Forwarding,
    actions: Vec<Action>,
    transmits: VecDeque<Transmit>,
    lookups: locating::Lookups,
    destinations: locating::Destinations,
    down: locating::DownServers,
    hops: hops::Hops,
    calls: dialogs::Calls,
    /// Bridged calls' dialogs, to hang up when their browser goes away.
    hangups: hangups::Hangups,
    wakes: waking::Wakes,
    guard: guarding::Guard,
    /// SIGTERM: no new work (see draining.rs).
    draining: bool,
}

impl std::fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCore")
            .field("domains", &self.config.domains)
            .finish_non_exhaustive()
    }
}

impl ServerCore {
    /// A core for `config`, starting from the users and bindings the store holds;
    /// `entropy` keys nonces and makes tags; `endpoint_entropy` makes branches (both from the
    /// operating system in the server, seeded in tests).
    pub fn new(
        config: CoreConfig,
        users: Vec<User>,
        bindings: Vec<Binding>,
        mut entropy: Box<dyn Entropy>,
        endpoint_entropy: Box<dyn Entropy>,
    ) -> Self {
        let mut secret = [0u8; 32];
        entropy.fill(&mut secret);
        let endpoint = Endpoint::new(config.endpoint.clone(), endpoint_entropy);
        let domains = config.domains.clone();
        let node = config.registrar.node.clone();
        let peers = config.peers.clone();
        let presence = config.presence.clone();
        let guard = guarding::Guard::new(config.guard.clone());
        ServerCore {
            endpoint,
            auth: Authenticator::new(config.auth.clone(), secret),
            server_header: format!("Openline/{}", env!("CARGO_PKG_VERSION")),
            users: users.into_iter().map(|u| (u.aor.clone(), u)).collect(),
            location: Location::load(bindings),
            config,
            entropy,
            next_op: 1,
            store_ops: VecDeque::new(),
            pending: IdMap::default(),
            text: texting::Texting::default(),
            presence: presencing::Presencing::new(presence),
            anchoring: anchoring::Anchoring::default(),
            us: Us {
                domains,
                local: Vec::new(),
                addresses: None,
                peers,
                cluster: routing::Cluster {
                    node,
                    nodes: Vec::new(),
                },
            },
            forwarding: Forwarding::default(),
            actions: Vec::new(),
            transmits: VecDeque::new(),
            lookups: locating::Lookups::default(),
            destinations: locating::Destinations::default(),
            down: locating::DownServers::default(),
            hops: hops::Hops::default(),
            calls: dialogs::Calls::default(),
            hangups: hangups::Hangups::default(),
            wakes: waking::Wakes::default(),
            guard,
            draining: false,
        }
    }

    /// The addresses bound, which go into Via and Record-Route and identify us in Route.
    pub fn set_local(&mut self, local: &[(Transport, SocketAddr)]) {
        self.us.local = local
            .iter()
            .map(|&(transport, bound)| crate::routing::Listener {
                transport,
                bound,
                advertised: None,
            })
            .collect();
        self.hops = hops::Hops::default();
    }

    /// What each bound address advertises instead (`advertise`), in the order of
    /// [`ServerCore::set_local`].
    pub fn set_advertised(&mut self, advertised: &[Option<SocketAddr>]) {
        for (listener, a) in self.us.local.iter_mut().zip(advertised) {
            listener.advertised = *a;
        }
        self.hops = hops::Hops::default();
    }

    /// This machine's addresses, for wildcard listeners: which are ours, and which one a
    /// packet to a peer leaves from.
    pub fn set_addresses(&mut self, addresses: std::sync::Arc<dyn routing::Addresses>) {
        self.us.addresses = Some(addresses);
    }

    /// Requests being forwarded and waiting for answers.
    pub fn forwarding_count(&self) -> usize {
        self.forwarding.len()
    }

    /// The domains served.
    pub fn domains(&self) -> &[String] {
        &self.config.domains
    }

    /// The location table.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Replaces the users (after `openline user` changed them).
    pub fn replace_users(&mut self, users: Vec<User>) {
        self.users = users.into_iter().map(|u| (u.aor.clone(), u)).collect();
    }

    /// Who may see whom across domains, as stored (at start, and after `openline presence`
    /// changed it): (presentity, watcher), both `user@domain`. Pending subscriptions a new
    /// permission covers turn active.
    pub fn load_presence_allowed(&mut self, now: Instant, allowed: Vec<(String, String)>) {
        self.presence_allowed(now, allowed);
    }

    /// Drops expired bindings from memory; returns how many. Presentities that lost their
    /// last device are told to their subscribers.
    pub fn purge(&mut self, now: Instant, wall: u64) -> usize {
        let n = self.location.purge(wall);
        self.purge_lost_flows();
        self.calls.purge(now);
        self.guard_purge(now);
        self.presence_of_everyone_online(now, wall);
        n
    }

    /// One message from the network, at monotonic `now` and wall-clock `wall` (seconds since
    /// the epoch, for what is persisted); `peer` is the certificate a TLS peer proved.
    pub fn handle_received(
        &mut self,
        now: Instant,
        wall: u64,
        (transport, source): (Transport, SocketAddr),
        data: &[u8],
        peer: Option<&openline_sip_net::PeerIdentity>,
    ) {
        // Requests over the source's rate are dropped before parsing; responses always pass
        // (they answer what we sent).
        if !data.starts_with(b"SIP/2.0 ") && !self.admit(now, source) {
            return;
        }
        let inbound = Inbound {
            transport,
            source,
            data,
        };
        match self.endpoint.handle(now, inbound) {
            Verdict::Request {
                request,
                transaction: Some(id),
            } => {
                crate::metrics::request(request.method());
                self.note_request(&request);
                if self.refused_while_draining(now, id, source, &request) {
                    self.pump(now);
                    return;
                }
                // Every log line about this request carries its Call-ID and CSeq.
                let _span = tracing::info_span!(
                    "transaction",
                    call_id = request.call_id,
                    cseq = request.cseq.seq,
                    method = %request.method()
                )
                .entered();
                let echo = request.echo();
                let result = match request.method() {
                    Method::Cancel => {
                        // RFC 3261 9.2: 200 if the INVITE is known (whatever its state), else 481.
                        let invite = self.endpoint.find_invite_for_cancel(&request);
                        if let Some(invite) = invite {
                            if !self.cancel_lookup(now, invite) && !self.cancel_parked(now, invite)
                            {
                                self.forwarding.cancel(invite, &mut self.actions);
                            }
                            self.call_settled(invite);
                        }
                        let code = if invite.is_some() { 200 } else { 481 };
                        self.endpoint.reply(
                            now,
                            id,
                            &echo,
                            source,
                            code,
                            &[("Server", &self.server_header)],
                        )
                    }
                    Method::Register => {
                        self.note_register(&request, source);
                        let mut registrar = Registrar {
                            domains: &self.config.domains,
                            users: &self.users,
                            auth: &mut self.auth,
                            location: &mut self.location,
                            config: &self.config.registrar,
                            entropy: self.entropy.as_mut(),
                            server_header: &self.server_header,
                            push: &self.config.push,
                            log: &mut self.guard.log,
                            at: now,
                        };
                        match registrar.handle(&request, transport, source, wall) {
                            RegisterAction::Reply(bytes) => self.endpoint.respond(now, id, bytes),
                            RegisterAction::Challenge(bytes) => {
                                self.endpoint.respond_statelessly(id, bytes)
                            }
                            RegisterAction::Persist {
                                change,
                                reply,
                                previous,
                            } => {
                                self.persist_registration(id, wall, change, reply, previous);
                                Ok(())
                            }
                        }
                    }
                    _ => {
                        // How large it came over UDP (RFC 3428 limits MESSAGE there).
                        let udp_size = (transport == Transport::Udp).then_some(data.len());
                        self.route(now, wall, id, (transport, source, udp_size), &request, peer)
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not answer");
                }
            }
            // An ACK for a 2xx: end to end, so it follows the dialog's route without a transaction.
            Verdict::Request {
                request,
                transaction: None,
            } => {
                crate::metrics::request(request.method());
                let users = &self.users;
                match routing::decide(
                    &request,
                    &self.us,
                    &self.location,
                    |a| users.contains_key(a),
                    wall,
                    false,
                ) {
                    Decision::Fork { targets, route, .. } => {
                        self.forward(
                            now,
                            None,
                            source,
                            &request,
                            targets.into_iter().take(1).collect(),
                            route,
                        );
                    }
                    Decision::Relay { target, route } => {
                        self.forward(now, None, source, &request, vec![target], route);
                    }
                    Decision::Answer | Decision::Refuse(..) | Decision::Locate { .. } => {
                        tracing::debug!(%source, "ACK with nowhere to go dropped");
                    }
                }
            }
            Verdict::Response {
                response,
                transaction,
            } => {
                self.note_bridged_answer(&response, (transport, source));
                if self.text.on_response(transaction, &response)
                    || self.presence.on_response(transaction, &response)
                {
                    // A MESSAGE the text path sent, or a NOTIFY of ours.
                } else if !self
                    .forwarding
                    .on_response(transaction, &response, &mut self.actions)
                {
                    // Its context ended (a 2xx retransmitted by a UAS still waiting for its
                    // ACK): pass it on by its Via.
                    self.forward_stray(&response);
                }
            }
            Verdict::Absorbed(_) => {}
            Verdict::StrayResponse(r) => {
                // A 2xx retransmitted after its client transaction ended still belongs upstream
                // (RFC 3261 16.7 step 5 via 16.11): forward it by the next Via.
                self.forward_stray(&r);
            }
            Verdict::StatelessReply { status, error } => {
                crate::metrics::malformed(true);
                if let Some(count) = self.guard.log.note(now, Event::Malformed, &source.ip()) {
                    tracing::info!(%source, %transport, status, %error, count, "malformed request refused");
                }
            }
            Verdict::Discarded(
                DropReason::Unanswerable(error) | DropReason::MalformedAck(error),
            ) => {
                crate::metrics::malformed(false);
                if let Some(count) = self.guard.log.note(now, Event::Malformed, &source.ip()) {
                    tracing::info!(%source, %transport, %error, count, "malformed message dropped");
                }
            }
        }
        self.pump(now);
    }

    /// The store did operation `id` (`outcome`); `wall` is the time now (seconds since the
    /// epoch).
    pub fn handle_stored(&mut self, now: Instant, wall: u64, id: u64, outcome: StoreOutcome) {
        match self.pending.remove(&id) {
            Some(Waiter::Register(p)) => self.registration_stored(now, wall, p, outcome),
            Some(Waiter::Text(w)) => self.text_stored(wall, w, outcome),
            Some(Waiter::Nobody) | None => {}
        }
        self.pump(now);
    }

    /// A REGISTER's change is durable (or not): its 200 goes out (or a 500, and what routing
    /// already saw is undone); devices it bound get what they are owed.
    fn registration_stored(&mut self, now: Instant, wall: u64, p: Pending, outcome: StoreOutcome) {
        let result = if outcome != StoreOutcome::Failed {
            self.note_woken(&p.aor, &p.devices);
            for device in &p.devices {
                self.deliver_owed(&p.aor, device, wall);
            }
            self.presence_devices(now, wall, &p.aor);
            let answered = self.endpoint.respond(now, p.transaction, p.reply);
            // After its 200: the phone knows it is registered when the call comes.
            self.wake_awaited(now, wall, &p.aor, &p.devices);
            answered
        } else {
            // Undo what routing already saw, and say so.
            let current: Vec<_> = self
                .location
                .bindings(&p.aor)
                .iter()
                .map(Binding::key)
                .collect();
            self.location.apply(&ChangeSet {
                aor: p.aor,
                upserts: p.previous,
                removals: current,
            });
            self.endpoint
                .respond(now, p.transaction, crate::register::failure_from(&p.reply))
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not answer a REGISTER after storing");
        }
    }

    /// Queues a REGISTER's change for the store; notes the devices it bound.
    fn persist_registration(
        &mut self,
        transaction: TransactionId,
        wall: u64,
        change: ChangeSet,
        reply: Vec<u8>,
        previous: Vec<Binding>,
    ) {
        let aor = change.aor.clone();
        let devices: Vec<String> = change
            .upserts
            .iter()
            .map(|b| b.device().to_string())
            .collect();
        for device in &devices {
            self.note_device(&aor, device, wall);
        }
        let pending = Pending {
            transaction,
            reply,
            aor,
            previous,
            devices,
        };
        self.queue_store(StoreWork::Bindings(change), Waiter::Register(pending));
    }

    /// Queues work for the store; `waiter` hears the outcome.
    fn queue_store(&mut self, work: StoreWork, waiter: Waiter) {
        let id = self.next_op;
        self.next_op += 1;
        self.pending.insert(id, waiter);
        self.store_ops.push_back(StoreOp { id, work });
    }

    /// Loads what the store knows of the mailbox at start: messages stored per user, and the
    /// devices seen lately.
    pub fn load_mailbox(&mut self, counts: Vec<(String, u64)>, devices: Vec<KnownDevice>) {
        self.text.load(counts, devices);
    }

    /// Replaces the counts of stored messages (after a purge) and forgets devices unseen
    /// since `forget_before`.
    pub fn refresh_mailbox(&mut self, counts: Vec<(String, u64)>, forget_before: u64) {
        self.text.refresh(counts, forget_before);
    }

    /// The next change to make durable.
    pub fn poll_store_op(&mut self) -> Option<StoreOp> {
        self.store_ops.pop_front()
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.awaited_timeout(now);
        self.forwarding.handle_timeout(now, &mut self.actions);
        self.text.handle_timeout(now);
        self.presence_timeout(now);
        self.pump(now);
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Drains the endpoint: transmits queued, transaction events handed to the response
    /// contexts, and what they decide carried out, until nothing is left.
    fn pump(&mut self, now: Instant) {
        loop {
            self.apply_text(now);
            self.apply_actions(now);
            // Carrying out one decision may lead to another (a next q group with no socket).
            if !self.actions.is_empty() || self.text.has_actions() {
                continue;
            }
            match self.endpoint.poll_output() {
                None => break,
                Some(Output::Transmit(t)) => self.transmits.push_back(t),
                Some(Output::Event(
                    TransactionEvent::TimedOut(id) | TransactionEvent::TransportError(id),
                )) if self.text.on_failure(id) || self.presence.on_failure(id) => {}
                Some(Output::Event(TransactionEvent::TimedOut(id))) => {
                    if let Some(d) = self.forwarding.destination_of(id) {
                        self.down.note(d, now);
                    }
                    self.forwarding.on_timeout(id, &mut self.actions)
                }
                Some(Output::Event(TransactionEvent::TransportError(id))) => {
                    let destination = self.forwarding.destination_of(id);
                    if let Some(d) = destination {
                        self.down.note(d, now);
                    }
                    let code = self.failure_code(destination);
                    self.forwarding
                        .on_transport_error(id, code, &mut self.actions)
                }
                Some(Output::Event(TransactionEvent::Terminated(id))) => {
                    self.forwarding.on_terminated(id);
                    self.anchoring.forget(id);
                }
                Some(Output::Event(e)) => tracing::debug!(event = ?e, "transaction event"),
            }
        }
    }

    /// When to call [`ServerCore::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.endpoint.poll_timeout(),
            self.forwarding.poll_timeout(),
            self.text.poll_timeout(),
            self.presence.poll_timeout(),
            self.awaited_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

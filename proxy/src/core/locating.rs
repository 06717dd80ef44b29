//! Requests for other domains wait here while DNS locates the domain's servers (RFC 3263): the
//! core asks for a look-up as an output and takes the answer as an input, like a packet.

use super::ServerCore;
use crate::repeated::Event;
use crate::routing::{Flow, Target};
use openline_sip::Transport;
use openline_sip::message::{Refusal, RouteEdit};
use openline_sip::transaction::{Destination, TransactionId};
use openline_sip_net::LocateError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Most look-ups under way at once: beyond it a request for another domain gets 503, so a
/// flood of requests for unresolvable domains holds a bounded amount of state.
const MOST_LOOKUPS: usize = 1024;

/// How long a server that timed out or refused the connection goes to the end of its domain's
/// list, so that each new call does not wait on it first.
const DOWN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// A look-up for the driver to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Names the answer in [`ServerCore::handle_located`].
    pub id: u64,
    /// The URI whose servers are wanted.
    pub uri: String,
    /// The transports we can reach them over, best first.
    pub transports: Vec<Transport>,
}

/// A request waiting for its look-up.
#[derive(Debug)]
pub(super) struct Waiting {
    server: TransactionId,
    request: Vec<u8>,
    source: SocketAddr,
    domain: String,
    route: RouteEdit,
}

/// The look-ups under way.
#[derive(Debug, Default)]
pub(super) struct Lookups {
    next: u64,
    waiting: HashMap<u64, Waiting>,
    asked: std::collections::VecDeque<Lookup>,
}

/// What the driver must know of a destination the transaction layer only knows by address: the
/// domain a TLS server must prove (RFC 5922), and whether it is a device's own connection that
/// must not be opened anew.
#[derive(Debug, Default)]
pub(super) struct Destinations {
    notes: HashMap<Destination, Note>,
}

#[derive(Debug, Clone)]
struct Note {
    tls_name: Option<std::sync::Arc<str>>,
    flow: Flow,
}

impl Destinations {
    /// Bounds the table: a forgotten note only means a new connection is refused (TLS) or tried
    /// in vain (a device's port) until the next request names it again.
    const MOST: usize = 8192;

    pub(super) fn remember(&mut self, target: &Target) {
        if target.tls_name.is_none() && target.flow == Flow::No {
            return;
        }
        if self.notes.len() >= Self::MOST && !self.notes.contains_key(&target.destination) {
            self.notes.clear();
        }
        let note = Note {
            tls_name: target.tls_name.clone(),
            flow: target.flow,
        };
        self.notes.insert(target.destination, note);
    }

    fn get(&self, d: &Destination) -> Option<&Note> {
        self.notes.get(d)
    }
}

/// Servers that failed lately (RFC 3263 leaves the memory of failures to the client).
#[derive(Debug, Default)]
pub(super) struct DownServers {
    until: HashMap<Destination, Instant>,
}

impl DownServers {
    /// Whether `server` failed lately.
    pub(super) fn is_down(&self, server: &Destination, now: Instant) -> bool {
        self.until.get(server).is_some_and(|until| *until > now)
    }

    pub(super) fn note(&mut self, server: Destination, now: Instant) {
        if self.until.len() >= 4096 {
            self.until.retain(|_, until| *until > now);
        }
        self.until.insert(server, now + DOWN_FOR);
    }

    /// Puts the servers that failed lately last, keeping the order otherwise.
    fn reorder(&self, servers: &mut [Destination], now: Instant) {
        servers.sort_by_key(|s| self.until.get(s).is_some_and(|until| *until > now));
    }
}

impl ServerCore {
    /// Whether `domain` already has as many requests under way as it may; refuses the request
    /// with 503 if so.
    pub(super) fn domain_busy(
        &mut self,
        now: Instant,
        server: TransactionId,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        domain: &str,
    ) -> bool {
        if self.forwarding.in_flight(domain) < self.config.max_per_domain {
            return false;
        }
        crate::metrics::limited("requests_per_domain");
        if let Some(count) = self.guard.log.note(now, Event::DomainBusy, &domain) {
            tracing::warn!(%domain, count, "{}", Event::DomainBusy.what());
        }
        let refusal = Refusal::new(
            503,
            "Service Unavailable (too many requests under way to that domain)",
        )
        .with("Retry-After", "10");
        if let Err(e) = self.refuse(now, server, source, request, refusal) {
            tracing::debug!(error = %e, "could not refuse");
        }
        true
    }

    /// Parks `request` until the servers of `domain` are known.
    pub(super) fn locate(
        &mut self,
        now: Instant,
        server: TransactionId,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        (domain, uri, route): (String, String, RouteEdit),
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        if self.domain_busy(now, server, source, request, &domain) {
            return Ok(());
        }
        if self.lookups.waiting.len() >= MOST_LOOKUPS {
            tracing::warn!(%domain, "too many DNS look-ups under way");
            let refusal = Refusal::new(503, "Service Unavailable (too many look-ups under way)")
                .with("Retry-After", "5");
            return self.refuse(now, server, source, request, refusal);
        }
        let transports: Vec<Transport> = openline_sip::locate::PREFERENCE
            .into_iter()
            .filter(|t| self.us.address(*t).is_some())
            .collect();
        let id = self.lookups.next;
        self.lookups.next += 1;
        self.lookups.waiting.insert(
            id,
            Waiting {
                server,
                request: request.to_bytes(),
                source,
                domain,
                route,
            },
        );
        self.lookups.asked.push_back(Lookup {
            id,
            uri,
            transports,
        });
        Ok(())
    }

    /// The next DNS look-up to make.
    pub fn poll_lookup(&mut self) -> Option<Lookup> {
        self.lookups.asked.pop_front()
    }

    /// The servers look-up `id` found, best first, or why there are none: the waiting request
    /// goes to the first, with the others to fall back on; or is answered 404 (the domain has
    /// no SIP servers) or 504 (DNS did not answer).
    pub fn handle_located(
        &mut self,
        now: Instant,
        id: u64,
        found: Result<Vec<Destination>, LocateError>,
    ) {
        let Some(w) = self.lookups.waiting.remove(&id) else {
            return; // cancelled meanwhile
        };
        let Ok(request) = openline_sip::Message::parse(&w.request) else {
            return;
        };
        let result = match found {
            Ok(mut servers) if !servers.is_empty() => {
                self.down.reorder(&mut servers, now);
                tracing::debug!(domain = %w.domain, ?servers, "located");
                let first = servers.remove(0);
                let mut target = Target::hop(None, first, Some(&w.domain));
                target.fallbacks = servers;
                self.forward(
                    now,
                    Some(w.server),
                    w.source,
                    &request,
                    vec![target],
                    w.route,
                );
                Ok(())
            }
            Ok(_) | Err(LocateError::NotFound) => {
                let refusal = Refusal::new(404, "Not Found (no SIP server for that domain)");
                self.refuse(now, w.server, w.source, &request, refusal)
            }
            Err(e) => {
                tracing::warn!(domain = %w.domain, error = %e, "DNS look-up failed");
                let refusal = Refusal::new(504, "Server Time-out (DNS look-up failed)");
                self.refuse(now, w.server, w.source, &request, refusal)
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not go on after a look-up");
        }
        self.pump(now);
    }

    /// The caller cancelled a request still waiting for its look-up: true if there was one,
    /// which is then answered 487.
    pub(super) fn cancel_lookup(&mut self, now: Instant, server: TransactionId) -> bool {
        let Some(id) = self
            .lookups
            .waiting
            .iter()
            .find(|(_, w)| w.server == server)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        let Some(w) = self.lookups.waiting.remove(&id) else {
            return false;
        };
        if let Ok(request) = openline_sip::Message::parse(&w.request) {
            let refusal = Refusal::new(487, "Request Terminated");
            if let Err(e) = self.refuse(now, server, w.source, &request, refusal) {
                tracing::debug!(error = %e, "could not answer a cancelled request");
            }
        }
        true
    }

    /// How the driver may send to `destination`: the domain a TLS server there must prove, and
    /// whether a connection may be opened to it (not to a device's own, now lost, flow).
    pub fn send_policy(&self, destination: &Destination) -> (Option<&str>, bool) {
        match self.destinations.get(destination) {
            Some(note) => (note.tls_name.as_deref(), note.flow == Flow::No),
            None => (None, true),
        }
    }

    /// The status a failed send to `destination` counts as: 430 for a lost outbound flow
    /// (RFC 5626 section 5.3), 480 for another device's lost connection (the device is not
    /// reachable now), else 503 (RFC 3261 8.1.3.1).
    pub(super) fn failure_code(&self, destination: Option<Destination>) -> u16 {
        let note = destination.and_then(|d| self.destinations.get(&d));
        match note.map(|n| n.flow) {
            Some(Flow::Outbound) => 430,
            Some(Flow::Connection) => 480,
            _ => 503,
        }
    }

    /// A stream connection to `destination` ended: what was sent over it and heard nothing
    /// back fails now, as a transport error (the next server is tried, or upstream hears it).
    pub fn handle_connection_lost(&mut self, now: Instant, destination: Destination) {
        self.note_flow_lost(&destination);
        self.endpoint.handle_connection_lost(now, destination);
        self.pump(now);
    }

    /// The network could not send `transmit` (connection refused, certificate not valid for the
    /// domain): its transaction ends as on a 503, so the next server is tried.
    pub fn handle_send_failure(
        &mut self,
        now: Instant,
        transmit: &openline_sip::endpoint::Transmit,
    ) {
        self.endpoint.handle_transport_error(now, transmit);
        self.pump(now);
    }
}

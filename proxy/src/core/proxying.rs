//! The proxy half of the core: who may send, where a request goes, and carrying out what
//! the response contexts decide (RFC 3261 section 16).

use super::ServerCore;
use crate::capabilities;
use crate::forward::{Action, NewBranch};
use crate::routing::{self, Decision, Target};
use openline_registrar::auth::AuthOutcome;
use openline_sip::Method;
use openline_sip::transaction::TransactionId;
use openline_sip_net::PeerIdentity;
use std::net::SocketAddr;
use std::time::Instant;

use crate::repeated::Event;
use openline_sip::message::Refusal;

impl ServerCore {
    /// A new request other than REGISTER and CANCEL: answered here, forwarded, or refused.
    pub(super) fn route(
        &mut self,
        now: Instant,
        wall: u64,
        id: TransactionId,
        (transport, source, udp_size): (openline_sip::Transport, SocketAddr, Option<usize>),
        request: &openline_sip::Message<'_>,
        peer: Option<&PeerIdentity>,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        if let Some(aor) = routing::node_hop(request, &self.us) {
            return self.sent_by_node(now, wall, id, (transport, source), request, &aor);
        }
        if let Some(refusal) = check_peer_domain(request, peer) {
            return self.refuse(now, id, source, request, refusal);
        }
        if self.addressed_to_us(request) {
            // A keep-alive or capability query to the server itself (phones, monitors, other
            // servers): answered from anyone, never challenged.
            return self.carry_out(now, id, source, request, Decision::Answer);
        }
        let caller = match self.check_sender(now, wall, source, request) {
            Ok(caller) => caller,
            Err(refusal) => return self.refuse(now, id, source, request, refusal),
        };
        let local_sender = caller.is_some();
        if matches!(request.method(), Method::Subscribe | Method::Publish) {
            let arrival = (transport, source);
            let who = (local_sender, peer.is_some());
            if let Some(done) = self.presence_request(now, id, arrival, request, who) {
                return done;
            }
        }
        if local_sender && matches!(request.method(), Method::Message | Method::Invite) {
            self.presence_contacted(now, request);
        }
        let users = &self.users;
        let decision = routing::decide(
            request,
            &self.us,
            &self.location,
            |a| users.contains_key(a),
            wall,
            local_sender,
        );
        if let Some(caller) =
            caller.filter(|_| request.method() == Method::Invite && request.to_tag.is_none())
        {
            let out = self.to_other_domain(&decision);
            if let Some(refusal) = self.guard_call(now, id, &caller, out) {
                return self.refuse(now, id, source, request, refusal);
            }
        }
        if request.method() == Method::Message && request.to_tag.is_none() {
            let arrival = (source, udp_size, request);
            return self.route_message(now, wall, id, arrival, decision, local_sender);
        }
        if request.method() == Method::Invite
            && request.to_tag.is_none()
            && !self.config.push.providers.is_empty()
        {
            return self.fork_waking(now, wall, (id, source), request, decision);
        }
        self.carry_out(now, id, source, request, decision)
    }

    /// Whether `decision` sends a request out of our domains (the hourly spend limit).
    fn to_other_domain(&self, decision: &Decision) -> bool {
        match decision {
            Decision::Locate { .. } => true,
            Decision::Relay { target, .. } => target
                .tls_name
                .as_deref()
                .is_some_and(|d| !self.us.domains.iter().any(|ours| ours == d)),
            _ => false,
        }
    }

    /// An OPTIONS whose Request-URI is the server itself (no user part: one of our domains or
    /// addresses) and that routes no further.
    fn addressed_to_us(&self, request: &openline_sip::Message<'_>) -> bool {
        request.method() == Method::Options
            && request.request_uri().is_some_and(|uri| {
                uri.sip()
                    .is_some_and(|u| u.user.is_none() && self.us.is_us(u))
            })
            && request
                .list(openline_sip::header::HeaderName::Route)
                .all(|v| {
                    openline_sip::header::NameAddr::parse(v)
                        .is_some_and(|r| r.uri.sip().is_some_and(|u| self.us.is_us(u)))
                })
    }

    /// Carries out where routing decided a request goes.
    pub(super) fn carry_out(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        decision: Decision,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        match decision {
            Decision::Answer => {
                let answer = capabilities::answer(request);
                let mut headers: Vec<(&str, &str)> = answer
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect();
                headers.push(("Server", &self.server_header));
                tracing::debug!(method = %request.method(), %source, code = answer.code, "answered");
                self.endpoint
                    .reply(now, id, &request.echo(), source, answer.code, &headers)
            }
            Decision::Refuse(code, reason) => {
                tracing::debug!(method = %request.method(), %source, code, reason, "refused");
                self.refuse(now, id, source, request, Refusal::new(code, reason))
            }
            Decision::Fork { targets, route, .. } => {
                // Parallel within a q group, the groups in turn (16.6); targets come best first.
                let mut groups: Vec<Vec<Target>> = Vec::new();
                for t in targets {
                    match groups.last_mut() {
                        Some(g) if g[0].q == t.q => g.push(t),
                        _ => groups.push(vec![t]),
                    }
                }
                let mut groups = groups.into_iter();
                let first = groups.next().unwrap_or_default();
                self.forward(now, Some(id), source, request, first, route);
                self.forwarding.queue(id, groups.collect());
                Ok(())
            }
            Decision::Relay { target, route } => {
                // A BYE ends a call already paid for: refusing it for the quota would leave the
                // call up at the other end, so it always goes (and counts).
                let hang_up = request.method() == Method::Bye;
                let busy = !hang_up
                    && target
                        .tls_name
                        .as_deref()
                        .is_some_and(|domain| self.domain_busy(now, id, source, request, domain));
                if !busy {
                    self.forward(now, Some(id), source, request, vec![target], route);
                }
                Ok(())
            }
            Decision::Locate { domain, uri, route } => {
                self.locate(now, id, source, request, (domain, uri, route))
            }
        }
    }

    /// Answers with a refusal: its status, reason and headers (407 with its challenges, 403,
    /// 404, ...).
    pub(super) fn refuse(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        refusal: Refusal,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        self.guard_call_failed(id);
        let Refusal {
            code,
            reason,
            headers,
        } = refusal;
        let tag = self.endpoint.new_tag();
        let mut b = openline_sip::message::ResponseBuilder::new(
            code,
            &reason,
            &request.echo(),
            source,
            Some(&tag),
        );
        for (name, value) in &headers {
            b = b.header(name, value);
        }
        let bytes = b.header("Server", &self.server_header).finish();
        self.endpoint.respond(now, id, bytes)
    }

    /// Who may use the proxy (issue #4 item 3): a new request whose From names one of our
    /// domains must carry that user's credentials (407 until it does; RFC 3261 22.3); anyone
    /// else is a stranger, whom routing only lets reach local users. In-dialog requests, ACK
    /// and CANCEL are never challenged. Ok(Some(user@domain)) for a local user who
    /// authenticated; the refusal to send otherwise.
    fn check_sender(
        &mut self,
        now: Instant,
        wall: u64,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
    ) -> Result<Option<String>, Refusal> {
        if request.to_tag.is_some() || matches!(request.method(), Method::Ack | Method::Cancel) {
            return Ok(None);
        }
        let Some(from) = request.from() else {
            return Ok(None);
        };
        let Some(from) = from.uri.sip() else {
            return Ok(None);
        };
        let domain = from.host.to_string().to_ascii_lowercase();
        if !self.us.domains.contains(&domain) {
            return Ok(None);
        }
        let claimed = format!("{}@{domain}", from.user.unwrap_or(""));
        let users = &self.users;
        let refuse = |code: u16, reason: &str| Err(Refusal::new(code, reason));
        let outcome = self
            .auth
            .verify_proxy(wall, request, &domain, source.ip(), |a| users.get(a));
        crate::metrics::auth(&outcome);
        match outcome {
            AuthOutcome::Authenticated(who) if who == claimed => Ok(Some(claimed)),
            AuthOutcome::Authenticated(who) => {
                if let Some(count) = self.guard.log.note(now, Event::OtherFrom, &source.ip()) {
                    tracing::warn!(%who, %claimed, %source, count, "{}", Event::OtherFrom.what());
                }
                refuse(403, "Forbidden (From is not the authenticated user)")
            }
            AuthOutcome::Challenge { stale } => {
                let user_agent = request.header(openline_sip::header::HeaderName::UserAgent);
                let headers = self
                    .auth
                    .challenges(wall, &domain, stale, user_agent, self.entropy.as_mut())
                    .into_iter()
                    .map(|c| ("Proxy-Authenticate", c))
                    .collect();
                Err(Refusal {
                    headers,
                    ..Refusal::new(407, "Proxy Authentication Required")
                })
            }
            AuthOutcome::Failed => refuse(403, "Forbidden (authentication failed)"),
            AuthOutcome::Malformed(e) => refuse(400, &format!("Bad Request ({e})")),
            AuthOutcome::Throttled(key) => {
                if let Some(count) = self.guard.log.note(now, Event::AuthThrottled, &source.ip()) {
                    tracing::warn!(%key, %source, count, "{}", Event::AuthThrottled.what());
                }
                refuse(403, "Forbidden (too many failed attempts, try later)")
            }
        }
    }

    /// Sends `request` to every target: statefully with a branch each when it came in a server
    /// transaction (`server`), statelessly otherwise (an ACK for a 2xx).
    pub(super) fn forward(
        &mut self,
        now: Instant,
        server: Option<TransactionId>,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        targets: Vec<Target>,
        route: openline_sip::message::RouteEdit,
    ) {
        // Sent on by another node of ours, which anchors the media. Both nodes record the
        // route: the dialog's requests for the device then come through the node holding its
        // flow (behind NAT only that node reaches it), as do the device's answers.
        let from_node = routing::node_hop(request, &self.us).is_some();
        // Only pushed devices to wait for: the offer is anchored once one registers, when
        // the relay can know which side of it the device is on.
        let only_waiting =
            targets.is_empty() && server.is_some_and(|s| self.forwarding.is_holding(s));
        if !from_node
            && !only_waiting
            && self.anchor_request(now, server, source, request, (&targets, route))
        {
            return;
        }
        if request.method() == Method::Bye && server.is_some() {
            self.release_media(request);
        }
        let prefix = routing::branch_prefix(routing::loop_hash(request));
        let method = request.method();
        // Stay on the path of dialogs we help create (16.6 step 4).
        let record = request.to_tag.is_none()
            && matches!(method, Method::Invite | Method::Subscribe | Method::Refer);
        // Requests to another domain are counted against it.
        let domain = targets.first().and_then(|t| t.tls_name.clone());
        let mut branches = Vec::with_capacity(targets.len());
        for mut target in targets {
            let Some(bytes) =
                self.forwarded_copy(source, request, &target, route, (&prefix, record))
            else {
                continue;
            };
            tracing::debug!(%method, to = %target.destination.addr, transport = %target.destination.transport, "forwarding");
            match server {
                None => self.endpoint.send_stateless(target.destination, bytes),
                Some(_) => match self
                    .endpoint
                    .send_request(now, bytes.clone(), target.destination)
                {
                    Ok(client) => {
                        let destination = target.destination;
                        let fallback = (!target.fallbacks.is_empty()).then(|| {
                            target.destination = target.fallbacks.remove(0);
                            target
                        });
                        branches.push(NewBranch {
                            client,
                            sent: bytes,
                            destination,
                            fallback,
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "could not forward"),
                },
            }
        }
        let Some(server) = server else { return };
        if branches.is_empty() && self.forwarding.has(server) {
            // The next group or server had nowhere to go: the context decides what now.
            self.forwarding.forward_failed(server, &mut self.actions);
            return;
        }
        let received = request.to_bytes();
        if branches.is_empty() && !self.forwarding.is_holding(server) {
            self.actions.push(Action::Reply {
                server,
                code: 500,
                request: received,
                source,
            });
            return;
        }
        if self.forwarding.has(server) {
            // The next q group, or the next server, of a context already under way.
            self.forwarding.extend(server, branches);
            return;
        }
        let ring_until = (method == Method::Invite).then(|| now + self.config.ring_timeout);
        self.forwarding.start(
            server,
            (received, source),
            ring_until,
            branches,
            (Vec::new(), route),
        );
        if let Some(domain) = domain {
            self.forwarding.tag_domain(server, &domain);
        }
    }

    /// `request` as forwarded to `target` (16.6): our Via with a branch under `prefix`, our
    /// Record-Route when `record`; None when no socket has the target's transport.
    pub(super) fn forwarded_copy(
        &mut self,
        source: SocketAddr,
        request: &openline_sip::Message<'_>,
        target: &Target,
        route: openline_sip::message::RouteEdit,
        (prefix, record): (&str, bool),
    ) -> Option<Vec<u8>> {
        let transport = target.destination.transport;
        let Some(hop) = self.hop_for(transport, target.destination.addr) else {
            tracing::debug!(%transport, to = %target.destination.addr, "no socket to forward on");
            return None;
        };
        let record_route = record.then(|| {
            let arrival = request.top_via.transport();
            self.record_route_for((arrival, source), (transport, &hop))
        });
        let suffix = openline_sip::entropy::random_token(self.entropy.as_mut(), 8);
        let mut via = String::with_capacity(hop.via.len() + prefix.len() + 16);
        for part in [hop.via.as_str(), prefix, ".", &suffix, ";rport"] {
            via.push_str(part);
        }
        let bytes = request.forwarded_request(&openline_sip::message::RequestEdits {
            request_uri: target.request_uri.as_deref(),
            via: &via,
            record_route: record_route.as_deref(),
            route,
            push_route: target.route.as_deref(),
            received_from: Some(source),
            own_realms: &self.config.domains,
        });
        self.destinations.remember(target);
        Some(bytes)
    }

    /// A response no transaction knows: passed on by its next Via if the top one is ours.
    pub(super) fn forward_stray(&mut self, response: &openline_sip::Message<'_>) {
        let top = &response.top_via;
        let ours = top
            .host
            .ip()
            .is_some_and(|ip| self.us.is_our_address(ip, top.port.unwrap_or(5060)));
        let next = response.vias().nth(1).flatten();
        let (true, Some(next)) = (ours, next) else {
            tracing::debug!(
                status = response.status().unwrap_or(0),
                "stray response dropped"
            );
            return;
        };
        let Some(transport) = next.transport() else {
            return;
        };
        let host = next
            .received()
            .and_then(|r| r.parse().ok())
            .or(next.host.ip());
        let port = next
            .rport()
            .flatten()
            .unwrap_or_else(|| next.sent_by_port());
        let Some(ip) = host else { return };
        self.endpoint.send_stateless(
            openline_sip::transaction::Destination {
                transport,
                addr: SocketAddr::new(ip, port),
            },
            response.forwarded_response(),
        );
    }

    /// Carries out what the response contexts decided.
    pub(super) fn apply_actions(&mut self, now: Instant) {
        // In order: a 180 decided before a 200 goes out before it.
        for action in std::mem::take(&mut self.actions) {
            let result = match action {
                Action::Respond { server, response } => {
                    if response.get(8..9).is_some_and(|d| d != b"1") {
                        self.call_settled(server);
                    }
                    if response.get(8..9).is_some_and(|d| d != b"1" && d != b"2") {
                        self.guard_call_failed(server);
                    }
                    self.note_response(now, server, &response);
                    self.respond_anchored(now, server, response)
                }
                Action::Reply {
                    server,
                    code,
                    request,
                    source,
                } => match openline_sip::Message::parse(&request) {
                    Ok(m) => {
                        self.call_settled(server);
                        self.guard_call_failed(server);
                        self.anchoring.failed(server);
                        self.forget_bridged(m.call_id);
                        let echo = m.echo();
                        let server_header = ("Server", self.server_header.as_str());
                        // Our own 503s are passing conditions (RFC 3261 forbids relaying a
                        // downstream 503): say when to come back.
                        let retry = ("Retry-After", crate::capabilities::RETRY_AFTER);
                        let headers: &[(&str, &str)] = if code == 503 {
                            &[server_header, retry]
                        } else {
                            &[server_header]
                        };
                        self.endpoint
                            .reply(now, server, &echo, source, code, headers)
                    }
                    Err(_) => Ok(()),
                },
                Action::Forward {
                    server,
                    request,
                    source,
                    targets,
                    route,
                } => {
                    match openline_sip::Message::parse(&request) {
                        Ok(m) => self.forward(now, Some(server), source, &m, targets, route),
                        Err(_) => self.forwarding.forward_failed(server, &mut self.actions),
                    }
                    Ok(())
                }
                Action::Cancel {
                    request,
                    destination,
                } => self
                    .endpoint
                    .send_request(now, request, destination)
                    .map(|_| ()),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "forwarding step failed");
            }
        }
    }
}

/// A request over TLS from a peer that proved a certificate (another domain's server) must come
/// from that domain: its From domain must be one the certificate names (RFC 5922 section 7.1;
/// issue #4 item 4). Phones over TLS have no client certificate and are not checked here.
fn check_peer_domain(
    request: &openline_sip::Message<'_>,
    peer: Option<&PeerIdentity>,
) -> Option<Refusal> {
    let peer = peer?;
    let domain = request
        .from()
        .and_then(|f| f.uri.sip().map(|u| u.host.to_string()))
        .unwrap_or_default();
    if peer.covers(domain.trim_end_matches('.')) {
        return None;
    }
    tracing::warn!(%domain, "request over TLS whose From domain is not the peer's certificate's");
    Some(Refusal::new(
        403,
        "Forbidden (From domain does not match the TLS peer)",
    ))
}

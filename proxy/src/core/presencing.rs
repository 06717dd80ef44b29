//! The core as presence agent of its local users: SUBSCRIBE (event `presence`) and PUBLISH
//! for a local presentity are answered here instead of being proxied to its devices; the
//! NOTIFYs the agent asks for go out as our own requests, each on its subscriber's flow; the
//! registrar's changes of bindings feed the agent.

use super::ServerCore;
use crate::presence::agent::{
    Dialog, Notify, PresenceAgent, SubscribeOutcome, SubscribeRequest, SubscriptionId,
};
use crate::presence::deadlines::Deadlines;
use openline_sip::header::HeaderName;
use openline_sip::message::{Refusal, RequestBuilder, ResponseBuilder};
use openline_sip::pidf;
use openline_sip::transaction::{Destination, TransactionId};
use openline_sip::{Message, Method, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The presence agent and the NOTIFYs under way.
#[derive(Debug)]
pub(super) struct Presencing {
    pub(super) agent: PresenceAgent,
    /// Each subscription's flow: where its NOTIFYs go.
    flows: HashMap<SubscriptionId, Destination>,
    /// NOTIFY transactions, by the subscription they belong to.
    notifying: HashMap<TransactionId, SubscriptionId>,
    /// When each online presentity's next binding lapses: it is looked at again then, so an
    /// expired registration is seen offline at once, not at the minute's purge.
    lapses: Deadlines<String>,
    /// The wall clock (seconds) at a monotonic instant, to judge bindings at a timer.
    wall_at: Option<(Instant, u64)>,
    /// (presentity, watcher), both `user@domain`: the presentity wrote to or called the
    /// watcher, who may therefore see it from another domain.
    contacted: std::collections::HashSet<(String, String)>,
}

impl Presencing {
    pub(super) fn new(config: crate::presence::agent::PresenceConfig) -> Self {
        Presencing {
            agent: PresenceAgent::new(config),
            flows: HashMap::new(),
            notifying: HashMap::new(),
            lapses: Deadlines::default(),
            wall_at: None,
            contacted: std::collections::HashSet::new(),
        }
    }

    /// When a presentity's binding next lapses, or the agent's next deadline.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.lapses
            .next()
            .into_iter()
            .chain(self.agent.poll_timeout())
            .min()
    }

    /// A response to one of our NOTIFYs: true when it was one. A 481 or a failure ends the
    /// subscription (RFC 6665 4.2.2).
    pub(super) fn on_response(&mut self, id: TransactionId, response: &Message<'_>) -> bool {
        let Some(&subscription) = self.notifying.get(&id) else {
            return false;
        };
        let code = response.status().unwrap_or(0);
        if code >= 200 {
            self.notifying.remove(&id);
        }
        if code == 481 || code >= 500 || code == 408 {
            self.ended(subscription);
        }
        true
    }

    /// A NOTIFY of ours got no answer at all.
    pub(super) fn on_failure(&mut self, id: TransactionId) -> bool {
        match self.notifying.remove(&id) {
            Some(subscription) => {
                self.ended(subscription);
                true
            }
            None => false,
        }
    }

    fn ended(&mut self, subscription: SubscriptionId) {
        self.agent.notify_failed(subscription);
        self.flows.remove(&subscription);
    }
}

/// `user@domain` of a SIP URI, the domain lowercased (how users are keyed).
pub(super) fn aor_of(uri: &openline_sip::uri::SipUri<'_>) -> String {
    format!(
        "{}@{}",
        uri.user.unwrap_or(""),
        uri.host.to_string().to_ascii_lowercase()
    )
}

impl ServerCore {
    /// A SUBSCRIBE or PUBLISH: answered here (and true) when it is about presence of a local
    /// user, or belongs to one of our subscriptions; otherwise left to routing.
    pub(super) fn presence_request(
        &mut self,
        now: Instant,
        id: TransactionId,
        (transport, source): (Transport, SocketAddr),
        request: &Message<'_>,
        (local_sender, verified_peer): (bool, bool),
    ) -> Option<Result<(), openline_sip::endpoint::EndpointError>> {
        let method = request.method();
        let ours = request.to_tag.is_some_and(|to| {
            request
                .from_tag
                .is_some_and(|from| self.presence.agent.holds(request.call_id, from, to))
        });
        let presentity = request
            .request_uri()
            .and_then(|u| u.sip().map(aor_of))
            .filter(|aor| self.users.contains_key(aor));
        if !ours && (request.to_tag.is_some() || presentity.is_none()) {
            return None;
        }
        let event = request.header(HeaderName::Event).map(|e| {
            e.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if event.as_deref() != Some("presence") {
            return Some(
                self.refuse(
                    now,
                    id,
                    source,
                    request,
                    Refusal::new(489, "Bad Event (only presence here)")
                        .with("Allow-Events", "presence"),
                ),
            );
        }
        let expires = request.expires().flatten();
        let flow = Destination {
            transport,
            addr: source,
        };
        Some(match method {
            Method::Subscribe => {
                let who = (local_sender, verified_peer);
                self.subscribe(now, id, flow, request, presentity, expires, who)
            }
            _ => self.publish(now, id, source, request, presentity, expires, local_sender),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &mut self,
        now: Instant,
        id: TransactionId,
        flow: Destination,
        request: &Message<'_>,
        presentity: Option<String>,
        expires: Option<u32>,
        (local_sender, verified_peer): (bool, bool),
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        let subscriber = request
            .from()
            .and_then(|f| f.uri.sip().map(aor_of))
            .unwrap_or_default();
        let target = request.contacts().and_then(|c| match c.first() {
            Some(openline_sip::header::Contact::Address(a)) => Some(a.uri.as_str().to_string()),
            _ => None,
        });
        let (Some(target), Some(their_tag)) = (target, request.from_tag) else {
            return self.refuse(
                now,
                id,
                flow.addr,
                request,
                Refusal::new(400, "SUBSCRIBE needs a Contact and a From tag"),
            );
        };
        let our_tag = request
            .to_tag
            .map_or_else(|| self.endpoint.new_tag(), str::to_string);
        // The presentity of a refresh is the one its subscription has; of a new one, the
        // Request-URI's.
        let presentity = presentity.unwrap_or_default();
        let same_domain = subscriber.rsplit('@').next() == presentity.rsplit('@').next();
        // Someone of another domain whom the presentity wrote to or called, when the
        // request came from that domain's server itself (its TLS certificate names it).
        let contacted = verified_peer
            && self
                .presence
                .contacted
                .contains(&(presentity.clone(), subscriber.clone()));
        let dialog = Dialog {
            call_id: request.call_id.to_string(),
            their_tag: their_tag.to_string(),
            our_tag: our_tag.clone(),
            subscriber: format!("sip:{subscriber}"),
            target,
            route_set: request
                .list(HeaderName::RecordRoute)
                .map(|r| r.trim().to_string())
                .collect(),
        };
        let outcome = self.presence.agent.subscribe(
            now,
            SubscribeRequest {
                presentity: &format!("sip:{presentity}"),
                dialog,
                expires,
                authorized: (local_sender && same_domain) || contacted,
            },
        );
        match outcome {
            SubscribeOutcome::Accepted {
                code,
                expires,
                subscription,
            } => {
                let contact = self.our_contact(flow.transport, flow.addr);
                let mut b = ResponseBuilder::new(
                    code,
                    openline_sip::message::standard_reason(code),
                    &request.echo(),
                    flow.addr,
                    Some(&our_tag),
                )
                .header("Expires", expires)
                .header("Server", &self.server_header);
                if let Some(c) = contact {
                    b = b.header("Contact", c);
                }
                let result = self.endpoint.respond(now, id, b.finish());
                // Its NOTIFYs go where the SUBSCRIBE came from.
                self.presence.flows.insert(subscription, flow);
                self.send_notifies(now);
                result
            }
            SubscribeOutcome::Refused { code, reason } => {
                let mut refusal = Refusal::new(code, reason);
                if code == 423 {
                    let least = self.presence.agent.min_expires().to_string();
                    refusal = refusal.with("Min-Expires", least);
                }
                self.refuse(now, id, flow.addr, request, refusal)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &Message<'_>,
        presentity: Option<String>,
        expires: Option<u32>,
        local_sender: bool,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        let presentity = presentity.unwrap_or_default();
        let from = request
            .from()
            .and_then(|f| f.uri.sip().map(aor_of))
            .unwrap_or_default();
        if !local_sender || from != presentity {
            return self.refuse(
                now,
                id,
                source,
                request,
                Refusal::new(403, "Forbidden (only a user publishes their own presence)"),
            );
        }
        let body = if request.body.is_empty() {
            None
        } else {
            match pidf::parse(request.body) {
                Ok(status) => Some(status),
                Err(e) => {
                    return self.refuse(
                        now,
                        id,
                        source,
                        request,
                        Refusal::new(400, format!("Bad Request ({e})")),
                    );
                }
            }
        };
        let etag = request.header(HeaderName::Other("SIP-If-Match"));
        let result = self.presence.agent.publish(
            now,
            &format!("sip:{presentity}"),
            etag.map(str::trim),
            expires,
            body,
        );
        match result {
            Ok((etag, expires)) => {
                let response = ResponseBuilder::new(200, "OK", &request.echo(), source, None)
                    .header("SIP-ETag", &etag)
                    .header("Expires", expires)
                    .header("Server", &self.server_header)
                    .finish();
                let r = self.endpoint.respond(now, id, response);
                self.share_publication(now, &presentity);
                self.send_notifies(now);
                r
            }
            Err((code, reason)) => {
                self.refuse(now, id, source, request, Refusal::new(code, reason))
            }
        }
    }

    /// A local user wrote to or called `target`: `target` may see the user's presence from
    /// another domain, and a subscription of theirs waiting for that becomes active.
    pub(super) fn presence_contacted(&mut self, now: Instant, request: &Message<'_>) {
        let from = request.from().and_then(|f| f.uri.sip().map(aor_of));
        let target = request.request_uri().and_then(|u| u.sip().map(aor_of));
        let (Some(from), Some(target)) = (from, target) else {
            return;
        };
        if from == target
            || !self
                .presence
                .contacted
                .insert((from.clone(), target.clone()))
        {
            return;
        }
        self.queue_store(
            super::StoreWork::Allow {
                presentity: from.clone(),
                watcher: target.clone(),
            },
            super::Waiter::Nobody,
        );
        self.presence
            .agent
            .authorize(now, &format!("sip:{from}"), &format!("sip:{target}"));
        self.send_notifies(now);
    }

    /// Replaces the permissions with what the store holds; new ones activate pending
    /// subscriptions at once.
    pub(super) fn presence_allowed(&mut self, now: Instant, allowed: Vec<(String, String)>) {
        let allowed: std::collections::HashSet<(String, String)> = allowed.into_iter().collect();
        let new: Vec<(String, String)> = allowed
            .difference(&self.presence.contacted)
            .cloned()
            .collect();
        let gone: Vec<(String, String)> = self
            .presence
            .contacted
            .difference(&allowed)
            .cloned()
            .collect();
        self.presence.contacted = allowed;
        for (presentity, watcher) in gone {
            // Users of the presentity's own domain see it whatever the table says.
            if watcher.rsplit('@').next() != presentity.rsplit('@').next() {
                self.presence.agent.revoke(
                    now,
                    &format!("sip:{presentity}"),
                    &format!("sip:{watcher}"),
                );
            }
        }
        for (presentity, watcher) in new {
            self.presence.agent.authorize(
                now,
                &format!("sip:{presentity}"),
                &format!("sip:{watcher}"),
            );
        }
        self.send_notifies(now);
    }

    /// Every presentity shown online is checked against its bindings again (after expiries,
    /// or a location table read again).
    pub(super) fn presence_of_everyone_online(&mut self, now: Instant, wall: u64) {
        for aor in self.presence.agent.online() {
            let aor = aor.trim_start_matches("sip:").to_string();
            self.presence_devices(now, wall, &aor);
        }
    }

    /// One permission another node granted or an operator took back.
    pub(super) fn presence_permission(
        &mut self,
        now: Instant,
        (presentity, watcher): (String, String),
        allowed: bool,
    ) {
        let (p, w) = (format!("sip:{presentity}"), format!("sip:{watcher}"));
        let same_domain = watcher.rsplit('@').next() == presentity.rsplit('@').next();
        let pair = (presentity, watcher);
        if allowed {
            if self.presence.contacted.insert(pair) {
                self.presence.agent.authorize(now, &p, &w);
            }
        } else if self.presence.contacted.remove(&pair) && !same_domain {
            // Users of the presentity's own domain see it whatever the table says.
            self.presence.agent.revoke(now, &p, &w);
        }
        self.send_notifies(now);
    }

    /// Our Contact for dialogs made with `peer` over `transport`.
    fn our_contact(&mut self, transport: Transport, peer: SocketAddr) -> Option<String> {
        self.hop_for(transport, peer).map(|h| h.contact.clone())
    }

    /// The bindings of `aor` changed: the agent hears how many devices it has now.
    pub(super) fn presence_devices(&mut self, now: Instant, wall: u64, aor: &str) {
        self.presence.wall_at = Some((now, wall));
        let live = self.location.live(aor, wall);
        let devices = live.len();
        match live.iter().map(|b| b.expires_at).min() {
            Some(at) => {
                let lapse = now + std::time::Duration::from_secs(at.saturating_sub(wall).max(1));
                self.presence.lapses.set(aor.to_string(), lapse);
            }
            None => {
                self.presence.lapses.remove(&aor.to_string());
            }
        }
        self.presence
            .agent
            .devices_changed(now, &format!("sip:{aor}"), devices);
        self.send_notifies(now);
    }

    /// Presence timers: publications and subscriptions that expire, bindings that lapse.
    pub(super) fn presence_timeout(&mut self, now: Instant) {
        if self.presence.agent.poll_timeout().is_some_and(|t| t <= now) {
            self.presence.agent.handle_timeout(now);
            self.send_notifies(now);
        }
        let lapsed = self.presence.lapses.due(now);
        if lapsed.is_empty() {
            return;
        }
        let wall = match self.presence.wall_at {
            Some((then, wall)) => wall + now.saturating_duration_since(then).as_secs(),
            None => return,
        };
        for aor in lapsed {
            self.presence_devices(now, wall, &aor);
        }
    }

    /// Sends the NOTIFYs the agent asks for.
    pub(super) fn send_notifies(&mut self, now: Instant) {
        while let Some(n) = self.presence.agent.poll_notify() {
            let Some(&flow) = self.presence.flows.get(&n.subscription) else {
                continue;
            };
            if n.state.starts_with("terminated") {
                self.presence.flows.remove(&n.subscription);
            }
            let request = self.notify_request(&n, (flow.transport, flow.addr));
            match self.endpoint.send_request(now, request, flow) {
                Ok(t) => {
                    self.presence.notifying.insert(t, n.subscription);
                }
                Err(e) => tracing::warn!(error = %e, "could not send a NOTIFY"),
            }
        }
    }

    fn notify_request(
        &mut self,
        n: &Notify,
        (transport, peer): (Transport, SocketAddr),
    ) -> Vec<u8> {
        let hop = self.hop_for(transport, peer);
        let via = hop
            .as_ref()
            .map(|h| format!("{}{}", h.via, self.endpoint.new_branch()))
            .unwrap_or_default();
        let mut b = RequestBuilder::new(Method::Notify, &n.dialog.target)
            .header("Via", via)
            .header("Max-Forwards", 70);
        for route in &n.dialog.route_set {
            b = b.header("Route", route);
        }
        let mut b = b
            .header(
                "From",
                format!("<{}>;tag={}", n.presentity, n.dialog.our_tag),
            )
            .header(
                "To",
                format!("<{}>;tag={}", n.dialog.subscriber, n.dialog.their_tag),
            )
            .header("Call-ID", &n.dialog.call_id)
            .header("CSeq", format!("{} NOTIFY", n.cseq))
            .header("Event", "presence")
            .header("Subscription-State", &n.state);
        if let Some(h) = &hop {
            b = b.header("Contact", &h.contact);
        }
        match &n.body {
            Some(body) => b.body(Some(pidf::CONTENT_TYPE), body.as_bytes()),
            None => b.finish(),
        }
    }
}

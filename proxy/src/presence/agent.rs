//! The presence agent, sans-IO: subscriptions to local presentities (RFC 6665, event package
//! `presence`, RFC 3856), what each presentity's devices and publications say, and the NOTIFYs
//! that follow every change. The core feeds it SUBSCRIBEs, PUBLISHes, binding counts and the
//! time; it answers with statuses and hands out NOTIFYs to send.

use super::deadlines::Deadlines;
use held::{Held, Subscription};
use openline_sip::pidf::{self, Status};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Limits and defaults.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// Expiry granted when a SUBSCRIBE names none (RFC 3856 6.4: 3,600 s).
    pub default_expires: u32,
    /// Longest expiry granted.
    pub max_expires: u32,
    /// Shortest accepted (a shorter one gets 423 with this Min-Expires).
    pub min_expires: u32,
    /// Most subscriptions one subscriber may hold at once.
    pub per_subscriber: usize,
    /// Longest a publication lives without refresh (RFC 3903: 3,600 s by default).
    pub max_publish: u32,
    /// What entity tags start with: a cluster's node names its own, so that a refresh
    /// taken by another node never matches another node's tag by chance.
    pub etag_prefix: String,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            default_expires: 3_600,
            max_expires: 7_200,
            min_expires: 60,
            per_subscriber: 200,
            max_publish: 3_600,
            etag_prefix: String::new(),
        }
    }
}

/// Names a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(u64);

/// Where a subscription's NOTIFYs go and what dialog they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The SUBSCRIBE's Call-ID.
    pub call_id: String,
    /// The subscriber's tag (From of its SUBSCRIBE).
    pub their_tag: String,
    /// Ours (To of our 2xx).
    pub our_tag: String,
    /// The subscriber's address of record (To of our NOTIFY).
    pub subscriber: String,
    /// Its Contact: the Request-URI of our NOTIFYs.
    pub target: String,
    /// Record-Route of the SUBSCRIBE, as our NOTIFYs carry it in Route.
    pub route_set: Vec<String>,
}

/// A subscription's state as its NOTIFYs say (RFC 6665 4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// Authorized: NOTIFYs carry the presence document.
    Active,
    /// Not (yet) authorized: NOTIFYs say nothing about the presentity.
    Pending,
}

/// A NOTIFY to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// Which subscription.
    pub subscription: SubscriptionId,
    /// Its dialog.
    pub dialog: Dialog,
    /// The presentity (From of the NOTIFY).
    pub presentity: String,
    /// The NOTIFY's CSeq.
    pub cseq: u32,
    /// The Subscription-State header value (`active;expires=N`, `terminated;reason=timeout`).
    pub state: String,
    /// The PIDF body, when the subscription is active and not ending.
    pub body: Option<String>,
}

/// What a presentity published (RFC 3903).
#[derive(Debug, Clone)]
struct Publication {
    etag: String,
    status: Status,
    expires_at: Instant,
}

/// A SUBSCRIBE as the agent needs it.
#[derive(Debug, Clone)]
pub struct SubscribeRequest<'a> {
    /// The presentity, `sip:user@domain` (a local user: the core checked).
    pub presentity: &'a str,
    /// The dialog: for a new subscription, our tag is the one to put in the 2xx.
    pub dialog: Dialog,
    /// The Expires asked for (`None`: the default).
    pub expires: Option<u32>,
    /// Whether the subscriber may see the presentity (else: pending).
    pub authorized: bool,
}

/// The agent's answer to a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// 200 (active) or 202 (pending) with this Expires; a NOTIFY follows.
    Accepted {
        /// 200 or 202.
        code: u16,
        /// The Expires granted.
        expires: u32,
        /// The subscription (its NOTIFYs carry this id).
        subscription: SubscriptionId,
    },
    /// Refused with this status and reason (423 carries Min-Expires).
    Refused {
        /// The status.
        code: u16,
        /// Why.
        reason: String,
    },
}

/// The presence agent.
#[derive(Debug)]
pub struct PresenceAgent {
    config: PresenceConfig,
    next_id: u64,
    subscriptions: Held,
    /// Registered devices per presentity (from the registrar).
    devices: HashMap<String, usize>,
    published: HashMap<String, Publication>,
    /// When each publication expires, soonest first.
    publication_expiries: Deadlines<String>,
    notifies: VecDeque<Notify>,
    next_etag: u64,
}

impl PresenceAgent {
    /// An agent with no subscriptions.
    pub fn new(config: PresenceConfig) -> Self {
        PresenceAgent {
            config,
            next_id: 1,
            subscriptions: Held::default(),
            devices: HashMap::new(),
            published: HashMap::new(),
            publication_expiries: Deadlines::default(),
            notifies: VecDeque::new(),
            next_etag: 1,
        }
    }

    /// What `presentity`'s presence says now: open while a device is registered (and its
    /// user has not published closed), with the published note.
    pub fn status(&self, presentity: &str) -> Status {
        let online = self.devices.get(presentity).is_some_and(|&n| n > 0);
        let published = self.published.get(presentity);
        Status {
            open: online && published.is_none_or(|p| p.status.open),
            note: published.and_then(|p| p.status.note.clone()),
        }
    }

    /// The presentities with a device registered, as last told.
    pub fn online(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    /// The shortest subscription accepted (what a 423's Min-Expires says).
    pub fn min_expires(&self) -> u32 {
        self.config.min_expires
    }

    /// How many subscriptions are held.
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.subscriptions.len() == 0
    }

    /// A SUBSCRIBE for `presence`: a new subscription, a refresh, or (Expires: 0) the end of
    /// one; each is followed by a NOTIFY (RFC 6665 4.2.1.2).
    pub fn subscribe(&mut self, now: Instant, request: SubscribeRequest<'_>) -> SubscribeOutcome {
        let asked = request.expires.unwrap_or(self.config.default_expires);
        if asked != 0 && asked < self.config.min_expires {
            return SubscribeOutcome::Refused {
                code: 423,
                reason: format!(
                    "Interval Too Brief (Min-Expires: {})",
                    self.config.min_expires
                ),
            };
        }
        let expires = asked.min(self.config.max_expires);
        let d = &request.dialog;
        let existing = self
            .subscriptions
            .in_dialog(&d.call_id, &d.their_tag, &d.our_tag);
        let id = match existing {
            Some(id) => id,
            None if expires == 0 => {
                // A fetch (RFC 6665 4.4.3): one NOTIFY with the state, no subscription kept.
                let id = self.allocate();
                let state = if request.authorized {
                    SubState::Active
                } else {
                    SubState::Pending
                };
                let mut fetched = Subscription::new(request.dialog, request.presentity, state, now);
                fetched.cseq = 1;
                let ending = Some("terminated;reason=timeout".into());
                self.notifies
                    .push_back(self.make_notify(now, id, &fetched, ending));
                return accepted(state, 0, id);
            }
            None => {
                if self.subscriptions.held_by(&d.subscriber) >= self.config.per_subscriber {
                    return SubscribeOutcome::Refused {
                        code: 403,
                        reason: format!(
                            "Forbidden (at most {} subscriptions per subscriber)",
                            self.config.per_subscriber
                        ),
                    };
                }
                let id = self.allocate();
                let state = if request.authorized {
                    SubState::Active
                } else {
                    SubState::Pending
                };
                let s = Subscription::new(request.dialog.clone(), request.presentity, state, now);
                self.subscriptions.insert(id, s);
                id
            }
        };
        let Some(s) = self.subscriptions.get_mut(id) else {
            return SubscribeOutcome::Refused {
                code: 500,
                reason: "subscription lost".into(),
            };
        };
        // A refresh may bring a new Contact.
        s.dialog.target = request.dialog.target;
        let state = s.state;
        let at = now + Duration::from_secs(u64::from(expires));
        self.subscriptions.set_expiry(id, at);
        if expires == 0 {
            self.end(now, id, "timeout");
        } else {
            self.notify(now, id);
        }
        accepted(state, expires, id)
    }

    fn allocate(&mut self) -> SubscriptionId {
        let id = SubscriptionId(self.next_id);
        self.next_id += 1;
        id
    }

    fn make_notify(
        &self,
        now: Instant,
        id: SubscriptionId,
        s: &Subscription,
        ending: Option<String>,
    ) -> Notify {
        let active = s.state == SubState::Active;
        let state = ending.unwrap_or_else(|| {
            let word = if active { "active" } else { "pending" };
            let left = s.expires_at().saturating_duration_since(now).as_secs();
            format!("{word};expires={left}")
        });
        // A pending subscription learns nothing; an ending one gets the last state if active.
        let body = active.then(|| pidf::document(&s.presentity, &self.status(&s.presentity)));
        Notify {
            subscription: id,
            dialog: s.dialog.clone(),
            presentity: s.presentity.clone(),
            cseq: s.cseq,
            state,
            body,
        }
    }

    /// Queues the NOTIFY saying the current state for subscription `id`.
    fn notify(&mut self, now: Instant, id: SubscriptionId) {
        if let Some(s) = self.subscriptions.get_mut(id) {
            s.cseq += 1;
        }
        if let Some(s) = self.subscriptions.get(id) {
            let n = self.make_notify(now, id, s, None);
            self.notifies.push_back(n);
        }
    }

    /// Ends subscription `id` with a terminated NOTIFY giving `reason`.
    fn end(&mut self, now: Instant, id: SubscriptionId, reason: &str) {
        if let Some(mut s) = self.subscriptions.remove(id) {
            s.cseq += 1;
            let n = self.make_notify(now, id, &s, Some(format!("terminated;reason={reason}")));
            self.notifies.push_back(n);
        }
    }

    /// Sends the current state to every subscriber of `presentity`, when it changed.
    fn changed(&mut self, now: Instant, presentity: &str, before: &Status) {
        if self.status(presentity) == *before {
            return;
        }
        for id in self.subscriptions.of(presentity) {
            self.notify(now, id);
        }
    }

    /// The registrar says `presentity` has `devices` registered now.
    pub fn devices_changed(&mut self, now: Instant, presentity: &str, devices: usize) {
        let before = self.status(presentity);
        if devices == 0 {
            self.devices.remove(presentity);
        } else {
            self.devices.insert(presentity.to_string(), devices);
        }
        self.changed(now, presentity, &before);
    }

    /// A PUBLISH from `presentity` (RFC 3903 4): a new publication (`etag` None, a body), a
    /// refresh (an etag, no body), a modification (both) or a removal (Expires 0). Returns the
    /// entity tag and Expires for the 200, or the refusal (412 for an unknown etag).
    pub fn publish(
        &mut self,
        now: Instant,
        presentity: &str,
        etag: Option<&str>,
        expires: Option<u32>,
        body: Option<Status>,
    ) -> Result<(String, u32), (u16, String)> {
        let expires = expires
            .unwrap_or(self.config.max_publish)
            .min(self.config.max_publish);
        let before = self.status(presentity);
        let current = self.published.get(presentity);
        if let Some(tag) = etag {
            if current.is_none_or(|p| p.etag != tag) {
                return Err((
                    412,
                    "Conditional Request Failed (unknown entity tag)".into(),
                ));
            }
        } else if body.is_none() {
            return Err((400, "PUBLISH without a body or SIP-If-Match".into()));
        }
        if expires == 0 {
            let tag = etag.unwrap_or_default().to_string();
            self.set_publication(presentity, None);
            self.changed(now, presentity, &before);
            return Ok((tag, 0));
        }
        let status = match (body, current) {
            (Some(s), _) => s,
            (None, Some(p)) => p.status.clone(),
            (None, None) => return Err((412, "Conditional Request Failed".into())),
        };
        let tag = format!("{}e{}", self.config.etag_prefix, self.next_etag);
        self.next_etag += 1;
        let publication = Publication {
            etag: tag.clone(),
            status,
            expires_at: now + Duration::from_secs(u64::from(expires)),
        };
        self.set_publication(presentity, Some(publication));
        self.changed(now, presentity, &before);
        Ok((tag, expires))
    }

    /// What `presentity` published: its entity tag, status and when it lapses.
    pub fn publication(&self, presentity: &str) -> Option<(&str, &Status, Instant)> {
        let p = self.published.get(presentity)?;
        Some((p.etag.as_str(), &p.status, p.expires_at))
    }

    /// What `presentity` published through another node (None: withdrawn there); its
    /// subscribers hear the change, and a refresh may now come here with its entity tag.
    pub fn take_publication(
        &mut self,
        now: Instant,
        presentity: &str,
        published: Option<(String, Status, Instant)>,
    ) {
        let before = self.status(presentity);
        let publication = published.map(|(etag, status, expires_at)| Publication {
            etag,
            status,
            expires_at,
        });
        self.set_publication(presentity, publication);
        self.changed(now, presentity, &before);
    }

    /// `watcher` (`sip:user@domain`) may now see `presentity`: its pending subscriptions
    /// become active and are told the state at once.
    pub fn authorize(&mut self, now: Instant, presentity: &str, watcher: &str) {
        self.switch(
            now,
            (presentity, watcher),
            SubState::Pending,
            SubState::Active,
        );
    }

    /// `watcher` may no longer see `presentity`: its active subscriptions turn pending, and
    /// their next NOTIFY (sent at once) carries nothing.
    pub fn revoke(&mut self, now: Instant, presentity: &str, watcher: &str) {
        self.switch(
            now,
            (presentity, watcher),
            SubState::Active,
            SubState::Pending,
        );
    }

    /// Moves `watcher`'s subscriptions to `presentity` from `from` to `to`, each told at once.
    fn switch(
        &mut self,
        now: Instant,
        (presentity, watcher): (&str, &str),
        from: SubState,
        to: SubState,
    ) {
        for id in self.subscriptions.of(presentity) {
            let Some(s) = self.subscriptions.get_mut(id) else {
                continue;
            };
            if s.dialog.subscriber == watcher && s.state == from {
                s.state = to;
                self.notify(now, id);
            }
        }
    }

    /// Replaces (or with None, removes) what `presentity` published, keeping the expiry index.
    fn set_publication(&mut self, presentity: &str, p: Option<Publication>) {
        match p {
            Some(p) => {
                let who = presentity.to_string();
                self.publication_expiries.set(who.clone(), p.expires_at);
                self.published.insert(who, p);
            }
            None => {
                self.published.remove(presentity);
                self.publication_expiries.remove(&presentity.to_string());
            }
        }
    }

    /// The server is going away: every subscription ends with `terminated;reason=deactivated`,
    /// which tells the subscriber to subscribe again at once (RFC 6665 4.2.2).
    pub fn deactivate_all(&mut self, now: Instant) {
        for id in self.subscriptions.ids() {
            self.end(now, id, "deactivated");
        }
    }

    /// A NOTIFY got 481 or no answer: the subscriber is gone (RFC 6665 4.2.2).
    pub fn notify_failed(&mut self, id: SubscriptionId) {
        self.subscriptions.remove(id);
    }

    /// Whether the dialog (Call-ID, the subscriber's tag, ours) is a subscription held here.
    pub fn holds(&self, call_id: &str, their_tag: &str, our_tag: &str) -> bool {
        self.subscriptions
            .in_dialog(call_id, their_tag, our_tag)
            .is_some()
    }

    /// The next NOTIFY to send.
    pub fn poll_notify(&mut self) -> Option<Notify> {
        self.notifies.pop_front()
    }

    /// When a subscription or a publication next expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let publication = self.publication_expiries.next();
        self.subscriptions
            .next_expiry()
            .into_iter()
            .chain(publication)
            .min()
    }

    /// The time passed `now`: expired subscriptions end (terminated;reason=timeout), expired
    /// publications are dropped (and their subscribers told).
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.subscriptions.expired(now) {
            self.end(now, id, "timeout");
        }
        for who in self.publication_expiries.due(now) {
            let before = self.status(&who);
            self.set_publication(&who, None);
            self.changed(now, &who, &before);
        }
    }
}

fn accepted(state: SubState, expires: u32, subscription: SubscriptionId) -> SubscribeOutcome {
    SubscribeOutcome::Accepted {
        code: if state == SubState::Active { 200 } else { 202 },
        expires,
        subscription,
    }
}

mod held;
#[cfg(test)]
mod tests;

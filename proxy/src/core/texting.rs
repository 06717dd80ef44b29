//! The text half of the core (issue #5): a MESSAGE for a local user fans out to the user's
//! registered devices and is stored for the rest; a copy of what a local user sends goes to
//! the user's other devices; stored messages go to a device when it registers.

use super::{ServerCore, StoreOutcome, StoreWork, Waiter};
use crate::repeated::Event;
use crate::routing::{self, Decision, Target};
use crate::text::compose::{self, Addressing};
use crate::text::devices::KnownDevices;
use crate::text::fanout::{FanoutAction, Fanouts};
use crate::text::outbox::{DeviceKey, Outbox, OutboxAction};
use openline_registrar::store::{KnownDevice, MailOutcome, MailWrite, StoredMessage};
use openline_sip::Message;
use openline_sip::endpoint::EndpointError;
use openline_sip::message::{Refusal, RouteEdit};
use openline_sip::transaction::TransactionId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The text path's state: devices, message counts, fan-outs and deliveries under way.
#[derive(Debug, Default)]
pub(super) struct Texting {
    pub(super) devices: KnownDevices,
    /// Messages stored per user (the quota), kept exact as writes come back (and, in a
    /// cluster, as other nodes' writes are told).
    pub(super) stored: HashMap<String, u64>,
    fanouts: Fanouts<TransactionId>,
    outbox: Outbox<TransactionId>,
    fanout_actions: Vec<FanoutAction<TransactionId>>,
    outbox_actions: Vec<OutboxAction>,
}

impl Texting {
    /// Stored messages still owed to some device, over all users.
    pub(super) fn waiting(&self) -> u64 {
        self.stored.values().sum()
    }

    /// Stored messages still owed to users of `domain`.
    pub(super) fn waiting_in(&self, domain: &str) -> u64 {
        self.stored
            .iter()
            .filter(|(aor, _)| super::levels::domain_of(aor) == domain)
            .map(|(_, n)| n)
            .sum()
    }
}

/// What a text store operation was for.
#[derive(Debug)]
pub(super) enum TextWaiter {
    /// A fan-out's copy for these devices of `recipient`.
    Fanout {
        server: TransactionId,
        recipient: String,
        devices: Vec<String>,
    },
    /// A copy of what `aor` sent, for these other devices of theirs.
    Copy { aor: String, devices: Vec<String> },
    /// A message of `aor`'s settled for a device.
    Delivered { aor: String },
    /// A page for a device.
    Read(DeviceKey),
    /// A device noted.
    Seen,
}

impl Texting {
    /// What the store holds at start.
    pub(super) fn load(&mut self, counts: Vec<(String, u64)>, devices: Vec<KnownDevice>) {
        self.stored = counts.into_iter().collect();
        for d in devices {
            self.devices.load(&d.aor, &d.device, d.seen_at);
        }
    }

    /// Counts after a purge; devices unseen since `forget_before` go.
    pub(super) fn refresh(&mut self, counts: Vec<(String, u64)>, forget_before: u64) {
        self.stored = counts.into_iter().collect();
        self.devices.forget_before(forget_before);
    }

    fn count(&self, aor: &str) -> u64 {
        self.stored.get(aor).copied().unwrap_or(0)
    }

    /// A response on one of the text path's client transactions; false when not one of them.
    pub(super) fn on_response(&mut self, client: TransactionId, response: &Message<'_>) -> bool {
        let code = response.status().unwrap_or(500);
        self.fanouts.on_response(
            client,
            code,
            || response.forwarded_response(),
            &mut self.fanout_actions,
        ) || self
            .outbox
            .on_response(client, code, &mut self.outbox_actions)
    }

    /// A time-out or transport error on one of the text path's client transactions.
    pub(super) fn on_failure(&mut self, client: TransactionId) -> bool {
        self.fanouts.on_failure(client, &mut self.fanout_actions)
            || self.outbox.on_failure(client, &mut self.outbox_actions)
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.fanouts.handle_timeout(now, &mut self.fanout_actions);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.fanouts.poll_timeout()
    }

    pub(super) fn has_actions(&self) -> bool {
        !self.fanout_actions.is_empty() || !self.outbox_actions.is_empty()
    }
}

impl ServerCore {
    /// A MESSAGE outside a dialog whose sender may send: checked, then delivered to a local
    /// user, or routed on like any request (to another domain), with a copy for the sender's
    /// other devices when the sender is a local user.
    pub(super) fn route_message(
        &mut self,
        now: Instant,
        wall: u64,
        id: TransactionId,
        (source, udp_size, request): (SocketAddr, Option<usize>, &Message<'_>),
        decision: Decision,
        local_sender: bool,
    ) -> Result<(), EndpointError> {
        let recipient = match &decision {
            Decision::Fork { aor, .. } => Some(aor.clone()),
            Decision::Refuse(480, _) => routing::local_user(request, &self.us),
            _ => None,
        };
        let goes_on = recipient.is_some()
            || matches!(decision, Decision::Relay { .. } | Decision::Locate { .. });
        if !goes_on {
            // Refused by routing (403 for a stranger's relay, 404, 483...): that says more.
            return self.carry_out(now, id, source, request, decision);
        }
        let refusal = crate::text::check(request, self.config.text.max_body)
            .err()
            .or_else(|| udp_size.and_then(crate::text::udp_refusal));
        if let Some(refusal) = refusal {
            return self.refuse(now, id, source, request, refusal);
        }
        if local_sender {
            self.copy_to_own_devices(wall, source, request);
        }
        match (decision, recipient) {
            (Decision::Fork { route, .. }, Some(aor)) => {
                self.fan_out(now, wall, id, (source, request), aor, route)
            }
            (Decision::Refuse(480, _), Some(aor)) => {
                self.fan_out(now, wall, id, (source, request), aor, RouteEdit::Keep)
            }
            (decision, _) => self.carry_out(now, id, source, request, decision),
        }
    }

    /// Sends a MESSAGE for local user `aor` to each registered device and stores it for the
    /// others (`text::fanout` answers the sender).
    fn fan_out(
        &mut self,
        now: Instant,
        wall: u64,
        id: TransactionId,
        (source, request): (SocketAddr, &Message<'_>),
        aor: String,
        route: RouteEdit,
    ) -> Result<(), EndpointError> {
        let message = compose::new_message(request, &aor, wall, self.config.text.expiry);
        // A device still being handed stored messages gets this one after them, in turn.
        let mut online: Vec<(String, Target)> = Vec::new();
        let mut held: Vec<String> = Vec::new();
        let mut offline: Vec<String> = Vec::new();
        for b in self.location.live(&aor, wall) {
            let device = b.device().to_string();
            // A phone that sleeps gets it stored, and a push (RFC 8599).
            if self.asleep(b).is_some() {
                offline.push(device);
                continue;
            }
            match self.us.reach(b) {
                Some(_) if self.text.outbox.is_active(&aor, &device) => held.push(device),
                Some(t) => online.push((device, t)),
                None => offline.push(device),
            }
        }
        for device in self.text.devices.of(&aor) {
            let listed = offline.iter().chain(&held).any(|d| d == device)
                || online.iter().any(|(d, _)| d == device);
            if !listed {
                offline.push(device.to_string());
            }
        }
        let full = self.text.count(&aor) >= self.config.text.quota;
        if full {
            if online.is_empty() && held.is_empty() {
                if let Some(count) = self.guard.log.note(now, Event::MailboxFull, &aor) {
                    tracing::warn!(%aor, quota = self.config.text.quota, count, "mailbox full: MESSAGE refused");
                }
                let reason = format!(
                    "Temporarily Unavailable (the recipient's mailbox is full: {} messages wait)",
                    self.config.text.quota
                );
                return self.refuse(now, id, source, request, Refusal::new(480, reason));
            }
            // Those online still get it (the held ones are emptying their share of the
            // mailbox); the offline ones miss it rather than overflow it.
            if let Some(count) = self.guard.log.note(now, Event::MailboxFull, &aor) {
                tracing::warn!(%aor, count, "mailbox full: not stored for offline devices");
            }
            offline.clear();
        }
        offline.append(&mut held);
        let prefix = routing::branch_prefix(routing::loop_hash(request));
        let mut branches = Vec::with_capacity(online.len());
        for (device, target) in online {
            let sent = self
                .forwarded_copy(source, request, &target, route, (&prefix, false))
                .and_then(|bytes| {
                    self.endpoint
                        .send_request(now, bytes, target.destination)
                        .ok()
                });
            match sent {
                Some(client) => branches.push((client, device)),
                None => offline.push(device),
            }
        }
        let any = branches.is_empty() && offline.is_empty();
        let wait_until = now + self.config.text.device_wait;
        self.text.fanouts.start(
            id,
            (request.to_bytes(), source),
            message,
            (branches, offline, any),
            wait_until,
            &mut self.text.fanout_actions,
        );
        Ok(())
    }

    /// Multi-device sync: what a local user sends from one device is stored for the user's
    /// other devices (marked as a copy with `sent_to`) and handed to those online at once.
    fn copy_to_own_devices(&mut self, wall: u64, source: SocketAddr, request: &Message<'_>) {
        let Some(from) = request.from() else { return };
        let Some(sip) = from.uri.sip() else { return };
        let Some(user) = sip.user else { return };
        let aor = format!("{user}@{}", sip.host.to_string().to_ascii_lowercase());
        // The device it came from: the binding whose flow is this source.
        let source = source.to_string();
        let sending = self
            .location
            .bindings(&aor)
            .iter()
            .find(|b| b.source.split_once(':').is_some_and(|(_, a)| a == source))
            .map(|b| b.device().to_string());
        let others: Vec<String> = self
            .text
            .devices
            .of(&aor)
            .filter(|d| Some(*d) != sending.as_deref())
            .map(str::to_string)
            .collect();
        if others.is_empty() {
            return;
        }
        if self.text.count(&aor) >= self.config.text.quota {
            tracing::warn!(%aor, "mailbox full: no copy for the sender's other devices");
            return;
        }
        let mut copy = compose::new_message(request, &aor, wall, self.config.text.expiry);
        copy.sent_to = compose::name_addr(request.to());
        self.queue_store(
            StoreWork::Mail(MailWrite::Accept(copy, others.clone())),
            Waiter::Text(TextWaiter::Copy {
                aor,
                devices: others,
            }),
        );
    }

    /// `device` of `aor` is registered: if `aor` has messages stored, they start on their way
    /// to it.
    pub(super) fn deliver_owed(&mut self, aor: &str, device: &str, wall: u64) {
        if self.text.count(aor) == 0 {
            return;
        }
        let target = self
            .location
            .live(aor, wall)
            .into_iter()
            // Another node hands stored messages to the devices whose flows it holds.
            .find(|b| b.device() == device && self.us.cluster.holds(b))
            .and_then(routing::binding_target);
        if let Some(target) = target {
            self.text
                .outbox
                .start(aor, device, target, &mut self.text.outbox_actions);
        }
    }

    /// Notes that `device` of `aor` registered, writing it down when that is news.
    pub(super) fn note_device(&mut self, aor: &str, device: &str, wall: u64) {
        if self.text.devices.note(aor, device, wall) {
            let write = MailWrite::DeviceSeen {
                aor: aor.to_string(),
                device: device.to_string(),
                at: wall,
            };
            self.queue_store(StoreWork::Mail(write), Waiter::Text(TextWaiter::Seen));
        }
    }

    /// A text store operation came back.
    pub(super) fn text_stored(&mut self, wall: u64, waiter: TextWaiter, outcome: StoreOutcome) {
        let accepted = match outcome {
            StoreOutcome::Mail(MailOutcome::Accepted(id)) => Some(id),
            _ => None,
        };
        match waiter {
            TextWaiter::Fanout {
                server,
                recipient,
                devices,
            } => {
                if accepted.is_some() {
                    metrics::counter!(crate::metrics::MESSAGES_ACCEPTED).increment(1);
                    *self.text.stored.entry(recipient.clone()).or_default() += 1;
                    // Devices held back behind their stored messages read this one in turn.
                    for d in &devices {
                        if self.text.outbox.is_active(&recipient, d) {
                            self.deliver_owed(&recipient, d, wall);
                        }
                    }
                }
                self.text
                    .fanouts
                    .stored(server, accepted, devices, &mut self.text.fanout_actions);
            }
            TextWaiter::Copy { aor, devices } => {
                if accepted.is_none() {
                    tracing::warn!(%aor, "could not store a copy for the sender's other devices");
                    return;
                }
                *self.text.stored.entry(aor.clone()).or_default() += 1;
                for d in &devices {
                    self.deliver_owed(&aor, d, wall);
                }
            }
            TextWaiter::Delivered { aor } => {
                metrics::counter!(crate::metrics::MESSAGES_DELIVERED).increment(1);
                if outcome == StoreOutcome::Mail(MailOutcome::Delivered { removed: true }) {
                    if let Some(n) = self.text.stored.get_mut(&aor) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            TextWaiter::Read(key) => {
                let page = match outcome {
                    StoreOutcome::Pending(page) => Some(page),
                    _ => None,
                };
                self.text
                    .outbox
                    .loaded(&key, page, &mut self.text.outbox_actions);
            }
            TextWaiter::Seen => {}
        }
    }

    /// Carries out what the fan-outs and the outbox decided.
    pub(super) fn apply_text(&mut self, now: Instant) {
        for action in std::mem::take(&mut self.text.fanout_actions) {
            match action {
                FanoutAction::Answer(answer) => self.actions.push(answer),
                FanoutAction::Store {
                    server,
                    message,
                    devices,
                } => {
                    let recipient = message.recipient.clone();
                    // Pushed now: the device's read of its mailbox runs behind this write.
                    let text = (message.content_type.starts_with("text/plain"))
                        .then(|| std::str::from_utf8(&message.body).ok())
                        .flatten();
                    let wall = message.accepted_at;
                    self.push_stored(wall, &recipient, &devices, (&message.sender, text));
                    self.queue_store(
                        StoreWork::Mail(MailWrite::Accept(message, devices.clone())),
                        Waiter::Text(TextWaiter::Fanout {
                            server,
                            recipient,
                            devices,
                        }),
                    );
                }
                FanoutAction::Delivered { id, device, aor } => self.queue_store(
                    StoreWork::Mail(MailWrite::Delivered(id, device)),
                    Waiter::Text(TextWaiter::Delivered { aor }),
                ),
            }
        }
        for action in std::mem::take(&mut self.text.outbox_actions) {
            match action {
                OutboxAction::Read(key) => self.queue_store(
                    StoreWork::Pending {
                        recipient: key.0.clone(),
                        device: key.1.clone(),
                    },
                    Waiter::Text(TextWaiter::Read(key)),
                ),
                OutboxAction::Send(key, message, target) => {
                    self.send_stored(now, key, *message, target)
                }
                OutboxAction::Delivered(id, (aor, device)) => self.queue_store(
                    StoreWork::Mail(MailWrite::Delivered(id, device)),
                    Waiter::Text(TextWaiter::Delivered { aor }),
                ),
            }
        }
    }

    /// Sends a stored message to a device as a new request of ours.
    fn send_stored(&mut self, now: Instant, key: DeviceKey, m: StoredMessage, target: Target) {
        let Some(hop) = self.hop_for(target.destination.transport, target.destination.addr) else {
            self.text.outbox.failed(&key);
            return;
        };
        let entropy = self.entropy.as_mut();
        let branch = openline_sip::entropy::random_token(entropy, 12);
        let via = format!("{}z9hG4bK{branch};rport", hop.via);
        let from_tag = openline_sip::entropy::random_token(entropy, 10);
        let call_id = format!(
            "{}@openline",
            openline_sip::entropy::random_token(entropy, 16)
        );
        let request_uri = target
            .request_uri
            .clone()
            .unwrap_or_else(|| format!("sip:{}", key.0));
        let bytes = compose::message_request(
            &m.message,
            &Addressing {
                request_uri: &request_uri,
                via: &via,
                from_tag: &from_tag,
                call_id: &call_id,
            },
        );
        self.destinations.remember(&target);
        match self.endpoint.send_request(now, bytes, target.destination) {
            Ok(client) => self.text.outbox.sent(&key, client, m.id),
            Err(e) => {
                tracing::debug!(error = %e, "could not send a stored message");
                self.text.outbox.failed(&key);
            }
        }
    }
}

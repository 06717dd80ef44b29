//! Pushes out of the core (RFC 8599, issue #22): which bindings sleep, the one push per device
//! for stored messages (collapsed until it registers), and what the push services said (a
//! registration the service calls gone is forgotten). The driver makes the HTTP requests.

use super::{ServerCore, Waiter, storing::StoreWork};
use openline_push::{Job, Outcome, Push, PushTarget, Wake};
use openline_registrar::{Binding, ChangeSet};
use openline_sip::transaction::Destination;
use std::collections::{HashMap, HashSet, VecDeque};

/// How long one message push stands for every message after it, when the device does not
/// register (the push was lost, or the phone ignored it): then a new one goes.
const COLLAPSE_SECONDS: u64 = 600;

/// The push state the core holds.
#[derive(Debug, Default)]
pub(super) struct Wakes {
    /// Stream flows that ended (`tcp:IP:PORT`): a push binding on one sleeps.
    lost_flows: HashSet<String>,
    /// Devices pushed about stored messages and not registered since: when.
    messages_pushed: HashMap<(String, String), u64>,
    /// Jobs for the driver.
    jobs: VecDeque<Job>,
    /// What each job was for: the user and the binding's contact.
    job_of: HashMap<u64, (String, String)>,
    next_job: u64,
    /// Calls waiting for pushed devices to register.
    pub(super) calls: super::awaiting::Calls,
}

fn flow_name(destination: &Destination) -> String {
    format!(
        "{}:{}",
        destination.transport.as_via().to_ascii_lowercase(),
        destination.addr
    )
}

impl ServerCore {
    /// Where to push `binding`'s device when it sleeps: a push binding for a configured
    /// service whose flow we cannot use (UDP, where nothing says the phone is awake, RFC 8599;
    /// or a connection that ended). None for a device reached as usual.
    pub(super) fn asleep(&self, binding: &Binding) -> Option<PushTarget> {
        if self.config.push.providers.is_empty() || !self.us.cluster.holds(binding) {
            return None;
        }
        let target = PushTarget::from_contact(&binding.contact).ok().flatten()?;
        if !self.config.push.supports(&target.provider) {
            return None;
        }
        let over_udp = binding.source.starts_with("udp:");
        (over_udp || self.wakes.lost_flows.contains(&binding.source)).then_some(target)
    }

    /// A stream connection ended: push bindings on it sleep from now on.
    pub(super) fn note_flow_lost(&mut self, destination: &Destination) {
        if !self.config.push.providers.is_empty() {
            self.wakes.lost_flows.insert(flow_name(destination));
        }
    }

    /// Devices registered: their flows are new, and a later message is worth a push again.
    pub(super) fn note_woken(&mut self, aor: &str, devices: &[String]) {
        if self.wakes.messages_pushed.is_empty() && self.wakes.lost_flows.is_empty() {
            return;
        }
        for d in devices {
            self.wakes
                .messages_pushed
                .remove(&(aor.to_string(), d.clone()));
        }
        for b in self.location.bindings(aor) {
            self.wakes.lost_flows.remove(&b.source);
        }
    }

    /// A message was stored for `devices` of `aor`: each sleeping one is pushed, once until it
    /// registers (the push says "messages wait", not each message).
    pub(super) fn push_stored(
        &mut self,
        wall: u64,
        aor: &str,
        devices: &[String],
        (sender, text): (&str, Option<&str>),
    ) {
        if self.config.push.providers.is_empty() {
            return;
        }
        let sleeping: Vec<(String, String, PushTarget)> = self
            .location
            .live(aor, wall)
            .into_iter()
            .filter(|b| devices.iter().any(|d| *d == b.device()))
            .filter_map(|b| {
                let t = self.asleep(b)?;
                Some((b.device().to_string(), b.contact.clone(), t))
            })
            .collect();
        for (device, contact, target) in sleeping {
            let key = (aor.to_string(), device);
            if self
                .wakes
                .messages_pushed
                .get(&key)
                .is_some_and(|at| wall < at + COLLAPSE_SECONDS)
            {
                metrics::counter!(crate::metrics::PUSHES, "outcome" => "collapsed").increment(1);
                continue;
            }
            self.wakes.messages_pushed.insert(key, wall);
            let policy = &self.config.push;
            let wake = Wake::Messages {
                from: policy.sender.then(|| sender_uri(sender)),
                text: text.filter(|_| policy.message_text).map(str::to_string),
            };
            self.queue_push(aor, contact, target, wake);
        }
    }

    pub(super) fn queue_push(
        &mut self,
        aor: &str,
        contact: String,
        target: PushTarget,
        wake: Wake,
    ) {
        self.wakes.next_job += 1;
        let id = self.wakes.next_job;
        tracing::debug!(%aor, target = %target.fingerprint(), "push");
        self.wakes.job_of.insert(id, (aor.to_string(), contact));
        self.wakes.jobs.push_back(Job {
            id,
            target,
            push: Push {
                wake,
                aor: aor.to_string(),
            },
        });
    }

    /// The next push for the driver.
    pub fn poll_push(&mut self) -> Option<Job> {
        self.wakes.jobs.pop_front()
    }

    /// What the push service said about job `id`.
    pub fn handle_pushed(&mut self, id: u64, outcome: Outcome) {
        let Some((aor, contact)) = self.wakes.job_of.remove(&id) else {
            return;
        };
        let label = match &outcome {
            Outcome::Sent => "sent",
            Outcome::Gone => "gone",
            Outcome::Throttled(_) => "throttled",
            Outcome::Failed(_) => "failed",
        };
        metrics::counter!(crate::metrics::PUSHES, "outcome" => label).increment(1);
        match outcome {
            Outcome::Sent => tracing::debug!(%aor, "push sent"),
            Outcome::Gone => {
                // The registration no longer exists at the service (the app was removed):
                // its binding would only ever wait in vain.
                let gone: Vec<_> = self
                    .location
                    .bindings(&aor)
                    .iter()
                    .filter(|b| b.contact == contact)
                    .map(Binding::key)
                    .collect();
                tracing::info!(%aor, bindings = gone.len(), "push service says the device is gone: binding removed");
                if !gone.is_empty() {
                    let change = ChangeSet {
                        aor: aor.clone(),
                        upserts: Vec::new(),
                        removals: gone,
                    };
                    self.location.apply(&change);
                    self.queue_store(StoreWork::Bindings(change), Waiter::Nobody);
                }
                self.forget_message_push(&aor);
            }
            Outcome::Throttled(wait) => {
                tracing::warn!(%aor, wait_s = wait.as_secs(), "push service asks us to slow down");
                self.forget_message_push(&aor);
            }
            Outcome::Failed(reason) => {
                tracing::warn!(%aor, %reason, "push failed");
                self.forget_message_push(&aor);
            }
        }
    }

    /// A message push that did not go out stands for nothing: the next message pushes again.
    fn forget_message_push(&mut self, aor: &str) {
        self.wakes.messages_pushed.retain(|(a, _), _| a != aor);
    }

    /// Forgets lost flows no binding uses any more (every minute, with the purge).
    pub(super) fn purge_lost_flows(&mut self) {
        if self.wakes.lost_flows.is_empty() {
            return;
        }
        let used: HashSet<&str> = self.location.iter().map(|b| b.source.as_str()).collect();
        self.wakes.lost_flows.retain(|f| used.contains(f.as_str()));
    }
}

/// The address of a From name-addr (`"Alice" <sip:alice@a>;tag=1` gives `sip:alice@a`).
fn sender_uri(sender: &str) -> String {
    match (sender.find('<'), sender.find('>')) {
        (Some(a), Some(b)) if a < b => sender[a + 1..b].to_string(),
        _ => sender
            .split(';')
            .next()
            .unwrap_or(sender)
            .trim()
            .to_string(),
    }
}

//! Calls for phones that sleep (RFC 8599 section 6.1): an INVITE for a device asleep behind
//! a push binding pushes it and waits (`[push] wait`) for it to register, then goes to it on
//! its new flow; devices awake ring meanwhile. A device that does not wake in time, or whose
//! call is cancelled or answered elsewhere, gets a second push that stops its ringing screen.
//! The response context holds the request open while a device is awaited.

use super::ServerCore;
use crate::routing::{Decision, Target};
use openline_push::{PushTarget, Wake};
use openline_sip::transaction::TransactionId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// One request waiting for pushed devices.
#[derive(Debug)]
pub(super) struct Awaited {
    aor: String,
    call_id: String,
    /// Until when the devices may wake.
    until: Instant,
    devices: Vec<Device>,
}

#[derive(Debug)]
struct Device {
    /// The binding's device (its `+sip.instance`, else its address).
    device: String,
    /// Where it was pushed; its fingerprint finds it again should it register without an
    /// instance from a new address.
    target: PushTarget,
    contact: String,
    woken: bool,
}

/// The requests waiting, by server transaction.
pub(super) type Calls = HashMap<TransactionId, Awaited>;

impl ServerCore {
    /// Carries out a fork of a new INVITE: devices asleep behind a push binding are pushed
    /// and awaited; the others ring at once.
    pub(super) fn fork_waking(
        &mut self,
        now: Instant,
        wall: u64,
        (id, source): (TransactionId, SocketAddr),
        request: &openline_sip::Message<'_>,
        decision: Decision,
    ) -> Result<(), openline_sip::endpoint::EndpointError> {
        let asleep: Vec<Device> = match &decision {
            Decision::Fork { aor, .. } => self
                .location
                .live(aor, wall)
                .into_iter()
                .filter_map(|b| {
                    Some(Device {
                        target: self.asleep(b)?,
                        device: b.device().into_owned(),
                        contact: b.contact.clone(),
                        woken: false,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        if asleep.is_empty() {
            return self.carry_out(now, id, source, request, decision);
        }
        let Decision::Fork {
            aor,
            targets,
            route,
        } = decision
        else {
            return self.carry_out(now, id, source, request, decision);
        };
        let awake: Vec<Target> = targets
            .into_iter()
            .filter(|t| {
                !asleep
                    .iter()
                    .any(|d| t.request_uri.as_deref() == Some(d.contact.as_str()))
            })
            .collect();
        let call_id = request.call_id.to_string();
        let from = self.config.push.sender.then(|| {
            request
                .from()
                .map(|f| f.uri.as_str().to_string())
                .unwrap_or_default()
        });
        tracing::info!(%aor, asleep = asleep.len(), awake = awake.len(), "call for sleeping devices: pushed");
        self.forwarding.hold(id, asleep.len());
        for d in &asleep {
            let wake = Wake::Call {
                call_id: call_id.clone(),
                from: from.clone(),
            };
            self.queue_push(&aor, d.contact.clone(), d.target.clone(), wake);
        }
        self.wakes.calls.insert(
            id,
            Awaited {
                aor: aor.clone(),
                call_id,
                until: now + self.config.push.wait,
                devices: asleep,
            },
        );
        let decision = Decision::Fork {
            aor,
            targets: awake,
            route,
        };
        self.carry_out(now, id, source, request, decision)
    }

    /// `devices` of `aor` registered: each awaited by a call gets it on its new flow.
    pub(super) fn wake_awaited(&mut self, now: Instant, wall: u64, aor: &str, devices: &[String]) {
        if self.wakes.calls.is_empty() {
            return;
        }
        let live = self.location.live(aor, wall);
        let fresh: Vec<_> = live
            .into_iter()
            .filter(|b| devices.iter().any(|d| *d == b.device()))
            .collect();
        let mut go: Vec<(TransactionId, Target)> = Vec::new();
        for (server, call) in self.wakes.calls.iter_mut().filter(|(_, c)| c.aor == aor) {
            for d in call.devices.iter_mut().filter(|d| !d.woken) {
                let print = d.target.fingerprint();
                let binding = fresh.iter().find(|b| {
                    b.device() == d.device
                        || openline_push::PushTarget::from_contact(&b.contact)
                            .ok()
                            .flatten()
                            .is_some_and(|t| t.fingerprint() == print)
                });
                if let Some(target) = binding.and_then(|b| self.us.reach(b)) {
                    d.woken = true;
                    go.push((*server, target));
                }
            }
        }
        for (server, target) in go {
            let Some((request, source, route)) = self.forwarding.woken(server) else {
                continue;
            };
            tracing::info!(%aor, "pushed device registered: the call goes to it");
            match openline_sip::Message::parse(&request) {
                Ok(m) => self.forward(now, Some(server), source, &m, vec![target], route),
                Err(_) => self.forwarding.forward_failed(server, &mut self.actions),
            }
        }
        self.wakes
            .calls
            .retain(|_, c| c.devices.iter().any(|d| !d.woken));
    }

    /// The request of `server` is over (answered, refused or cancelled): devices still
    /// asleep are told the call ended, so their ringing screen goes away.
    pub(super) fn call_settled(&mut self, server: TransactionId) {
        let Some(call) = self.wakes.calls.remove(&server) else {
            return;
        };
        self.push_call_ended(call);
    }

    fn push_call_ended(&mut self, call: Awaited) {
        for d in call.devices.into_iter().filter(|d| !d.woken) {
            let wake = Wake::CallEnded {
                call_id: call.call_id.clone(),
            };
            self.queue_push(&call.aor, d.contact, d.target, wake);
        }
    }

    /// Calls whose devices did not wake in time go on without them (480 when nobody else
    /// could answer).
    pub(super) fn awaited_timeout(&mut self, now: Instant) {
        if self.wakes.calls.is_empty() {
            return;
        }
        let due: Vec<TransactionId> = self
            .wakes
            .calls
            .iter()
            .filter(|(_, c)| c.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for server in due {
            let Some(call) = self.wakes.calls.remove(&server) else {
                continue;
            };
            let asleep = call.devices.iter().filter(|d| !d.woken).count();
            tracing::info!(aor = %call.aor, asleep, "pushed devices did not register in time");
            for _ in 0..asleep {
                self.forwarding.release(server, &mut self.actions);
            }
            self.push_call_ended(call);
        }
    }

    /// When [`ServerCore::awaited_timeout`] is next due.
    pub(super) fn awaited_deadline(&self) -> Option<Instant> {
        self.wakes.calls.values().map(|c| c.until).min()
    }
}

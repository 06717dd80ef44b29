//! Stored messages on their way to one device: read from the store a page at a time in the
//! order accepted, sent one at a time (the next only after the device took the last, so they
//! arrive in order), each settled in the store once the device took it.

use crate::routing::Target;
use openline_registrar::store::StoredMessage;
use openline_sip::table::IdMap;
use std::collections::{HashMap, VecDeque};

/// Most messages read from the store at once.
pub const PAGE: usize = 100;

/// A user's device: (address of record, device).
pub type DeviceKey = (String, String);

#[derive(Debug)]
struct Session<Id> {
    target: Target,
    queue: VecDeque<StoredMessage>,
    /// The message sent and not yet answered: its client transaction and id.
    in_flight: Option<(Id, i64)>,
    /// A read is under way.
    reading: bool,
    /// More may have been stored since the read under way began: read again before ending.
    again: bool,
}

/// What the core must do.
#[derive(Debug, PartialEq, Eq)]
pub enum OutboxAction {
    /// Read the next page owed to this device, then call [`Outbox::loaded`].
    Read(DeviceKey),
    /// Send this message to the device, then call [`Outbox::sent`] (or [`Outbox::failed`]).
    Send(DeviceKey, Box<StoredMessage>, Target),
    /// The device took message `id` (or refused it for good): it is owed it no more.
    Delivered(i64, DeviceKey),
}

/// Every device being delivered to.
#[derive(Debug)]
pub struct Outbox<Id> {
    sessions: HashMap<DeviceKey, Session<Id>>,
    by_client: IdMap<Id, DeviceKey>,
}

impl<Id> Default for Outbox<Id> {
    fn default() -> Self {
        Outbox {
            sessions: HashMap::new(),
            by_client: IdMap::default(),
        }
    }
}

impl<Id: Copy + Eq + std::hash::Hash> Outbox<Id> {
    /// `device` of `aor` is reachable at `target` and may be owed messages: starts delivering
    /// to it, or, when already doing so, makes sure what was stored meanwhile is read too.
    pub fn start(&mut self, aor: &str, device: &str, target: Target, out: &mut Vec<OutboxAction>) {
        let key = (aor.to_string(), device.to_string());
        if let Some(s) = self.sessions.get_mut(&key) {
            s.target = target;
            s.again = true;
            return;
        }
        self.sessions.insert(
            key.clone(),
            Session {
                target,
                queue: VecDeque::new(),
                in_flight: None,
                reading: true,
                again: false,
            },
        );
        out.push(OutboxAction::Read(key));
    }

    /// Whether messages are being delivered to this device (a new one for it then waits its
    /// turn in the store, to keep the order).
    pub fn is_active(&self, aor: &str, device: &str) -> bool {
        self.sessions
            .contains_key(&(aor.to_string(), device.to_string()))
    }

    /// A page read for `key` (`None`: the read failed; the device is tried again when it
    /// next registers).
    pub fn loaded(
        &mut self,
        key: &DeviceKey,
        page: Option<Vec<StoredMessage>>,
        out: &mut Vec<OutboxAction>,
    ) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        s.reading = false;
        match page {
            // Nothing more owed, unless something was stored after that read began.
            Some(page) if page.is_empty() && s.again => read(s, key, out),
            Some(page) if page.is_empty() => {
                self.sessions.remove(key);
            }
            Some(page) => {
                s.queue.extend(page);
                self.next(key, out);
            }
            None => {
                self.sessions.remove(key);
            }
        }
    }

    /// The message for `key` went out on client transaction `client`.
    pub fn sent(&mut self, key: &DeviceKey, client: Id, id: i64) {
        if let Some(s) = self.sessions.get_mut(key) {
            s.in_flight = Some((client, id));
            self.by_client.insert(client, key.clone());
        }
    }

    /// The message for `key` could not be sent: delivery stops until the device registers
    /// again.
    pub fn failed(&mut self, key: &DeviceKey) {
        self.sessions.remove(key);
    }

    /// A response on client transaction `client`; false when it is not one of ours.
    pub fn on_response(&mut self, client: Id, code: u16, out: &mut Vec<OutboxAction>) -> bool {
        let Some(key) = self.by_client.get(&client).cloned() else {
            return false;
        };
        if code < 200 {
            return true;
        }
        self.by_client.remove(&client);
        let Some(s) = self.sessions.get_mut(&key) else {
            return true;
        };
        let Some((_, id)) = s.in_flight.take() else {
            return true;
        };
        // A device that will never take it (it refused it outright) must not hold back the
        // rest: like a 2xx it settles the message. Time-outs and "not now" answers keep it.
        let retry_later = matches!(code, 408 | 480 | 486 | 500 | 503 | 504);
        if retry_later {
            tracing::debug!(aor = %key.0, device = %key.1, code, "device did not take a stored message: kept for later");
            self.sessions.remove(&key);
            return true;
        }
        if code >= 300 {
            tracing::info!(aor = %key.0, device = %key.1, code, "device refused a stored message: not offered again");
        }
        out.push(OutboxAction::Delivered(id, key.clone()));
        self.next(&key, out);
        true
    }

    /// Client transaction `client` timed out or could not be sent; false when not ours.
    pub fn on_failure(&mut self, client: Id, out: &mut Vec<OutboxAction>) -> bool {
        self.on_response(client, 408, out)
    }

    /// Devices being delivered to.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sends the next message, reads the next page, or ends.
    fn next(&mut self, key: &DeviceKey, out: &mut Vec<OutboxAction>) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        if s.in_flight.is_some() || s.reading {
            return;
        }
        if let Some(m) = s.queue.pop_front() {
            out.push(OutboxAction::Send(
                key.clone(),
                Box::new(m),
                s.target.clone(),
            ));
            return;
        }
        // The page is done. Reads queue behind the settling writes, so the next page starts
        // after what this one delivered.
        read(s, key, out);
    }
}

/// Asks for the next page; it sees everything stored before it, so `again` is answered.
fn read<Id>(s: &mut Session<Id>, key: &DeviceKey, out: &mut Vec<OutboxAction>) {
    s.reading = true;
    s.again = false;
    out.push(OutboxAction::Read(key.clone()));
}

#[cfg(test)]
mod tests;

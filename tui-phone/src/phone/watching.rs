//! The phone's presence: it watches contacts (one subscription each, refreshed) and tells
//! what their NOTIFYs say, and publishes its user's note.

use super::{Phone, PhoneEvent, with_header};
use crate::ua::presence::{EXPIRES, Watch};
use openline_sip::Message;
use openline_sip::pidf::Status;
use openline_sip::transaction::TransactionId;
use std::time::Instant;

/// What a presence request of ours under way is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PresenceTxn {
    /// The watch at this index.
    Watch(usize),
    /// Our publication.
    Publish,
}

impl Phone {
    /// Watches `aor`'s presence (once; watching again does nothing).
    pub fn watch(&mut self, now: Instant, aor: &str) {
        let aor = if aor.starts_with("sip:") {
            aor.to_string()
        } else {
            format!("sip:{aor}")
        };
        if self.watches.iter().any(|w| w.presentity == aor) {
            return;
        }
        let (call_id, tag) = (self.endpoint.new_tag(), self.endpoint.new_tag());
        self.watches.push(Watch::new(&aor, call_id, tag));
        self.subscribe(now, self.watches.len() - 1, EXPIRES, None);
        self.drain(now);
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.account.user, self.local)
    }

    fn subscribe(&mut self, now: Instant, index: usize, expires: u32, credentials: Option<String>) {
        if self.watches.get(index).is_some_and(Watch::is_lost) {
            let (call_id, tag) = (self.endpoint.new_tag(), self.endpoint.new_tag());
            self.watches[index].restart(call_id, tag);
        }
        let (via, from, contact) = (self.via(), self.aor(), self.contact());
        let Some(w) = self.watches.get_mut(index) else {
            return;
        };
        let mut request = w.request(&from, &via, &contact, expires);
        w.authorized = credentials.is_some();
        if let Some(value) = credentials {
            request = with_header(&request, "Proxy-Authorization", &value);
        }
        if let Ok(id) = self.endpoint.send_request(now, request, self.proxy) {
            self.presence_txns.insert(id, PresenceTxn::Watch(index));
        }
    }

    /// Says the user is online with `note` (none: no note).
    pub fn set_note(&mut self, now: Instant, note: Option<String>) {
        self.publish(now, Some(Status { open: true, note }), None);
        self.drain(now);
    }

    fn publish(&mut self, now: Instant, status: Option<Status>, credentials: Option<String>) {
        let (via, aor) = (self.via(), self.aor());
        let (tag, call_id) = (self.endpoint.new_tag(), self.endpoint.new_tag());
        let mut request = self
            .publication
            .request((&aor, &tag, &call_id), &via, status);
        self.publication.authorized = credentials.is_some();
        if let Some(value) = credentials {
            request = with_header(&request, "Proxy-Authorization", &value);
        }
        if let Ok(id) = self.endpoint.send_request(now, request, self.proxy) {
            self.presence_txns.insert(id, PresenceTxn::Publish);
        }
    }

    /// A response to a SUBSCRIBE or PUBLISH of ours: true when it was one.
    pub(super) fn on_presence_response(
        &mut self,
        now: Instant,
        id: TransactionId,
        response: &Message<'_>,
    ) -> bool {
        let Some(&what) = self.presence_txns.get(&id) else {
            return false;
        };
        let code = response.status().unwrap_or(0);
        if code < 200 {
            return true;
        }
        self.presence_txns.remove(&id);
        match what {
            PresenceTxn::Watch(index) => {
                let Some(w) = self.watches.get(index) else {
                    return true;
                };
                let (uri, authorized) = (w.presentity.clone(), w.authorized);
                if code == 407 && !authorized {
                    if let Some(value) = self.credentials(response, "SUBSCRIBE", &uri) {
                        self.subscribe(now, index, EXPIRES, Some(value));
                        return true;
                    }
                }
                if let Some(seen) = self.watches[index].on_response(now, response) {
                    self.events
                        .push_back(PhoneEvent::Presence { who: uri, seen });
                }
            }
            PresenceTxn::Publish => {
                if code == 407 && !self.publication.authorized {
                    let uri = self.aor();
                    if let Some(value) = self.credentials(response, "PUBLISH", &uri) {
                        let status = self.publication.status.clone();
                        self.publish(now, Some(status), Some(value));
                        return true;
                    }
                }
                let ok = self.publication.on_response(now, response);
                self.events.push_back(PhoneEvent::NoteSet {
                    ok,
                    note: self.publication.status.note.clone(),
                });
            }
        }
        true
    }

    /// A NOTIFY: what one of our watches learns (200), or 481 when it is nobody's.
    pub(super) fn on_notify(&mut self, now: Instant, notify: &Message<'_>) -> u16 {
        let Some(w) = self.watches.iter_mut().find(|w| w.matches(notify)) else {
            return 481;
        };
        let seen = w.on_notify(now, notify);
        self.events.push_back(PhoneEvent::Presence {
            who: w.presentity.clone(),
            seen,
        });
        200
    }

    pub(super) fn presence_timeout(&self) -> Option<Instant> {
        self.watches
            .iter()
            .filter_map(Watch::poll_timeout)
            .chain(self.publication.poll_timeout())
            .min()
    }

    pub(super) fn handle_presence_timeout(&mut self, now: Instant) {
        for index in 0..self.watches.len() {
            if self.watches[index].due(now) {
                self.subscribe(now, index, EXPIRES, None);
            }
        }
        if self.publication.due(now) {
            self.publish(now, None, None);
        }
    }

    /// Ends every watch and withdraws the publication (on quit).
    pub(super) fn stop_presence(&mut self, now: Instant) {
        for index in 0..self.watches.len() {
            if !self.watches[index].is_lost() {
                self.subscribe(now, index, 0, None);
            }
        }
        // Forgotten at once: the terminated NOTIFYs that follow get 481, and nothing
        // subscribes again while the phone is leaving.
        self.watches.clear();
    }
}

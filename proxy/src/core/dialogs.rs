//! The calls this proxy has seen answered and not yet ended: the INVITE dialogs it
//! record-routed, by Call-ID, from the 2xx it passed upstream to the BYE. A draining server
//! waits for them (a BYE must still find its way through), and the metrics count them.
//! Bounded: a call is forgotten after `MAX_AGE` (its BYE was lost, or never sent) and no
//! more are tracked beyond `MAX_CALLS`.

use super::ServerCore;
use openline_sip::transaction::TransactionId;
use openline_sip::{Message, Method};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Longest a call is remembered without its BYE.
const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Most calls tracked.
const MAX_CALLS: usize = 500_000;

/// Answered calls by Call-ID, with when they were answered.
#[derive(Debug, Default)]
pub(super) struct Calls {
    answered: HashMap<String, Instant>,
}

impl Calls {
    /// How many.
    pub(super) fn len(&self) -> usize {
        self.answered.len()
    }

    /// Forgets calls older than [`MAX_AGE`].
    pub(super) fn purge(&mut self, now: Instant) {
        self.answered
            .retain(|_, at| now.saturating_duration_since(*at) < MAX_AGE);
    }
}

impl ServerCore {
    /// A response about to go upstream through `server`: a 2xx to an INVITE opens a call.
    /// Only those are parsed (again): the 200s to MESSAGE and REGISTER are the hot path.
    pub(super) fn note_response(&mut self, now: Instant, server: TransactionId, response: &[u8]) {
        if !response.starts_with(b"SIP/2.0 2") || !self.endpoint.is_invite_server(server) {
            return;
        }
        let Ok(m) = Message::parse(response) else {
            return;
        };
        if m.cseq.method == Method::Invite {
            self.guard_call_answered(now, server, m.call_id);
        }
        if m.cseq.method == Method::Invite
            && m.to_tag.is_some()
            && self.calls.answered.len() < MAX_CALLS
        {
            self.calls
                .answered
                .entry(m.call_id.to_string())
                .or_insert(now);
        }
    }

    /// A request arrived: a BYE ends its call (its own transaction keeps a draining server
    /// up until it is answered).
    pub(super) fn note_request(&mut self, request: &Message<'_>) {
        self.note_bridged_request(request);
        if request.method() == Method::Bye {
            self.guard_call_ended(request.call_id);
            self.calls.answered.remove(request.call_id);
        }
    }
}

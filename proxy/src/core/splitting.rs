//! Mixed forks (issue #23): a person's desk phone and browser tab ring at once, and each
//! kind of device gets the offer it can take. A SIP phone's INVITE goes to the relay twice:
//! as plain RTP for the phones (the call's own session) and as WebRTC for the browsers (a
//! second session, the call id with [`BROWSERS`]); a browser's INVITE goes to the relay only
//! for the phones, the other browsers getting it untouched (two browsers' media passes
//! between them). Whoever answers first decides: the other kind's session is deleted, and
//! when the browsers' session won, the call's later offers and its BYE use that session.

use super::ServerCore;
use super::anchoring::{sdp, to_a_browser};
use crate::routing::Target;
use openline_media::control::Command;
use openline_sip::Message;
use openline_sip::message::RouteEdit;
use openline_sip::transaction::TransactionId;
use std::net::SocketAddr;
use std::time::Instant;

/// The suffix of the relay call id of a mixed fork's browsers' session.
const BROWSERS: &str = ";browsers";

/// The call a relay session belongs to, by the session's call id.
pub(super) fn call_of(relay_id: &str) -> &str {
    relay_id.strip_suffix(BROWSERS).unwrap_or(relay_id)
}

/// Most calls remembered as carried by another session than their own.
const MOST_RELAY_IDS: usize = 100_000;

/// A mixed fork under way.
#[derive(Debug)]
pub(super) struct SplitFork {
    /// The browsers' session (None: the caller is a browser, the browsers got its offer).
    pub(super) browsers: Option<String>,
    /// Offers still at the relay.
    pub(super) pending: u8,
}

impl ServerCore {
    /// Anchors an INVITE whose `targets` are browsers and SIP phones both; true (it is
    /// parked, or gone on to the browsers).
    pub(super) fn anchor_split(
        &mut self,
        now: Instant,
        (server, source): (TransactionId, SocketAddr),
        request: &Message<'_>,
        (targets, route): (&[Target], RouteEdit),
        from_browser: bool,
    ) -> bool {
        let (browsers, phones): (Vec<Target>, Vec<Target>) =
            targets.iter().cloned().partition(to_a_browser);
        if sdp(request).is_none() {
            return false;
        }
        // Whichever kind answers, a browser may be in the call.
        self.note_bridged_invite(request, source);
        let call_id = request.call_id.to_string();
        let session = (!from_browser).then(|| format!("{call_id}{BROWSERS}"));
        self.anchoring.split.insert(
            server,
            SplitFork {
                browsers: session.clone(),
                pending: 1 + u8::from(session.is_some()),
            },
        );
        tracing::debug!(
            browsers = browsers.len(),
            phones = phones.len(),
            "a fork to browsers and phones"
        );
        self.park_offer(
            (server, source),
            request,
            (&phones, route),
            (call_id, false),
        );
        match session {
            Some(session) => {
                self.park_offer(
                    (server, source),
                    request,
                    (&browsers, route),
                    (session, true),
                );
            }
            // Parked above for the phones, so this forward is not anchored again.
            None => self.forward(now, Some(server), source, request, browsers, route),
        }
        true
    }

    /// For `response` (`code`, a WebRTC answer or not) of a mixed fork's INVITE `server`:
    /// Some(Some(id)) when its answer goes to relay session `id`, Some(None) when it goes on
    /// untouched (a browser answering a browser), None when not a mixed fork's. A 2xx
    /// decides the fork: the other kind's session goes.
    pub(super) fn split_session(
        &mut self,
        server: TransactionId,
        response: &Message<'_>,
        (code, webrtc): (u16, bool),
    ) -> Option<Option<String>> {
        if code >= 300 {
            return None;
        }
        let split = self.anchoring.split.get(&server)?;
        let session = match (&split.browsers, webrtc) {
            (Some(browsers), true) => Some(browsers.clone()),
            (None, true) => None,
            (_, false) => Some(response.call_id.to_string()),
        };
        if (200..300).contains(&code) {
            let browsers = self
                .anchoring
                .split
                .remove(&server)
                .and_then(|s| s.browsers);
            let call_id = response.call_id.to_string();
            match (browsers, webrtc) {
                (Some(browsers), true) => {
                    self.anchoring.queue(Command::Delete {
                        call_id: call_id.clone(),
                    });
                    let ids = &mut self.anchoring.relay_ids;
                    if ids.len() >= MOST_RELAY_IDS {
                        ids.clear();
                    }
                    ids.insert(call_id, browsers);
                }
                (None, true) => {
                    // Browser to browser: no relay in the call, and nothing to hang up.
                    self.anchoring.queue(Command::Delete {
                        call_id: call_id.clone(),
                    });
                    self.forget_call(&call_id);
                }
                (Some(browsers), false) => {
                    self.anchoring.queue(Command::Delete { call_id: browsers });
                }
                (None, false) => {}
            }
        }
        Some(session)
    }
}

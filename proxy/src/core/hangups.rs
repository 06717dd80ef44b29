//! Hanging up bridged calls from the middle (issue #23): calls whose browser went away, and
//! calls answered with SDP the relay cannot bridge (a proxy passes a 2xx on; the call is
//! then ended, not left up without media). A tab that is closed or killed sends no BYE, its
//! WebSocket may linger, and the desk phone on the other side would keep the call up in
//! silence. The relay sees the browser's media stop (its WebRTC leg loses ICE
//! consent) and says so; the proxy then sends a BYE to each side of the dialog, as the other
//! side would have. So it keeps, for the calls it bridged, what a BYE needs: each side's
//! remote target, its tagged From or To, where it is reached, and the CSeq it last used.
//!
//! Bounded: a call is forgotten at its BYE, and no more than [`MOST_CALLS`] are kept.

use super::ServerCore;
use openline_sip::header::{HeaderName, NameAddr};
use openline_sip::message::RequestBuilder;
use openline_sip::transaction::Destination;
use openline_sip::{Message, Method, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Most bridged calls remembered.
const MOST_CALLS: usize = 100_000;

/// One side of a bridged dialog.
#[derive(Debug, Clone)]
struct Party {
    /// Where its requests come from and ours go (its flow, or the next hop).
    reached: Destination,
    /// Its Contact: the Request-URI of a request to it.
    target: String,
    /// Its From (the caller) or To (the callee), with its tag.
    identity: String,
    /// The highest CSeq it used in the dialog.
    cseq: u32,
}

#[derive(Debug)]
struct Dialog {
    caller: Party,
    /// Known once the callee answered.
    callee: Option<Party>,
}

/// The bridged calls, by Call-ID.
#[derive(Debug, Default)]
pub(super) struct Hangups {
    calls: HashMap<String, Dialog>,
}

fn contact_of(m: &Message<'_>) -> Option<String> {
    m.header(HeaderName::Contact)
        .and_then(NameAddr::parse)
        .map(|c| c.uri.as_str().to_string())
}

impl ServerCore {
    /// A bridged INVITE from `source` is going on: its caller is remembered.
    pub(super) fn note_bridged_invite(&mut self, request: &Message<'_>, source: SocketAddr) {
        let calls = &mut self.hangups.calls;
        if calls.len() >= MOST_CALLS || request.to_tag.is_some() {
            return;
        }
        let (Some(transport), Some(target), Some(identity)) = (
            Transport::from_via(request.top_via.transport),
            contact_of(request),
            request.header(HeaderName::From),
        ) else {
            return;
        };
        calls.insert(
            request.call_id.to_string(),
            Dialog {
                caller: Party {
                    reached: Destination {
                        transport,
                        addr: source,
                    },
                    target,
                    identity: identity.to_string(),
                    cseq: request.cseq.seq,
                },
                callee: None,
            },
        );
    }

    /// A response came from `(transport, source)`: a bridged call's 2xx names its callee.
    pub(super) fn note_bridged_answer(
        &mut self,
        response: &Message<'_>,
        (transport, source): (Transport, SocketAddr),
    ) {
        if self.hangups.calls.is_empty()
            || response.cseq.method != Method::Invite
            || !response.status().is_some_and(|c| (200..300).contains(&c))
        {
            return;
        }
        let Some(dialog) = self.hangups.calls.get_mut(response.call_id) else {
            return;
        };
        if dialog.callee.is_some() {
            return;
        }
        if let (Some(target), Some(identity)) =
            (contact_of(response), response.header(HeaderName::To))
        {
            dialog.callee = Some(Party {
                reached: Destination {
                    transport,
                    addr: source,
                },
                target,
                identity: identity.to_string(),
                cseq: 0,
            });
        }
    }

    /// An in-dialog request of a bridged call: its sender's CSeq moves on; a BYE ends it.
    pub(super) fn note_bridged_request(&mut self, request: &Message<'_>) {
        if self.hangups.calls.is_empty() || request.to_tag.is_none() {
            return;
        }
        if request.method() == Method::Bye {
            self.hangups.calls.remove(request.call_id);
            return;
        }
        let Some(dialog) = self.hangups.calls.get_mut(request.call_id) else {
            return;
        };
        let from_caller = request.header(HeaderName::From) == Some(&dialog.caller.identity);
        let party = if from_caller {
            Some(&mut dialog.caller)
        } else {
            dialog.callee.as_mut()
        };
        if let Some(p) = party {
            p.cseq = p.cseq.max(request.cseq.seq);
        }
    }

    /// A bridged call that failed before it was answered: nothing to hang up.
    pub(super) fn forget_bridged(&mut self, call_id: &str) {
        if let Some(d) = self.hangups.calls.get(call_id) {
            if d.callee.is_none() {
                self.hangups.calls.remove(call_id);
            }
        }
    }

    /// A call that turned out not to be bridged (a browser answered a browser).
    pub(super) fn forget_call(&mut self, call_id: &str) {
        self.hangups.calls.remove(call_id);
    }

    /// The relay says the browser of call `call_id` (the relay's id) is gone: both sides get
    /// a BYE (the browser's is likely lost with it; the phone's is what matters).
    pub fn handle_browser_gone(&mut self, now: Instant, call_id: &str) {
        self.hang_up_bridged(
            now,
            super::splitting::call_of(call_id),
            "SIP;cause=480;text=\"the browser's media stopped (ICE consent lost)\"",
        );
    }

    /// Ends answered bridged call `call_id` from the middle: a BYE to each side with `reason`
    /// (RFC 3326), and the relay frees its ports. False when no such call was answered here.
    pub(super) fn hang_up_bridged(&mut self, now: Instant, call_id: &str, reason: &str) -> bool {
        let Some(dialog) = self.hangups.calls.remove(call_id) else {
            tracing::debug!(%call_id, "a bridged call to end was not answered here");
            return false;
        };
        let Some(callee) = dialog.callee else {
            return false;
        };
        let caller = dialog.caller;
        for (to, from, cseq) in [
            (&callee, &caller, caller.cseq.saturating_add(1)),
            (&caller, &callee, callee.cseq.saturating_add(1)),
        ] {
            let bye = self.bye(call_id, (to, from), (cseq, reason));
            match bye.map(|b| self.endpoint.send_request(now, b, to.reached)) {
                Some(Ok(_)) => {
                    tracing::info!(%call_id, to = %to.reached.addr, %reason, "BYE sent");
                }
                Some(Err(e)) => tracing::debug!(error = %e, "could not send a BYE"),
                None => {}
            }
        }
        self.anchoring.delete_call(call_id);
        self.pump(now);
        true
    }

    /// A BYE to `to`, as `from` would send it.
    fn bye(
        &mut self,
        call_id: &str,
        (to, from): (&Party, &Party),
        (cseq, reason): (u32, &str),
    ) -> Option<Vec<u8>> {
        let hop = self.hop_for(to.reached.transport, to.reached.addr)?;
        let via = format!("{}{}", hop.via, self.endpoint.new_branch());
        let request = RequestBuilder::new(Method::Bye, &to.target)
            .header("Via", via)
            .header("Max-Forwards", 70)
            .header("From", &from.identity)
            .header("To", &to.identity)
            .header("Call-ID", call_id)
            .header("CSeq", format!("{cseq} BYE"))
            .header("Reason", reason)
            .finish();
        Some(request)
    }
}

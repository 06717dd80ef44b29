//! Stopping gracefully (SIGTERM): new requests outside a dialog get 503 with Retry-After, so
//! devices and other servers go elsewhere, while transactions under way and answered calls
//! (their re-INVITEs, ACKs and BYEs) go on; presence subscribers are told "deactivated" so
//! they subscribe again at once, elsewhere or after the restart (RFC 6665 4.2.2).

use super::ServerCore;
use crate::capabilities::RETRY_AFTER;
use openline_sip::transaction::{State, TransactionId};
use openline_sip::{Message, Method};
use std::net::SocketAddr;
use std::time::Instant;

impl ServerCore {
    /// Stops taking new work; what is under way goes on.
    pub fn begin_drain(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.presence.agent.deactivate_all(now);
        self.send_notifies(now);
        self.pump(now);
    }

    /// Nothing left under way: no transaction waiting for its final response, no answered
    /// call. (One that has answered and only absorbs retransmissions, for up to 32 s over UDP,
    /// is done: its peer has what it needs.)
    pub fn drained(&self) -> bool {
        let waiting = self
            .endpoint
            .transactions()
            .any(|(_, state)| matches!(state, State::Calling | State::Trying | State::Proceeding));
        !waiting && self.calls.len() == 0
    }

    /// While draining, a request that would start something new is answered 503 here; true
    /// when it was.
    pub(super) fn refused_while_draining(
        &mut self,
        now: Instant,
        id: TransactionId,
        source: SocketAddr,
        request: &Message<'_>,
    ) -> bool {
        if !self.draining || request.to_tag.is_some() || request.method() == Method::Cancel {
            return false;
        }
        let echo = request.echo();
        let headers = [
            ("Retry-After", RETRY_AFTER),
            ("Server", self.server_header.as_str()),
        ];
        if let Err(e) = self.endpoint.reply(now, id, &echo, source, 503, &headers) {
            tracing::debug!(error = %e, "could not refuse while draining");
        }
        true
    }
}

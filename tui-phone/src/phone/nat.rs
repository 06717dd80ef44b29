//! The phone's public media address: a STUN Binding from the media socket (RFC 8489) tells the
//! address a NAT gives it, and calls made after that put it in their SDP.

use super::{Phone, PhoneEvent};
use openline_media::stun::{BindingClient, StunServer};
use std::net::SocketAddr;
use std::time::Instant;

impl Phone {
    /// Asks the STUN server at `server` for our media socket's public address.
    pub fn set_stun(&mut self, now: Instant, server: SocketAddr) {
        let mut transaction = [0u8; 12];
        self.endpoint.random(&mut transaction);
        self.stun = Some(BindingClient::new(server, transaction, now));
        self.handle_stun_timeout(now);
    }

    pub(super) fn stun_timeout(&self) -> Option<Instant> {
        self.stun.as_ref().and_then(BindingClient::poll_timeout)
    }

    pub(super) fn handle_stun_timeout(&mut self, now: Instant) {
        let Some(stun) = &mut self.stun else {
            return;
        };
        if let Some(request) = stun.poll_transmit(now) {
            self.media_out.push_back(request);
        }
        if stun.gave_up() {
            self.stun = None;
            self.events.push_back(PhoneEvent::CallRefused(format!(
                "STUN: no answer; calls offer the local address {}",
                self.rtp
            )));
        }
    }

    /// A datagram on the media socket that is STUN: true when it was ours to read.
    pub(super) fn handle_stun(&mut self, data: &[u8]) -> bool {
        if !StunServer::is_stun(data) {
            return false;
        }
        if let Some(mapped) = self.stun.as_mut().and_then(|s| s.handle(data)) {
            self.stun = None;
            self.rtp = mapped;
            self.events.push_back(PhoneEvent::MediaAddress(mapped));
        }
        true
    }
}

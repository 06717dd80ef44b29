//! The client side of a STUN Binding (RFC 8489), sans-IO: what a phone sends from its media
//! socket to learn the address a NAT gives that socket, for its SDP. Sent again at 500 ms,
//! doubling, 7 times at most (RFC 8489 6.2.1), then it gives up.

use super::MAGIC_COOKIE;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::methods::BINDING;
use stun_rs::{
    MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunMessageBuilder, TransactionId,
};

const FIRST_WAIT: Duration = Duration::from_millis(500);
const TRIES: u32 = 7;

/// One Binding transaction.
#[derive(Debug)]
pub struct BindingClient {
    server: SocketAddr,
    transaction: [u8; 12],
    request: Vec<u8>,
    sent: u32,
    next: Option<Instant>,
    wait: Duration,
    mapped: Option<SocketAddr>,
}

impl BindingClient {
    /// A Binding to `server` with the random `transaction` id; the first request is due now.
    pub fn new(server: SocketAddr, transaction: [u8; 12], now: Instant) -> Self {
        let message = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_transaction_id(TransactionId::from(transaction))
            .build();
        let mut buffer = [0u8; 64];
        let request = MessageEncoderBuilder::default()
            .build()
            .encode(&mut buffer, &message)
            .map(|n| buffer[..n].to_vec())
            .unwrap_or_default();
        BindingClient {
            server,
            transaction,
            request,
            sent: 0,
            next: Some(now),
            wait: FIRST_WAIT,
            mapped: None,
        }
    }

    /// The request to send (again), when due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        let due = self.next.filter(|&at| at <= now)?;
        if self.sent >= TRIES || self.request.is_empty() {
            self.next = None;
            return None;
        }
        self.sent += 1;
        self.next = Some(due.max(now) + self.wait);
        self.wait *= 2;
        Some((self.server, self.request.clone()))
    }

    /// When to call [`BindingClient::poll_transmit`] next; `None` once done or given up.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Whether it gave up without an answer.
    pub fn gave_up(&self) -> bool {
        self.mapped.is_none() && self.next.is_none()
    }

    /// A datagram on the socket: when it is the answer to this Binding, the address the
    /// server saw (and the transaction is done).
    pub fn handle(&mut self, packet: &[u8]) -> Option<SocketAddr> {
        if packet.len() < 20 || packet[4..8] != MAGIC_COOKIE || packet[8..20] != self.transaction {
            return None;
        }
        let (message, _) = MessageDecoderBuilder::default()
            .build()
            .decode(packet)
            .ok()?;
        if message.class() != MessageClass::SuccessResponse || message.method() != BINDING {
            return None;
        }
        let mapped = *message
            .get::<XorMappedAddress>()?
            .as_xor_mapped_address()
            .ok()?
            .socket_address();
        self.mapped = Some(mapped);
        self.next = None;
        Some(mapped)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::*;
    use crate::stun::{Outcome, StunServer};

    #[test]
    fn our_own_server_answers_with_the_address_it_saw() {
        let now = Instant::now();
        let server: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let mut client = BindingClient::new(server, [7; 12], now);
        let (to, request) = client.poll_transmit(now).unwrap();
        assert_eq!(to, server);
        let seen: SocketAddr = "203.0.113.5:40000".parse().unwrap();
        let Outcome::Reply(answer) =
            StunServer::new("test", None, [0; 32]).handle(&request, seen, 0)
        else {
            panic!("no answer")
        };
        assert_eq!(client.handle(b"not stun at all, but twenty bytes"), None);
        assert_eq!(client.handle(&answer), Some(seen));
        assert_eq!(client.poll_timeout(), None);
        assert!(!client.gave_up());
    }

    #[test]
    fn it_retries_seven_times_doubling_then_gives_up() {
        let start = Instant::now();
        let mut client = BindingClient::new("127.0.0.1:3478".parse().unwrap(), [1; 12], start);
        let mut sent_at = Vec::new();
        while let Some(at) = client.poll_timeout() {
            if client.poll_transmit(at).is_some() {
                sent_at.push(at.duration_since(start).as_millis());
            }
        }
        assert_eq!(sent_at, [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]);
        assert!(client.gave_up());
    }
}

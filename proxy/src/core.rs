//! The server's sans-IO core: bytes and time in, transmits out. The tokio loop in
//! [`crate::server`] only feeds and drains it.

use crate::capabilities;
use openline_sip::endpoint::{DropReason, Output, Transmit, Verdict};
use openline_sip::transaction::TransactionEvent;
use openline_sip::{Endpoint, EndpointConfig, Entropy, Inbound, Method, Transport};
use std::net::SocketAddr;
use std::time::Instant;

/// The server: transaction layer plus what it decides.
pub struct ServerCore {
    endpoint: Endpoint,
    /// Domains this server is responsible for.
    domains: Vec<String>,
    server_header: String,
}

impl std::fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCore")
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl ServerCore {
    /// A core for `domains`.
    pub fn new(domains: Vec<String>, config: EndpointConfig, entropy: Box<dyn Entropy>) -> Self {
        let server_header = format!("Openline/{}", env!("CARGO_PKG_VERSION"));
        ServerCore {
            endpoint: Endpoint::new(config, entropy),
            domains,
            server_header,
        }
    }

    /// The domains served.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// One message from the network.
    pub fn handle_received(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) {
        let inbound = Inbound {
            transport,
            source,
            data,
        };
        match self.endpoint.handle(now, inbound) {
            Verdict::Request {
                request,
                transaction: Some(id),
            } => {
                let echo = request.echo();
                let result = if request.method() == Method::Cancel {
                    // RFC 3261 9.2: 200 if the INVITE is known (whatever its state), else 481.
                    let code = if self.endpoint.find_invite_for_cancel(&request).is_some() {
                        200
                    } else {
                        481
                    };
                    self.endpoint.reply(
                        now,
                        id,
                        &echo,
                        source,
                        code,
                        &[("Server", &self.server_header)],
                    )
                } else {
                    let answer = capabilities::answer(&request);
                    let mut headers: Vec<(&str, &str)> = answer
                        .headers
                        .iter()
                        .map(|(n, v)| (*n, v.as_str()))
                        .collect();
                    headers.push(("Server", &self.server_header));
                    tracing::debug!(method = %request.method(), %source, code = answer.code, "answered");
                    self.endpoint
                        .reply(now, id, &echo, source, answer.code, &headers)
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not answer");
                }
            }
            // An ACK for a 2xx we never sent: nothing to do until there are dialogs.
            Verdict::Request {
                transaction: None, ..
            }
            | Verdict::Absorbed(_)
            | Verdict::Response { .. } => {}
            Verdict::StrayResponse(r) => {
                tracing::debug!(%source, status = r.status().unwrap_or(0), "stray response dropped");
            }
            Verdict::StatelessReply { status, error } => {
                tracing::info!(%source, %transport, status, %error, "malformed request refused");
            }
            Verdict::Discarded(
                DropReason::Unanswerable(error) | DropReason::MalformedAck(error),
            ) => {
                tracing::info!(%source, %transport, %error, "malformed message dropped");
            }
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            match self.endpoint.poll_output()? {
                Output::Transmit(t) => return Some(t),
                Output::Event(TransactionEvent::Terminated(_)) => {}
                Output::Event(e) => tracing::debug!(event = ?e, "transaction event"),
            }
        }
    }

    /// When to call [`ServerCore::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }
}

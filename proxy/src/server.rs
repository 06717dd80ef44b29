//! The composition root: binds the network, runs the core, stops on request.

use crate::core::ServerCore;
use openline_sip::{EndpointConfig, Entropy};
use openline_sip_net::{Limits, ListenSpec};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

/// What `openline serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Domains served.
    pub domains: Vec<String>,
    /// Where to listen.
    pub listen: Vec<ListenSpec>,
    /// Transaction timers.
    pub endpoint: EndpointConfig,
}

/// Randomness from the operating system.
#[derive(Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        if let Err(e) = getrandom::fill(dest) {
            // No randomness means no safe tags or nonces: stopping beats running predictable.
            tracing::error!(error = %e, "the operating system gave no randomness");
            std::process::abort();
        }
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Runs the server until `shutdown` completes; `bound` hears the bound addresses once ready.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
    bound: impl FnOnce(&[(openline_sip::Transport, SocketAddr)]),
) -> anyhow::Result<()> {
    let mut network = openline_sip_net::bind(&config.listen, Limits::default()).await?;
    for (transport, addr) in &network.local {
        tracing::info!(%transport, %addr, "listening");
    }
    bound(&network.local);
    let mut core = ServerCore::new(config.domains, config.endpoint, Box::new(OsEntropy));
    tokio::pin!(shutdown);
    loop {
        let wake = core.poll_timeout();
        tokio::select! {
            _ = &mut shutdown => break,
            received = network.inbound.recv() => {
                let Some(r) = received else { break };
                core.handle_received(now(), r.transport, r.source, &r.data);
            }
            _ = sleep_until(wake) => core.handle_timeout(now()),
        }
        while let Some(t) = core.poll_transmit() {
            if let Err(e) = network.sender.send(&t).await {
                tracing::debug!(error = %e, "send failed");
            }
        }
    }
    tracing::info!("shutting down");
    network.sender.close_connections();
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

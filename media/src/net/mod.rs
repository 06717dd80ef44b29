//! The relay's only socket code: tokio loops that feed datagrams to the sans-IO servers and
//! send what they answer. Thin on purpose (STYLE.md): every decision is in `stun`, `relay` and
//! `control`. STUN alone here; STUN with TURN in `turn.rs`; media and control in `relay.rs`.

mod datapath;
mod relay;
mod turn;

pub use relay::{InProcess, RelayCounts, serve_relay};
pub use turn::{TurnCounts, serve_turn};

use crate::stun::{Dropped, Outcome, StunServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio::net::UdpSocket;

/// Datagrams dropped, by reason (for the metrics of issue #11).
#[derive(Debug, Default)]
pub struct DropCounts {
    /// Not STUN.
    pub not_stun: AtomicU64,
    /// Undecodable STUN.
    pub malformed: AtomicU64,
    /// Indications and responses.
    pub not_a_request: AtomicU64,
}

impl DropCounts {
    fn count(&self, why: Dropped) {
        let counter = match why {
            Dropped::NotStun => &self.not_stun,
            Dropped::Malformed => &self.malformed,
            Dropped::NotARequest => &self.not_a_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Seconds since the epoch: nonces age by it.
#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Answers STUN on `socket` until it fails; what it drops is counted in `drops`.
pub async fn serve_stun(
    socket: UdpSocket,
    server: StunServer,
    drops: &DropCounts,
) -> std::io::Result<()> {
    // The largest UDP payload: a bigger datagram would be cut, and decoding a cut one fails
    // cleanly (counted as malformed).
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, source): (usize, SocketAddr) = socket.recv_from(&mut buf).await?;
        match server.handle(&buf[..n], source, wall_clock()) {
            Outcome::Reply(answer) => {
                if let Err(e) = socket.send_to(&answer, source).await {
                    tracing::debug!(error = %e, %source, "could not answer STUN");
                }
            }
            Outcome::Dropped(why) => drops.count(why),
        }
    }
}

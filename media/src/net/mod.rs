//! The relay's only socket code: the loops that feed datagrams to the sans-IO servers and send
//! what they answer. Thin on purpose (STYLE.md): every decision is in `stun`, `turn`, `relay`
//! and `control`. `relay.rs` is control and ports for relay sessions, `datapath.rs` the thread
//! that moves their media, `turn.rs` STUN and TURN on a thread of their own, `ng_remote.rs` another relay (rtpengine)
//! driven over ng.

mod datapath;
mod ng_remote;
mod relay;
mod turn;
mod turn_bind;
mod turn_streams;

pub use ng_remote::drive_remote;
pub use relay::{InProcess, RelayCounts, serve_relay};
pub use turn::{STREAM_IDLE, TurnCounts, TurnSockets, serve_turn};
pub use turn_bind::{StreamListen, TurnBindError, bind_turn};

use std::time::SystemTime;

/// Seconds since the epoch: nonces and shared-secret credentials age by it.
#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

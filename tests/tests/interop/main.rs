//! Interop suite: real SIP software against a running server, over loopback only.
//! The peers are Debian's packages, installed by `scripts/install-test-deps`; a missing peer
//! fails the test rather than skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod keepalive;
mod media_kamailio;
mod media_relay;
mod media_stun;
mod media_turn;
mod options;

use std::path::PathBuf;

/// Files under tests/peers/.
pub(crate) fn peer_file(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(rel)
        .display()
        .to_string()
}

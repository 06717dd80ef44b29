//! Proxy suite: calls through a running `openline` between real peers, checked on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod baresip;
mod cluster;
mod config;
mod doctor;
mod federation;
mod flow;
mod fork;
mod hep;
mod kamailio;
mod lifecycle;
mod media;
mod metrics;
mod relay;
mod sipp;
mod unanswered;

/// A file under `tests/peers/sipp`.
pub(crate) fn peer_file(name: &str) -> std::path::PathBuf {
    openline_tests::sipp::scenario(name)
}

//! Proxy suite: calls through a running `openline` between real peers, checked on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fork;
mod sipp;

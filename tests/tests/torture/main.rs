//! Torture suite: RFC 4475's messages and hostile byte streams sent to a running server.
//! The messages name foreign hosts, so this suite runs only inside `scripts/netns-run`
//! (a namespace with nothing but loopback): see testdata/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rfc4475;
mod stream;

/// Refuses to run outside the private namespace, where answers to foreign hosts could leave.
pub(crate) fn require_private_network() {
    assert_eq!(
        std::env::var("OPENLINE_NETNS").as_deref(),
        Ok("1"),
        "the torture suite runs inside scripts/netns-run (see README: the test command does this)"
    );
}

//! Hardening (issue #24): what a server on the public internet meets within hours, run
//! against a real openline on a topology of namespaces.
//!
//! - `scanners.rs`: SIPVicious (svmap, svwar, svcrack) learns no user and no password, and
//!   the attack costs a few log lines, not one per attempt.
//! - `chaos.rs`: kill -9 ten times under mixed load loses nothing the server answered, on
//!   SQLite and PostgreSQL, and leaves the database sound.
//! - `disk_full.rs`: the database's disk full: 503 with Retry-After, nothing accepted lost,
//!   work taken again once space returns.
//! - `tls.rs`: testssl.sh finds no weak protocol, no weak cipher and no vulnerability on the
//!   SIP TLS, WSS and HTTPS listeners.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod chaos;
mod disk_full;
mod scanners;
mod tls;

use openline_tests::topology::{Family, Link, Namespace, Server};

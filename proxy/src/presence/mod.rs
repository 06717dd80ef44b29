//! Presence (RFC 3856 over RFC 6665 SUBSCRIBE/NOTIFY, PIDF bodies, RFC 3903 PUBLISH), sans-IO:
//! the server is the presence agent of its local users. `pidf.rs` reads and writes the
//! documents; `agent.rs` holds subscriptions and publications and says what to NOTIFY.

pub mod agent;
pub mod pidf;

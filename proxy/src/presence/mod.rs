//! Presence (RFC 3856 over RFC 6665 SUBSCRIBE/NOTIFY, PIDF bodies, RFC 3903 PUBLISH), sans-IO:
//! the server is the presence agent of its local users. `agent.rs` holds subscriptions and
//! publications and says what to NOTIFY; the documents are `openline_sip::pidf`'s.

pub mod agent;
pub mod deadlines;

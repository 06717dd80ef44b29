//! The user agent, sans-IO: state machines that take responses, failures and the current time
//! and say what to send and when to wake up; the driver owns the sockets and the clock.
//! `registration.rs` keeps the phone registered (digest, refresh before expiry, retry); `chat.rs`
//! writes and reads text messages.

pub mod call;
pub mod chat;
pub mod offer;
pub mod presence;
pub mod registration;

pub use registration::{Account, Next, RegEvent, Registration};

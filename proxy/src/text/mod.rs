//! Text messages (RFC 3428 MESSAGE, issue #5), sans-IO: what a MESSAGE must be to be accepted
//! (`check`), the fan-out of one to a user's registered devices (`fanout`), the delivery of
//! stored messages to one device at a time in the order accepted (`outbox`), the devices each
//! user has (`devices`), and the MESSAGE requests the server itself sends (`compose`). The core
//! (`core/texting.rs`) ties them to transactions and the store.

mod check;
pub mod compose;
pub mod devices;
pub mod fanout;
pub mod outbox;

pub use check::{ACCEPTED_TYPES, UDP_MESSAGE_LIMIT, check, udp_refusal};

use std::time::Duration;

/// How text is handled.
#[derive(Debug, Clone)]
pub struct TextConfig {
    /// Largest body accepted (413 beyond).
    pub max_body: usize,
    /// Most messages stored for one user; beyond it a MESSAGE that would have to be stored is
    /// refused (480, saying the mailbox is full).
    pub quota: u64,
    /// How long a stored message waits for its devices, and how long a device unseen is
    /// still owed messages.
    pub expiry: Duration,
    /// How long a MESSAGE waits for the recipient's registered devices before the ones that
    /// have not answered are given up for now (their copy is stored for later).
    pub device_wait: Duration,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            max_body: 16 * 1024,
            quota: 10_000,
            expiry: Duration::from_secs(30 * 86_400),
            device_wait: Duration::from_secs(5),
        }
    }
}

/// The header that marks a copy of a message its own user sent from another device
/// (multi-device sync); ARCHITECTURE.md documents it.
pub const COPY_HEADER: &str = "Openline-Copy";

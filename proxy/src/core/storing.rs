//! What the core asks of the store and what it hears back: the store worker in
//! `server/store.rs` carries these out in batches.

use openline_registrar::ChangeSet;
use openline_registrar::store::{MailOutcome, MailWrite, StoredMessage};

/// Work for the store, answered through [`ServerCore::handle_stored`]: writes are made durable
/// before what depends on them is answered (the 200 to a REGISTER, the 202 to a MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOp {
    /// Names the operation in [`ServerCore::handle_stored`].
    pub id: u64,
    /// What to do.
    pub work: StoreWork,
}

/// What a [`StoreOp`] asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWork {
    /// A change of bindings.
    Bindings(ChangeSet),
    /// A change of the mailbox.
    Mail(MailWrite),
    /// Read the next page of messages owed to a device (after the writes queued before it).
    Pending {
        /// The user.
        recipient: String,
        /// The device.
        device: String,
    },
    /// What `aor` published, kept for the other nodes of a cluster (None: withdrawn); it
    /// lapses `expires_in` seconds from when it is written.
    Publish {
        /// Whose.
        aor: String,
        /// Entity tag, status and seconds left; None when withdrawn.
        state: Option<(String, openline_sip::pidf::Status, u64)>,
    },
    /// `watcher` may see `presentity`'s presence (both `user@domain`): the presentity wrote to
    /// or called them.
    Allow {
        /// Whose presence.
        presentity: String,
        /// Who may see it.
        watcher: String,
    },
}

/// What the store did with a [`StoreOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// It failed (the database said why, in the log).
    Failed,
    /// Bindings written.
    Written,
    /// A mailbox write's result.
    Mail(MailOutcome),
    /// A page read.
    Pending(Vec<StoredMessage>),
}

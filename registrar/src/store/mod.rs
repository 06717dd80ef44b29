//! Persistence behind narrow seams, [`UserStore`], [`BindingStore`] and [`MailboxStore`]: SQLite by default
//! (`sqlite://openline.db`, WAL, synchronous=FULL), PostgreSQL for several nodes
//! (`postgres://...`), memory for tests. Migrations run when a store opens. A batch of changes
//! commits in one transaction, whole or not at all.

mod memory;
mod sql;

use crate::binding::{Binding, ChangeSet};
use crate::user::User;
use std::future::Future;

pub use memory::MemoryStore;
pub use sql::{NewsListener, Published, SqlStore, StoreNews};

/// A store that did not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no back-end we have.
    #[error("unsupported database URL `{0}` (use sqlite://FILE or postgres://...)")]
    Url(String),
    /// The database refused or failed. (Said in the message, not chained as a source:
    /// sqlx's errors already say their causes, and both would print them twice.)
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration: {0}")]
    Migration(sqlx::migrate::MigrateError),
    /// A stored row does not read back.
    #[error("corrupt row in {table}: {why}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e)
    }
}

/// Users and their HA1 values.
pub trait UserStore {
    /// Adds or replaces a user.
    fn put_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.put_users(std::slice::from_ref(user))
    }
    /// Adds or replaces many users in one transaction.
    fn put_users(&self, users: &[User]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a user and its bindings; false if there was none.
    fn delete_user(&self, aor: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every user.
    fn users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
    /// A number that changes whenever the users do.
    fn users_version(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// Bindings: the journal of the location table.
pub trait BindingStore: Sync {
    /// Applies every change in one transaction.
    fn apply(&self, changes: &[ChangeSet]) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.apply_noting(changes, &[])
    }
    /// Applies every change and notes the devices `seen` (the mailbox's [`KnownDevice`]s) in
    /// the same transaction: a REGISTER that binds a new device pays no commit of its own for
    /// the note.
    fn apply_noting(
        &self,
        changes: &[ChangeSet],
        seen: &[KnownDevice],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every binding not expired at `now`.
    fn bindings(&self, now: u64) -> impl Future<Output = Result<Vec<Binding>, StoreError>> + Send;
    /// Deletes bindings expired at `now`; returns how many.
    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A text message as accepted, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The mailbox's owner: the recipient, or for a copy the user who sent it.
    pub recipient: String,
    /// Who sent it: the From header's name-addr, without tag.
    pub sender: String,
    /// Its Content-Type.
    pub content_type: String,
    /// The body, as received.
    pub body: Vec<u8>,
    /// When it was accepted (seconds since the epoch): its Date when delivered later.
    pub accepted_at: u64,
    /// When it is dropped undelivered.
    pub expires_at: u64,
    /// For a copy of what `recipient` sent from another device (multi-device sync): the
    /// To it was sent to.
    pub sent_to: Option<String>,
    /// What names the request that brought it (Call-ID, CSeq and From tag): the same request
    /// retried, through this node or another, is stored once.
    pub request_key: Option<String>,
}

/// How long a node's claim on a delivery keeps other nodes from handing the same message to
/// the same device (two flows of one device on two nodes): longer than a MESSAGE transaction.
pub const CLAIM_SECONDS: u64 = 64;

/// A stored message, owed to some device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Order of acceptance (increasing).
    pub id: i64,
    /// The message.
    pub message: NewMessage,
}

/// The device name that stands for whichever device of the recipient comes first.
pub const ANY_DEVICE: &str = "*";

/// A change to the mailbox; a batch of them commits in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailWrite {
    /// Stores the message, owed to these devices (none: [`ANY_DEVICE`]).
    Accept(NewMessage, Vec<String>),
    /// This device got message `id`: no longer owed to it (nor to "any device"); the message
    /// goes once no device is owed it.
    Delivered(i64, String),
    /// A user's device registered at this time (seconds since the epoch).
    DeviceSeen {
        /// The user.
        aor: String,
        /// The device ([`crate::Binding::device`]).
        device: String,
        /// When.
        at: u64,
    },
}

/// What one [`MailWrite`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// The message's id.
    Accepted(i64),
    /// Whether the message is gone (no device is owed it any more).
    Delivered {
        /// Gone.
        removed: bool,
    },
    /// Recorded.
    Seen,
}

/// A device a user registered lately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// The user.
    pub aor: String,
    /// The device.
    pub device: String,
    /// Last noted (seconds since the epoch).
    pub seen_at: u64,
}

/// Text messages waiting for devices (issue #5): accepted durably, handed to each device owed
/// one in the order accepted, removed once every such device got it or when it expires.
pub trait MailboxStore: Sync {
    /// Applies `writes` in order in one transaction, durable on return; one outcome each.
    fn write(
        &self,
        writes: &[MailWrite],
    ) -> impl Future<Output = Result<Vec<MailOutcome>, StoreError>> + Send;
    /// Stores `message`, owed to `devices` (none known: [`ANY_DEVICE`]); durable on return.
    fn accept(
        &self,
        message: &NewMessage,
        devices: &[String],
    ) -> impl Future<Output = Result<i64, StoreError>> + Send {
        let write = [MailWrite::Accept(message.clone(), devices.to_vec())];
        async move {
            match self.write(&write).await?.first() {
                Some(MailOutcome::Accepted(id)) => Ok(*id),
                _ => Err(StoreError::Corrupt {
                    table: "messages",
                    why: "no id for an accepted message".into(),
                }),
            }
        }
    }
    /// `device` got message `id`; true when the message is gone.
    fn delivered(
        &self,
        id: i64,
        device: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let write = [MailWrite::Delivered(id, device.to_string())];
        async move {
            Ok(matches!(
                self.write(&write).await?.first(),
                Some(MailOutcome::Delivered { removed: true })
            ))
        }
    }
    /// The first `limit` unexpired messages owed to `device` of `recipient` (or to any of its
    /// devices), in the order accepted, claimed for `claimer` (a node's name) for
    /// [`CLAIM_SECONDS`]: another node's claim hides a message until it lapses.
    fn pending(
        &self,
        owed: (&str, &str),
        claimer: &str,
        now: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredMessage>, StoreError>> + Send;
    /// Messages stored per recipient (the quota counts them), for recipients with any.
    fn mailbox_counts(&self)
    -> impl Future<Output = Result<Vec<(String, u64)>, StoreError>> + Send;
    /// Drops expired messages; returns how many.
    fn purge_expired_messages(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Every device noted at or after `since`.
    fn devices(
        &self,
        since: u64,
    ) -> impl Future<Output = Result<Vec<KnownDevice>, StoreError>> + Send;
    /// Forgets devices last noted before `before`; returns how many.
    fn forget_devices(&self, before: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Who may see whom across domains (presence): `user@domain` pairs.
pub trait PresenceStore: Sync {
    /// `watcher` may see `presentity` (`explicit`: an operator said so, which a running
    /// server notices like a change of users); true when it was new.
    fn allow(
        &self,
        presentity: &str,
        watcher: &str,
        at: u64,
        explicit: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes a permission back; true when there was one.
    fn disallow(
        &self,
        presentity: &str,
        watcher: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every (presentity, watcher) pair.
    fn allowed(&self) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
}

/// One-time tokens for phones set up from a link: only a token's hash is stored.
pub trait ProvisionStore: Sync {
    /// Keeps a token (by its hash) for `aor`, valid until `expires_at`.
    fn put_token(
        &self,
        token_hash: &str,
        aor: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The user of an unused, unexpired token, marking it used at `now`; None otherwise.
    fn take_token(
        &self,
        token_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Forgets tokens expired at `now`; returns how many.
    fn purge_tokens(&self, now: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Any of the back-ends.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite or PostgreSQL.
    Sql(SqlStore),
    /// In memory, for tests.
    Memory(MemoryStore),
}

impl Store {
    /// Housekeeping the database wants every second or so (SQLite's WAL checkpoint).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        match self {
            Store::Sql(s) => s.checkpoint().await,
            Store::Memory(_) => Ok(()),
        }
    }

    /// Opens the store a URL names (`sqlite://`, `postgres://`, `memory:`), applying migrations,
    /// for an admin command.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_as(url, "openline-admin").await
    }

    /// The same, for `writer` (a server: its node's name, which other nodes are told with each
    /// change it makes).
    pub async fn open_as(url: &str, writer: &str) -> Result<Self, StoreError> {
        if url == "memory:" {
            return Ok(Store::Memory(MemoryStore::default()));
        }
        Ok(Store::Sql(SqlStore::open(url, writer).await?))
    }

    /// The SQL database, if that is what this is.
    pub fn sql(&self) -> Option<&SqlStore> {
        match self {
            Store::Sql(s) => Some(s),
            Store::Memory(_) => None,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sql($s) => $body.await,
            Store::Memory($s) => $body.await,
        }
    };
}

impl UserStore for Store {
    async fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        delegate!(self, s => s.put_users(users))
    }
    async fn delete_user(&self, aor: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.delete_user(aor))
    }
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        delegate!(self, s => s.users())
    }
    async fn users_version(&self) -> Result<i64, StoreError> {
        delegate!(self, s => s.users_version())
    }
}

impl BindingStore for Store {
    async fn apply_noting(
        &self,
        changes: &[ChangeSet],
        seen: &[KnownDevice],
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.apply_noting(changes, seen))
    }
    async fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError> {
        delegate!(self, s => s.bindings(now))
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_expired(now))
    }
}

impl MailboxStore for Store {
    async fn write(&self, writes: &[MailWrite]) -> Result<Vec<MailOutcome>, StoreError> {
        delegate!(self, s => s.write(writes))
    }
    async fn pending(
        &self,
        owed: (&str, &str),
        claimer: &str,
        now: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        delegate!(self, s => s.pending(owed, claimer, now, limit))
    }
    async fn mailbox_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        delegate!(self, s => s.mailbox_counts())
    }
    async fn purge_expired_messages(&self, now: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_expired_messages(now))
    }
    async fn devices(&self, since: u64) -> Result<Vec<KnownDevice>, StoreError> {
        delegate!(self, s => s.devices(since))
    }
    async fn forget_devices(&self, before: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.forget_devices(before))
    }
}

impl PresenceStore for Store {
    async fn allow(
        &self,
        presentity: &str,
        watcher: &str,
        at: u64,
        explicit: bool,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.allow(presentity, watcher, at, explicit))
    }
    async fn disallow(&self, presentity: &str, watcher: &str) -> Result<bool, StoreError> {
        delegate!(self, s => s.disallow(presentity, watcher))
    }
    async fn allowed(&self) -> Result<Vec<(String, String)>, StoreError> {
        delegate!(self, s => s.allowed())
    }
}

impl ProvisionStore for Store {
    async fn put_token(
        &self,
        token_hash: &str,
        aor: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        delegate!(self, s => s.put_token(token_hash, aor, expires_at))
    }
    async fn take_token(&self, token_hash: &str, now: u64) -> Result<Option<String>, StoreError> {
        delegate!(self, s => s.take_token(token_hash, now))
    }
    async fn purge_tokens(&self, now: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_tokens(now))
    }
}

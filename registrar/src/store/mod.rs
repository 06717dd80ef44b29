//! Persistence behind two narrow seams, [`UserStore`] and [`BindingStore`]: SQLite by default
//! (`sqlite://openline.db`, WAL, synchronous=FULL), PostgreSQL for several nodes
//! (`postgres://...`), memory for tests. Migrations run when a store opens. A batch of changes
//! commits in one transaction, whole or not at all.

mod memory;
mod sql;

use crate::binding::{Binding, ChangeSet};
use crate::user::User;
use std::future::Future;

pub use memory::MemoryStore;
pub use sql::SqlStore;

/// A store that did not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no back-end we have.
    #[error("unsupported database URL `{0}` (use sqlite://FILE or postgres://...)")]
    Url(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not read back.
    #[error("corrupt row in {table}: {why}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What is wrong.
        why: String,
    },
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
pub trait BindingStore {
    /// Applies every change in one transaction.
    fn apply(&self, changes: &[ChangeSet]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every binding not expired at `now`.
    fn bindings(&self, now: u64) -> impl Future<Output = Result<Vec<Binding>, StoreError>> + Send;
    /// Deletes bindings expired at `now`; returns how many.
    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;
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

    /// Opens the store a URL names (`sqlite://`, `postgres://`, `memory:`), applying migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url == "memory:" {
            return Ok(Store::Memory(MemoryStore::default()));
        }
        Ok(Store::Sql(SqlStore::open(url).await?))
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
    async fn apply(&self, changes: &[ChangeSet]) -> Result<(), StoreError> {
        delegate!(self, s => s.apply(changes))
    }
    async fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError> {
        delegate!(self, s => s.bindings(now))
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_expired(now))
    }
}

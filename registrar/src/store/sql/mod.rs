//! SQLite and PostgreSQL through sqlx, with each statement written once: `$n` placeholders
//! become `?n` for SQLite, and a macro runs the same body on either pool. The mailbox is in
//! `mailbox.rs`.

mod cluster;
mod mailbox;
mod presence;
mod provision;

pub use cluster::{NewsListener, Published, StoreNews};

use super::{BindingStore, KnownDevice, StoreError, UserStore};
use crate::binding::{Binding, ChangeSet};
use crate::user::User;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _};
use std::str::FromStr;
use std::time::Duration;

/// A statement ready for one back-end.
struct Statement(String);

impl Statement {
    fn get(&self) -> AssertSqlSafe<String> {
        AssertSqlSafe(self.0.clone())
    }
}

/// A SQL database.
#[derive(Debug, Clone)]
pub enum SqlStore {
    /// SQLite (one file).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool this is.
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match $self {
            SqlStore::Sqlite($pool) => $body,
            SqlStore::Postgres($pool) => $body,
        }
    };
}
use on_pool;

impl SqlStore {
    /// Connects and applies migrations; `writer` names us to PostgreSQL (application_name),
    /// which the change notifications carry, so that a node can tell its own changes.
    pub async fn open(url: &str, writer: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // A 200 to a REGISTER promises the binding survives: sync every commit.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                // Checkpoints run on a timer from another connection (`checkpoint`), not inside
                // whichever commit crosses the threshold: that commit stalled for half a second
                // under load (seen at 8,000 REGISTER/s) and every 200 waiting on it with it.
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Ok(SqlStore::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?.application_name(writer);
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(SqlStore::Postgres(pool))
        } else {
            Err(StoreError::Url(url.to_string()))
        }
    }

    /// A constant statement in this back-end's placeholder style. Only the placeholder style
    /// changes and nothing from outside is ever spliced in, hence `AssertSqlSafe`.
    fn sql(&self, statement: &'static str) -> Statement {
        Statement(match self {
            SqlStore::Sqlite(_) => statement.replace('$', "?"),
            SqlStore::Postgres(_) => statement.to_string(),
        })
    }

    /// `head`, then `rows` rows of `columns` placeholders each, then `tail`: one multi-row
    /// statement. SQLite gets anonymous `?` placeholders: sqlx looks up every numbered one by
    /// name, a linear walk per parameter that took 8.5% of the server's CPU at 12,000
    /// REGISTER/s with 320 parameters.
    fn multi_row(&self, head: &str, (rows, columns): (usize, usize), tail: &str) -> Statement {
        use std::fmt::Write as _;
        let mut sql = String::from(head);
        for r in 0..rows {
            sql.push_str(if r > 0 { ", (" } else { "(" });
            for i in 1..=columns {
                if i > 1 {
                    sql.push_str(", ");
                }
                match self {
                    SqlStore::Sqlite(_) => sql.push('?'),
                    SqlStore::Postgres(_) => {
                        let _ = write!(sql, "${}", r * columns + i);
                    }
                }
            }
            sql.push(')');
        }
        sql.push_str(tail);
        // Only placeholders are generated; nothing from outside reaches the text.
        Statement(sql)
    }

    /// An upsert of `rows` bindings in one statement.
    fn upsert_rows(&self, rows: usize) -> Statement {
        self.multi_row(
            "INSERT INTO bindings (aor, binding_key, contact, instance, reg_id, expires_at, q, call_id, cseq, source, node) VALUES ",
            (rows, 11),
            " ON CONFLICT (aor, binding_key) DO UPDATE SET contact = excluded.contact, instance = excluded.instance, \
             reg_id = excluded.reg_id, expires_at = excluded.expires_at, q = excluded.q, call_id = excluded.call_id, \
             cseq = excluded.cseq, source = excluded.source, node = excluded.node",
        )
    }

    /// Notes `seen` devices in one statement.
    fn devices_seen<'q, DB>(
        &self,
        seen: &'q [KnownDevice],
    ) -> Result<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>, StoreError>
    where
        DB: sqlx::Database,
        &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let statement = self.multi_row(
            "INSERT INTO devices (aor, device, seen_at) VALUES ",
            (seen.len(), 3),
            " ON CONFLICT (aor, device) DO UPDATE SET seen_at = excluded.seen_at",
        );
        let mut q = sqlx::query(statement.get());
        for d in seen {
            q = q
                .bind(d.aor.as_str())
                .bind(d.device.as_str())
                .bind(to_i64(d.seen_at, "devices")?);
        }
        Ok(q)
    }

    /// The upsert of `rows`, with every value bound (the same shape for both back-ends).
    fn upsert<'q, DB>(
        &self,
        rows: &[&'q Binding],
    ) -> Result<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>, StoreError>
    where
        DB: sqlx::Database,
        &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut q = sqlx::query(self.upsert_rows(rows.len()).get());
        for b in rows {
            q = q
                .bind(b.aor.as_str())
                .bind(b.key().as_db())
                .bind(b.contact.as_str())
                .bind(b.instance.as_deref())
                .bind(b.reg_id.map(i64::from))
                .bind(to_i64(b.expires_at, "bindings")?)
                .bind(i64::from(b.q))
                .bind(b.call_id.as_str())
                .bind(i64::from(b.cseq))
                .bind(b.source.as_str())
                .bind(b.node.as_str());
        }
        Ok(q)
    }

    /// Moves committed pages from the write-ahead log into the database without blocking writers
    /// (SQLite; nothing to do for PostgreSQL). Call it every second or so.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let SqlStore::Sqlite(pool) = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Closes the pools.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// Most bindings written by one statement (a few distinct statements for the cache to hold).
const UPSERT_ROWS: usize = 32;

/// What a batch leaves behind, per binding: applying the changes in order is the same as
/// deleting the keys whose last word was a removal and upserting the last version of the rest.
/// (One upsert statement may not touch a row twice, so duplicates must go first.)
fn final_state(changes: &[ChangeSet]) -> (Vec<(&str, String)>, Vec<&Binding>) {
    let mut last: std::collections::HashMap<(&str, String), Option<&Binding>> =
        std::collections::HashMap::new();
    let mut order = Vec::new();
    for change in changes {
        for key in &change.removals {
            let k = (change.aor.as_str(), key.as_db());
            if last.insert(k.clone(), None).is_none() {
                order.push(k);
            }
        }
        for b in &change.upserts {
            let k = (change.aor.as_str(), b.key().as_db());
            if last.insert(k.clone(), Some(b)).is_none() {
                order.push(k);
            }
        }
    }
    let mut removals = Vec::new();
    let mut upserts = Vec::new();
    for k in order {
        match last.remove(&k) {
            Some(Some(b)) => upserts.push(b),
            Some(None) => removals.push(k),
            None => {}
        }
    }
    (removals, upserts)
}

const BUMP_USERS: &str = "UPDATE meta SET value = value + 1 WHERE key = 'users_version'";

fn to_i64(v: u64, table: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt {
        table,
        why: format!("{v} out of range"),
    })
}

impl UserStore for SqlStore {
    async fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        let upsert = self.sql(
            "INSERT INTO users (aor, ha1_md5, ha1_sha256) VALUES ($1, $2, $3) \
             ON CONFLICT (aor) DO UPDATE SET ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256",
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for user in users {
                sqlx::query(upsert.get()).bind(&user.aor).bind(&user.ha1_md5).bind(&user.ha1_sha256).execute(&mut *tx).await?;
            }
            sqlx::query(BUMP_USERS).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn delete_user(&self, aor: &str) -> Result<bool, StoreError> {
        let delete_user = self.sql("DELETE FROM users WHERE aor = $1");
        let delete_bindings = self.sql("DELETE FROM bindings WHERE aor = $1");
        let existed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(delete_user.get()).bind(aor).execute(&mut *tx).await?.rows_affected();
            sqlx::query(delete_bindings.get()).bind(aor).execute(&mut *tx).await?;
            sqlx::query(BUMP_USERS).execute(&mut *tx).await?;
            tx.commit().await?;
            n > 0
        });
        Ok(existed)
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let q = "SELECT aor, ha1_md5, ha1_sha256 FROM users ORDER BY aor";
        on_pool!(self, pool => {
            let rows = sqlx::query(q).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok(User { aor: r.try_get("aor")?, ha1_md5: r.try_get("ha1_md5")?, ha1_sha256: r.try_get("ha1_sha256")? }))
                .collect()
        })
    }

    async fn users_version(&self) -> Result<i64, StoreError> {
        let q = "SELECT value FROM meta WHERE key = 'users_version'";
        on_pool!(self, pool => Ok(sqlx::query(q).fetch_one(pool).await?.try_get::<i64, _>("value")?))
    }
}

impl BindingStore for SqlStore {
    async fn apply_noting(
        &self,
        changes: &[ChangeSet],
        seen: &[KnownDevice],
    ) -> Result<(), StoreError> {
        let (removals, upserts) = final_state(changes);
        let delete = self.sql("DELETE FROM bindings WHERE aor = $1 AND binding_key = $2");
        // The usual batch is one upsert: run it on its own (a statement is atomic and, with
        // SQLite's synchronous=FULL, durable when it returns), one round trip to the database
        // instead of three with BEGIN and COMMIT around it.
        if removals.is_empty() && upserts.len() <= UPSERT_ROWS && seen.is_empty() {
            if upserts.is_empty() {
                return Ok(());
            }
            on_pool!(self, pool => { self.upsert(&upserts)?.execute(pool).await?; });
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (aor, key) in &removals {
                sqlx::query(delete.get()).bind(*aor).bind(key).execute(&mut *tx).await?;
            }
            for chunk in upserts.chunks(UPSERT_ROWS) {
                self.upsert(chunk)?.execute(&mut *tx).await?;
            }
            for chunk in seen.chunks(UPSERT_ROWS) {
                self.devices_seen(chunk)?.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where(now, None).await
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM bindings WHERE expires_at <= $1");
        let now = to_i64(now, "bindings")?;
        on_pool!(self, pool => Ok(sqlx::query(q.get()).bind(now).execute(pool).await?.rows_affected()))
    }
}

impl SqlStore {
    /// The live bindings of `aor` (another node changed them).
    pub async fn bindings_of(&self, aor: &str, now: u64) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where(now, Some(aor)).await
    }

    /// Live bindings: all of them, or those of one address of record.
    async fn bindings_where(
        &self,
        now: u64,
        aor: Option<&str>,
    ) -> Result<Vec<Binding>, StoreError> {
        let q = self.sql(match aor {
            None => "SELECT aor, contact, instance, reg_id, expires_at, q, call_id, cseq, source, node FROM bindings WHERE expires_at > $1",
            Some(_) => "SELECT aor, contact, instance, reg_id, expires_at, q, call_id, cseq, source, node FROM bindings WHERE expires_at > $1 AND aor = $2",
        });
        let now = to_i64(now, "bindings")?;
        on_pool!(self, pool => {
            let mut query = sqlx::query(q.get()).bind(now);
            if let Some(aor) = aor {
                query = query.bind(aor);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|r| {
                let corrupt = |why: &str| StoreError::Corrupt { table: "bindings", why: why.to_string() };
                Ok(Binding {
                    aor: r.try_get("aor")?,
                    contact: r.try_get("contact")?,
                    instance: r.try_get("instance")?,
                    reg_id: r.try_get::<Option<i64>, _>("reg_id")?.map(u32::try_from).transpose().map_err(|_| corrupt("reg_id"))?,
                    expires_at: u64::try_from(r.try_get::<i64, _>("expires_at")?).map_err(|_| corrupt("expires_at"))?,
                    q: u16::try_from(r.try_get::<i64, _>("q")?).map_err(|_| corrupt("q"))?,
                    call_id: r.try_get("call_id")?,
                    cseq: u32::try_from(r.try_get::<i64, _>("cseq")?).map_err(|_| corrupt("cseq"))?,
                    source: r.try_get("source")?,
                    node: r.try_get("node")?,
                })
            }).collect()
        })
    }
}

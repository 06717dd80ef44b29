//! The mailbox on SQLite and PostgreSQL: a batch of writes in one transaction; reads in the
//! order accepted.

use super::{SqlStore, on_pool, to_i64};
use crate::store::{
    ANY_DEVICE, KnownDevice, MailOutcome, MailWrite, MailboxStore, NewMessage, StoreError,
    StoredMessage,
};
use sqlx::Row as _;

fn corrupt(table: &'static str, why: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        why: why.to_string(),
    }
}

fn to_u64(v: i64, table: &'static str, column: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(table, column))
}

impl MailboxStore for SqlStore {
    async fn write(&self, writes: &[MailWrite]) -> Result<Vec<MailOutcome>, StoreError> {
        let insert = self.sql(
            "INSERT INTO messages (recipient, sender, content_type, body, accepted_at, expires_at, sent_to, request_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (recipient, request_key) DO NOTHING RETURNING id",
        );
        let stored_before =
            self.sql("SELECT id FROM messages WHERE recipient = $1 AND request_key = $2");
        let owe = self.sql("INSERT INTO deliveries (message_id, device) VALUES ($1, $2)");
        let settle = self
            .sql("DELETE FROM deliveries WHERE message_id = $1 AND (device = $2 OR device = $3)");
        let drop_done = self.sql(
            "DELETE FROM messages WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = $1)",
        );
        let seen = self.sql(
            "INSERT INTO devices (aor, device, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (aor, device) DO UPDATE SET seen_at = excluded.seen_at",
        );
        let any = [ANY_DEVICE.to_string()];
        let mut outcomes = Vec::with_capacity(writes.len());
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for w in writes {
                outcomes.push(match w {
                    MailWrite::Accept(m, devices) => {
                        let new = sqlx::query(insert.get())
                            .bind(&m.recipient)
                            .bind(&m.sender)
                            .bind(&m.content_type)
                            .bind(&m.body)
                            .bind(to_i64(m.accepted_at, "messages")?)
                            .bind(to_i64(m.expires_at, "messages")?)
                            .bind(m.sent_to.as_deref())
                            .bind(m.request_key.as_deref())
                            .fetch_optional(&mut *tx)
                            .await?;
                        let Some(new) = new else {
                            // The same request, retried (perhaps through another node): stored once.
                            let id: i64 = sqlx::query(stored_before.get())
                                .bind(&m.recipient)
                                .bind(m.request_key.as_deref())
                                .fetch_one(&mut *tx)
                                .await?
                                .try_get("id")?;
                            outcomes.push(MailOutcome::Accepted(id));
                            continue;
                        };
                        let id: i64 = new.try_get("id")?;
                        let devices = if devices.is_empty() { &any[..] } else { &devices[..] };
                        for device in devices {
                            sqlx::query(owe.get()).bind(id).bind(device).execute(&mut *tx).await?;
                        }
                        MailOutcome::Accepted(id)
                    }
                    MailWrite::Delivered(id, device) => {
                        sqlx::query(settle.get()).bind(*id).bind(device).bind(ANY_DEVICE).execute(&mut *tx).await?;
                        let gone = sqlx::query(drop_done.get()).bind(*id).execute(&mut *tx).await?.rows_affected();
                        MailOutcome::Delivered { removed: gone > 0 }
                    }
                    MailWrite::DeviceSeen { aor, device, at } => {
                        sqlx::query(seen.get())
                            .bind(aor)
                            .bind(device)
                            .bind(to_i64(*at, "devices")?)
                            .execute(&mut *tx)
                            .await?;
                        MailOutcome::Seen
                    }
                });
            }
            tx.commit().await?;
        });
        Ok(outcomes)
    }

    async fn pending(
        &self,
        (recipient, device): (&str, &str),
        claimer: &str,
        now: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let q = match self {
            // One node has the file to itself: nobody to claim against.
            SqlStore::Sqlite(_) => self.sql(
                "SELECT DISTINCT m.id, m.sender, m.content_type, m.body, m.accepted_at, m.expires_at, m.sent_to, m.request_key \
                 FROM messages m JOIN deliveries d ON d.message_id = m.id \
                 WHERE m.recipient = $1 AND (d.device = $2 OR d.device = $3) AND m.expires_at > $4 \
                 ORDER BY m.id LIMIT $5",
            ),
            // Several nodes: the rows another node is claiming right now are skipped, not waited
            // for, and those it claimed lately are left to it; what is taken is claimed for us.
            SqlStore::Postgres(_) => self.sql(
                "WITH picked AS (SELECT d.message_id, d.device FROM deliveries d JOIN messages m ON m.id = d.message_id \
                   WHERE m.recipient = $1 AND (d.device = $2 OR d.device = $3) AND m.expires_at > $4 \
                   AND (d.claimed_until IS NULL OR d.claimed_until <= $4 OR d.claimed_by = $6) \
                   ORDER BY m.id LIMIT $5 FOR UPDATE OF d SKIP LOCKED), \
                 claimed AS (UPDATE deliveries d SET claimed_by = $6, claimed_until = $7 FROM picked \
                   WHERE d.message_id = picked.message_id AND d.device = picked.device RETURNING d.message_id) \
                 SELECT DISTINCT m.id, m.sender, m.content_type, m.body, m.accepted_at, m.expires_at, m.sent_to, m.request_key \
                 FROM messages m JOIN claimed c ON c.message_id = m.id ORDER BY m.id",
            ),
        };
        let until = to_i64(
            now.saturating_add(crate::store::CLAIM_SECONDS),
            "deliveries",
        )?;
        let now = to_i64(now, "messages")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(self, pool => {
            let mut query = sqlx::query(q.get())
                .bind(recipient)
                .bind(device)
                .bind(ANY_DEVICE)
                .bind(now)
                .bind(limit);
            if matches!(self, SqlStore::Postgres(_)) {
                query = query.bind(claimer).bind(until);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|r| {
                Ok(StoredMessage {
                    id: r.try_get("id")?,
                    message: NewMessage {
                        recipient: recipient.to_string(),
                        sender: r.try_get("sender")?,
                        content_type: r.try_get("content_type")?,
                        body: r.try_get("body")?,
                        accepted_at: to_u64(r.try_get("accepted_at")?, "messages", "accepted_at")?,
                        expires_at: to_u64(r.try_get("expires_at")?, "messages", "expires_at")?,
                        sent_to: r.try_get("sent_to")?,
                        request_key: r.try_get("request_key")?,
                    },
                })
            }).collect()
        })
    }

    async fn mailbox_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let q = "SELECT recipient, COUNT(*) AS n FROM messages GROUP BY recipient";
        on_pool!(self, pool => {
            let rows = sqlx::query(q).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("recipient")?, to_u64(r.try_get("n")?, "messages", "count")?)))
                .collect()
        })
    }

    async fn purge_expired_messages(&self, now: u64) -> Result<u64, StoreError> {
        let owed = self.sql(
            "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE expires_at <= $1)",
        );
        let expired = self.sql("DELETE FROM messages WHERE expires_at <= $1");
        let now = to_i64(now, "messages")?;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(owed.get()).bind(now).execute(&mut *tx).await?;
            let n = sqlx::query(expired.get()).bind(now).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn devices(&self, since: u64) -> Result<Vec<KnownDevice>, StoreError> {
        let q = self.sql("SELECT aor, device, seen_at FROM devices WHERE seen_at >= $1");
        let since = to_i64(since, "devices")?;
        on_pool!(self, pool => {
            let rows = sqlx::query(q.get()).bind(since).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok(KnownDevice {
                    aor: r.try_get("aor")?,
                    device: r.try_get("device")?,
                    seen_at: to_u64(r.try_get("seen_at")?, "devices", "seen_at")?,
                }))
                .collect()
        })
    }

    async fn forget_devices(&self, before: u64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM devices WHERE seen_at < $1");
        let before = to_i64(before, "devices")?;
        on_pool!(self, pool => Ok(sqlx::query(q.get()).bind(before).execute(pool).await?.rows_affected()))
    }
}

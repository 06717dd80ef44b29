//! One-time provisioning tokens (issue #21), in SQL: taking a token marks it used in the same
//! statement, so two fetches racing get it once between them.

use super::{SqlStore, on_pool, to_i64};
use crate::store::{ProvisionStore, StoreError};
use sqlx::Row as _;

impl ProvisionStore for SqlStore {
    async fn put_token(
        &self,
        token_hash: &str,
        aor: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO provisioning_tokens (token_hash, aor, expires_at) VALUES ($1, $2, $3)",
        );
        let expires_at = to_i64(expires_at, "provisioning_tokens")?;
        on_pool!(self, pool => {
            sqlx::query(q.get())
                .bind(token_hash)
                .bind(aor)
                .bind(expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    async fn take_token(&self, token_hash: &str, now: u64) -> Result<Option<String>, StoreError> {
        let q = self.sql(
            "UPDATE provisioning_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING aor",
        );
        let now = to_i64(now, "provisioning_tokens")?;
        on_pool!(self, pool => {
            let row = sqlx::query(q.get())
                .bind(now)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
            row.map(|r| r.try_get("aor")).transpose().map_err(StoreError::from)
        })
    }

    async fn purge_tokens(&self, now: u64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM provisioning_tokens WHERE expires_at <= $1");
        let now = to_i64(now, "provisioning_tokens")?;
        on_pool!(self, pool => {
            Ok(sqlx::query(q.get()).bind(now).execute(pool).await?.rows_affected())
        })
    }
}

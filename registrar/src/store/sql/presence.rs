//! Who may see whom (presence, issue #8), in SQL. Explicit permissions bump the users'
//! version, so a running server reloads them as it reloads users.

use super::{BUMP_USERS, SqlStore, on_pool, to_i64};
use crate::store::{PresenceStore, StoreError};
use sqlx::Row as _;

impl PresenceStore for SqlStore {
    async fn allow(
        &self,
        presentity: &str,
        watcher: &str,
        at: u64,
        explicit: bool,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "INSERT INTO presence_allowed (presentity, watcher, since, explicit) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (presentity, watcher) DO NOTHING",
        );
        let at = to_i64(at, "presence_allowed")?;
        let explicit_flag = i32::from(explicit);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let added = sqlx::query(q.get())
                .bind(presentity)
                .bind(watcher)
                .bind(at)
                .bind(explicit_flag)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if added && explicit {
                sqlx::query(BUMP_USERS).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    async fn disallow(&self, presentity: &str, watcher: &str) -> Result<bool, StoreError> {
        let q = self.sql("DELETE FROM presence_allowed WHERE presentity = $1 AND watcher = $2");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query(q.get())
                .bind(presentity)
                .bind(watcher)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if gone {
                sqlx::query(BUMP_USERS).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(gone)
        })
    }

    async fn allowed(&self) -> Result<Vec<(String, String)>, StoreError> {
        let q = "SELECT presentity, watcher FROM presence_allowed ORDER BY presentity, watcher";
        on_pool!(self, pool => {
            let rows = sqlx::query(q).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("presentity")?, r.try_get("watcher")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }
}

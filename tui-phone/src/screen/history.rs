//! The conversations kept across restarts: SQLite in the data directory, one file per account,
//! written as lines appear and read back when the screen starts.

use super::app::{App, Line, Unsaved};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::path::Path;

/// The history of one account.
pub struct History {
    pool: SqlitePool,
}

impl History {
    /// Opens (or creates) `dir/history-ACCOUNT.db`.
    pub async fn open(dir: &Path, account: &str) -> Result<Self, sqlx::Error> {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join(format!("history-{account}.db")))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(History { pool })
    }

    /// Fills `app` with what was kept (nothing of it counts as unsaved).
    pub async fn load(&self, app: &mut App) -> Result<(), sqlx::Error> {
        let contacts: Vec<(String,)> = sqlx::query_as("SELECT aor FROM contacts ORDER BY position")
            .fetch_all(&self.pool)
            .await?;
        for (aor,) in contacts {
            app.contact(&aor);
        }
        let lines: Vec<(String, bool, String, Option<String>)> =
            sqlx::query_as("SELECT contact, mine, text, date FROM lines ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        for (aor, mine, text, date) in lines {
            app.contact(&aor).lines.push(Line { mine, text, date });
        }
        app.take_unsaved();
        Ok(())
    }

    /// Writes what `app` has not kept yet.
    pub async fn save(&self, app: &mut App) -> Result<(), sqlx::Error> {
        for item in app.take_unsaved() {
            match item {
                Unsaved::Contact(aor) => {
                    sqlx::query(
                        "INSERT OR IGNORE INTO contacts (aor, position) \
                         VALUES (?, (SELECT COUNT(*) FROM contacts))",
                    )
                    .bind(aor)
                    .execute(&self.pool)
                    .await?;
                }
                Unsaved::Line(aor, line) => {
                    sqlx::query(
                        "INSERT INTO lines (contact, mine, text, date) VALUES (?, ?, ?, ?)",
                    )
                    .bind(aor)
                    .bind(line.mine)
                    .bind(line.text)
                    .bind(line.date)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

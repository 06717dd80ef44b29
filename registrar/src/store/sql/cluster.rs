//! What nodes sharing one PostgreSQL need of it (issue #9): the nodes table (who is alive and
//! where it takes requests) and the news of every change, from the triggers of migration 0005
//! through LISTEN/NOTIFY.

use super::{SqlStore, to_i64};
use crate::binding::{Binding, BindingKey};
use crate::store::StoreError;
use sqlx::Row as _;
use sqlx::postgres::PgListener;

/// The channels the triggers notify on.
const CHANNELS: [&str; 5] = [
    "openline_bindings",
    "openline_mail",
    "openline_presence",
    "openline_users",
    "openline_nodes",
];

/// A change some writer (a node, by its name, or an admin command) made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreNews {
    /// A binding was made or refreshed.
    BindingUpsert {
        /// Who wrote it.
        writer: String,
        /// The binding as stored.
        binding: Binding,
    },
    /// A binding is gone.
    BindingDelete {
        /// Who deleted it.
        writer: String,
        /// Whose.
        aor: String,
        /// Which.
        key: BindingKey,
    },
    /// The bindings of `aor` changed; read them again (the row was too large to be told).
    BindingReload {
        /// Who changed them.
        writer: String,
        /// Whose.
        aor: String,
    },
    /// A message for `recipient` was stored, or is gone.
    Mail {
        /// Who.
        writer: String,
        /// Whose mailbox.
        recipient: String,
        /// Stored, else gone.
        stored: bool,
    },
    /// `watcher` may now (or no longer) see `presentity` from another domain.
    PresenceAllowed {
        /// Who.
        writer: String,
        /// Whose presence.
        presentity: String,
        /// Who sees it.
        watcher: String,
        /// Allowed, else taken back.
        allowed: bool,
    },
    /// What `presentity` published, or that it withdrew it (None).
    Published {
        /// Who.
        writer: String,
        /// Whose.
        presentity: String,
        /// What.
        state: Option<Published>,
    },
    /// Users changed.
    Users,
    /// A node started or stopped.
    Nodes,
    /// The listening connection was lost and is back: news may have been missed, so
    /// everything is to be read again.
    Lost,
}

/// What a user PUBLISHed, as the nodes share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its entity tag (RFC 3903), unique across nodes.
    pub etag: String,
    /// Open or closed.
    pub open: bool,
    /// The note.
    pub note: Option<String>,
    /// When it lapses (seconds since the epoch).
    pub expires_at: u64,
}

/// The binding row as the trigger's `row_to_json` writes it.
#[derive(serde::Deserialize)]
struct Row {
    aor: String,
    contact: String,
    instance: Option<String>,
    reg_id: Option<u32>,
    expires_at: u64,
    q: u16,
    call_id: String,
    cseq: u32,
    source: String,
    node: String,
}

#[derive(serde::Deserialize)]
struct Payload {
    writer: String,
    op: String,
    #[serde(default)]
    aor: String,
    #[serde(default)]
    binding_key: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    presentity: String,
    #[serde(default)]
    watcher: String,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    open: bool,
    note: Option<String>,
    #[serde(default)]
    expires_at: u64,
    row: Option<Row>,
}

/// Reads one notification.
fn parse(channel: &str, payload: &str) -> Result<StoreNews, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        table: "notification",
        why,
    };
    match channel {
        "openline_users" => return Ok(StoreNews::Users),
        "openline_nodes" => return Ok(StoreNews::Nodes),
        _ => {}
    }
    let p: Payload = serde_json::from_str(payload).map_err(|e| corrupt(e.to_string()))?;
    Ok(match (channel, p.op.as_str()) {
        ("openline_bindings", "upsert") => {
            let r = p
                .row
                .ok_or_else(|| corrupt("an upsert without its row".into()))?;
            StoreNews::BindingUpsert {
                writer: p.writer,
                binding: Binding {
                    aor: r.aor,
                    contact: r.contact,
                    instance: r.instance,
                    reg_id: r.reg_id,
                    expires_at: r.expires_at,
                    q: r.q,
                    call_id: r.call_id,
                    cseq: r.cseq,
                    source: r.source,
                    node: r.node,
                },
            }
        }
        ("openline_bindings", "delete") => StoreNews::BindingDelete {
            writer: p.writer,
            key: BindingKey::from_db(&p.binding_key)
                .ok_or_else(|| corrupt(format!("binding key {}", p.binding_key)))?,
            aor: p.aor,
        },
        ("openline_bindings", "reload") => StoreNews::BindingReload {
            writer: p.writer,
            aor: p.aor,
        },
        ("openline_presence", "published") => StoreNews::Published {
            writer: p.writer,
            presentity: p.presentity,
            state: Some(Published {
                etag: p.etag,
                open: p.open,
                note: p.note,
                expires_at: p.expires_at,
            }),
        },
        ("openline_presence", "unpublished") => StoreNews::Published {
            writer: p.writer,
            presentity: p.presentity,
            state: None,
        },
        ("openline_presence", op) => StoreNews::PresenceAllowed {
            writer: p.writer,
            presentity: p.presentity,
            watcher: p.watcher,
            allowed: op == "insert",
        },
        ("openline_mail", op) => StoreNews::Mail {
            writer: p.writer,
            recipient: p.recipient,
            stored: op == "stored",
        },
        (channel, op) => return Err(corrupt(format!("{op} on {channel}"))),
    })
}

/// The news of every change made to the shared database, in commit order.
#[derive(Debug)]
pub struct NewsListener(PgListener);

impl NewsListener {
    /// The next change; [`StoreNews::Lost`] when the connection dropped (it reconnects).
    pub async fn next(&mut self) -> Result<StoreNews, StoreError> {
        match self.0.try_recv().await? {
            Some(n) => parse(n.channel(), n.payload()),
            None => Ok(StoreNews::Lost),
        }
    }
}

impl SqlStore {
    /// Listens for every change (PostgreSQL only: SQLite has one writer, the server itself).
    pub async fn listen(&self) -> Result<NewsListener, StoreError> {
        let SqlStore::Postgres(pool) = self else {
            return Err(StoreError::Url(
                "a cluster of nodes needs postgres://, not SQLite".into(),
            ));
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all(CHANNELS).await?;
        Ok(NewsListener(listener))
    }

    /// Says that node `name` lives at `now` and takes requests at `address` (`udp:IP:PORT`).
    pub async fn announce_node(
        &self,
        name: &str,
        address: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let q = self.sql(
            "INSERT INTO nodes (name, address, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, seen_at = excluded.seen_at",
        );
        let now = to_i64(now, "nodes")?;
        super::on_pool!(self, pool => {
            sqlx::query(q.get()).bind(name).bind(address).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Node `name` stops: its row goes.
    pub async fn retire_node(&self, name: &str) -> Result<(), StoreError> {
        let q = self.sql("DELETE FROM nodes WHERE name = $1");
        super::on_pool!(self, pool => {
            sqlx::query(q.get()).bind(name).execute(pool).await?;
        });
        Ok(())
    }

    /// Keeps what `aor` published (None: withdrawn).
    pub async fn publish(&self, aor: &str, state: Option<&Published>) -> Result<(), StoreError> {
        let upsert = self.sql(
            "INSERT INTO publications (aor, etag, open, note, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (aor) DO UPDATE SET etag = excluded.etag, open = excluded.open, \
             note = excluded.note, expires_at = excluded.expires_at",
        );
        let delete = self.sql("DELETE FROM publications WHERE aor = $1");
        super::on_pool!(self, pool => {
            match state {
                Some(p) => {
                    sqlx::query(upsert.get())
                        .bind(aor)
                        .bind(&p.etag)
                        .bind(i32::from(p.open))
                        .bind(p.note.as_deref())
                        .bind(to_i64(p.expires_at, "publications")?)
                        .execute(pool)
                        .await?;
                }
                None => {
                    sqlx::query(delete.get()).bind(aor).execute(pool).await?;
                }
            }
        });
        Ok(())
    }

    /// Every publication not lapsed at `now`.
    pub async fn publications(&self, now: u64) -> Result<Vec<(String, Published)>, StoreError> {
        let q = self.sql(
            "SELECT aor, etag, open, note, expires_at FROM publications WHERE expires_at > $1",
        );
        let now = to_i64(now, "publications")?;
        super::on_pool!(self, pool => {
            let rows = sqlx::query(q.get()).bind(now).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let expires_at: i64 = r.try_get("expires_at")?;
                    Ok((r.try_get("aor")?, Published {
                        etag: r.try_get("etag")?,
                        open: r.try_get::<i32, _>("open")? != 0,
                        note: r.try_get("note")?,
                        expires_at: u64::try_from(expires_at).unwrap_or(0),
                    }))
                })
                .collect()
        })
    }

    /// The nodes that said they live at or after `since`: (name, address).
    pub async fn nodes(&self, since: u64) -> Result<Vec<(String, String)>, StoreError> {
        let q = self.sql("SELECT name, address FROM nodes WHERE seen_at >= $1 ORDER BY name");
        let since = to_i64(since, "nodes")?;
        super::on_pool!(self, pool => {
            let rows = sqlx::query(q.get()).bind(since).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("address")?))).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_triggers_payloads_read_back() {
        let upsert = r#"{"writer" : "n2", "op" : "upsert", "aor" : "bob@club-a.test", "row" : {"aor":"bob@club-a.test","binding_key":"contact:sip:bob@127.0.0.1:5062","contact":"sip:bob@127.0.0.1:5062","instance":null,"reg_id":null,"expires_at":1800000060,"q":1000,"call_id":"c1","cseq":7,"source":"udp:127.0.0.1:5062","node":"n2"}}"#;
        let StoreNews::BindingUpsert { writer, binding } =
            parse("openline_bindings", upsert).unwrap()
        else {
            panic!("not an upsert");
        };
        assert_eq!((writer.as_str(), binding.node.as_str()), ("n2", "n2"));
        assert_eq!(binding.expires_at, 1_800_000_060);
        let delete = r#"{"writer":"openline-admin","op":"delete","aor":"bob@club-a.test","binding_key":"instance:<urn:x>;reg-id=2"}"#;
        assert_eq!(
            parse("openline_bindings", delete).unwrap(),
            StoreNews::BindingDelete {
                writer: "openline-admin".into(),
                aor: "bob@club-a.test".into(),
                key: BindingKey::Instance {
                    instance: "<urn:x>".into(),
                    reg_id: Some(2)
                },
            }
        );
        let mail = r#"{"writer":"n1","op":"gone","recipient":"bob@club-a.test"}"#;
        assert!(matches!(
            parse("openline_mail", mail).unwrap(),
            StoreNews::Mail { stored: false, .. }
        ));
        assert!(parse("openline_bindings", "{not json").is_err());
        assert_eq!(parse("openline_nodes", "").unwrap(), StoreNews::Nodes);
    }
}

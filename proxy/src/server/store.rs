//! The server's database side: the worker that applies the core's store operations in
//! batches (group commit), the purge of expired messages, and the watcher that reloads users
//! and presence permissions when they change.

use super::{now, wall_clock};
use crate::core::{StoreOp, StoreOutcome, StoreWork};
use crate::repeated::{Event, EventLog};
use crate::text::outbox::PAGE;
use openline_registrar::store::{
    BindingStore, KnownDevice, MailOutcome, MailWrite, MailboxStore, PresenceStore, Published,
    Store, UserStore,
};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Most changes committed in one transaction. A commit costs about the same for 10 or 1,000
/// bindings (the fsync dominates), so a cap this size only bounds memory: at 256 it capped
/// the rate at 256 per (delay + commit), about 8,000 REGISTER/s with p99 above 100 ms.
const BATCH: usize = 4096;

/// Applies store operations in order, one transaction per batch: after the first operation
/// it gathers more for up to `delay` (group commit), so a durable commit (an fsync with SQLite)
/// is paid once per batch rather than once per REGISTER or MESSAGE. A batch's binding changes
/// commit together, then its mailbox writes; its reads run after both, so a read sees every
/// write queued before it.
pub(super) async fn store_worker(
    store: Store,
    mut ops: mpsc::Receiver<StoreOp>,
    done: mpsc::Sender<Vec<(u64, StoreOutcome)>>,
    (delay, node): (Duration, String),
) {
    // With the disk full every batch fails: a line per kind of write per minute, not per batch.
    let mut failures = EventLog::default();
    while let Some(first) = ops.recv().await {
        failures.sweep(now());
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + delay;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, ops.recv()).await {
                Ok(Some(op)) => batch.push(op),
                Ok(None) | Err(_) => break,
            }
        }
        #[allow(clippy::disallowed_methods)] // the driver times the database
        let started = Instant::now();
        let outcomes = run_batch(&store, batch, &node, &mut failures).await;
        metrics::histogram!(crate::metrics::DB_SECONDS, "kind" => "batch")
            .record(started.elapsed().as_secs_f64());
        if done.send(outcomes).await.is_err() {
            return;
        }
    }
}

/// One batch of store operations, each with its outcome.
async fn run_batch(
    store: &Store,
    batch: Vec<StoreOp>,
    node: &str,
    failures: &mut EventLog,
) -> Vec<(u64, StoreOutcome)> {
    let mut binding_ids = Vec::new();
    let mut changes = Vec::new();
    let mut mail_ids = Vec::new();
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let (mut seen, mut seen_ids) = (Vec::new(), Vec::new());
    let mut allow_outcomes = Vec::new();
    for op in batch {
        match op.work {
            StoreWork::Bindings(change) => {
                binding_ids.push(op.id);
                changes.push(change);
            }
            // A device sighting rides with the bindings: same transaction, no commit of its own.
            StoreWork::Mail(MailWrite::DeviceSeen { aor, device, at }) => {
                seen.push(KnownDevice {
                    aor,
                    device,
                    seen_at: at,
                });
                seen_ids.push(op.id);
            }
            StoreWork::Mail(write) => {
                mail_ids.push(op.id);
                writes.push(write);
            }
            StoreWork::Pending { recipient, device } => reads.push((op.id, recipient, device)),
            StoreWork::Publish { aor, state } => {
                // Soft state (devices refresh it): its own small write, nobody waits on it.
                let state = state.map(|(etag, status, left)| Published {
                    etag,
                    open: status.open,
                    note: status.note,
                    expires_at: wall_clock().saturating_add(left),
                });
                let written = match store.sql() {
                    Some(sql) => sql.publish(&aor, state.as_ref()).await,
                    None => Ok(()),
                };
                let outcome = match written {
                    Ok(()) => StoreOutcome::Written,
                    Err(e) => {
                        tracing::warn!(error = %e, %aor, "could not share a publication");
                        StoreOutcome::Failed
                    }
                };
                allow_outcomes.push((op.id, outcome));
            }
            StoreWork::Allow {
                presentity,
                watcher,
            } => {
                // Rare (a user's first message or call to someone): its own small write.
                let outcome = match store
                    .allow(&presentity, &watcher, wall_clock(), false)
                    .await
                {
                    Ok(_) => StoreOutcome::Written,
                    Err(e) => {
                        tracing::warn!(error = %e, %presentity, %watcher, "could not keep a presence permission");
                        StoreOutcome::Failed
                    }
                };
                allow_outcomes.push((op.id, outcome));
            }
        }
    }
    let mut outcomes = Vec::with_capacity(binding_ids.len() + mail_ids.len() + reads.len());
    outcomes.append(&mut allow_outcomes);
    // One upsert statement may not touch a row twice: a device noted twice in a batch once.
    seen.sort_by(|a, b| (&a.aor, &a.device).cmp(&(&b.aor, &b.device)));
    seen.dedup_by(|a, b| a.aor == b.aor && a.device == b.device);
    if !changes.is_empty() || !seen.is_empty() {
        let started = now();
        let outcome = match store.apply_noting(&changes, &seen).await {
            Ok(()) => {
                tracing::debug!(changes = changes.len(), took = ?now().duration_since(started), "committed");
                StoreOutcome::Written
            }
            Err(e) => {
                if let Some(count) = failures.note(now(), Event::StoreFailed, &"bindings") {
                    tracing::error!(error = %e, changes = changes.len(), count, "could not store bindings");
                }
                StoreOutcome::Failed
            }
        };
        let noted = match outcome {
            StoreOutcome::Written => StoreOutcome::Mail(MailOutcome::Seen),
            _ => StoreOutcome::Failed,
        };
        outcomes.extend(seen_ids.into_iter().map(|id| (id, noted.clone())));
        outcomes.extend(binding_ids.into_iter().map(|id| (id, outcome.clone())));
    }
    if !writes.is_empty() {
        match store.write(&writes).await {
            Ok(done) => outcomes.extend(
                mail_ids
                    .into_iter()
                    .zip(done.into_iter().map(StoreOutcome::Mail)),
            ),
            Err(e) => {
                if let Some(count) = failures.note(now(), Event::StoreFailed, &"mailbox") {
                    tracing::error!(error = %e, writes = writes.len(), count, "could not write the mailbox");
                }
                outcomes.extend(mail_ids.into_iter().map(|id| (id, StoreOutcome::Failed)));
            }
        }
    }
    let wall = wall_clock();
    for (id, recipient, device) in reads {
        let outcome = match store.pending((&recipient, &device), node, wall, PAGE).await {
            Ok(page) => StoreOutcome::Pending(page),
            Err(e) => {
                tracing::warn!(error = %e, %recipient, "could not read stored messages");
                StoreOutcome::Failed
            }
        };
        outcomes.push((id, outcome));
    }
    outcomes
}

/// Drops expired messages and devices unseen for `expiry` seconds; the counts left.
pub(super) async fn purge_mailbox(
    store: &Store,
    wall: u64,
    expiry: u64,
) -> Result<Vec<(String, u64)>, openline_registrar::store::StoreError> {
    let n = store.purge_expired_messages(wall).await?;
    if n > 0 {
        tracing::info!(messages = n, "expired messages dropped undelivered");
    }
    store.forget_devices(wall.saturating_sub(expiry)).await?;
    store.mailbox_counts().await
}

/// Users and presence permissions, as reloaded.
/// The users, the presence permissions, and who asked to be told once they are in use.
type Reloaded = (
    Vec<openline_registrar::User>,
    Vec<(String, String)>,
    Vec<tokio::sync::oneshot::Sender<()>>,
);

/// Reloads the users (and presence permissions) whenever `openline user` or `openline
/// presence` changes them.
/// `force` (SIGHUP) reloads them at once whatever the version says (a database changed by
/// other means than `openline user`).
pub(super) async fn users_watcher(
    store: Store,
    users: mpsc::Sender<Reloaded>,
    force: std::sync::Arc<tokio::sync::Notify>,
    mut fresh: mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
) {
    let mut seen = store.users_version().await.ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut waiting = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = force.notified() => seen = None,
            Some(asked) = fresh.recv() => {
                waiting.push(asked);
                seen = None;
            }
        }
        let version = match store.users_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not check for user changes");
                continue;
            }
        };
        if Some(version) != seen {
            match (store.users().await, store.allowed().await) {
                (Ok(list), Ok(allowed)) => {
                    tracing::info!(users = list.len(), "users changed: reloaded");
                    if users
                        .send((list, allowed, std::mem::take(&mut waiting)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    seen = Some(version);
                }
                (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "could not reload users"),
            }
        }
    }
}

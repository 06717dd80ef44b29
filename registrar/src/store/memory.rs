//! The in-memory store, for tests and for `--db memory:`.

use super::{
    ANY_DEVICE, BindingStore, KnownDevice, MailOutcome, MailWrite, MailboxStore, NewMessage,
    ProvisionStore, StoreError, StoredMessage, UserStore,
};
use crate::binding::{Binding, ChangeSet};
use crate::location::Location;
use crate::user::User;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    users: BTreeMap<String, User>,
    version: i64,
    location: Location,
    /// Messages by id, with the devices still owed each.
    messages: BTreeMap<i64, (NewMessage, Vec<String>)>,
    next_message: i64,
    /// Devices by (user, device): when last noted.
    devices: BTreeMap<(String, String), u64>,
    /// Presence permissions: (presentity, watcher).
    allowed: std::collections::BTreeSet<(String, String)>,
    /// Provisioning tokens by hash: (user, expires_at, used).
    tokens: BTreeMap<String, (String, u64, bool)>,
}

/// Users and bindings in memory; clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data (every update is one
        // statement), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl UserStore for MemoryStore {
    async fn put_users(&self, users: &[User]) -> Result<(), StoreError> {
        let mut g = self.lock();
        for user in users {
            g.users.insert(user.aor.clone(), user.clone());
        }
        g.version += 1;
        Ok(())
    }
    async fn delete_user(&self, aor: &str) -> Result<bool, StoreError> {
        let mut g = self.lock();
        let existed = g.users.remove(aor).is_some();
        if existed {
            let keys = g.location.bindings(aor).iter().map(Binding::key).collect();
            g.location.apply(&ChangeSet {
                aor: aor.to_string(),
                upserts: Vec::new(),
                removals: keys,
            });
            g.version += 1;
        }
        Ok(existed)
    }
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.lock().users.values().cloned().collect())
    }
    async fn users_version(&self) -> Result<i64, StoreError> {
        Ok(self.lock().version)
    }
}

impl BindingStore for MemoryStore {
    async fn apply_noting(
        &self,
        changes: &[ChangeSet],
        seen: &[KnownDevice],
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        for c in changes {
            g.location.apply(c);
        }
        for d in seen {
            g.devices
                .insert((d.aor.clone(), d.device.clone()), d.seen_at);
        }
        Ok(())
    }
    async fn bindings(&self, now: u64) -> Result<Vec<Binding>, StoreError> {
        Ok(self
            .lock()
            .location
            .iter()
            .filter(|b| b.is_live(now))
            .cloned()
            .collect())
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        Ok(self.lock().location.purge(now) as u64)
    }
}

impl MailboxStore for MemoryStore {
    async fn write(&self, writes: &[MailWrite]) -> Result<Vec<MailOutcome>, StoreError> {
        let mut g = self.lock();
        let mut outcomes = Vec::with_capacity(writes.len());
        for w in writes {
            outcomes.push(match w {
                MailWrite::Accept(message, devices) => {
                    let again = message.request_key.as_ref().and_then(|k| {
                        g.messages.iter().find_map(|(id, (m, _))| {
                            (m.recipient == message.recipient && m.request_key.as_ref() == Some(k))
                                .then_some(*id)
                        })
                    });
                    if let Some(id) = again {
                        outcomes.push(MailOutcome::Accepted(id));
                        continue;
                    }
                    g.next_message += 1;
                    let id = g.next_message;
                    let owed = if devices.is_empty() {
                        vec![ANY_DEVICE.to_string()]
                    } else {
                        devices.clone()
                    };
                    g.messages.insert(id, (message.clone(), owed));
                    MailOutcome::Accepted(id)
                }
                MailWrite::Delivered(id, device) => {
                    let mut removed = false;
                    if let Some((_, owed)) = g.messages.get_mut(id) {
                        owed.retain(|d| d != device && d != ANY_DEVICE);
                        removed = owed.is_empty();
                    }
                    if removed {
                        g.messages.remove(id);
                    }
                    MailOutcome::Delivered { removed }
                }
                MailWrite::DeviceSeen { aor, device, at } => {
                    g.devices.insert((aor.clone(), device.clone()), *at);
                    MailOutcome::Seen
                }
            });
        }
        Ok(outcomes)
    }

    async fn pending(
        &self,
        (recipient, device): (&str, &str),
        _claimer: &str, // one process: nobody else to claim against
        now: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let g = self.lock();
        Ok(g.messages
            .iter()
            .filter(|(_, (m, owed))| {
                m.recipient == recipient
                    && m.expires_at > now
                    && owed.iter().any(|d| d == device || d == ANY_DEVICE)
            })
            .take(limit)
            .map(|(id, (m, _))| StoredMessage {
                id: *id,
                message: m.clone(),
            })
            .collect())
    }

    async fn mailbox_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut counts = BTreeMap::<String, u64>::new();
        for (m, _) in self.lock().messages.values() {
            *counts.entry(m.recipient.clone()).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn purge_expired_messages(&self, now: u64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.messages.len();
        g.messages.retain(|_, (m, _)| m.expires_at > now);
        Ok((before - g.messages.len()) as u64)
    }

    async fn devices(&self, since: u64) -> Result<Vec<KnownDevice>, StoreError> {
        Ok(self
            .lock()
            .devices
            .iter()
            .filter(|(_, at)| **at >= since)
            .map(|((aor, device), at)| KnownDevice {
                aor: aor.clone(),
                device: device.clone(),
                seen_at: *at,
            })
            .collect())
    }

    async fn forget_devices(&self, before: u64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let n = g.devices.len();
        g.devices.retain(|_, at| *at >= before);
        Ok((n - g.devices.len()) as u64)
    }
}

impl super::PresenceStore for MemoryStore {
    async fn allow(
        &self,
        presentity: &str,
        watcher: &str,
        _at: u64,
        explicit: bool,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let added = inner
            .allowed
            .insert((presentity.to_string(), watcher.to_string()));
        if added && explicit {
            inner.version += 1;
        }
        Ok(added)
    }

    async fn disallow(&self, presentity: &str, watcher: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let gone = inner
            .allowed
            .remove(&(presentity.to_string(), watcher.to_string()));
        if gone {
            inner.version += 1;
        }
        Ok(gone)
    }

    async fn allowed(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.lock().allowed.iter().cloned().collect())
    }
}

impl ProvisionStore for MemoryStore {
    async fn put_token(
        &self,
        token_hash: &str,
        aor: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.lock()
            .tokens
            .insert(token_hash.to_owned(), (aor.to_owned(), expires_at, false));
        Ok(())
    }
    async fn take_token(&self, token_hash: &str, now: u64) -> Result<Option<String>, StoreError> {
        let mut g = self.lock();
        Ok(match g.tokens.get_mut(token_hash) {
            Some((aor, expires_at, used)) if !*used && *expires_at > now => {
                *used = true;
                Some(aor.clone())
            }
            _ => None,
        })
    }
    async fn purge_tokens(&self, now: u64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.tokens.len();
        g.tokens.retain(|_, (_, expires_at, _)| *expires_at > now);
        Ok((before - g.tokens.len()) as u64)
    }
}

//! The location table in memory: what routing reads. The database is its journal, loaded at
//! start; every persisted change is applied here too.

use crate::binding::{Binding, ChangeSet};
use openline_sip::table::StrMap;

/// Bindings by address of record.
#[derive(Debug, Default, Clone)]
pub struct Location {
    by_aor: StrMap<Vec<Binding>>,
}

impl Location {
    /// A table holding `bindings`.
    pub fn load(bindings: impl IntoIterator<Item = Binding>) -> Self {
        let mut by_aor: StrMap<Vec<Binding>> = StrMap::new();
        for b in bindings {
            by_aor.get_or_default(&b.aor).push(b);
        }
        Location { by_aor }
    }

    /// Every binding of `aor`, expired ones included (the REGISTER step filters them).
    pub fn bindings(&self, aor: &str) -> &[Binding] {
        self.by_aor.get(aor).map_or(&[], Vec::as_slice)
    }

    /// The bindings that may be routed to at `now`, highest q first.
    pub fn live(&self, aor: &str, now: u64) -> Vec<&Binding> {
        let mut v: Vec<&Binding> = self
            .bindings(aor)
            .iter()
            .filter(|b| b.is_live(now))
            .collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.q));
        v
    }

    /// Applies a change.
    pub fn apply(&mut self, change: &ChangeSet) {
        let list = self.by_aor.get_or_default(&change.aor);
        list.retain(|b| !change.touches(b));
        list.extend(change.upserts.iter().cloned());
        if list.is_empty() {
            self.by_aor.remove(&change.aor);
        }
    }

    /// Drops expired bindings; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        let mut n = 0;
        self.by_aor.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.is_live(now));
            n += before - list.len();
            !list.is_empty()
        });
        n
    }

    /// Every binding held, expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = &Binding> {
        self.by_aor.values().flatten()
    }

    /// Addresses of record with at least one binding (live or not yet purged).
    pub fn aor_count(&self) -> usize {
        self.by_aor.len()
    }
}

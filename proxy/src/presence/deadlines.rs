//! Named deadlines, the soonest found without a scan: what expires when (publications, binding
//! lapses), asked after every event by the server's wake-up computation.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// One deadline per key.
#[derive(Debug)]
pub struct Deadlines<K> {
    at: HashMap<K, Instant>,
    order: BTreeSet<(Instant, K)>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            at: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Deadlines<K> {
    /// Sets (or moves) `key`'s deadline.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.at.insert(key.clone(), at) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((at, key));
    }

    /// Drops `key`'s deadline.
    pub fn remove(&mut self, key: &K) {
        if let Some(old) = self.at.remove(key) {
            self.order.remove(&(old, key.clone()));
        }
    }

    /// The soonest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The keys whose deadline is `now` or earlier, soonest first (they stay set).
    pub fn due(&self, now: Instant) -> Vec<K> {
        self.order
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn moving_a_deadline_to_the_same_instant_keeps_one_entry() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut d = Deadlines::default();
        d.set("a", s(5));
        d.set("b", s(3));
        d.set("a", s(5));
        assert_eq!(d.next(), Some(s(3)));
        d.set("b", s(9));
        assert_eq!(d.due(s(5)), vec!["a"]);
        d.remove(&"a");
        assert_eq!(d.next(), Some(s(9)));
        d.remove(&"b");
        assert_eq!(d.next(), None);
        assert!(d.due(s(100)).is_empty());
    }
}

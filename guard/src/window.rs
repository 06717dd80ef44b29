//! Counts in a sliding window, per key: calls to other domains per user per hour (the spend
//! limit against toll fraud).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Per key, the times of its recent events, at most `limit` of them within `window`.
#[derive(Debug)]
pub struct RecentCounts<K> {
    limit: usize,
    window: Duration,
    events: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> RecentCounts<K> {
    /// At most `limit` events per key in any `window`; a limit of 0 means none is kept.
    pub fn new(limit: usize, window: Duration) -> Self {
        RecentCounts {
            limit,
            window,
            events: HashMap::new(),
        }
    }

    /// Counts one event for `key` at `now` if the window has room; false (and nothing
    /// counted) when the limit is reached.
    pub fn try_count(&mut self, key: &K, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        let window = self.window;
        let times = self.events.entry(key.clone()).or_default();
        while times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Forgets keys with nothing in the window.
    pub fn forget_old(&mut self, now: Instant) {
        let window = self.window;
        self.events.retain(|_, times| {
            times
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < window)
        });
    }

    /// Keys with events in memory.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn the_limit_per_hour_slides() {
        let hour = Duration::from_secs(3600);
        let mut r = RecentCounts::new(3, hour);
        let t0 = Instant::now();
        let at = |m: u64| t0 + Duration::from_secs(m * 60);
        assert!(r.try_count(&"alice", at(0)));
        assert!(r.try_count(&"alice", at(10)));
        assert!(r.try_count(&"alice", at(20)));
        assert!(!r.try_count(&"alice", at(30)));
        assert!(r.try_count(&"bob", at(30)));
        // The first call is an hour old at minute 60: room for one more.
        assert!(r.try_count(&"alice", at(60)));
        assert!(!r.try_count(&"alice", at(61)));
        r.forget_old(at(200));
        assert!(r.is_empty());
        let mut off = RecentCounts::new(0, hour);
        assert!((0..100).all(|_| off.try_count(&"alice", t0)));
    }
}

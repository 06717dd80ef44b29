//! Log lines under attack: an event repeated by one source (a throttled password guess, a
//! malformed packet, a refused connection) is logged the first time, then once per window
//! with how many there were, so a scanner sending thousands writes a line a minute. Metrics
//! count every event; this only decides which ones are written.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered at most; events of further keys are only counted together.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Seen {
    logged_at: Instant,
    /// Events since the last line.
    unlogged: u64,
}

/// Events whose window ended with some not yet written: the caller writes one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<K> {
    /// Which event, from whom.
    pub key: K,
    /// How many since the last line.
    pub count: u64,
}

/// Which repeated events to write, per key (what happened and from whom).
#[derive(Debug)]
pub struct Repeats<K> {
    window: Duration,
    seen: HashMap<K, Seen>,
    /// Events of keys beyond [`MAX_KEYS`] since the last sweep.
    others: u64,
}

impl<K: Hash + Eq + Clone> Repeats<K> {
    /// At most one line per key per `window`.
    pub fn new(window: Duration) -> Self {
        Repeats {
            window,
            seen: HashMap::new(),
            others: 0,
        }
    }

    /// One event at `now`: `Some(count)` when it should be written now, with how many it
    /// stands for (1 the first time, else those since the last line, this one included).
    pub fn note(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some(seen) = self.seen.get_mut(&key) {
            seen.unlogged += 1;
            if now.saturating_duration_since(seen.logged_at) < self.window {
                return None;
            }
            let count = seen.unlogged;
            *seen = Seen {
                logged_at: now,
                unlogged: 0,
            };
            return Some(count);
        }
        if self.seen.len() >= MAX_KEYS {
            self.others += 1;
            return None;
        }
        let seen = Seen {
            logged_at: now,
            unlogged: 0,
        };
        self.seen.insert(key, seen);
        Some(1)
    }

    /// At `now` (call it about once per window): the keys whose window ended with events not
    /// yet written, to write one line each; quiet keys are forgotten (their next event is
    /// written at once). The second value counts events of keys there was no room for.
    pub fn sweep(&mut self, now: Instant) -> (Vec<Summary<K>>, u64) {
        let mut due = Vec::new();
        let window = self.window;
        self.seen.retain(|key, seen| {
            if now.saturating_duration_since(seen.logged_at) < window {
                return true;
            }
            if seen.unlogged == 0 {
                return false;
            }
            due.push(Summary {
                key: key.clone(),
                count: seen.unlogged,
            });
            *seen = Seen {
                logged_at: now,
                unlogged: 0,
            };
            true
        });
        (due, std::mem::take(&mut self.others))
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn once_per_window_with_the_count() {
        let mut r = Repeats::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let lines: Vec<u64> = (0..7238)
            .filter_map(|i| r.note("10.0.0.1", t0 + Duration::from_millis(i * 5)))
            .collect();
        // 7,238 events over 36 s: the first is written, the rest wait for the window.
        assert_eq!(lines, vec![1]);
        // Another source is written at once.
        assert_eq!(r.note("10.0.0.2", t0), Some(1));
        // The sweep after the window writes the 7,237 others in one line, then forgets the
        // quiet source.
        let (due, others) = r.sweep(t0 + Duration::from_secs(61));
        assert_eq!(
            due,
            vec![Summary {
                key: "10.0.0.1",
                count: 7237
            }]
        );
        assert_eq!(others, 0);
        assert_eq!(r.len(), 1);
        let (due, _) = r.sweep(t0 + Duration::from_secs(122));
        assert!(due.is_empty());
        assert!(r.is_empty());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn an_event_after_the_window_is_written_with_those_before_it() {
        let mut r = Repeats::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.note(1, t0), Some(1));
        assert_eq!(r.note(1, t0 + Duration::from_secs(1)), None);
        assert_eq!(r.note(1, t0 + Duration::from_secs(2)), None);
        assert_eq!(r.note(1, t0 + Duration::from_secs(11)), Some(3));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn keys_beyond_the_table_are_counted_together() {
        let mut r = Repeats::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let written = (0..MAX_KEYS as u32 + 500)
            .filter(|&k| r.note(k, t0).is_some())
            .count();
        assert_eq!(written, MAX_KEYS);
        let (_, others) = r.sweep(t0);
        assert_eq!(others, 500);
    }
}

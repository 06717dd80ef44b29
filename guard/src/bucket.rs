//! Requests per source per second: a token bucket for each source address. A source that
//! sends faster than its rate for longer than its burst is refused until it slows down; the
//! sources of an [`AllowList`] never are.

use crate::AllowList;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A sustained rate and the burst allowed above it; a rate of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Most tokens held: how many may come at once after a quiet spell.
    pub burst: u32,
}

/// Sources tracked before idle ones are forgotten; beyond it even after that (a flood from
/// spoofed addresses), new sources share one bucket.
const MAX_SOURCES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate.per_second)).min(rate.burst.into());
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Full again by `now`: the same as a source never seen.
    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * f64::from(rate.per_second) >= f64::from(rate.burst)
    }
}

/// One bucket per source address.
#[derive(Debug)]
pub struct SourceBuckets {
    rate: Rate,
    allowed: AllowList,
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by new sources while the table is full of busy ones.
    overflow: Option<Bucket>,
}

impl SourceBuckets {
    /// Buckets filling at `rate`, none for the sources `allowed`.
    pub fn new(rate: Rate, allowed: AllowList) -> Self {
        SourceBuckets {
            rate,
            allowed,
            buckets: HashMap::new(),
            overflow: None,
        }
    }

    /// Whether `source` may send one more request at `now` (it costs a token).
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.rate.per_second == 0 || self.allowed.contains(source) {
            return true;
        }
        let fresh = Bucket {
            tokens: self.rate.burst.into(),
            at: now,
        };
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            self.forget_idle(now);
            if self.buckets.len() >= MAX_SOURCES {
                let rate = self.rate;
                return self.overflow.get_or_insert(fresh).take(rate, now);
            }
        }
        let rate = self.rate;
        self.buckets.entry(source).or_insert(fresh).take(rate, now)
    }

    /// Forgets sources whose buckets are full again (they are as if never seen).
    pub fn forget_idle(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets.retain(|_, b| !b.is_full(rate, now));
        if self.overflow.is_some_and(|b| b.is_full(rate, now)) {
            self.overflow = None;
        }
    }

    /// Sources tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn a_burst_then_the_rate() {
        let mut b = SourceBuckets::new(
            Rate {
                per_second: 10,
                burst: 20,
            },
            AllowList::default(),
        );
        let t0 = Instant::now();
        let a = ip("198.18.0.7");
        assert_eq!((0..30).filter(|_| b.allow(a, t0)).count(), 20);
        // Another source is untouched by the first one's flood.
        assert!(b.allow(ip("198.18.0.8"), t0));
        // A second later, ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..30).filter(|_| b.allow(a, t1)).count(), 10);
        // Quiet long enough, the source is forgotten.
        b.forget_idle(t1 + Duration::from_secs(3));
        assert!(b.is_empty());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn allowed_sources_and_a_zero_rate_are_never_refused() {
        let office = AllowList::parse(&["198.18.5.0/24"]).unwrap();
        let rate = Rate {
            per_second: 1,
            burst: 1,
        };
        let mut b = SourceBuckets::new(rate, office);
        let now = Instant::now();
        assert!((0..1000).all(|_| b.allow(ip("198.18.5.40"), now)));
        assert!((0..1000).all(|_| b.allow(ip("127.0.0.1"), now)));
        assert!(b.is_empty());
        let mut off = SourceBuckets::new(
            Rate {
                per_second: 0,
                burst: 0,
            },
            AllowList::default(),
        );
        assert!((0..1000).all(|_| off.allow(ip("198.18.0.1"), now)));
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
    fn a_full_table_shares_one_bucket_among_new_sources() {
        let rate = Rate {
            per_second: 1,
            burst: 2,
        };
        let mut b = SourceBuckets::new(rate, AllowList::default());
        let now = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            // Each source spends its whole burst: none is idle.
            let s = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            b.allow(s, now);
            b.allow(s, now);
        }
        assert_eq!(b.len(), MAX_SOURCES);
        let spoofed = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
        assert_eq!((0..10).filter(|&i| b.allow(spoofed(i), now)).count(), 2);
        assert_eq!(b.len(), MAX_SOURCES);
    }
}

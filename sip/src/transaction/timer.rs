//! The transaction timers of RFC 3261 Table 4 and RFC 6026, in one table.

use std::time::{Duration, Instant};

/// A transaction timer, named as the RFC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client: retransmit the request (unreliable only); starts at T1 and doubles.
    A,
    /// INVITE client: give up waiting for any response, 64*T1.
    B,
    /// INVITE client: absorb final-response retransmissions after a non-2xx; 32 s unreliable, 0 reliable.
    D,
    /// Non-INVITE client: retransmit the request (unreliable only); T1 doubling up to T2.
    E,
    /// Non-INVITE client: give up waiting for a final response, 64*T1.
    F,
    /// INVITE server: retransmit a non-2xx final (unreliable only); T1 doubling up to T2.
    G,
    /// INVITE server: give up waiting for the ACK, 64*T1.
    H,
    /// INVITE server: absorb ACK retransmissions; T4 unreliable, 0 reliable.
    I,
    /// Non-INVITE server: absorb request retransmissions; 64*T1 unreliable, 0 reliable.
    J,
    /// Non-INVITE client: absorb response retransmissions; T4 unreliable, 0 reliable.
    K,
    /// INVITE server, Accepted (RFC 6026): absorb INVITE retransmissions after a 2xx, 64*T1.
    L,
    /// INVITE client, Accepted (RFC 6026): pass 2xx retransmissions up, 64*T1.
    M,
}

impl Timer {
    const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The base intervals; every timer is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
    /// Timer C: how long a proxy waits for a final response to a forwarded INVITE (> 3 min).
    /// Run by the proxy, not by a transaction, so it is not in [`Timer`].
    pub timer_c: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_c: Duration::from_secs(181),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, L, M and (unreliable) J.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s over unreliable transports, 0 otherwise.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timeout())
        }
    }

    /// The interval after `current`, doubled and (for E and G) capped at T2.
    pub fn backoff(&self, current: Duration, cap_at_t2: bool) -> Duration {
        let next = current * 2;
        if cap_at_t2 { next.min(self.t2) } else { next }
    }
}

/// When each timer of one transaction fires.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerSet {
    deadlines: [Option<Instant>; 12],
}

impl TimerSet {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; 12];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Takes the earliest timer due at `now`, clearing it.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|&t| {
                self.deadlines[t.index()]
                    .filter(|&d| d <= now)
                    .map(|d| (t, d))
            })
            .min_by_key(|&(_, d)| d)?;
        self.clear(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = TimerConfig::default();
        assert_eq!(
            c.backoff(Duration::from_secs(2), true),
            Duration::from_secs(4)
        );
        assert_eq!(
            c.backoff(Duration::from_secs(4), true),
            Duration::from_secs(4)
        );
        assert_eq!(
            c.backoff(Duration::from_secs(4), false),
            Duration::from_secs(8)
        );
        assert_eq!(c.timeout(), Duration::from_secs(32));
        assert_eq!(c.timer_d(true), Duration::ZERO);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any instant will do as the origin
    fn due_timers_come_out_in_order() {
        let now = Instant::now();
        let mut s = TimerSet::default();
        s.set(Timer::B, now + Duration::from_secs(32));
        s.set(Timer::A, now + Duration::from_millis(500));
        assert_eq!(s.next(), Some(now + Duration::from_millis(500)));
        assert_eq!(s.take_due(now), None);
        assert_eq!(s.take_due(now + Duration::from_secs(40)), Some(Timer::A));
        assert_eq!(s.take_due(now + Duration::from_secs(40)), Some(Timer::B));
        assert_eq!(s.next(), None);
    }
}

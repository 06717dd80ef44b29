//! When to ask the CA (sans-IO): a certificate is renewed when a third of its lifetime is left
//! (Let's Encrypt's 90 days: 30 days before expiry, which is also how early a failure is
//! warned about), at once when there is none, it is our stand-in, or it misses a domain. A
//! failed attempt is retried after 10 s, doubling up to an hour, so a CA that is down is not
//! hammered and one that is back is used soon.

use crate::validity::CertInfo;
use std::time::Duration;

/// The first retry after a failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between retries.
pub const LONGEST_RETRY: Duration = Duration::from_secs(3600);

/// Why a certificate is wanted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// There is none.
    Missing,
    /// The one in use is our self-signed stand-in.
    StandIn,
    /// It does not name every served domain.
    Names,
    /// A third of its lifetime or less is left.
    Renewal,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Missing => "no certificate yet",
            Reason::StandIn => "the certificate in use is a self-signed stand-in",
            Reason::Names => "the certificate does not name every served domain",
            Reason::Renewal => "a third of the certificate's lifetime is left",
        })
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Order a certificate now.
    Order(Reason),
    /// Nothing until this time (seconds since the epoch).
    WaitUntil(u64),
}

/// The renewal plan for one certificate: its state between attempts.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    failures: u32,
    retry_at: Option<u64>,
}

impl Schedule {
    /// A plan with no failures behind it.
    pub fn new() -> Self {
        Schedule::default()
    }

    /// What to do at `now` with `cert` in use for `domains`.
    pub fn step(&self, now: u64, cert: Option<&CertInfo>, domains: &[String]) -> Step {
        let (reason, due) = match cert {
            None => (Reason::Missing, now),
            Some(c) if c.self_signed => (Reason::StandIn, now),
            Some(c) if !c.covers(domains) => (Reason::Names, now),
            Some(c) => (Reason::Renewal, renewal_time(c)),
        };
        let at = self.retry_at.map_or(due, |r| r.max(due));
        if at <= now {
            Step::Order(reason)
        } else {
            Step::WaitUntil(at)
        }
    }

    /// An order failed at `now`: the next try waits longer each time. Returns the wait.
    pub fn failed(&mut self, now: u64) -> Duration {
        let wait = FIRST_RETRY
            .saturating_mul(1u32 << self.failures.min(16))
            .min(LONGEST_RETRY);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + wait.as_secs());
        wait
    }

    /// An order succeeded: back to the certificate's own schedule.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// When `cert` is due for renewal: a third of its lifetime before it expires.
pub fn renewal_time(cert: &CertInfo) -> u64 {
    cert.not_after.saturating_sub(cert.lifetime() / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_before: u64, not_after: u64) -> CertInfo {
        CertInfo {
            not_before,
            not_after,
            names: vec!["club-a.test".into()],
            self_signed: false,
        }
    }

    fn domains() -> Vec<String> {
        vec!["club-a.test".into()]
    }

    #[test]
    fn renews_with_a_third_of_the_lifetime_left() {
        let s = Schedule::new();
        let c = cert(0, 90);
        assert_eq!(s.step(10, Some(&c), &domains()), Step::WaitUntil(60));
        assert_eq!(
            s.step(60, Some(&c), &domains()),
            Step::Order(Reason::Renewal)
        );
    }

    #[test]
    fn orders_at_once_for_a_stand_in_a_missing_name_or_nothing() {
        let s = Schedule::new();
        assert_eq!(s.step(5, None, &domains()), Step::Order(Reason::Missing));
        let mut stand_in = cert(0, 1000);
        stand_in.self_signed = true;
        assert_eq!(
            s.step(5, Some(&stand_in), &domains()),
            Step::Order(Reason::StandIn)
        );
        let two = vec!["club-a.test".into(), "club-b.test".into()];
        assert_eq!(
            s.step(5, Some(&cert(0, 1000)), &two),
            Step::Order(Reason::Names)
        );
    }

    #[test]
    fn failures_back_off_doubling_to_an_hour_and_reset_on_success() {
        let mut s = Schedule::new();
        assert_eq!(s.failed(100), Duration::from_secs(10));
        assert_eq!(s.step(105, None, &domains()), Step::WaitUntil(110));
        assert_eq!(s.step(110, None, &domains()), Step::Order(Reason::Missing));
        assert_eq!(s.failed(110), Duration::from_secs(20));
        for _ in 0..20 {
            s.failed(200);
        }
        assert_eq!(s.failed(200), LONGEST_RETRY);
        s.succeeded();
        assert_eq!(s.step(200, None, &domains()), Step::Order(Reason::Missing));
        assert_eq!(s.failures(), 0);
    }
}

//! What one source or user may cost (issue #24): requests per source per second, calls in
//! progress per user and per domain, and calls to other domains per user per hour (a spend
//! limit against toll fraud: a stolen password must not dial out all night).

use super::ServerCore;
use crate::repeated::{Event, EventLog};
use openline_guard::{AllowList, Rate, RecentCounts, SourceBuckets};
use openline_sip::message::Refusal;
use openline_sip::transaction::TransactionId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits, with the defaults the README documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests per source: sustained per second, and the burst (0 per second: no limit).
    pub requests: Rate,
    /// Sources no limit per source applies to (loopback always).
    pub allow: AllowList,
    /// Calls in progress one of our users may have made (0: no limit).
    pub calls_per_user: usize,
    /// Calls in progress made by the users of one of our domains (0: no limit).
    pub calls_per_domain: usize,
    /// Calls to other domains one user may make per hour (0: no limit).
    pub calls_out_per_hour: usize,
    /// A repeated event is logged once per source per this window.
    pub log_window: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            requests: Rate {
                per_second: 100,
                burst: 400,
            },
            allow: AllowList::default(),
            calls_per_user: 10,
            calls_per_domain: 500,
            calls_out_per_hour: 100,
            log_window: Duration::from_secs(60),
        }
    }
}

/// A call that has not rung out is dropped from the counts after this long without an
/// answer (its transaction is gone without a final response we saw).
const RINGING_AGE: Duration = Duration::from_secs(600);
/// An answered call whose BYE never came is dropped after this long.
const ANSWERED_AGE: Duration = Duration::from_secs(12 * 3600);

/// Calls in progress by their callers.
#[derive(Debug, Default)]
struct Callers {
    ringing: HashMap<TransactionId, (Arc<str>, Instant)>,
    answered: HashMap<String, (Arc<str>, Instant)>,
    per_user: HashMap<Arc<str>, usize>,
    per_domain: HashMap<String, usize>,
}

fn domain_of(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(_, d)| d)
}

impl Callers {
    fn start(&mut self, id: TransactionId, caller: Arc<str>, now: Instant) {
        *self
            .per_domain
            .entry(domain_of(&caller).to_string())
            .or_default() += 1;
        *self.per_user.entry(caller.clone()).or_default() += 1;
        self.ringing.insert(id, (caller, now));
    }

    fn release(&mut self, caller: &Arc<str>) {
        for count in [
            self.per_user.get_mut(caller),
            self.per_domain.get_mut(domain_of(caller)),
        ]
        .into_iter()
        .flatten()
        {
            *count = count.saturating_sub(1);
        }
        if self.per_user.get(caller) == Some(&0) {
            self.per_user.remove(caller);
        }
        if self.per_domain.get(domain_of(caller)) == Some(&0) {
            self.per_domain.remove(domain_of(caller));
        }
    }
}

/// The core's guard.
#[derive(Debug)]
pub(super) struct Guard {
    config: GuardConfig,
    buckets: SourceBuckets,
    pub(super) log: EventLog,
    callers: Callers,
    calls_out: RecentCounts<Arc<str>>,
}

impl Guard {
    pub(super) fn new(config: GuardConfig) -> Self {
        Guard {
            buckets: SourceBuckets::new(config.requests, config.allow.clone()),
            log: EventLog::new(config.log_window),
            callers: Callers::default(),
            calls_out: RecentCounts::new(config.calls_out_per_hour, Duration::from_secs(3600)),
            config,
        }
    }
}

impl ServerCore {
    /// Whether a request from `source` is taken at `now`: over its rate it is dropped unread
    /// (answering a flood is work for it), counted and logged once per window.
    pub(super) fn admit(&mut self, now: Instant, source: SocketAddr) -> bool {
        if self.guard.buckets.allow(source.ip(), now)
            || self
                .us
                .cluster
                .nodes
                .iter()
                .any(|(_, d)| d.addr.ip() == source.ip())
        {
            return true;
        }
        crate::metrics::limited("requests_per_source");
        let rate = self.guard.config.requests;
        if let Some(count) = self.guard.log.note(now, Event::RateLimited, &source.ip()) {
            tracing::warn!(source = %source.ip(), count, per_second = rate.per_second, burst = rate.burst, "{}", Event::RateLimited.what());
        }
        false
    }

    /// A new INVITE from our user `caller` (authenticated), to another domain or not: the
    /// refusal when a limit is reached, else the call is counted until it ends.
    pub(super) fn guard_call(
        &mut self,
        now: Instant,
        id: TransactionId,
        caller: &str,
        to_other_domain: bool,
    ) -> Option<Refusal> {
        let config = &self.guard.config;
        let callers = &self.guard.callers;
        let (event, refusal, limit) = if config.calls_per_user > 0
            && callers.per_user.get(caller).copied().unwrap_or(0) >= config.calls_per_user
        {
            let r = Refusal::new(
                403,
                "Forbidden (you have the most calls in progress allowed)",
            );
            (Event::CallsPerUser, r, "calls_per_user")
        } else if config.calls_per_domain > 0
            && callers
                .per_domain
                .get(domain_of(caller))
                .copied()
                .unwrap_or(0)
                >= config.calls_per_domain
        {
            let r = Refusal::new(
                503,
                "Service Unavailable (your domain has the most calls in progress allowed)",
            )
            .with("Retry-After", "30");
            (Event::CallsPerDomain, r, "calls_per_domain")
        } else if to_other_domain && !self.guard.calls_out.try_count(&Arc::from(caller), now) {
            let r = Refusal::new(
                403,
                "Forbidden (hourly limit of calls to other domains reached)",
            );
            (Event::CallsOutPerHour, r, "calls_out_per_hour")
        } else {
            self.guard.callers.start(id, Arc::from(caller), now);
            return None;
        };
        crate::metrics::limited(limit);
        if let Some(count) = self.guard.log.note(now, event, &caller) {
            tracing::warn!(%caller, count, "{}", event.what());
        }
        Some(refusal)
    }

    /// A final response went upstream for server transaction `id`: a failure ends a counted
    /// call, a 2xx makes it answered (until its BYE).
    pub(super) fn guard_call_answered(&mut self, now: Instant, id: TransactionId, call_id: &str) {
        if let Some((caller, _)) = self.guard.callers.ringing.remove(&id) {
            self.guard
                .callers
                .answered
                .insert(call_id.to_string(), (caller, now));
        }
    }

    /// Server transaction `id` ended without a call (a failure response, a refusal).
    pub(super) fn guard_call_failed(&mut self, id: TransactionId) {
        if self.guard.callers.ringing.is_empty() {
            return;
        }
        if let Some((caller, _)) = self.guard.callers.ringing.remove(&id) {
            self.guard.callers.release(&caller);
        }
    }

    /// A BYE for `call_id`: the call no longer counts.
    pub(super) fn guard_call_ended(&mut self, call_id: &str) {
        if self.guard.callers.answered.is_empty() {
            return;
        }
        if let Some((caller, _)) = self.guard.callers.answered.remove(call_id) {
            self.guard.callers.release(&caller);
        }
    }

    /// Once a minute: summaries of repeated events, and forgetting what is over (sources
    /// quiet again, calls whose end we never saw).
    pub(super) fn guard_purge(&mut self, now: Instant) {
        self.guard.log.sweep(now);
        self.guard.buckets.forget_idle(now);
        self.guard.calls_out.forget_old(now);
        let endpoint = &self.endpoint;
        let callers = &mut self.guard.callers;
        let mut gone = Vec::new();
        callers.ringing.retain(|&id, (caller, at)| {
            let keep =
                endpoint.is_invite_server(id) && now.saturating_duration_since(*at) < RINGING_AGE;
            if !keep {
                gone.push(caller.clone());
            }
            keep
        });
        callers.answered.retain(|_, (caller, at)| {
            let keep = now.saturating_duration_since(*at) < ANSWERED_AGE;
            if !keep {
                gone.push(caller.clone());
            }
            keep
        });
        for caller in gone {
            callers.release(&caller);
        }
    }
}

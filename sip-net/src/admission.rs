//! Who may open a connection (issue #24): at most so many in total and per source address
//! (the allow-list's sources excepted: an office NAT is many phones), and at most so many TLS
//! and WebSocket handshakes in flight, so a flood of connections that never finish their
//! handshake costs a bounded number of tasks. Refusals are counted and logged once per
//! source per window.

use crate::Limits;
use openline_guard::Repeats;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The metric the proxy describes: work refused at a limit, by limit.
const LIMITED: &str = "openline_limited_total";

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// The connections accepted and the handshakes under way.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    open: Mutex<Open>,
    handshakes: Arc<Semaphore>,
    log: Mutex<Repeats<(&'static str, IpAddr)>>,
}

/// An accepted connection's place in the counts, given back when it is dropped (with the
/// connection's entry, or its handshake task if that fails).
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.admission.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.per_source.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    open.per_source.remove(&self.ip);
                }
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Admission {
            handshakes: Arc::new(Semaphore::new(limits.tls_handshakes.max(1))),
            log: Mutex::new(Repeats::new(limits.log_window)),
            open: Mutex::default(),
            limits,
        })
    }

    /// A slot for a connection from `peer`, or None (refused, counted and logged) when the
    /// total or the source's share is used up.
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Slot> {
        let ip = crate::canonical(peer.ip());
        let exempt = self.limits.allow.contains(ip);
        let refused = {
            let Ok(mut open) = self.open.lock() else {
                return None;
            };
            let mine = open.per_source.get(&ip).copied().unwrap_or(0);
            if open.total >= self.limits.max_connections {
                Some(("connections", "connection limit reached: refusing"))
            } else if !exempt && mine >= self.limits.max_per_source {
                Some((
                    "connections_per_source",
                    "connection limit per source reached: refusing",
                ))
            } else {
                open.total += 1;
                *open.per_source.entry(ip).or_default() += 1;
                None
            }
        };
        match refused {
            None => Some(Slot {
                admission: Arc::clone(self),
                ip,
            }),
            Some((limit, what)) => {
                metrics::counter!(LIMITED, "limit" => limit).increment(1);
                if let Some(count) = self.note(limit, ip) {
                    tracing::warn!(source = %ip, count, "{what}");
                }
                None
            }
        }
    }

    /// A permit for one more TLS or WebSocket handshake, or None (counted and logged) when
    /// the most allowed are under way.
    pub(crate) fn handshake(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.handshakes).try_acquire_owned().ok();
        if permit.is_none() {
            metrics::counter!(LIMITED, "limit" => "tls_handshakes").increment(1);
            if let Some(count) = self.note("tls_handshakes", peer.ip()) {
                tracing::warn!(source = %peer.ip(), count, in_flight = self.limits.tls_handshakes, "handshake limit reached: refusing");
            }
        }
        permit
    }

    /// An event a source repeats: `Some(count)` when it is to be logged now.
    pub(crate) fn note(&self, what: &'static str, ip: IpAddr) -> Option<u64> {
        let now = tokio::time::Instant::now().into_std();
        self.log.lock().ok()?.note((what, ip), now)
    }

    /// Writes what repeated events were not written, once per window, for as long as the
    /// network runs.
    pub(crate) async fn sweep(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.limits.log_window.max(Duration::from_secs(1)));
        loop {
            every.tick().await;
            let now = tokio::time::Instant::now().into_std();
            let Ok((due, others)) = self.log.lock().map(|mut l| l.sweep(now)) else {
                return;
            };
            for s in due {
                let (what, source) = s.key;
                tracing::warn!(%source, count = s.count, limit = what, "refused or failed again (repeated)");
            }
            if others > 0 {
                tracing::warn!(
                    count = others,
                    "repeated events from too many sources to name each"
                );
            }
        }
    }

    /// Connections counted now (accepted, handshakes included).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.lock().map(|o| o.total).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn per_source_and_total_with_the_allow_list_exempt() {
        let limits = Limits {
            max_connections: 5,
            max_per_source: 2,
            allow: openline_guard::AllowList::parse(&["198.18.9.0/24"]).unwrap(),
            ..Limits::default()
        };
        let a = Admission::new(limits);
        let one = a.admit(at("198.18.0.1:1000")).unwrap();
        let _two = a.admit(at("198.18.0.1:1001")).unwrap();
        assert!(a.admit(at("198.18.0.1:1002")).is_none());
        // The office NAT is not held to the share per source, only to the total.
        let office: Vec<_> = (0..3)
            .filter_map(|i| a.admit(at(&format!("198.18.9.1:{}", 2000 + i))))
            .collect();
        assert_eq!(office.len(), 3);
        assert!(a.admit(at("198.18.0.2:1000")).is_none());
        assert_eq!(a.open(), 5);
        // A connection that ends gives its place back.
        drop(one);
        assert_eq!(a.open(), 4);
        assert!(a.admit(at("198.18.0.1:1003")).is_some());
    }

    #[tokio::test]
    async fn handshakes_in_flight_are_bounded() {
        let a = Admission::new(Limits {
            tls_handshakes: 2,
            ..Limits::default()
        });
        let p = at("198.18.0.1:1000");
        let first = a.handshake(p).unwrap();
        let _second = a.handshake(p).unwrap();
        assert!(a.handshake(p).is_none());
        drop(first);
        assert!(a.handshake(p).is_some());
    }
}

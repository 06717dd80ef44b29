//! The `[limits]` table (issue #24): what one source, user or domain may cost, each with a
//! safe default (README "Limits").

use crate::core::GuardConfig;
use openline_guard::{AllowList, Rate};
use openline_sip_net::Limits;
use serde::Deserialize;
use std::time::Duration;

/// `[limits]`, checked: the core's limits and the network's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsSection {
    /// Requests per source, calls per user and domain, the log window.
    pub guard: GuardConfig,
    /// Connections and handshakes.
    pub network: Limits,
}

/// `[limits]` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    connections: Option<usize>,
    connections_per_source: Option<usize>,
    tls_handshakes: Option<usize>,
    requests_per_second: Option<u32>,
    request_burst: Option<u32>,
    #[serde(default)]
    allow: Vec<String>,
    calls_per_user: Option<usize>,
    calls_per_domain: Option<usize>,
    calls_out_per_hour: Option<usize>,
    log_window: Option<u64>,
}

impl RawLimits {
    /// Checked: counts of connections at least 1, a burst no smaller than the rate, the
    /// allow-list's networks readable, the window from 1 s to a day.
    pub(super) fn read<E>(
        self,
        at: usize,
        invalid: impl Fn(usize, String) -> E,
    ) -> Result<LimitsSection, E> {
        let mut guard = GuardConfig::default();
        let mut network = Limits::default();
        let positive = |name: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(invalid(at, format!("[limits] {name} = 0: at least 1"))),
            v => Ok(v.unwrap_or(default)),
        };
        network.max_connections =
            positive("connections", self.connections, network.max_connections)?;
        network.max_per_source = positive(
            "connections_per_source",
            self.connections_per_source,
            network.max_per_source,
        )?;
        network.tls_handshakes = positive(
            "tls_handshakes",
            self.tls_handshakes,
            network.tls_handshakes,
        )?;
        let per_second = self
            .requests_per_second
            .unwrap_or(guard.requests.per_second);
        let burst = self
            .request_burst
            .unwrap_or_else(|| guard.requests.burst.max(per_second));
        if per_second > 0 && burst < per_second {
            return Err(invalid(
                at,
                format!(
                    "[limits] request_burst = {burst} is below requests_per_second = {per_second}"
                ),
            ));
        }
        guard.requests = Rate { per_second, burst };
        let allow = AllowList::parse(&self.allow)
            .map_err(|e| invalid(at, format!("[limits] allow: {e}")))?;
        guard.allow = allow.clone();
        network.allow = allow;
        guard.calls_per_user = self.calls_per_user.unwrap_or(guard.calls_per_user);
        guard.calls_per_domain = self.calls_per_domain.unwrap_or(guard.calls_per_domain);
        guard.calls_out_per_hour = self.calls_out_per_hour.unwrap_or(guard.calls_out_per_hour);
        if let Some(window) = self.log_window {
            if !(1..=86_400).contains(&window) {
                return Err(invalid(
                    at,
                    format!("[limits] log_window = {window}: from 1 to 86400 seconds"),
                ));
            }
            guard.log_window = Duration::from_secs(window);
        }
        network.log_window = guard.log_window;
        Ok(LimitsSection { guard, network })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    #[test]
    fn defaults_and_values_are_read_and_checked_at_their_line() {
        let none = super::super::parse(Path::new("f.toml"), "").unwrap();
        assert_eq!(none.limits, None);
        let ok = super::super::parse(
            Path::new("f.toml"),
            "[limits]\nallow = [\"198.18.0.0/24\"]\nrequests_per_second = 20\ncalls_out_per_hour = 5\n",
        )
        .unwrap();
        let limits = ok.limits.unwrap();
        assert_eq!(limits.guard.requests.per_second, 20);
        assert_eq!(limits.guard.requests.burst, 400);
        assert_eq!(limits.guard.calls_out_per_hour, 5);
        assert_eq!(limits.guard.calls_per_user, 10);
        assert!(limits.network.allow.contains("198.18.0.9".parse().unwrap()));
        assert_eq!(limits.network.max_per_source, 64);
        for (text, says) in [
            ("allow = [\"office\"]", "`office` is not an address"),
            ("connections = 0", "connections = 0: at least 1"),
            (
                "requests_per_second = 50\nrequest_burst = 10",
                "below requests_per_second",
            ),
            ("log_window = 0", "from 1 to 86400"),
            ("calls = 3", "unknown field"),
        ] {
            let e = super::super::parse(Path::new("f.toml"), &format!("\n[limits]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("f.toml:2:") || e.starts_with("f.toml:3:"),
                "{e}"
            );
            assert!(e.contains(says), "{e}");
        }
    }
}

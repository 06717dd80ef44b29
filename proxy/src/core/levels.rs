//! How much the core holds right now, for the metrics gauges; and what SIGHUP changes in it.

use super::ServerCore;
use crate::metrics::Levels;

impl ServerCore {
    /// Other domains' configured servers, replaced (SIGHUP): requests routed from now on use
    /// them; those under way keep where they were sent.
    pub fn set_peers(&mut self, peers: Vec<(String, openline_sip::transaction::Destination)>) {
        self.us.peers = peers.clone();
        self.config.peers = peers;
    }

    /// Transactions, subscriptions, live bindings and owed messages now (a walk over the
    /// transactions and bindings: for a once-a-second gauge, not the hot path).
    pub fn levels(&self) -> Levels {
        Levels {
            transactions: self.endpoint.transactions().count(),
            subscriptions: self.presence.agent.len(),
            calls: self.calls.len(),
            bindings: self.location.iter().count(),
            waiting: self.text.waiting(),
        }
    }
}

/// The domain of `user@domain`.
pub(super) fn domain_of(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(_, d)| d)
}

impl ServerCore {
    /// What `openline status` shows: per served domain its users, registered devices and
    /// stored messages; overall the transactions, answered calls and subscriptions.
    pub fn status(&self) -> serde_json::Value {
        let mut domains = serde_json::Map::new();
        for d in &self.config.domains {
            let users = self.users.keys().filter(|a| domain_of(a) == d).count();
            let bindings = self
                .location
                .iter()
                .filter(|b| domain_of(&b.aor) == d)
                .count();
            let waiting: u64 = self.text.waiting_in(d);
            domains.insert(
                d.clone(),
                serde_json::json!({ "users": users, "bindings": bindings, "messages_waiting": waiting }),
            );
        }
        let levels = self.levels();
        let mut status = serde_json::json!({
            "domains": domains,
            "transactions": levels.transactions,
            "calls": levels.calls,
            "subscriptions": levels.subscriptions,
            "draining": self.draining,
        });
        if !self.us.cluster.node.is_empty() {
            let others: Vec<&str> = self
                .us
                .cluster
                .nodes
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            status["node"] = self.us.cluster.node.clone().into();
            status["other_nodes"] = others.into();
        }
        status
    }

    /// What `openline peer list` shows: each configured server of another domain, and whether
    /// it failed lately (tried last until then).
    pub fn peers(&self, now: std::time::Instant) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .us
            .peers
            .iter()
            .map(|(domain, to)| {
                let transport = to.transport.as_via().to_ascii_lowercase();
                serde_json::json!({
                    "domain": domain,
                    "server": format!("{transport}:{}", to.addr),
                    "failed_lately": self.down.is_down(to, now),
                })
            })
            .collect();
        serde_json::json!({ "peers": list })
    }
}

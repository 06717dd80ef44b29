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

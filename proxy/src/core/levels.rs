//! How much the core holds right now, for the metrics gauges.

use super::ServerCore;
use crate::metrics::Levels;

impl ServerCore {
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

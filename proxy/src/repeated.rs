//! Events a peer can repeat at will (issue #24): written once per source per window with how
//! many there were, so an attacker cannot fill the disk or the journal. Metrics count each.

use openline_guard::Repeats;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// Something a peer made happen that is worth a line, but not a line each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Credentials refused without checking: the source or user failed too often.
    AuthThrottled,
    /// A user authenticated but registered another address of record.
    OtherAor,
    /// A request From another user than the one authenticated.
    OtherFrom,
    /// A message that could not be answered.
    Malformed,
    /// A request over the source's rate.
    RateLimited,
    /// A call refused: its caller has the most calls in progress allowed.
    CallsPerUser,
    /// A call refused: the caller's domain has the most calls in progress allowed.
    CallsPerDomain,
    /// A call refused: its caller made the most calls to other domains allowed this hour.
    CallsOutPerHour,
    /// A message refused or not stored: the recipient's mailbox is full.
    MailboxFull,
    /// A request refused: too many are under way to its domain.
    DomainBusy,
    /// A request over TLS whose From domain is not the one the peer's certificate names.
    PeerDomainMismatch,
    /// A write the database refused (its disk full, say): the work it carried got 503.
    StoreFailed,
}

impl Event {
    /// The line written for it.
    pub fn what(self) -> &'static str {
        match self {
            Event::AuthThrottled => "authentication throttled after repeated failures",
            Event::OtherAor => "user tried to register another address of record",
            Event::OtherFrom => "request From another user than authenticated",
            Event::Malformed => "malformed message dropped",
            Event::RateLimited => "requests over the source's rate dropped",
            Event::CallsPerUser => "call refused: the caller has the most calls in progress",
            Event::CallsPerDomain => {
                "call refused: the caller's domain has the most calls in progress"
            }
            Event::CallsOutPerHour => {
                "call refused: the caller reached the hourly limit of calls to other domains"
            }
            Event::MailboxFull => "mailbox full",
            Event::DomainBusy => "too many requests under way to one domain",
            Event::PeerDomainMismatch => {
                "request over TLS whose From domain is not the peer's certificate's"
            }
            Event::StoreFailed => "could not write to the database",
        }
    }
}

/// Which events to write now.
#[derive(Debug)]
pub struct EventLog {
    repeats: Repeats<(Event, String)>,
}

impl EventLog {
    /// At most one line per event and source per `window`.
    pub fn new(window: Duration) -> Self {
        EventLog {
            repeats: Repeats::new(window),
        }
    }

    /// `event` caused by `who` (a source address, a user) at `now`: `Some(count)` when a
    /// line is to be written now, standing for `count` events.
    pub fn note(&mut self, now: Instant, event: Event, who: &dyn Display) -> Option<u64> {
        self.repeats.note((event, who.to_string()), now)
    }

    /// Writes a line for each event and source whose window ended with events unwritten.
    pub fn sweep(&mut self, now: Instant) {
        let (due, others) = self.repeats.sweep(now);
        for s in due {
            let (event, who) = s.key;
            tracing::warn!(%who, count = s.count, "{} (repeated)", event.what());
        }
        if others > 0 {
            tracing::warn!(
                count = others,
                "repeated events from too many sources to name each"
            );
        }
    }
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::new(Duration::from_secs(60))
    }
}

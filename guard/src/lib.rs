//! What a peer may cost (issue #24). Everything here is bookkeeping that takes the time as an
//! argument: the network and the core ask it before doing work for a source, and log through
//! [`Repeats`] so an attacker who repeats an event a thousand times a second writes one line a
//! minute, with the count.

mod allow;
mod bucket;
mod repeats;
mod window;

pub use allow::{AllowList, AllowListError};
pub use bucket::{Rate, SourceBuckets};
pub use repeats::{Repeats, Summary};
pub use window::RecentCounts;

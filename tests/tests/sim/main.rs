//! Behaviour tests in virtual time over the simulated network (STYLE.md principle 8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchoring;
mod federation;
mod limits;
mod transaction;

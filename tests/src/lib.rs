//! Test support for Openline: a simulated network in virtual time, and helpers shared by the
//! suites under `tests/` (sim, torture, interop).

// Test support: a broken expectation is a failed test, said loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod sim;

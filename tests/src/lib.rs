//! Test support for Openline: a simulated network in virtual time, the server under test, and
//! wire helpers shared by the suites under `tests/` (sim, torture, interop).

// Test support: a broken expectation is a failed test, said loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod sim;
pub mod subject;
pub mod wire;

/// How many calls SIPp's final screen reports as successful.
pub fn sipp_successful_calls(screen: &str) -> Option<usize> {
    let line = screen.lines().rfind(|l| l.contains("Successful call"))?;
    line.split('|').rev().find_map(|f| f.trim().parse().ok())
}

/// `../shared/corpora` beside the repository.
pub fn corpora() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora")
}

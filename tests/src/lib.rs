//! Test support for Openline: a simulated network in virtual time, the server under test, and
//! wire helpers shared by the suites under `tests/` (sim, torture, interop).

// Test support: a broken expectation is a failed test, said loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod certs;
pub mod dns;
pub mod sim;
pub mod subject;
pub mod wire;

/// Runs a real peer (sipsak, sipp, ...) in `dir` under `timeout`, so a hung peer cannot hang the
/// suite, and fails loudly when the peer is not installed: a test never skips for a missing tool.
pub fn run_peer<I, A>(
    dir: &std::path::Path,
    program: &str,
    args: I,
    limit: std::time::Duration,
) -> std::process::Output
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new("timeout")
        .arg(format!("{}s", limit.as_secs()))
        .arg(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert_ne!(
        out.status.code(),
        Some(127),
        "{program} is not installed: run scripts/install-test-deps"
    );
    out
}

/// How many calls SIPp's final screen reports as successful.
pub fn sipp_successful_calls(screen: &str) -> Option<usize> {
    let line = screen.lines().rfind(|l| l.contains("Successful call"))?;
    line.split('|').rev().find_map(|f| f.trim().parse().ok())
}

/// `../shared/corpora` beside the repository.
pub fn corpora() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora")
}

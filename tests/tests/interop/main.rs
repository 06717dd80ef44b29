//! Interop suite: real SIP software against a running server, over loopback only.
//! The peers are Debian's packages, installed by `scripts/install-test-deps`; a missing peer
//! fails the test rather than skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod options;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Runs a peer with a time limit (`timeout` kills it), failing loudly when it is not installed.
pub(crate) fn run_peer(dir: &Path, program: &str, args: &[String], limit: Duration) -> Output {
    let out = Command::new("timeout")
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

/// A scratch directory for a peer's logs.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("openline-interop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Files under tests/peers/.
pub(crate) fn peer_file(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(rel)
        .display()
        .to_string()
}

//! Test support for Openline: a simulated network in virtual time, the server under test, and
//! wire helpers shared by the suites under `tests/` (sim, torture, interop).

// Test support: a broken expectation is a failed test, said loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod audio;
pub mod baresip;
pub mod browser;
pub mod certs;
pub mod dns;
pub mod linphone;
pub mod media;
pub mod metrics;
pub mod pebble;
pub mod phone;
pub mod push_device;
pub mod push_service;
pub mod sim;
pub mod sipp;
pub mod subject;
pub mod topology;
pub mod tui_phone;
pub mod wire;
pub mod ws_phone;

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

/// A peer running in the background under `timeout` (so a hung test cannot leave it running
/// for ever), stopped on drop. It is stopped with SIGTERM, which `timeout` passes on to the peer:
/// SIGKILL would end `timeout` alone and leave the peer running (28 SIPp responders were found
/// orphaned after a day of test runs, skewing benchmarks).
#[derive(Debug)]
pub struct Background(pub std::process::Child);

impl Background {
    /// Stops the peer and waits for it.
    pub fn stop(&mut self) {
        // Stopped already (stop, then drop): nothing to signal.
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many calls SIPp's final screen reports as successful.
pub fn sipp_successful_calls(screen: &str) -> Option<usize> {
    let line = screen.lines().rfind(|l| l.contains("Successful call"))?;
    line.split('|').rev().find_map(|f| f.trim().parse().ok())
}

/// SIPp's final screen (`-trace_screen`) written in `dir`; empty when there is none.
pub fn sipp_screen(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_screen.log"))
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .unwrap_or_default()
}

/// `testdata/` at the root of the repository.
pub fn corpora() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A file of the repository, by its path from the root (`tests/peers/...`, `bench/reference/...`).
pub fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A fresh database on the test PostgreSQL server (scripts/test starts it), as a URL.
pub fn fresh_postgres_database(name: &str) -> String {
    let base = std::env::var("OPENLINE_TEST_POSTGRES")
        .expect("OPENLINE_TEST_POSTGRES is not set: run the suite with scripts/test, which starts PostgreSQL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    base.replacen("/openline?", &format!("/{name}?"), 1)
}

/// Retries `f` every 100 ms for up to `limit`, until it returns true.
pub fn eventually(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let tries = (limit.as_millis() / 100).max(1);
    for _ in 0..tries {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

//! The server under test (STYLE.md principle 9): an `openline` process we start, or, when
//! `OPENLINE_SUBJECT=udp:IP:PORT,tcp:IP:PORT` is set, any SIP server already running there
//! (Kamailio as a reference), so the same scenarios run against both.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running SIP server to test.
pub struct Subject {
    /// Its UDP address.
    pub udp: SocketAddr,
    /// Its TCP address.
    pub tcp: SocketAddr,
    child: Option<Child>,
}

/// The `openline` binary next to the test executable (target/<profile>/openline), or
/// `OPENLINE_BIN`.
pub fn openline_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OPENLINE_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/..");
    let bin = dir.join("openline");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

impl Subject {
    /// The subject named by `OPENLINE_SUBJECT`, or a fresh `openline serve` on loopback.
    pub fn start(extra_args: &[&str]) -> Subject {
        if let Ok(spec) = std::env::var("OPENLINE_SUBJECT") {
            let find = |t: &str| {
                spec.split(',')
                    .find_map(|p| p.strip_prefix(t))
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("OPENLINE_SUBJECT needs {t}IP:PORT"))
            };
            return Subject {
                udp: find("udp:"),
                tcp: find("tcp:"),
                child: None,
            };
        }
        let mut child = Command::new(openline_bin())
            .args([
                "serve",
                "--domain",
                "openline.test",
                "--listen",
                "udp:127.0.0.1:0",
                "--listen",
                "tcp:127.0.0.1:0",
            ])
            .args(extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start openline");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut udp, mut tcp) = (None, None);
        while udp.is_none() || tcp.is_none() {
            let line = lines
                .next()
                .expect("openline exited before listening")
                .expect("read stdout");
            if let Some(a) = line.strip_prefix("listening on udp:") {
                udp = a.parse().ok();
            } else if let Some(a) = line.strip_prefix("listening on tcp:") {
                tcp = a.parse().ok();
            }
        }
        Subject {
            udp: udp.expect("udp"),
            tcp: tcp.expect("tcp"),
            child: Some(child),
        }
    }

    /// Asks the server to stop with SIGTERM and returns its exit status (None for an external one).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Whether our process is still running (true for an external subject).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! tui-phone in headless mode for a test: commands to its stdin, its JSON events read line by
//! line (a reader thread, so a wait has a time limit); stopped when dropped.
#![allow(clippy::disallowed_methods)] // a test driver: its own clock and reader thread

use crate::Background;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A running headless tui-phone.
pub struct TuiPhone {
    stdin: ChildStdin,
    events: Receiver<String>,
    _process: Background,
}

impl TuiPhone {
    /// Starts `tui-phone --headless` for `account` (USER@DOMAIN) through `proxy` (IP:PORT),
    /// keeping its device id in `data_dir` (the same folder: the same device after a restart).
    pub fn start(
        account: &str,
        password: &str,
        proxy: std::net::SocketAddr,
        data_dir: &std::path::Path,
    ) -> TuiPhone {
        TuiPhone::start_with(account, password, proxy, data_dir, &[])
    }

    /// Like [`TuiPhone::start`], with more arguments (`--audio-in F.wav`, `--no-srtp`, ...).
    pub fn start_with(
        account: &str,
        password: &str,
        proxy: std::net::SocketAddr,
        data_dir: &std::path::Path,
        extra: &[&str],
    ) -> TuiPhone {
        let mut process = Background(
            Command::new("timeout")
                .arg("120")
                .arg(crate::subject::workspace_bin("tui-phone"))
                .args(["--headless", "--account", account, "--password", password])
                .arg(format!("--proxy=udp:{proxy}"))
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start tui-phone"),
        );
        let stdin = process.0.stdin.take().expect("piped stdin");
        let stdout = process.0.stdout.take().expect("piped stdout");
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        TuiPhone {
            stdin,
            events,
            _process: process,
        }
    }

    /// Sends a command line.
    pub fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to tui-phone");
        self.stdin.flush().expect("flush");
    }

    /// The next `call_state` event saying `state`, within `limit` (earlier states skipped).
    pub fn expect_call_state(&mut self, state: &str, limit: Duration) -> String {
        let wanted = format!("\"state\":\"{state}\"");
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.expect("call_state", left);
            if line.contains(&wanted) {
                return line;
            }
        }
    }

    /// The next event whose line contains `"event":"NAME"`, within `limit`; the ones before it
    /// are skipped. Panics with what was seen when none comes.
    pub fn expect(&mut self, name: &str, limit: Duration) -> String {
        let wanted = format!("\"event\":\"{name}\"");
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(line) if line.contains(&wanted) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no {name} event within {limit:?}; saw {seen:?}");
    }
}

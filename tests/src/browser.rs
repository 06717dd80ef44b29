//! The web phone in Debian's chromium, headless, driven by `tests/peers/chromium/phone.mjs`
//! (playwright-core): a person signing in and chatting, one command a line.

// Test support: a broken expectation is a failed test; the answers are read on a thread.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One browser tab with the web phone open.
pub struct Tab {
    child: Child,
    input: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Tab {
    /// Opens `url`, signs in as `address` with `password`; screenshots go to `dir`. The first
    /// answer: `signed-in`, or `failed WHY`.
    pub fn open(url: &str, credentials: (&str, &str), dir: &Path) -> (Tab, String) {
        Tab::open_with_microphone(url, credentials, dir, None)
    }

    /// Like [`Tab::open`], the tab's microphone playing the WAV `microphone`.
    pub fn open_with_microphone(
        url: &str,
        credentials: (&str, &str),
        dir: &Path,
        microphone: Option<&Path>,
    ) -> (Tab, String) {
        Tab::open_in(None, url, credentials, (dir, microphone))
    }

    /// Like [`Tab::open_with_microphone`], the browser running in the network namespace at
    /// `namespace` (`/proc/PID/ns/net`) when one is given: a tab on a laptop behind a home
    /// router.
    pub fn open_in(
        namespace: Option<&str>,
        url: &str,
        (address, password): (&str, &str),
        (dir, microphone): (&Path, Option<&Path>),
    ) -> (Tab, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/chromium/phone.mjs");
        let mut command = match namespace {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).args(["--", "timeout"]);
                c
            }
            None => Command::new("timeout"),
        };
        let mut child = command
            .args(["300", "node"])
            .arg(&script)
            .args([url, address, password])
            .arg(dir)
            .args(microphone)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "node (scripts/install-test-deps installs it and tests/peers/chromium's packages)",
            );
        let input = child.stdin.take().expect("stdin");
        let output = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tab = Tab {
            child,
            input,
            answers,
        };
        let first = tab.answer(Duration::from_secs(60));
        (tab, first)
    }

    fn answer(&mut self, limit: Duration) -> String {
        self.answers
            .recv_timeout(limit)
            .unwrap_or_else(|_| "no answer".to_string())
    }

    /// Types one command; its answer.
    pub fn command(&mut self, line: &str) -> String {
        writeln!(self.input, "{line}").expect("the tab's stdin");
        self.answer(Duration::from_secs(30))
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        for _ in 0..30 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

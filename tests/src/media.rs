//! openline-media started for a test: its STUN and control addresses, read from what it
//! announces; stopped when dropped.

use crate::Background;
use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::process::{ChildStdout, Command, Stdio};

/// A running openline-media.
pub struct Media {
    /// Where it answers STUN.
    pub stun: SocketAddr,
    /// Where it takes ng control requests.
    pub control: SocketAddr,
    /// Its stdout, kept open: it may announce more.
    _announcements: Lines<BufReader<ChildStdout>>,
    process: Background,
}

impl Media {
    /// Starts it on loopback (STUN and control on ports of its choosing) with `extra` options.
    pub fn start(extra: &[&str]) -> Media {
        let mut process = Background(
            Command::new(crate::subject::workspace_bin("openline-media"))
                .args(["--turn", "udp:127.0.0.1:0", "--control", "udp:127.0.0.1:0"])
                .args(["--listen", "127.0.0.1"])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start openline-media"),
        );
        let stdout = process.0.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut next = |prefix: &str| -> SocketAddr {
            let line = lines
                .next()
                .expect("openline-media stopped before announcing its sockets")
                .expect("read its stdout");
            line.strip_prefix(prefix)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("expected {prefix}..., got {line}"))
        };
        let stun = next("listening on udp:");
        let control = next("control on udp:");
        Media {
            stun,
            control,
            _announcements: lines,
            process,
        }
    }

    /// Stops it and waits for it.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

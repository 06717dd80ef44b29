//! baresip, a real softphone, driven headless through the wrapper in tests/peers/baresip.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// One baresip UA driven through its stdin; its output goes to `log`.
pub struct Ua {
    child: Child,
    control: ChildStdin,
    log: PathBuf,
}

impl Ua {
    /// Starts a UA for `account` (password `s3cret`) registering with the server at `server`,
    /// on SIP port `port`, with the wrapper's environment settings `env` (CONTACTS, ...); waits
    /// for its 200.
    pub fn start(
        server: SocketAddr,
        account: &str,
        port: u16,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Ua {
        Ua::start_with_audio(server, account, port, log, env, ("-", "-"))
    }

    /// Like [`Ua::start`], sending `input` in calls (a WAV file, `sine:HZ`, or `-` for a
    /// 1 kHz tone) and copying what the last call received to the WAV `output` when it quits
    /// (`-`: nowhere).
    pub fn start_with_audio(
        server: SocketAddr,
        account: &str,
        port: u16,
        log: PathBuf,
        env: &[(&str, &str)],
        audio: (&str, &str),
    ) -> Ua {
        Ua::spawn(None, (server, account, port), log, env, audio)
    }

    /// Like [`Ua::start_with_audio`], inside network namespace `ns`, on its address `listen`.
    pub fn start_in(
        (ns, listen): (&crate::topology::Namespace, std::net::IpAddr),
        (server, account, port): (SocketAddr, &str, u16),
        log: PathBuf,
        env: &[(&str, &str)],
        audio: (&str, &str),
    ) -> Ua {
        Ua::spawn(Some((ns, listen)), (server, account, port), log, env, audio)
    }

    fn spawn(
        at: Option<(&crate::topology::Namespace, std::net::IpAddr)>,
        (server, account, port): (SocketAddr, &str, u16),
        log: PathBuf,
        env: &[(&str, &str)],
        (input, output): (&str, &str),
    ) -> Ua {
        let out = std::fs::File::create(&log).unwrap();
        let wrapper =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/baresip/baresip-ua");
        let mut command = match at {
            Some((ns, listen)) => {
                let mut c = ns.command(&wrapper);
                c.env("LISTEN_IP", listen.to_string());
                c
            }
            None => Command::new(&wrapper),
        };
        let family = match at {
            Some((_, std::net::IpAddr::V6(_))) => "v6",
            _ => "v4",
        };
        let mut child = command
            .args([
                account,
                "s3cret",
                &server.to_string(),
                &port.to_string(),
                input,
                output,
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            // baresip prints some events (a MESSAGE received) on stderr: both go to the log.
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group: the wrapper and baresip end together.
            .process_group(0)
            .spawn()
            .expect("start baresip-ua (baresip-core is installed by scripts/install-test-deps)");
        let control = child.stdin.take().unwrap();
        let ua = Ua {
            child,
            control,
            log,
        };
        let transport = env
            .iter()
            .find(|(k, _)| *k == "TRANSPORT")
            .map_or("UDP".to_string(), |(_, t)| t.to_ascii_uppercase());
        ua.wait_for(&format!("{account}: {{0/{transport}/{family}}} 200 OK"));
        ua
    }

    /// What it printed so far.
    pub fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 10 s until it printed `text`.
    pub fn wait_for(&self, text: &str) {
        let tries = 100;
        for _ in 0..tries {
            if self.said().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} never said {text:?}:\n{}",
            self.log.display(),
            self.said()
        );
    }

    /// Waits up to `limit` until it printed `text` at least `n` times.
    #[allow(clippy::disallowed_methods)] // a test's wall-clock limit
    pub fn wait_for_count(&self, text: &str, n: usize, limit: Duration) {
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            if self.said().matches(text).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} said {text:?} {} times, not {n}:\n{}",
            self.log.display(),
            self.said().matches(text).count(),
            self.said()
        );
    }

    /// Sends a command line (`/dial URI`, `/message TEXT`...).
    pub fn command(&mut self, line: &str) {
        writeln!(self.control, "{line}").unwrap();
    }

    /// Quits (un-registering), killing it if it does not go.
    pub fn quit(mut self) {
        let _ = writeln!(self.control, "/quit");
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Drop kills what did not go.
    }
}

impl Drop for Ua {
    /// A test that fails half-way must not leave baresip holding its ports.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

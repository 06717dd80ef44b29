//! Linphone (linphone-cli 5.1, `linphonec`), a real softphone, driven through its prompt
//! inside a network namespace: it registers through the server as its outbound proxy, calls,
//! answers, hangs up and texts; with `soundcard use files` it plays a WAV into calls and
//! records what it hears to another.
//!
//! What it needs that is not obvious: its database directory must exist (else its core never
//! reaches "on" and it answers every incoming call 503), and the SIP socket opens only when
//! the port is set at its prompt (no sound card, no network monitor).

// A driver of a real program: waiting on it reads the clock.
#![allow(clippy::disallowed_methods)]

use crate::topology::Namespace;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

/// How a Linphone is set up.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// `user@domain`.
    pub account: &'a str,
    /// Its password.
    pub password: &'a str,
    /// The server, as its outbound proxy (every request goes there).
    pub server: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'a str,
    /// Its local SIP port.
    pub port: u16,
    /// What it plays into calls.
    pub play: Option<&'a Path>,
    /// Where it records what it hears in a call.
    pub record: Option<&'a Path>,
}

/// A running linphonec.
pub struct Linphone {
    child: Child,
    control: ChildStdin,
    out: PathBuf,
    log: PathBuf,
}

impl Linphone {
    /// Starts it in `ns` with its files under `dir`, and waits until it registered.
    pub fn start(ns: &Namespace, dir: &Path, setup: &Setup<'_>) -> Linphone {
        Self::start_with(ns, dir, setup, ("", ""), false)
    }

    /// Like [`Linphone::start`], with more lines for its account (`contact_uri_parameters=`)
    /// and more sections (`[misc]` with its `uuid`, which names it as a device). `woken`: it
    /// registers only once set up, as a phone woken by a push whose call comes in at once
    /// (linphonec hangs when told to record while a call is coming in).
    pub fn start_with(
        ns: &Namespace,
        dir: &Path,
        setup: &Setup<'_>,
        (account, sections): (&str, &str),
        woken: bool,
    ) -> Linphone {
        let (user, domain) = setup.account.split_once('@').expect("user@domain");
        std::fs::create_dir_all(dir.join(".local/share/linphone")).unwrap();
        let rc = dir.join("linphonerc");
        let server = match setup.server {
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            a => a.to_string(),
        };
        let t = setup.transport;
        let port = setup.port;
        let (udp, tcp) = if t == "udp" { (port, 0) } else { (0, port) };
        std::fs::write(
            &rc,
            format!(
                "[sip]\nsip_udp_port={udp}\nsip_tcp_port={tcp}\nsip_tls_port=0\n\
                 register_only_when_network_is_up=0\nauto_net_state_mon=0\ndefault_proxy=0\n\
                 [sound]\necho_cancellation=0\n\
                 [rtp]\naudio_rtp_port={rtp}\n\
                 [proxy_0]\nreg_proxy=<sip:{server};transport={t}>\n\
                 reg_route=<sip:{server};transport={t};lr>\n\
                 reg_identity=sip:{user}@{domain}\nreg_expires=600\nreg_sendregister={register}\n{account}\
                 [auth_info_0]\nusername={user}\npasswd={pw}\nrealm={domain}\ndomain={domain}\n{sections}",
                rtp = port + 1000,
                pw = setup.password,
                register = u8::from(!woken),
            ),
        )
        .unwrap();
        Linphone::launch(ns, dir, setup, (Duration::from_secs(15), true, woken))
    }

    /// Starts it in `ns` with its files under `dir` and nothing in its configuration but the
    /// remote provisioning `link` (and `ca`, the roots the link's server chains to), SIP over
    /// TCP on local `port`; waits until it registered with what the link gave it.
    pub fn start_provisioned(
        ns: &Namespace,
        dir: &Path,
        link: &str,
        ca: &Path,
        port: u16,
    ) -> Linphone {
        std::fs::create_dir_all(dir.join(".local/share/linphone")).unwrap();
        std::fs::write(
            dir.join("linphonerc"),
            format!(
                "[sip]\nsip_udp_port=0\nsip_tcp_port={port}\nsip_tls_port=0\nroot_ca={}\n\
                 register_only_when_network_is_up=0\nauto_net_state_mon=0\n\
                 [sound]\necho_cancellation=0\n[misc]\nconfig-uri={link}\n",
                ca.display()
            ),
        )
        .unwrap();
        let setup = Setup {
            account: "",
            password: "",
            server: SocketAddr::from(([0, 0, 0, 0], 0)),
            transport: "tcp",
            port,
            play: None,
            record: None,
        };
        // Over TCP it connects from a port of the system's choosing: any registration will do.
        Linphone::launch(ns, dir, &setup, (Duration::from_secs(30), false, false))
    }

    /// Runs linphonec on `dir/linphonerc` and waits up to `limit` for a registration (sent
    /// from `setup.port` when `from_port`).
    fn launch(
        ns: &Namespace,
        dir: &Path,
        setup: &Setup<'_>,
        (limit, from_port, told): (Duration, bool, bool),
    ) -> Linphone {
        let rc = dir.join("linphonerc");
        let t = setup.transport;
        let port = setup.port;
        let out = dir.join("linphonec.out");
        let log = dir.join("linphonec.log");
        let mut child = ns
            .command("timeout")
            .args(["300s", "linphonec", "-c"])
            .arg(&rc)
            .args(["-d", "6", "-l"])
            .arg(&log)
            // Its database and state go to the scratch directory, not the user's home.
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            // Its own process group: killed together with `timeout` on drop.
            .process_group(0)
            .spawn()
            .expect("start linphonec (linphone-cli is installed by scripts/install-test-deps)");
        let control = child.stdin.take().unwrap();
        let mut phone = Linphone {
            child,
            control,
            out,
            log,
        };
        std::thread::sleep(Duration::from_millis(300));
        phone.command("soundcard use files");
        if let Some(p) = setup.play {
            phone.command(&format!("play {}", p.display()));
        }
        if let Some(r) = setup.record {
            phone.command(&format!("record {}", r.display()));
        }
        let ports = if t == "udp" { "sip" } else { "tcp" };
        phone.command(&format!("ports {ports} {port}"));
        if told {
            phone.command("register");
        }
        // It may register once from a default port before the prompt's setting takes: ready
        // when a registration succeeded after a REGISTER sent from our port (behind NAT its
        // Contact names the public address, so the Via is what tells).
        let via = if from_port {
            format!(":{port};branch=")
        } else {
            "REGISTER sip:".into()
        };
        phone.wait_log_until(
            "registered from its own port",
            |log| {
                log.rfind(&via)
                    .is_some_and(|at| log[at..].contains("[LinphoneRegistrationOk]"))
            },
            limit,
        );
        phone
    }

    /// Types a line at its prompt (`call sip:bob@club-a.test`, `answer`, `terminate`,
    /// `chat sip:bob@club-a.test hello`).
    pub fn command(&mut self, line: &str) {
        writeln!(self.control, "{line}").unwrap();
    }

    /// What it printed at its prompt so far.
    pub fn said(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Its debug log: every SIP message it sent and received.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its prompt shows `text` (`connected.`, `ended`); panics with what it said.
    pub fn wait_for(&self, text: &str, limit: Duration) {
        self.wait_for_nth(text, 1, limit);
    }

    /// Waits until its prompt showed `text` `n` times (the second call's `ended`).
    pub fn wait_for_nth(&self, text: &str, n: usize, limit: Duration) {
        if !within(limit, || self.count(text) >= n) {
            panic!("linphonec never said {text:?} {n} times:\n{}", self.said());
        }
    }

    /// How many times its prompt showed `text`.
    pub fn count(&self, text: &str) -> usize {
        self.said().matches(text).count()
    }

    /// Waits until its log shows `text`.
    pub fn wait_log(&self, text: &str, limit: Duration) {
        self.wait_log_until(text, |log| log.contains(text), limit);
    }

    /// Waits until its log satisfies `done` (`what` names it in the panic).
    pub fn wait_log_until(&self, what: &str, done: impl Fn(&str) -> bool, limit: Duration) {
        if within(limit, || done(&self.log())) {
            return;
        }
        let said = self.log();
        let tail: String = said
            .lines()
            .filter(|l| {
                l.starts_with("SIP/2.0") || l.contains("Registration") || l.contains("error")
            })
            .collect::<Vec<_>>()
            .join("\n");
        panic!("linphonec never logged {what:?}:\n{tail}\n{}", self.said());
    }

    /// Quits it (un-registering).
    pub fn quit(mut self) {
        self.command("quit");
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether `done` came true within `limit` (asked every 50 ms).
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Linphone {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

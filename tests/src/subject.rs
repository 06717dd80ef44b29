//! The server under test (STYLE.md principle 9): an `openline` process we start, or, when
//! `OPENLINE_SUBJECT=udp:IP:PORT,tcp:IP:PORT` is set, any SIP server already running there
//! (Kamailio as a reference), so the same scenarios run against both.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running SIP server to test.
pub struct Subject {
    /// Its UDP address.
    pub udp: SocketAddr,
    /// Its TCP address.
    pub tcp: SocketAddr,
    /// Its database URL (a fresh SQLite file unless given).
    pub db: String,
    /// The domain it serves.
    pub domain: String,
    /// Every socket it listens on (`ws`, `127.0.0.1:PORT`), extra `--listen`s included.
    pub listening: Vec<(String, SocketAddr)>,
    child: Option<Child>,
    scratch: Option<PathBuf>,
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A fresh directory for one subject's database.
pub fn scratch_dir(what: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("openline-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `openline user add` against a database.
pub fn add_user(db: &str, aor: &str, password: &str) {
    let status = Command::new(openline_bin())
        .args(["user", "add", aor, "--password", password, "--db", db])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("run openline user add");
    assert!(status.success(), "openline user add {aor} failed");
}

/// What `openline status --json` says of the running server at `control`.
pub fn node_status(control: &Path) -> Option<String> {
    let out = Command::new(openline_bin())
        .args(["status", "--json", "--control", control.to_str()?])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How many bindings a running node holds (as `openline status` asks its control socket),
/// once it holds `want` or 10 s have passed: a node of a cluster hears the others' changes a
/// moment after they are made.
pub fn bindings_heard(control: &Path, want: u64) -> Option<u64> {
    let ask = || {
        let text = node_status(control)?;
        let at = text.find("\"bindings\":")? + "\"bindings\":".len();
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let mut heard = None;
    for _ in 0..40 {
        heard = ask();
        if heard == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    heard
}

/// The `openline` binary next to the test executable (target/<profile>/openline), or
/// `OPENLINE_BIN`.
pub fn openline_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OPENLINE_BIN") {
        return p.into();
    }
    workspace_bin("openline")
}

/// A binary of the workspace next to the test executable (target/<profile>/NAME).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps/..");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

impl Subject {
    /// The subject named by `OPENLINE_SUBJECT`, or a fresh `openline serve` on loopback with
    /// its own database.
    pub fn start(extra_args: &[&str]) -> Subject {
        let dir = scratch_dir("db");
        let db = format!("sqlite://{}/openline.db", dir.display());
        let mut s = Subject::start_on(&db, extra_args);
        s.scratch = Some(dir);
        s
    }

    /// Like [`Subject::start`], with these users (`user@domain`, password) already created.
    pub fn start_with_users(users: &[(&str, &str)], extra_args: &[&str]) -> Subject {
        let dir = scratch_dir("db");
        let db = format!("sqlite://{}/openline.db", dir.display());
        for (aor, password) in users {
            add_user(&db, aor, password);
        }
        let mut s = Subject::start_on(&db, extra_args);
        s.scratch = Some(dir);
        s
    }

    /// Like [`Subject::start`], running the release build (`target/release/openline`, built by
    /// scripts/test): for tests whose outcome depends on how fast the server is, as a flood's.
    pub fn start_release(extra_args: &[&str]) -> Subject {
        let dir = scratch_dir("db");
        let db = format!("sqlite://{}/openline.db", dir.display());
        let bin = std::env::var_os("OPENLINE_RELEASE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/openline")
            });
        assert!(
            bin.exists(),
            "{} is missing: build it first (cargo build --release -p openline-proxy)",
            bin.display()
        );
        let mut s = Subject::start_bin(&bin, &db, extra_args);
        s.scratch = Some(dir);
        s
    }

    /// Like [`Subject::start`] on a given database (to restart a server on the same one).
    pub fn start_on(db: &str, extra_args: &[&str]) -> Subject {
        if let Ok(spec) = std::env::var("OPENLINE_SUBJECT") {
            let find = |t: &str| {
                spec.split(',')
                    .find_map(|p| p.strip_prefix(t))
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("OPENLINE_SUBJECT needs {t}IP:PORT"))
            };
            let domain =
                std::env::var("OPENLINE_SUBJECT_DOMAIN").unwrap_or_else(|_| "openline.test".into());
            return Subject {
                udp: find("udp:"),
                tcp: find("tcp:"),
                db: db.to_string(),
                domain,
                listening: Vec::new(),
                child: None,
                scratch: None,
            };
        }
        Subject::start_bin(&openline_bin(), db, extra_args)
    }

    /// `bin serve` on loopback with `db` (`bin` may be a wrapper that runs openline, as in a
    /// mount namespace of its own).
    pub fn start_bin(bin: &Path, db: &str, extra_args: &[&str]) -> Subject {
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--domain",
                "openline.test",
                "--listen",
                "udp:127.0.0.1:0",
                "--listen",
                "tcp:127.0.0.1:0",
                "--db",
                db,
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
        // One line per socket: ours two and each extra --listen.
        let expected = 2 + extra_args.iter().filter(|a| **a == "--listen").count();
        let mut listening = Vec::new();
        while listening.len() < expected || udp.is_none() || tcp.is_none() {
            let line = lines
                .next()
                .expect("openline exited before listening")
                .expect("read stdout");
            let Some((transport, addr)) = line
                .strip_prefix("listening on ")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let Ok(addr) = addr.parse::<SocketAddr>() else {
                continue;
            };
            match transport {
                "udp" if udp.is_none() => udp = Some(addr),
                "tcp" if tcp.is_none() => tcp = Some(addr),
                _ => {}
            }
            listening.push((transport.to_string(), addr));
        }
        Subject {
            udp: udp.expect("udp"),
            tcp: tcp.expect("tcp"),
            db: db.to_string(),
            domain: "openline.test".into(),
            listening,
            child: Some(child),
            scratch: None,
        }
    }

    /// The address of its listener for `transport` (`ws`, `wss`, `tls`).
    pub fn listener(&self, transport: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(t, _)| t == transport)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {transport} listener"))
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

    /// Sends SIGTERM and returns at once (the server drains meanwhile).
    pub fn terminate(&mut self) {
        self.signal("-TERM");
    }

    /// Sends SIGHUP (reload) and gives the server a moment to act on it.
    pub fn hangup(&mut self) {
        self.signal("-HUP");
        std::thread::sleep(Duration::from_millis(1500));
    }

    fn signal(&self, which: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([which, &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {which} failed");
        }
    }

    /// Waits up to `limit` for the server to exit; its status, or None if it still runs.
    #[allow(clippy::disallowed_methods)] // a test driver waits in real time
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Our process's id (None for an external subject).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
        self.kill();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Seconds since the epoch, as the server stores them.
#[allow(clippy::disallowed_methods)] // comparing with what the server wrote
pub fn wall() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The live bindings in the server's database at `db`.
pub fn db_bindings(db: &str) -> Vec<openline_registrar::Binding> {
    use openline_registrar::store::{BindingStore as _, Store};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let store = Store::open(db).await.expect("the database opens");
        store.bindings(wall()).await.expect("bindings read")
    })
}

//! ACME against pebble: issue, renew, reload with a call up, a CA that is down and comes back.

use openline_tests::baresip::Ua;
use openline_tests::certs::TestPki;
use openline_tests::dns::{Rr, TestDns};
use openline_tests::pebble::{Pebble, free_port, presented};
use openline_tests::subject::{add_user, openline_bin, scratch_dir};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long pebble's certificates live: a renewal is due after two thirds of it.
const VALIDITY: u64 = 30;

/// `openline serve --config FILE` for club-a.test with ACME from `pebble`, its log kept.
struct Server {
    child: Child,
    tls: SocketAddr,
    https: SocketAddr,
    turn_tls: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts it in `dir` with `[tls] acme = { ..., challenge }` and web listeners on the
    /// ports pebble sends its challenges to.
    fn start(dir: &Path, pebble: &Pebble, challenge: &str, (http, https): (u16, u16)) -> Server {
        let db = format!("sqlite://{}/openline.db", dir.display());
        add_user(&db, "alice@club-a.test", "s3cret");
        add_user(&db, "bob@club-a.test", "s3cret");
        let (metrics, turn_tls) = (free_port(), free_port());
        let config = dir.join("openline.toml");
        std::fs::write(
            &config,
            format!(
                "domains = [\"club-a.test\"]\n\
                 listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n\
                 db = \"{db}\"\nmetrics = \"tcp:127.0.0.1:{metrics}\"\n\
                 [media]\nmode = \"never\"\n\
                 [turn]\nlisten = \"udp:127.0.0.1:0\"\nusers = [\"alice:s3cret\"]\n\
                 tcp = [\"tls:127.0.0.1:{turn_tls}\"]\n\
                 [tls]\nacme = {{ directory = \"{}\", email = \"admin@club-a.test\", \
                 challenge = \"{challenge}\", directory_ca = \"{}\", dir = \"{}\" }}\n\
                 [web]\nlisten = [\"http:127.0.0.1:{http}\", \"https:127.0.0.1:{https}\"]\n",
                pebble.directory,
                pebble.https_ca.display(),
                dir.join("acme").display(),
            ),
        )
        .unwrap();
        let out = dir.join("server.out");
        let log = dir.join("server.log");
        let child = Command::new(openline_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("start openline");
        let until = Instant::now() + Duration::from_secs(10);
        let tls = loop {
            let said = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(a) = said
                .lines()
                .find_map(|l| l.strip_prefix("listening on tls:"))
            {
                break a.parse().unwrap();
            }
            assert!(
                Instant::now() < until,
                "openline did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server {
            child,
            tls,
            https: ([127, 0, 0, 1], https).into(),
            turn_tls: ([127, 0, 0, 1], turn_tls).into(),
            metrics: ([127, 0, 0, 1], metrics).into(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of the metric line starting with `name` (labels included).
    fn metric(&self, name: &str) -> Option<f64> {
        openline_tests::metrics::sample(self.metrics, name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `limit` until the certificate `addr` presents for club-a.test chains to
/// `root` and is not `other`; returns it.
fn wait_for_certificate(
    addr: SocketAddr,
    root: &str,
    other: Option<&[u8]>,
    limit: Duration,
    server: &Server,
) -> Vec<u8> {
    let until = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < until {
        match presented(addr, "club-a.test", root) {
            Ok(c) if Some(c.as_slice()) != other => return c,
            Ok(_) => last = "the same certificate as before".into(),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("no new certificate at {addr} ({last}):\n{}", server.log());
}

/// The common set-up: a test CA for pebble's own HTTPS, DNS naming club-a.test here, pebble.
fn ca(what: &str) -> (PathBuf, TestPki, TestDns, Pebble, (u16, u16)) {
    let dir = scratch_dir(what);
    let pki = TestPki::new(&dir);
    let dns = TestDns::start(
        "club-a.test",
        &[Rr::A("club-a.test", std::net::Ipv4Addr::LOCALHOST)],
    );
    let ports = (free_port(), free_port());
    let pebble = Pebble::start(&dir, &pki, dns.addr, ports, VALIDITY);
    (dir, pki, dns, pebble, ports)
}

#[test]
fn http01_issues_renews_and_puts_the_new_certificate_in_place_with_a_call_up() {
    let (dir, _pki, _dns, pebble, ports) = ca("acme-http01");
    let server = Server::start(&dir, &pebble, "http-01", ports);
    let root = pebble.root();
    // Issued: SIP over TLS, HTTPS and TURN over TLS present a certificate for club-a.test from the CA.
    let first = wait_for_certificate(server.tls, &root, None, Duration::from_secs(30), &server);
    assert_eq!(
        presented(server.https, "club-a.test", &root).unwrap(),
        first
    );
    // TURN over TLS too, which reads the files again when they change.
    assert_eq!(
        presented(server.turn_tls, "club-a.test", &root).unwrap(),
        first
    );
    assert!(
        server.log().contains("ACME: certificate issued"),
        "{}",
        server.log()
    );

    // A call over TLS, phones trusting the CA's root.
    let root_file = dir.join("pebble-root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let ca = root_file.display().to_string();
    let env = [
        ("TRANSPORT", "tls"),
        ("CAFILE", ca.as_str()),
        ("ANSWER", "manual"),
    ];
    let mut alice = Ua::start(
        server.tls,
        "alice@club-a.test",
        free_port(),
        dir.join("alice.log"),
        &env,
    );
    let mut bob = Ua::start(
        server.tls,
        "bob@club-a.test",
        free_port(),
        dir.join("bob.log"),
        &env,
    );
    alice.command("/dial sip:bob@club-a.test");
    bob.wait_for("Incoming call from");
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@club-a.test");

    // Renewed before expiry, in place without a restart, for new handshakes on both.
    let second = wait_for_certificate(
        server.tls,
        &root,
        Some(&first),
        Duration::from_secs(VALIDITY + 15),
        &server,
    );
    assert_eq!(
        presented(server.https, "club-a.test", &root).unwrap(),
        second
    );
    // TURN over TLS too, which reads the files again when they change.
    assert_eq!(
        presented(server.turn_tls, "club-a.test", &root).unwrap(),
        second
    );
    // The call is still up over the connections made before: the BYE goes through.
    alice.command("/hangup");
    bob.wait_for("session closed");
    // And a phone that connects now is shown the new certificate and registers.
    let carol = Ua::start(
        server.tls,
        "bob@club-a.test",
        free_port(),
        dir.join("bob2.log"),
        &env,
    );
    carol.quit();
    let issued = server.metric("openline_acme_orders_total{result=\"issued\"}");
    assert!(issued.is_some_and(|n| n >= 2.0), "issued {issued:?}");
    let left = server.metric("openline_tls_certificate_expiry_seconds");
    assert!(
        left.is_some_and(|s| s > 0.0 && s <= VALIDITY as f64),
        "expiry {left:?}"
    );
    alice.quit();
    bob.quit();
}

#[test]
fn tls_alpn01_issues_and_a_ca_that_is_down_keeps_the_certificate_in_use() {
    let (dir, _pki, _dns, mut pebble, ports) = ca("acme-alpn");
    let server = Server::start(&dir, &pebble, "tls-alpn-01", ports);
    let root = pebble.root();
    let first = wait_for_certificate(server.tls, &root, None, Duration::from_secs(30), &server);

    // The CA goes down before the renewal is due: one line says why, the certificate stays.
    pebble.stop();
    let until = Instant::now() + Duration::from_secs(VALIDITY + 10);
    while !server.log().contains("ACME renewal failed") {
        assert!(Instant::now() < until, "no warning:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let warning = server
        .log()
        .lines()
        .find(|l| l.contains("ACME renewal failed"))
        .unwrap()
        .to_string();
    assert!(
        warning.contains("WARN") && warning.contains("keeping the certificate that expires in"),
        "{warning}"
    );
    assert_eq!(presented(server.tls, "club-a.test", &root).unwrap(), first);
    let failed = server.metric("openline_acme_orders_total{result=\"failed\"}");
    assert!(failed.is_some_and(|n| n >= 1.0), "failed {failed:?}");

    // Back, with no memory of our account: a new account, a new certificate from its new root.
    pebble.restart();
    let root = pebble.root();
    wait_for_certificate(server.tls, &root, None, Duration::from_secs(40), &server);
    wait_for_certificate(server.https, &root, None, Duration::from_secs(5), &server);
}

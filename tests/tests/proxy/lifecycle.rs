//! The server's lifecycle (issue #11 item 4). SIGTERM in the middle of a SIPp call run: calls
//! already answered go on to their BYE through the draining server, calls that start after
//! it get 503, and the server exits 0 once nothing is under way. SIGHUP: users, peers and
//! log levels change without a restart, and a file with a mistake changes nothing.

use super::sipp::{register_at, start_uas};
use openline_sip::digest::{Algorithm, ha1};
use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, scratch_dir};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The message counts of the screen's rows for scenario steps starting with `step` (e.g.
/// "503 <-"), in scenario order: the first number after the arrow on each.
fn step_counts(screen: &str, step: &str) -> Vec<usize> {
    screen
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(step))
        .filter_map(|rest| rest.split_whitespace().find_map(|w| w.parse().ok()))
        .collect()
}

#[test]
fn sigterm_during_calls_loses_no_answered_call_and_exits_0() {
    let mut server = Subject::start_with_users(
        &[("bob@openline.test", "s3cret")],
        &["--shutdown-grace", "20", "--media", "never"],
    );
    let dir = scratch_dir("proxy-drain");
    let _uas = start_uas(&dir, 5431, true);
    let registrar = server.udp.to_string();
    register_at(
        &registrar,
        &dir,
        "bob",
        "openline.test",
        "sip:bob@127.0.0.1:5431",
        5432,
    );

    // 30 calls at 10/s, each held 3 s: SIGTERM lands while some are up and others not yet
    // placed.
    let scenario = crate::peer_file("uac-call-drain.xml");
    let uac = Command::new("timeout")
        .args(["120", "sipp", &registrar, "-sf"])
        .arg(&scenario)
        .args(["-s", "bob", "-key", "callee_domain", "openline.test"])
        .args(["-key", "user", "carol", "-key", "domain", "elsewhere.test"])
        .args([
            "-m",
            "30",
            "-r",
            "10",
            "-d",
            "3000",
            "-i",
            "127.0.0.1",
            "-p",
            "5433",
        ])
        .args(["-nostdin", "-trace_screen", "-timeout", "60"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    std::thread::sleep(Duration::from_millis(1500));
    server.terminate();

    let exit = server.wait_exit(Duration::from_secs(30));
    let mut uac = uac;
    let _ = uac.wait();
    let screen = openline_tests::sipp_screen(&dir);
    let status = exit.expect("the server exits within its grace time");
    assert!(status.success(), "exit status {status:?}");

    // The first "200 <-" row answers the INVITE, the second the BYE.
    let oks = step_counts(&screen, "200 <-");
    let (answered, ended) = (
        oks.first().copied().unwrap_or(0),
        oks.get(1).copied().unwrap_or(0),
    );
    let refused = step_counts(&screen, "503 <-").first().copied().unwrap_or(0);
    assert!(answered >= 5, "some calls were up at SIGTERM:\n{screen}");
    assert!(refused >= 5, "calls after SIGTERM were refused:\n{screen}");
    assert_eq!(
        answered + refused,
        30,
        "every call was answered or refused:\n{screen}"
    );
    assert_eq!(
        ended, answered,
        "every answered call ended with its BYE answered:\n{screen}"
    );
}

/// `openline serve --config FILE` with its standard error in `log`, RUST_LOG unset (the file's
/// levels rule): the child and its UDP address.
fn serve_with_config(db: &str, config: &Path, log: &Path) -> (Killed, SocketAddr) {
    let mut child = Command::new(openline_tests::subject::openline_bin())
        .args([
            "serve",
            "--listen",
            "udp:127.0.0.1:0",
            "--db",
            db,
            "--config",
        ])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().next().unwrap().unwrap();
    let addr = line
        .strip_prefix("listening on udp:")
        .unwrap()
        .parse()
        .unwrap();
    (Killed(child), addr)
}

/// A server process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGHUP to `child` and gives it a moment.
fn hangup(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(1500));
}

/// Whether `send` makes a MESSAGE arrive on `peer` (answered 200 there, within five seconds)
/// and is answered 200 or 202 itself.
#[allow(clippy::disallowed_methods)] // the peer answers on its own thread while alice waits
fn reaches(peer: &std::net::UdpSocket, send: impl FnOnce() -> u16) -> bool {
    let peer = peer.try_clone().unwrap();
    let arrived = std::thread::spawn(move || message_arrives(&peer));
    let status = send();
    arrived.join().unwrap() && matches!(status, 200 | 202)
}

/// The first MESSAGE arriving on `socket` (answered 200), within five seconds.
fn message_arrives(socket: &std::net::UdpSocket) -> bool {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let m = openline_sip::Message::parse(&buf[..n]).unwrap();
        if m.is_request() && m.method() == openline_sip::Method::Message {
            let ok =
                openline_sip::message::ResponseBuilder::new(200, "OK", &m.echo(), from, Some("p"));
            socket.send_to(&ok.finish(), from).unwrap();
            return true;
        }
    }
    false
}

#[test]
fn sighup_reloads_users_peers_and_log_levels_and_keeps_all_on_a_bad_file() {
    let dir = scratch_dir("proxy-sighup");
    let db = format!("sqlite://{}/openline.db", dir.display());
    add_user(&db, "alice@openline.test", "pw-a");
    let (first_peer, second_peer) = (
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let config = dir.join("openline.toml");
    let write = |peer: &std::net::UdpSocket, log: &str, extra: &str| {
        let text = format!(
            "domains = [\"openline.test\"]\nlog = \"{log}\"\n{extra}\n[peers]\n\"club-b.test\" = \"udp:{}\"\n",
            peer.local_addr().unwrap()
        );
        std::fs::write(&config, text).unwrap();
    };
    write(&first_peer, "warn", "");
    let log = dir.join("stderr.log");
    let (mut server, addr) = serve_with_config(&db, &config, &log);

    // carol is written straight into the database, as another tool might: no version bump,
    // so the server does not know her until SIGHUP.
    let sqlite = db.trim_start_matches("sqlite://");
    let (md5, sha) = (
        ha1(Algorithm::Md5, "carol", "openline.test", "pw-c"),
        ha1(Algorithm::Sha256, "carol", "openline.test", "pw-c"),
    );
    // The server holds the file too: wait for its lock rather than fail on it.
    let inserted = Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg(sqlite)
        .arg(format!(
            "INSERT INTO users VALUES ('carol@openline.test', '{md5}', '{sha}')"
        ))
        .status()
        .expect("sqlite3 (installed by scripts/install-test-deps)");
    assert!(inserted.success());
    std::thread::sleep(Duration::from_millis(1500));
    let mut carol = Phone::new("carol", "openline.test", "pw-c", addr);
    assert_ne!(carol.register(300), 200, "not known before SIGHUP");

    let mut alice = Phone::new("alice", "openline.test", "pw-a", addr);
    assert_eq!(alice.register(300), 200);
    assert!(
        reaches(&first_peer, || alice.message("bob@club-b.test", "one")),
        "club-b's first server"
    );
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(
        !before.contains(" INFO "),
        "log = warn: no info lines yet\n{before}"
    );

    // The file now says club-b is elsewhere and info is to be logged.
    write(&second_peer, "info", "");
    hangup(&server.0);
    assert_eq!(carol.register(300), 200, "carol after SIGHUP");
    assert!(
        reaches(&second_peer, || alice.message("bob@club-b.test", "two")),
        "club-b's new server"
    );
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(after.contains("reloaded"), "info is logged now\n{after}");

    // A file with a mistake on line 3: refused whole (the peer change with it), named by
    // file and line; the server keeps running as it was.
    write(&first_peer, "info", "ring_timeout = \"soon\"");
    hangup(&server.0);
    let refused = std::fs::read_to_string(&log).unwrap();
    assert!(
        refused.contains(&format!("{}:3:", config.display())),
        "the mistake is named\n{refused}"
    );
    assert!(
        reaches(&second_peer, || alice.message("bob@club-b.test", "three")),
        "still the peer the last good file named"
    );
    assert!(server.0.try_wait().unwrap().is_none(), "still running");
}

#[test]
fn sighup_puts_renewed_certificates_in_place_for_new_connections() {
    use openline_tests::certs::{TestPki, federated_server};
    const A_TLS: u16 = 5441;
    const B_TLS: u16 = 5443;
    let dir = scratch_dir("proxy-sighup-tls");
    let (trusted, rogue) = (dir.join("trusted"), dir.join("rogue"));
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::create_dir_all(&rogue).unwrap();
    let pki = TestPki::new(&trusted);
    // club-a starts with a certificate from a CA club-b does not trust (an expired or
    // mis-issued one, as an operator might have before renewing).
    let wrong = TestPki::new(&rogue).issue("club-a", &["club-a.test"]);
    let (live_cert, live_key) = (dir.join("club-a-live.pem"), dir.join("club-a-live.key"));
    std::fs::copy(&wrong.cert, &live_cert).unwrap();
    std::fs::copy(&wrong.key, &live_key).unwrap();

    let db_of = |d: &str| format!("sqlite://{}/{d}.db", dir.display());
    add_user(&db_of("club-a.test"), "alice@club-a.test", "pw-a");
    add_user(&db_of("club-b.test"), "bob@club-b.test", "pw-b");
    let b = federated_server(
        &pki,
        &db_of("club-b.test"),
        "club-b.test",
        B_TLS,
        ("club-a.test", A_TLS),
    );
    let (listen, peer) = (
        format!("tls:127.0.0.1:{A_TLS}"),
        format!("club-b.test=tls:127.0.0.1:{B_TLS}"),
    );
    let mut a = Subject::start_on(
        &db_of("club-a.test"),
        &[
            "--domain",
            "club-a.test",
            "--listen",
            &listen,
            "--peer",
            &peer,
            "--tls-cert",
            live_cert.to_str().unwrap(),
            "--tls-key",
            live_key.to_str().unwrap(),
            "--tls-ca",
            pki.ca.to_str().unwrap(),
        ],
    );
    let mut alice = Phone::new("alice", "club-a.test", "pw-a", a.udp);
    let mut bob = Phone::new("bob", "club-b.test", "pw-b", b.udp);
    assert_eq!(alice.register(300), 200);
    assert_eq!(bob.register(300), 200);
    // club-b refuses the handshake. Under TLS 1.3 club-a learns it from the alert that
    // follows what it already wrote; the connection ends, and the MESSAGE that heard nothing
    // over it fails at once (RFC 3261 18.4): alice hears a 5xx, not silence until Timer F.
    let refused = alice.message("bob@club-b.test", "before");
    assert!(
        (500..600).contains(&refused),
        "club-b refused the untrusted certificate: {refused}"
    );

    // The renewed certificate is written over the same files; SIGHUP puts it in place.
    let renewed = pki.issue("club-a-renewed", &["club-a.test"]);
    std::fs::copy(&renewed.cert, &live_cert).unwrap();
    std::fs::copy(&renewed.key, &live_key).unwrap();
    a.hangup();
    let sent = alice.message("bob@club-b.test", "after");
    assert!(matches!(sent, 200 | 202), "{sent}");
    let got = bob.messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), "after");
}

//! SIPp's built-in uac calls SIPp's built-in uas through openline: the uas registers its
//! contact (with digest), the uac calls its address of record. The uac ignores Record-Route,
//! so its ACK and BYE arrive addressed to the AOR, without a Route: they still reach the uas.

use openline_tests::subject::{Subject, scratch_dir};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The responder on `port`, bounded in time: SIPp's built-in uas, or the bench's uas_call.xml
/// (which, unlike the built-in one, copies Record-Route into its answers as RFC 3261 12.1.1
/// asks, so the caller's ACK and BYE can follow the route).
pub(crate) fn start_uas(
    dir: &std::path::Path,
    port: u16,
    copies_record_route: bool,
) -> openline_tests::Background {
    let scenario = openline_tests::repo_file("bench/reference/signaling/scenarios/uas_call.xml");
    let which: Vec<String> = if copies_record_route {
        vec!["-sf".into(), scenario.to_string_lossy().into_owned()]
    } else {
        vec!["-sn".into(), "uas".into()]
    };
    let child = Command::new("timeout")
        .args(["300", "sipp"])
        .args(&which)
        .args(["-i", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-nostdin", "-buff_size", "4194304"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp (sip-tester is installed by scripts/install-test-deps)");
    std::thread::sleep(Duration::from_millis(300));
    openline_tests::Background(child)
}

/// Registers `user` in the server's domain with `contact`, from `port`.
fn register(server: &Subject, dir: &std::path::Path, user: &str, contact: &str, port: u16) {
    register_at(
        &server.udp.to_string(),
        dir,
        user,
        &server.domain,
        contact,
        port,
    );
}

pub(crate) use openline_tests::sipp::register_at;

/// Runs `calls` calls of `scenario` (uac-auth.xml or uac-call.xml) from `caller` (user, domain,
/// password s3cret) to `callee` through `server`, from `port`, in `dir`: SIPp's count of
/// successful calls and its final screen.
pub(crate) fn run_calls(
    dir: &std::path::Path,
    server: &str,
    scenario: &str,
    caller: (&str, &str),
    callee: (&str, &str),
    calls: usize,
    port: u16,
) -> (Option<usize>, String) {
    std::fs::create_dir_all(dir).unwrap();
    let scenario = crate::peer_file(scenario);
    let (calls, port) = (calls.to_string(), port.to_string());
    let out = openline_tests::run_peer(
        dir,
        "sipp",
        [
            server,
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            callee.0,
            "-key",
            "callee_domain",
            callee.1,
            "-key",
            "user",
            caller.0,
            "-key",
            "domain",
            caller.1,
            "-key",
            "pw",
            "s3cret",
            "-m",
            &calls,
            "-r",
            "10",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-nostdin",
            "-trace_screen",
            "-trace_err",
            "-timeout",
            "60",
        ],
        Duration::from_secs(90),
    );
    let screen = openline_tests::sipp_screen(dir);
    let ok = openline_tests::sipp_successful_calls(&screen);
    (ok, format!("sipp exit {:?}\n{screen}", out.status.code()))
}

/// Who answers a call: `user@domain`, a SIPp responder on `port` (copying Record-Route),
/// registered at `registrar` (IP:PORT) from `port + 1`.
pub(crate) struct Callee<'a> {
    pub(crate) registrar: &'a str,
    pub(crate) user: &'a str,
    pub(crate) domain: &'a str,
    pub(crate) port: u16,
}

/// Starts and registers `callee`, then `caller` (user, domain; password s3cret) places `calls`
/// calls of `scenario` to it through `server`, from `callee.port + 2`, in `dir/name`; the
/// responder is stopped after. SIPp's count of successful calls and its final screen.
pub(crate) fn call_callee(
    dir: &std::path::Path,
    name: &str,
    callee: Callee<'_>,
    (server, scenario): (&str, &str),
    caller: (&str, &str),
    calls: usize,
) -> (Option<usize>, String) {
    let mut uas = start_uas(dir, callee.port, true);
    let contact = format!("sip:{}@127.0.0.1:{}", callee.user, callee.port);
    register_at(
        callee.registrar,
        dir,
        callee.user,
        callee.domain,
        &contact,
        callee.port + 1,
    );
    let result = run_calls(
        &dir.join(name),
        server,
        scenario,
        caller,
        (callee.user, callee.domain),
        calls,
        callee.port + 2,
    );
    uas.stop();
    result
}

#[test]
fn sipp_uac_calls_sipp_uas_ten_thousand_times_through_the_proxy() {
    const CALLS: usize = 10_000;
    // The uac calls sip:bench-uas@<proxy IP:port>, which is ours; its From (sipp@127.0.0.1)
    // names no domain of ours, so it is a stranger calling a local user: routed, no challenge.
    // Signalling under load is what this measures: media anchoring (a relay session, four
    // sockets per call) has its own tests and bench.
    let server = Subject::start_with_users(
        &[("bench-uas@openline.test", "s3cret")],
        &["--media", "never"],
    );
    let dir = scratch_dir("proxy-sipp");
    let mut uas = start_uas(&dir, 5190, false);
    register(
        &server,
        &dir,
        "bench-uas",
        "sip:bench-uas@127.0.0.1:5190",
        5191,
    );
    let target = server.udp.to_string();
    let calls = CALLS.to_string();
    let out = openline_tests::run_peer(
        &dir,
        "sipp",
        [
            target.as_str(),
            "-sn",
            "uac",
            "-s",
            "bench-uas",
            "-m",
            &calls,
            "-r",
            "500",
            "-l",
            "2000",
            "-i",
            "127.0.0.1",
            "-p",
            "5192",
            "-buff_size",
            "4194304",
            "-nostdin",
            "-trace_screen",
            "-trace_err",
            "-timeout",
            "120",
        ],
        Duration::from_secs(150),
    );
    uas.stop();
    let screen = openline_tests::sipp_screen(&dir);
    assert_eq!(
        openline_tests::sipp_successful_calls(&screen),
        Some(CALLS),
        "sipp exit {:?}\n{screen}",
        out.status.code()
    );
    assert!(
        screen
            .lines()
            .filter(|l| l.contains("Failed call"))
            .all(|l| l.trim_end().ends_with(" 0")),
        "{screen}"
    );
}

#[test]
fn a_local_user_is_challenged_then_calls_with_credentials() {
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "s3cret"),
            ("bob@openline.test", "s3cret"),
        ],
        &[],
    );
    let dir = scratch_dir("proxy-auth");
    let mut uas = start_uas(&dir, 5193, true);
    register(&server, &dir, "bob", "sip:bob@127.0.0.1:5193", 5194);
    let calls = run_calls(
        &dir.join("calls"),
        &server.udp.to_string(),
        "uac-auth.xml",
        ("alice", &server.domain),
        ("bob", &server.domain),
        20,
        5195,
    );
    uas.stop();
    assert_eq!(calls.0, Some(20), "{}", calls.1);
}

#[test]
fn alice_at_club_a_calls_bob_at_club_b_through_both_servers() {
    // club-b first: club-a is told where club-b's server is (a static peer; DNS comes later).
    let b = Subject::start_with_users(
        &[("bob@club-b.test", "s3cret")],
        &["--domain", "club-b.test"],
    );
    let peer = format!("club-b.test=udp:{}", b.udp);
    let a = Subject::start_with_users(
        &[("alice@club-a.test", "s3cret")],
        &["--domain", "club-a.test", "--peer", &peer],
    );
    let dir = scratch_dir("proxy-federated");
    // alice authenticates to club-a (407), which relays to club-b, which rings bob; ACK and BYE
    // follow both Record-Routes.
    let registrar = b.udp.to_string();
    let bob = Callee {
        registrar: &registrar,
        user: "bob",
        domain: "club-b.test",
        port: 5187,
    };
    let server = a.udp.to_string();
    let calls = call_callee(
        &dir,
        "calls",
        bob,
        (&server, "uac-auth.xml"),
        ("alice", "club-a.test"),
        10,
    );
    assert_eq!(calls.0, Some(10), "{}", calls.1);
}

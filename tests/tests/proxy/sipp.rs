//! SIPp's built-in uac calls SIPp's built-in uas through openline: the uas registers its
//! contact (with digest), the uac calls its address of record. The uac ignores Record-Route,
//! so its ACK and BYE arrive addressed to the AOR, without a Route: they still reach the uas.

use openline_tests::subject::{Subject, scratch_dir};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The responder: SIPp's built-in uas on `port`, bounded in time.
fn start_uas(dir: &std::path::Path, port: u16) -> Child {
    let child = Command::new("timeout")
        .args(["300", "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-nostdin", "-buff_size", "4194304"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp (sip-tester is installed by scripts/install-test-deps)");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Registers `user`'s contact at the uas, answering the digest challenge.
fn register(server: &Subject, dir: &std::path::Path, user: &str, password: &str, contact: &str) {
    let scenario =
        openline_tests::corpora().join("../bench/signaling/scenarios/register_contact.xml");
    let target = server.udp.to_string();
    let out = openline_tests::run_peer(
        dir,
        "sipp",
        [
            target.as_str(),
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            user,
            "-key",
            "contact",
            contact,
            "-key",
            "pw",
            password,
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            "5191",
            "-nostdin",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "registering {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sipp_uac_calls_sipp_uas_ten_thousand_times_through_the_proxy() {
    const CALLS: usize = 10_000;
    // The uac addresses the proxy by IP, so the IP is served as a domain too (as in the bench).
    let server = Subject::start_with_users(
        &[("bench-uas@127.0.0.1", "pwbench-uas")],
        &["--domain", "127.0.0.1"],
    );
    let dir = scratch_dir("proxy-sipp");
    let mut uas = start_uas(&dir, 5190);
    register(
        &server,
        &dir,
        "bench-uas",
        "pwbench-uas",
        "sip:bench-uas@127.0.0.1:5190",
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
    let _ = uas.kill();
    let _ = uas.wait();
    let screen = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("_screen.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default();
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

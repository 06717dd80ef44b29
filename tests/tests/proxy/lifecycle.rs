//! Stopping gracefully (issue #11 item 4): SIGTERM in the middle of a SIPp call run. Calls
//! already answered go on to their BYE through the draining server; calls that start after
//! it get 503 with Retry-After; the server exits 0 once nothing is under way.

use super::sipp::{register_at, start_uas};
use openline_tests::subject::{Subject, scratch_dir};
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

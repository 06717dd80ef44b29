//! Metrics (issue #11 item 2): `--metrics tcp:IP:PORT` serves Prometheus text that Prometheus's
//! own `promtool check metrics` accepts, and its counters move with SIPp traffic.

use super::sipp::{Callee, call_callee};
use openline_tests::subject::{Subject, scratch_dir};
use std::io::Write;
use std::process::{Command, Stdio};

const METRICS: u16 = 5420;

/// GET /metrics: the body.
fn scrape() -> String {
    let text = openline_tests::metrics::scrape(([127, 0, 0, 1], METRICS).into());
    assert!(text.contains("# TYPE"), "{text}");
    text
}

/// The value of the sample named exactly `series` (name with its labels), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// promtool's verdict on `text`: its exit status and what it said.
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus, installed by scripts/install-test-deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

#[test]
fn metrics_pass_promtool_and_count_sipp_calls() {
    let listen = format!("tcp:127.0.0.1:{METRICS}");
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "s3cret"),
            ("bob@openline.test", "s3cret"),
        ],
        &["--metrics", &listen],
    );
    let before = scrape();
    let (ok, said) = promtool(&before);
    assert!(ok, "promtool: {said}\n{before}");
    assert_eq!(
        sample(
            &before,
            "openline_sip_requests_received_total{method=\"INVITE\"}"
        ),
        0.0
    );

    let dir = scratch_dir("proxy-metrics");
    let registrar = server.udp.to_string();
    let bob = Callee {
        registrar: &registrar,
        user: "bob",
        domain: "openline.test",
        port: 5421,
    };
    let calls = call_callee(
        &dir,
        "calls",
        bob,
        (&registrar, "uac-auth.xml"),
        ("alice", "openline.test"),
        5,
    );
    assert_eq!(calls.0, Some(5), "{}", calls.1);
    // A wrong password, once.
    let mut guesser =
        openline_tests::phone::Phone::new("bob", "openline.test", "wrong", server.udp);
    assert_eq!(guesser.register(60), 403);
    // Gauges are read once a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let after = scrape();
    let (ok, said) = promtool(&after);
    assert!(ok, "promtool: {said}\n{after}");
    let invites = sample(
        &after,
        "openline_sip_requests_received_total{method=\"INVITE\"}",
    );
    // Each call: the INVITE, then again with credentials after the 407.
    assert!(invites >= 10.0, "INVITEs counted: {invites}\n{after}");
    assert!(
        sample(
            &after,
            "openline_sip_requests_received_total{method=\"BYE\"}"
        ) >= 5.0
    );
    assert!(
        sample(
            &after,
            "openline_sip_requests_received_total{method=\"REGISTER\"}"
        ) >= 2.0
    );
    assert!(sample(&after, "openline_sip_responses_sent_total{class=\"2xx\"}") >= 10.0);
    assert!(sample(&after, "openline_sip_responses_sent_total{class=\"4xx\"}") >= 5.0);
    assert!(
        sample(&after, "openline_auth_failures_total{reason=\"wrong\"}") >= 1.0,
        "{after}"
    );
    assert_eq!(sample(&after, "openline_bindings"), 1.0, "bob's responder");
    assert!(
        sample(
            &after,
            "openline_relay_packets_total{outcome=\"forwarded\"}"
        ) >= 0.0
    );
    assert!(
        sample(
            &after,
            "openline_db_operation_seconds_count{kind=\"batch\"}"
        ) >= 1.0,
        "the registration's commit was timed\n{after}"
    );
}

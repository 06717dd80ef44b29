//! OPTIONS from sipsak and SIPp, over UDP and TCP.

use crate::peer_file;
use openline_tests::run_peer;
use openline_tests::subject::Subject;
use openline_tests::subject::scratch_dir as scratch;
use std::time::Duration;

fn sipsak(transport: &str) {
    let server = Subject::start(&[]);
    let target = if transport == "tcp" {
        server.tcp
    } else {
        server.udp
    };
    let dir = scratch(&format!("sipsak-{transport}"));
    // The request names the server's domain: sipsak's own Request-URI drops the last digit of
    // a five-digit port (sip:ping@127.0.0.1:3634 for 36341), which is not us, and a proxy
    // refuses to relay that (403).
    let request = dir.join("options.sip");
    std::fs::write(
        &request,
        format!(
            "OPTIONS sip:{domain} SIP/2.0\nFrom: <sip:sipsak@127.0.0.1>;tag=o1\nTo: <sip:{domain}>\n\
             Call-ID: options-{transport}@127.0.0.1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\
             Content-Length: 0\n\n",
            domain = server.domain
        ),
    )
    .unwrap();
    let mut args = vec![
        "-f".to_string(),
        request.to_string_lossy().into_owned(),
        "-s".into(),
        format!("sip:ping@{target}"),
        "-H".into(),
        "127.0.0.1".into(),
        "-vv".into(),
    ];
    if transport == "tcp" {
        args.extend(["-E".into(), "tcp".into()]);
    }
    let out = run_peer(&dir, "sipsak", &args, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipsak exit (0 = a 2xx):\n{text}"
    );
    assert!(text.contains("SIP/2.0 200 OK"), "{text}");
    assert!(
        text.contains("Allow: ACK, CANCEL, OPTIONS, REGISTER"),
        "{text}"
    );
    assert!(
        text.contains("Accept: application/sdp, text/plain"),
        "{text}"
    );
    assert!(text.contains("Supported:"), "{text}");
}

#[test]
fn sipsak_options_over_udp_gets_200() {
    sipsak("udp");
}

#[test]
fn sipsak_options_over_tcp_gets_200() {
    sipsak("tcp");
}

fn sipp(transport: &str) {
    let server = Subject::start(&[]);
    let target = if transport == "tcp" {
        server.tcp
    } else {
        server.udp
    };
    let dir = scratch(&format!("sipp-{transport}"));
    let calls = 50;
    let mut args: Vec<String> = [
        "-sf",
        &peer_file("sipp/options.xml"),
        "-m",
        &calls.to_string(),
        "-r",
        "200",
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-nostdin",
        "-timeout",
        "20",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        "errors.log",
        "-trace_stat",
        "-stf",
        "stat.csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if transport == "tcp" {
        args.extend(["-t".into(), "t1".into()]);
    }
    args.push(target.to_string());
    let out = run_peer(&dir, "sipp", &args, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert_eq!(
        out.status.code(),
        Some(0),
        "sipp: every call must succeed\n{text}\n{errors}"
    );
    assert_eq!(openline_tests::sipp_successful_calls(&text), Some(calls));
}

#[test]
fn sipp_options_over_udp_all_succeed() {
    sipp("udp");
}

#[test]
fn sipp_options_over_tcp_all_succeed() {
    sipp("tcp");
}

//! openline-media's STUN server against coturn's own client: turnutils_stunclient sends a
//! Binding request and learns its address back (issue #6 item 6).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn coturns_stun_client_learns_its_address_from_openline_media() {
    let mut media = openline_tests::Background(
        Command::new(openline_tests::subject::workspace_bin("openline-media"))
            .args([
                "--turn",
                "udp:127.0.0.1:0",
                "--turn-user",
                "alice:s3cret",
                "--control",
                "udp:127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start openline-media"),
    );
    let stdout = media.0.stdout.take().expect("piped stdout");
    // Kept open until the end: the relay announces more than one socket.
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("openline-media said nothing")
        .expect("read its stdout");
    let port = line
        .strip_prefix("listening on udp:127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    let dir = openline_tests::subject::scratch_dir("media-stun");
    for round in 0..3 {
        let out = openline_tests::run_peer(
            &dir,
            "turnutils_stunclient",
            ["-p", port.as_str(), "127.0.0.1"],
            Duration::from_secs(20),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {text}");
        assert!(
            text.contains("UDP reflexive addr: 127.0.0.1:"),
            "round {round}: no reflexive address: {text}"
        );
    }
    media.stop();
}

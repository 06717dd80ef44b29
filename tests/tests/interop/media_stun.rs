//! openline-media's STUN server against coturn's own client: turnutils_stunclient sends a
//! Binding request and learns its address back (issue #6 item 6).

use std::time::Duration;

#[test]
fn coturns_stun_client_learns_its_address_from_openline_media() {
    let mut media = openline_tests::media::Media::start(&["--turn-user", "alice:s3cret"]);
    let port = media.stun.port().to_string();
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

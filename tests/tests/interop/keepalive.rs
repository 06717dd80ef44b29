//! RFC 5626 keep-alives on the SIP port: coturn's STUN client sends a Binding request to the
//! server's UDP SIP port and learns its own address back, as an outbound device keeping its NAT
//! binding open does.

use openline_tests::subject::Subject;
use std::time::Duration;

#[test]
fn a_stun_keep_alive_on_the_sip_port_learns_its_address() {
    let server = Subject::start(&[]);
    let dir = openline_tests::subject::scratch_dir("stun-keepalive");
    let port = server.udp.port().to_string();
    let out = openline_tests::run_peer(
        &dir,
        "turnutils_stunclient",
        ["-p", port.as_str(), "127.0.0.1"],
        Duration::from_secs(20),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("UDP reflexive addr: 127.0.0.1:"),
        "no reflexive address: {text}"
    );
    // The server still speaks SIP on that port afterwards.
    assert_eq!(
        openline_tests::wire::udp_options_status(server.udp, "after-stun"),
        Some(200)
    );
}

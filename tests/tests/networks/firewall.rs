//! A network that lets only TCP to port 443 out (hotels, offices): TURN over TCP and over TLS
//! on 443 relays media, SIP over TLS on 443 registers (baresip), and plain UDP is shown to be
//! blocked.

use super::*;
use openline_tests::certs::TestPki;
use openline_tests::media::uclient_totals;
use std::process::Stdio;

/// coturn's uclient in `ns` against TURN at `turn` towards the echo at `peer`, with `options`:
/// what it printed.
fn uclient_in(ns: &Namespace, turn: SocketAddr, peer: SocketAddr, options: &[&str]) -> String {
    let out = ns
        .command("timeout")
        .args(["40s", "turnutils_uclient"])
        .args(options)
        .args(["-u", "alice", "-w", "s3cret", "-c"])
        .args(["-p", &turn.port().to_string()])
        .args(["-e", &peer.ip().to_string(), "-r", &peer.port().to_string()])
        .args(["-m", "2", "-n", "20", "-l", "160", "-z", "10"])
        .arg(turn.ip().to_string())
        .output()
        .expect("turnutils_uclient (coturn is installed by scripts/install-test-deps)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn where_only_tcp_443_leaves_turn_relays_over_tcp_and_tls_and_sip_registers_over_tls() {
    let server_ns = Namespace::new("server");
    let hotel = Namespace::new("hotel");
    let link = Link::new(&server_ns, &hotel, Family::V4);
    hotel.only_tcp_443(&link.interfaces.1);
    // SIP on the server's address, TURN on a second one: both want 443.
    let (sip_ip, turn_ip) = (link.a(false), link.add_a(&server_ns, 3));
    let dir = scratch_dir("firewall");
    let pki = TestPki::new(&dir);
    let cert = pki.issue("club-a", &["club-a.test"]);
    let tls = pki.serve_args(&cert);
    let (sip_tls, turn_udp, turn_tls) = (
        format!("tls:{sip_ip}:443"),
        format!("udp:{turn_ip}:3478"),
        format!("tls:{turn_ip}:443"),
    );
    let mut args = vec!["--domain", "club-a.test"];
    args.extend([
        "--listen",
        "udp:0.0.0.0:5060",
        "--listen",
        "tcp:0.0.0.0:5060",
    ]);
    args.extend([
        "--listen",
        &sip_tls,
        "--turn",
        &turn_udp,
        "--turn-tcp",
        &turn_tls,
    ]);
    args.extend(["--turn-user", "alice:s3cret"]);
    args.extend(tls.iter().map(String::as_str));
    let server = Server::start(&server_ns, &USERS, &args);
    // The far end media goes to: an echo on the server's side.
    let peer = SocketAddr::new(sip_ip, 3480);
    let _echo = openline_tests::Background(
        server_ns
            .command("timeout")
            .args([
                "120",
                "turnutils_peer",
                "-L",
                &sip_ip.to_string(),
                "-p",
                "3480",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));

    // UDP does not get out: the same client over UDP relays nothing.
    let udp = uclient_in(&hotel, SocketAddr::new(turn_ip, 3478), peer, &[]);
    assert!(
        uclient_totals(&udp).is_none_or(|(_, got)| got == 0),
        "UDP left the hotel: {udp}"
    );
    // TCP and TLS to 443 do, every message echoed.
    let turn = SocketAddr::new(turn_ip, 443);
    for options in [&["-t"][..], &["-t", "-S"][..]] {
        let out = uclient_in(&hotel, turn, peer, options);
        assert_eq!(uclient_totals(&out), Some((40, 40)), "{options:?}: {out}");
        assert!(out.contains("Total lost packets 0 "), "{options:?}: {out}");
    }

    // SIP over TLS on 443 registers (sipsak's GnuTLS cannot finish a handshake: baresip).
    let ca = pki.ca.display().to_string();
    let phone = openline_tests::baresip::Ua::start_in(
        (&hotel, link.b(false)),
        (SocketAddr::new(sip_ip, 443), "alice@club-a.test", 5070),
        dir.join("alice-baresip.log"),
        &[
            ("TRANSPORT", "tls"),
            ("CAFILE", ca.as_str()),
            ("ANSWER", "manual"),
        ],
        ("sine:440", dir.join("alice-heard.wav").to_str().unwrap()),
    );
    phone.quit();
    drop(server);
}

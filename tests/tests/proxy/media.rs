//! The proxy anchors a call's media at its embedded relay (issue #6 item 3): SIPp's uac plays a
//! G.711 recording to a registered SIPp uas that echoes it; the SDP each side receives points
//! at the relay, RTP crosses it both ways, and the BYE ends the relay's session. A malformed
//! offer gets 488.

use crate::sipp::register_at;
use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::wire::{first_line, recv_until};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const UAS: u16 = 5286;
const UAS_MEDIA: u16 = 6286;
const UAC: u16 = 5288;
const CONTROL: u16 = 5289;

/// One call of SIPp's uac_pcap through `server` to a registered SIPp uas echoing RTP, on
/// `(uas, uas_media, uac)` ports: it succeeds, and the answer the caller got has `anchored` (the
/// relay's port range) and not the uas's own media port.
fn echo_call(server: &Subject, name: &str, (uas, uas_media, uac): (u16, u16, u16), anchored: &str) {
    let dir = scratch_dir(name);
    let _uas = openline_tests::media::echo_uas(&dir, uas, uas_media);
    let contact = format!("sip:echo@127.0.0.1:{uas}");
    let target = server.udp.to_string();
    register_at(&target, &dir, "echo", "openline.test", &contact, uas + 10);
    let (ok, messages) = openline_tests::media::pcap_call(&dir, &target, "echo", uac);
    assert!(ok, "the call failed:\n{messages}");
    assert!(
        messages.contains(anchored),
        "answer not anchored:\n{messages}"
    );
    assert!(
        !messages.contains(&format!("m=audio {uas_media}")),
        "the uas's own port leaked"
    );
}

#[test]
fn a_call_through_the_proxy_has_its_rtp_relayed_both_ways() {
    let control = format!("udp:127.0.0.1:{CONTROL}");
    let server = Subject::start_with_users(
        &[("echo@openline.test", "s3cret")],
        &["--media-ports", "44000-44099", "--media-control", &control],
    );
    // The 200 the caller got points its media at the relay, not at the uas.
    echo_call(&server, "proxy-media", (UAS, UAS_MEDIA, UAC), "m=audio 440");
    let control: SocketAddr = ([127, 0, 0, 1], CONTROL).into();
    let (packets, sessions) = openline_tests::media::relayed(control);
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert!(
        packets.iter().all(|&p| p > 50),
        "RTP both ways through the relay: {packets:?}"
    );
    // The BYE went through the proxy: the relay's session is gone.
    assert_eq!(sessions, 0);
}

#[test]
fn a_relay_port_another_program_holds_is_passed_over() {
    // Another program (another relay on the same range, say) holds the first pair.
    let _held = [44600, 44601].map(|p| UdpSocket::bind(("127.0.0.1", p)).unwrap());
    let server = Subject::start_with_users(
        &[("echo@openline.test", "s3cret")],
        &[
            "--media-ports",
            "44600-44699",
            "--media-listen",
            "127.0.0.1",
        ],
    );
    // The call gets the next pair, and its media flow (the echo call checks both ways).
    echo_call(
        &server,
        "proxy-media-held",
        (5270, 6270, 5272),
        "m=audio 44602",
    );
}

#[test]
fn a_malformed_offer_gets_488_with_the_reason() {
    let server = Subject::start_with_users(
        &[("bob@openline.test", "s3cret")],
        &["--media-ports", "44100-44199"],
    );
    // bob has a device, so the INVITE would go on but for its SDP.
    let bob = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = scratch_dir("proxy-media-488");
    let contact = format!("sip:bob@{}", bob.local_addr().unwrap());
    register_at(
        &server.udp.to_string(),
        &dir,
        "bob",
        "openline.test",
        &contact,
        5290,
    );
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me: SocketAddr = caller.local_addr().unwrap();
    let body = "v=0\r\nthis is not sdp\r\n";
    let invite = format!(
        "INVITE sip:bob@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKm488;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\nTo: <sip:bob@openline.test>\r\n\
         Call-ID: m488\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{me}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    caller.send_to(invite.as_bytes(), server.udp).unwrap();
    let got = recv_until(&[&caller], Duration::from_secs(5), |m| {
        first_line(m).starts_with("SIP/2.0 4")
    });
    let refusal = got
        .iter()
        .map(|m| first_line(m))
        .find(|l| l.starts_with("SIP/2.0 4"))
        .expect("a refusal");
    assert!(refusal.starts_with("SIP/2.0 488 "), "{refusal}");
    assert!(
        refusal.contains("line 2"),
        "the reason names the line: {refusal}"
    );
    assert!(
        recv_until(&[&bob], Duration::from_millis(300), |_| false)
            .iter()
            .all(|m| !first_line(m).starts_with("INVITE")),
        "nothing reached bob"
    );
}

#[test]
fn baresip_calls_baresip_and_the_tone_crosses_the_relay() {
    let control = "udp:127.0.0.1:5291";
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "s3cret"),
            ("bob@openline.test", "s3cret"),
        ],
        &["--media-ports", "44200-44299", "--media-control", control],
    );
    let dir = scratch_dir("proxy-media-baresip");
    let recording = dir.join("bob-rx.wav");
    let contacts = [("CONTACTS", "sip:bob@openline.test")];
    let log = |name: &str| dir.join(format!("{name}.log"));
    let mut alice = openline_tests::baresip::Ua::start_with_audio(
        server.udp,
        "alice@openline.test",
        5292,
        log("alice"),
        &contacts,
        ("sine:440", "-"),
    );
    let bob = openline_tests::baresip::Ua::start_with_audio(
        server.udp,
        "bob@openline.test",
        5294,
        log("bob"),
        &[],
        ("sine:1000", recording.to_str().unwrap()),
    );
    alice.command("/dial sip:bob@openline.test");
    bob.wait_for("Incoming call from:");
    let mut bob = bob;
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@openline.test");
    std::thread::sleep(Duration::from_secs(3));
    alice.command("/hangup");
    bob.wait_for("session closed");
    bob.quit();
    alice.quit();
    // Both directions crossed the relay.
    let (packets, sessions) = openline_tests::media::relayed("127.0.0.1:5291".parse().unwrap());
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert!(
        packets.iter().all(|&p| p > 50),
        "RTP both ways: {packets:?}"
    );
    assert_eq!(sessions, 0, "the BYE ended the relay's session");
    // What bob heard is alice's tone, not silence.
    let tool = openline_tests::repo_file("tests/peers/baresip/wav-tone");
    let out = std::process::Command::new(tool)
        .arg(&recording)
        .output()
        .expect("run wav-tone");
    let verdict = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |key: &str| -> f64 {
        verdict
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no {key} in: {verdict} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    assert!((value("freq") - 440.0).abs() < 5.0, "{verdict}");
    assert!(value("silent") < 0.5, "{verdict}");
}

#[test]
fn openline_serve_is_a_turn_server_for_shared_secret_credentials() {
    let turn = openline_tests::media::free_udp_addr();
    let at = format!("udp:{turn}");
    let server = Subject::start(&[
        "--turn",
        &at,
        "--turn-secret",
        "north",
        "--turn-ports",
        "51300-51399",
        "--turn-allow-loopback",
    ]);
    let (_peer, peer_port) = openline_tests::media::echo_peer();
    let out = openline_tests::media::uclient(
        turn,
        peer_port,
        2,
        20,
        &["-c", "-W", "north", "-u", "dana"],
    );
    assert_eq!(
        openline_tests::media::uclient_totals(&out),
        Some((40, 40)),
        "{out}"
    );
    // The realm is the served domain's.
    let wrong_secret =
        openline_tests::media::uclient(turn, peer_port, 1, 5, &["-c", "-W", "south", "-u", "dana"]);
    assert!(
        openline_tests::media::uclient_totals(&wrong_secret).is_none_or(|(_, r)| r == 0),
        "{wrong_secret}"
    );
    drop(server);
}

/// rtpengine (Debian's rtpengine-daemon, userspace) on loopback: its ng control address.
fn rtpengine(ports: &str) -> (openline_tests::Background, SocketAddr) {
    let ng = openline_tests::media::free_udp_addr();
    let (low, high) = ports.split_once('-').expect("LOW-HIGH");
    let daemon = openline_tests::Background(
        std::process::Command::new("timeout")
            .args(["120", "rtpengine", "--config-file=none", "--table=-1"])
            .args(["--interface=127.0.0.1", "--foreground", "--log-stderr"])
            // A deleted call goes at once (rtpengine keeps one 30 s by default).
            .arg("--delete-delay=0")
            .arg(format!("--listen-ng={ng}"))
            .arg(format!("--port-min={low}"))
            .arg(format!("--port-max={high}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start rtpengine (rtpengine-daemon is installed by scripts/install-test-deps)"),
    );
    for _ in 0..50 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let _ = s.send_to(b"p d7:command4:pinge", ng);
        let mut buf = [0u8; 64];
        let answered = s
            .recv_from(&mut buf)
            .is_ok_and(|(n, _)| buf[..n].windows(4).any(|w| w == b"pong"));
        if answered {
            return (daemon, ng);
        }
    }
    panic!("rtpengine did not answer ng ping on {ng}");
}

/// An integer rtpengine's `statistics` reply gives under `key`.
fn rtpengine_stat(ng: SocketAddr, key: &str) -> u64 {
    let stats = openline_tests::media::ng(ng, "s d7:command10:statisticse");
    let tag = format!("{}:{key}i", key.len());
    stats
        .find(&tag)
        .and_then(|at| stats[at + tag.len()..].split('e').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {stats}"))
}

#[test]
fn openline_drives_a_real_rtpengine_over_ng() {
    let (_rtpengine, ng) = rtpengine("45000-45099");
    let server = Subject::start_with_users(
        &[("echo@openline.test", "s3cret")],
        &["--media-relay", &format!("udp:{ng}")],
    );
    // The answer points the caller at rtpengine's ports, not the uas's.
    let ports = (UAS + 100, UAS_MEDIA + 100, UAC + 100);
    echo_call(&server, "proxy-rtpengine", ports, "m=audio 450");
    // rtpengine carried the call's RTP, and the BYE deleted it there.
    assert!(rtpengine_stat(ng, "managedsessions") >= 1);
    let relayed = rtpengine_stat(ng, "relayedpackets_user");
    assert!(relayed > 100, "rtpengine relayed {relayed} packets");
    let list = openline_tests::media::ng(ng, "l d7:command4:liste");
    assert!(
        list.contains("5:callsle"),
        "calls left at rtpengine: {list}"
    );
}

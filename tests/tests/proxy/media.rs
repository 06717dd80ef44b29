//! The proxy anchors a call's media at its embedded relay (issue #6 item 3): SIPp's uac plays a
//! G.711 recording to a registered SIPp uas that echoes it; the SDP each side receives points
//! at the relay, RTP crosses it both ways, and the BYE ends the relay's session. A malformed
//! offer gets 488.

use crate::sipp::register_at;
use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::wire::{first_line, recv_until};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

const UAS: u16 = 5286;
const UAS_MEDIA: u16 = 6286;
const UAC: u16 = 5288;
const CONTROL: u16 = 5289;

/// An ng request to the relay's control socket; the reply's text.
fn ng(request: &str) -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(request.as_bytes(), ("127.0.0.1", CONTROL))
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).expect("an ng reply");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The relay's packet counters per side since start.
fn packets() -> Vec<u64> {
    let stats = ng("s d7:command10:statisticse");
    stats
        .match_indices("7:packetsi")
        .filter_map(|(at, m)| stats[at + m.len()..].split('e').next()?.parse().ok())
        .collect()
}

#[test]
fn a_call_through_the_proxy_has_its_rtp_relayed_both_ways() {
    let control = format!("udp:127.0.0.1:{CONTROL}");
    let server = Subject::start_with_users(
        &[("echo@openline.test", "s3cret")],
        &["--media-ports", "44000-44099", "--media-control", &control],
    );
    let dir = scratch_dir("proxy-media");
    let _uas = openline_tests::Background(
        Command::new("timeout")
            .args([
                "60",
                "sipp",
                "-sn",
                "uas",
                "-rtp_echo",
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &UAS.to_string(),
                "-mp",
                &UAS_MEDIA.to_string(),
                "-nostdin",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let contact = format!("sip:echo@127.0.0.1:{UAS}");
    register_at(
        &server.udp.to_string(),
        &dir,
        "echo",
        "openline.test",
        &contact,
        UAS + 10,
    );
    let _ = std::os::unix::fs::symlink("/usr/share/sip-tester", dir.join("pcap"));
    let out = openline_tests::run_peer(
        &dir,
        "sipp",
        [
            server.udp.to_string().as_str(),
            "-sn",
            "uac_pcap",
            "-s",
            "echo",
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &UAC.to_string(),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            "uac-messages.log",
            "-timeout",
            "40",
        ],
        Duration::from_secs(60),
    );
    let messages = std::fs::read_to_string(dir.join("uac-messages.log")).unwrap_or_default();
    assert!(out.status.success(), "the call failed:\n{messages}");
    // The 200 the caller got points its media at the relay, not at the uas.
    assert!(
        messages.contains("m=audio 440"),
        "answer not anchored:\n{messages}"
    );
    assert!(
        !messages.contains(&format!("m=audio {UAS_MEDIA}")),
        "the uas's own port leaked"
    );
    let counts = packets();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(
        counts.iter().all(|&p| p > 50),
        "RTP both ways through the relay: {counts:?}"
    );
    // The BYE went through the proxy: the relay's session is gone.
    assert!(ng("s d7:command10:statisticse").contains("8:sessionsi0e"));
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

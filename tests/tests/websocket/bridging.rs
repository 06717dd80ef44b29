//! A browser's SDP the WebRTC gateway cannot take (issue #23, bad input): a tab's offer
//! without rtcp-mux is refused with 488 naming it before anything rings; a tab answering a
//! bridged call without rtcp-mux has its 200 passed on (a proxy must) and the call ended from
//! the middle, a BYE with `Reason: SIP;cause=488` to each side, and the relay's ports freed.

use super::*;
use openline_tests::metrics::sample;

/// A browser's answer to `offer` as a tab would write it, but with no `a=rtcp-mux`.
fn unmuxed_answer(offer: &str) -> String {
    let mid = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .unwrap_or("0")
        .trim();
    format!(
        "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
         a=ice-ufrag:tAbX\r\na=ice-pwd:tabtabtabtabtabtabtabtab\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:active\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ["AB"; 32].join(":")
    )
}

#[test]
fn a_browser_sdp_without_rtcp_mux_is_refused_or_hung_up_with_488_and_no_port_stays_taken() {
    let dir = scratch_dir("ws-bridge-refused");
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], openline_tests::pebble::free_port()));
    let metrics_arg = format!("tcp:{metrics}");
    let server = Subject::start_with_users(
        &USERS,
        &["--listen", "ws:127.0.0.1:0", "--metrics", &metrics_arg],
    );
    let mut tab = bob(server.listener("ws"), &Dial::default());
    assert_eq!(tab.register(600), 200);
    let mut alice = Phone::new("alice", "openline.test", "ecila", server.udp);
    assert_eq!(alice.register(600), 200);

    // The tab's own offer without rtcp-mux: 488 with the reason, and alice never rings.
    let offer = unmuxed_answer("a=mid:0");
    let refused = tab
        .request(
            "INVITE",
            "sip:alice@openline.test",
            "<sip:alice@openline.test>",
            &format!(
                "Contact: {}\r\nContent-Type: application/sdp\r\n",
                tab.contact()
            ),
            offer.as_bytes(),
        )
        .expect("a final answer");
    assert_eq!(
        status(&refused),
        Some(488),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert!(
        String::from_utf8_lossy(&refused).contains("no a=rtcp-mux"),
        "the reason names it: {}",
        String::from_utf8_lossy(&refused)
    );
    assert!(
        alice
            .requests("INVITE", 1, Duration::from_secs(1))
            .is_empty(),
        "alice did not ring"
    );

    // alice's desk phone (SIPp) calls the tab, which answers without rtcp-mux.
    let hung_up = std::thread::scope(|s| {
        let caller = s.spawn(|| call(&dir, &server, "uac-auth-hung-up.xml"));
        let invite = tab.next_request("INVITE", ARRIVES).expect("the INVITE");
        let text = String::from_utf8_lossy(&invite).into_owned();
        assert!(
            text.contains("UDP/TLS/RTP/SAVPF"),
            "the tab is offered WebRTC: {text}"
        );
        assert!(
            openline_tests::eventually(Duration::from_secs(5), || {
                sample(metrics, "openline_relay_calls") == Some(1.0)
            }),
            "the bridge holds ports for the call"
        );
        tab.answer_with_sdp(&invite, (200, "OK"), &unmuxed_answer(&text));
        let bye = tab
            .next_request("BYE", ARRIVES)
            .expect("a BYE from the middle");
        let reason = header(&bye, "Reason", None).unwrap_or_default();
        assert!(
            reason.contains("cause=488") && reason.contains("rtcp-mux"),
            "Reason: {reason}"
        );
        tab.answer(&bye, 200, "OK");
        caller.join().unwrap()
    });
    assert!(
        hung_up.status.success(),
        "the caller got the 200, then a BYE with cause=488: {}",
        String::from_utf8_lossy(&hung_up.stdout)
    );
    assert!(
        openline_tests::eventually(Duration::from_secs(5), || {
            sample(metrics, "openline_relay_calls") == Some(0.0)
        }),
        "the relay freed the call's ports"
    );
}

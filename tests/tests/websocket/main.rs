//! SIP over WebSocket (RFC 7118, issue #23): a browser tab's socket is a flow. The handshake
//! needs the `sip` subprotocol and an allowed Origin; a tab registers over WSS and gets
//! messages and calls over its socket (record-routed twice where the transport changes, the
//! caller's ACK and BYE finding it); a closed tab leaves messages stored and callers a 430;
//! a frame too large closes that connection alone with 1009.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_tests::certs::TestPki;
use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::wire::{header, status};
use openline_tests::ws_phone::{Dial, WsPhone};
use std::time::Duration;

mod bridging;

const ARRIVES: Duration = Duration::from_secs(10);
const USERS: [(&str, &str); 2] = [
    ("alice@openline.test", "ecila"),
    ("bob@openline.test", "bob-pw"),
];

fn bob(at: std::net::SocketAddr, dial: &Dial<'_>) -> WsPhone {
    WsPhone::connect(at, ("bob", "openline.test", "bob-pw"), dial).expect("connected")
}

/// OPTIONS to the server itself over the tab's socket: the final status.
fn options(tab: &mut WsPhone) -> Option<u16> {
    tab.request(
        "OPTIONS",
        "sip:openline.test",
        "<sip:openline.test>",
        "",
        b"",
    )
    .and_then(|r| status(&r))
}

#[test]
fn the_handshake_needs_the_sip_subprotocol_and_an_allowed_origin() {
    let dir = scratch_dir("ws-handshake");
    let config = dir.join("openline.toml");
    std::fs::write(
        &config,
        "[websocket]\norigins = [\"https://phone.openline.test\"]\n",
    )
    .unwrap();
    let server = Subject::start_with_users(
        &USERS,
        &[
            "--listen",
            "ws:127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let at = server.listener("ws");
    let allowed = Some("https://phone.openline.test");
    let refused = WsPhone::connect(
        at,
        ("bob", "openline.test", "bob-pw"),
        &Dial {
            origin: allowed,
            protocols: Some("chat"),
            ..Dial::default()
        },
    )
    .err()
    .expect("refused without sip");
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("sip subprotocol"), "{}", refused.body);
    let foreign = WsPhone::connect(
        at,
        ("bob", "openline.test", "bob-pw"),
        &Dial {
            origin: Some("https://evil.test"),
            ..Dial::default()
        },
    )
    .err()
    .expect("refused from another origin");
    assert_eq!(foreign.status, 403);
    let mut tab = bob(
        at,
        &Dial {
            origin: allowed,
            ..Dial::default()
        },
    );
    assert_eq!(options(&mut tab), Some(200));
}

#[test]
fn a_tab_over_wss_gets_messages_and_calls_over_its_socket_and_none_once_closed() {
    let dir = scratch_dir("ws-calls");
    let pki = TestPki::new(&dir);
    let cert = pki.issue("server", &["openline.test"]);
    let mut args: Vec<String> = pki.serve_args(&cert);
    args.extend(["--listen".into(), "wss:127.0.0.1:0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Subject::start_with_users(&USERS, &args);
    let dial = Dial {
        tls: Some((&pki.ca, "openline.test")),
        ..Dial::default()
    };
    let mut tab = bob(server.listener("wss"), &dial);
    assert_eq!(tab.register(600), 200);

    // A message from a desk phone arrives over the tab's socket.
    let mut alice = Phone::new("alice", "openline.test", "ecila", server.udp);
    let sent = std::thread::scope(|s| {
        let sender = s.spawn(|| alice.message("bob@openline.test", "hello tab"));
        let got = tab.next_request("MESSAGE", ARRIVES).expect("the MESSAGE");
        assert!(String::from_utf8_lossy(&got).ends_with("hello tab"));
        tab.answer(&got, 200, "OK");
        sender.join().unwrap()
    });
    assert_eq!(sent, 200);

    // A call: SIPp calls bob; the tab rings, answers, and gets the caller's ACK and BYE.
    let answered = std::thread::scope(|s| {
        let caller = s.spawn(|| call(&dir, &server, "uac-auth.xml"));
        let invite = tab.next_request("INVITE", ARRIVES).expect("the INVITE");
        let routes = header(&invite, "Record-Route", None).unwrap_or_default();
        assert!(
            routes.contains("transport=wss") && routes.matches("<sip:").count() == 2,
            "record-routed on both sides of the transport change: {routes}"
        );
        tab.answer(&invite, 180, "Ringing");
        tab.answer(&invite, 200, "OK");
        assert!(
            tab.next_request("ACK", ARRIVES).is_some(),
            "the ACK finds the tab"
        );
        let bye = tab.next_request("BYE", ARRIVES).expect("the caller's BYE");
        tab.answer(&bye, 200, "OK");
        caller.join().unwrap()
    });
    assert!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stdout)
    );

    // The tab is closed: a message waits for it; a call hears 430 Flow Failed (its flow was
    // an outbound one, RFC 5626 5.3: the caller may try again once the tab is back).
    drop(tab);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alice.message("bob@openline.test", "still there?"), 202);
    let unanswered = call(&dir, &server, "uac-auth-flow-failed.xml");
    assert!(
        unanswered.status.success(),
        "430 for a closed tab: {}",
        String::from_utf8_lossy(&unanswered.stdout)
    );
}

/// A tab registered without `reg-id` (no RFC 5626 outbound) and closed: the caller hears 480,
/// the device being away rather than its flow failed.
#[test]
fn a_closed_tab_without_outbound_leaves_callers_a_480() {
    let dir = scratch_dir("ws-480");
    let server = Subject::start_with_users(&USERS, &["--listen", "ws:127.0.0.1:0"]);
    let mut tab = bob(server.listener("ws"), &Dial::default());
    tab.outbound = false;
    assert_eq!(tab.register(600), 200);
    drop(tab);
    std::thread::sleep(Duration::from_millis(300));
    let out = call(&dir, &server, "uac-auth-unanswered.xml");
    assert!(
        out.status.success(),
        "480: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_frame_too_large_closes_that_connection_alone_and_junk_is_dropped() {
    let server = Subject::start_with_users(&USERS, &["--listen", "ws:127.0.0.1:0"]);
    let at = server.listener("ws");
    let mut big = bob(at, &Dial::default());
    let mut other = bob(at, &Dial::default());
    let _ = big.send_binary(vec![b'x'; 10 << 20]);
    let mut closed = None;
    for _ in 0..50 {
        if let Err(code) = big.recv(Duration::from_millis(200)) {
            closed = Some(code);
            break;
        }
    }
    assert_eq!(
        closed,
        Some(Some(1009)),
        "closed with 1009 (message too big)"
    );
    other.send_binary(vec![0, 0xff, 0xfe, 7, 13, 10]).unwrap();
    other.send(b"NOT SIP AT ALL\r\n\r\n");
    assert_eq!(
        options(&mut other),
        Some(200),
        "the other connection goes on"
    );
}

/// alice calls bob with a SIPp `scenario`; its output.
fn call(dir: &std::path::Path, server: &Subject, scenario: &str) -> std::process::Output {
    openline_tests::sipp::call(
        dir,
        server.udp,
        scenario,
        ("alice", "openline.test", "ecila"),
        ("bob", "openline.test"),
        Duration::from_secs(40),
    )
}

//! Never an open relay, with nothing to configure: a stranger's INVITE for another domain gets
//! 403, and nothing reaches that domain's server, even one the proxy knows; a request claiming
//! to be from one of our users gets 407 until it carries that user's credentials.

use openline_tests::subject::Subject;
use openline_tests::wire::{recv_until, status};
use std::net::UdpSocket;
use std::time::Duration;

fn invite(to: &str, from: &str, via: std::net::SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}>;tag=s\r\nTo: <sip:{to}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:x@{via}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_stranger_cannot_relay_through_the_proxy() {
    // club-x.test's server is known (a static peer): only a local user may reach it.
    let club_x = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = format!("club-x.test=udp:{}", club_x.local_addr().unwrap());
    let server =
        Subject::start_with_users(&[("alice@openline.test", "s3cret")], &["--peer", &peer]);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = stranger.local_addr().unwrap();
    let answers = |call_id: &str| {
        recv_until(&[&stranger], Duration::from_secs(3), |m| {
            status(m).is_some_and(|c| c >= 200)
        })
        .into_iter()
        .filter_map(|m| status(&m))
        .filter(|c| *c >= 200)
        .collect::<Vec<u16>>()
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no final answer to {call_id}"))
    };

    // A stranger calling another domain: 403.
    stranger
        .send_to(
            &invite("bob@club-x.test", "mallory@elsewhere.test", me, "relay-1"),
            server.udp,
        )
        .unwrap();
    assert_eq!(answers("relay-1"), 403);
    // Claiming to be a local user, without credentials: challenged, not relayed.
    stranger
        .send_to(
            &invite("bob@club-x.test", "alice@openline.test", me, "relay-2"),
            server.udp,
        )
        .unwrap();
    assert_eq!(answers("relay-2"), 407);
    // A stranger addressing the request to an IP address rather than a domain: 403 too.
    let direct = format!("bob@{}", club_x.local_addr().unwrap());
    stranger
        .send_to(
            &invite(&direct, "mallory@elsewhere.test", me, "relay-3"),
            server.udp,
        )
        .unwrap();
    assert_eq!(answers("relay-3"), 403);

    // Nothing reached club-x.test's server.
    let seen = recv_until(&[&club_x], Duration::from_millis(500), |_| true);
    assert!(
        seen.is_empty(),
        "the proxy sent {} message(s) to the other domain: {}",
        seen.len(),
        String::from_utf8_lossy(&seen[0])
    );
}

//! A domain that never answers costs a bounded number of transactions and timers: each request
//! tries its servers in turn and ends in 408 once they have all timed out, and no more than
//! `--max-per-domain` requests are under way to the domain at once (503 beyond).

use openline_tests::dns::{Rr, TestDns};
use openline_tests::subject::Subject;
use openline_tests::wire::{header, md5_credentials, recv_until, status};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// alice's INVITE `n` for bob@club-x.test, with `auth` (a Proxy-Authorization line or "").
fn invite(me: SocketAddr, n: u32, cseq: u32, auth: &str) -> String {
    format!(
        "INVITE sip:bob@club-x.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKun{n}c{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@openline.test>;tag=a{n}\r\nTo: <sip:bob@club-x.test>\r\n\
         Call-ID: unanswered-{n}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{me}>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    )
}

/// Sends INVITE `n`, answers the 407, and returns the first answer to the authenticated one
/// other than 100 (or 100 itself when nothing else comes within a second).
fn place(alice: &UdpSocket, server: SocketAddr, n: u32) -> u16 {
    let me = alice.local_addr().unwrap();
    alice
        .send_to(invite(me, n, 1, "").as_bytes(), server)
        .unwrap();
    let call_id = format!("unanswered-{n}");
    let mine = |m: &[u8]| header(m, "Call-ID", Some("i")).as_deref() == Some(call_id.as_str());
    let got = recv_until(&[alice], Duration::from_secs(3), |m| {
        mine(m) && status(m) == Some(407)
    });
    let challenge = got
        .iter()
        .find(|m| mine(m) && status(m) == Some(407))
        .and_then(|m| header(m, "Proxy-Authenticate", None))
        .expect("a 407 with a challenge");
    let ack = format!(
        "ACK sip:bob@club-x.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKun{n}c1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@openline.test>;tag=a{n}\r\nTo: <sip:bob@club-x.test>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    alice.send_to(ack.as_bytes(), server).unwrap();
    let credentials = md5_credentials(
        &challenge,
        "alice",
        "s3cret",
        "INVITE",
        "sip:bob@club-x.test",
    );
    let auth = format!("Proxy-Authorization: {credentials}\r\n");
    alice
        .send_to(invite(me, n, 2, &auth).as_bytes(), server)
        .unwrap();
    let answered = |m: &[u8]| {
        mine(m)
            && header(m, "CSeq", None).is_some_and(|c| c.starts_with("2 "))
            && status(m).is_some_and(|c| c != 100)
    };
    let got = recv_until(&[alice], Duration::from_secs(1), answered);
    got.iter()
        .find(|m| answered(m))
        .and_then(|m| status(m))
        .unwrap_or(100)
}

/// The final status of INVITE `n` (CSeq 2), waiting up to `limit`.
fn final_of(alice: &UdpSocket, n: u32, limit: Duration) -> Option<u16> {
    let call_id = format!("unanswered-{n}");
    let done = |m: &[u8]| {
        header(m, "Call-ID", Some("i")).as_deref() == Some(call_id.as_str())
            && header(m, "CSeq", None).is_some_and(|c| c.starts_with("2 "))
            && status(m).is_some_and(|c| c >= 200)
    };
    let got = recv_until(&[alice], limit, done);
    got.iter().find(|m| done(m)).and_then(|m| status(m))
}

/// Distinct Via branches among the INVITEs a silent server received.
fn branches(silent: &UdpSocket) -> (usize, usize) {
    let got = recv_until(&[silent], Duration::from_millis(200), |_| false);
    let distinct: HashSet<String> = got
        .iter()
        .filter_map(|m| header(m, "Via", Some("v")))
        .collect();
    (distinct.len(), got.len())
}

#[test]
fn a_domain_that_never_answers_costs_a_bounded_amount() {
    // club-x.test's two servers take datagrams and never answer.
    let silent: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let port = |i: usize| silent[i].local_addr().unwrap().port();
    let dns = TestDns::start(
        "test",
        &[
            Rr::Srv("_sip._udp.club-x.test", 10, 10, port(0), "sip1.club-x.test"),
            Rr::Srv("_sip._udp.club-x.test", 20, 10, port(1), "sip2.club-x.test"),
            Rr::A("sip1.club-x.test", Ipv4Addr::LOCALHOST),
            Rr::A("sip2.club-x.test", Ipv4Addr::LOCALHOST),
        ],
    );
    let dns = dns.addr.to_string();
    // T1 of 50 ms: Timer B, the wait for an answer, is 64 x T1 = 3.2 s.
    let server = Subject::start_with_users(
        &[("alice@openline.test", "s3cret")],
        &["--dns", &dns, "--t1-ms", "50", "--max-per-domain", "2"],
    );
    let alice = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Two calls go out; the third finds the domain's quota taken.
    assert_eq!(place(&alice, server.udp, 1), 100);
    assert_eq!(place(&alice, server.udp, 2), 100);
    assert_eq!(place(&alice, server.udp, 3), 503);
    // Each tries sip1, times out, tries sip2, times out: 408 after about 6.4 s.
    assert_eq!(final_of(&alice, 1, Duration::from_secs(15)), Some(408));
    assert_eq!(final_of(&alice, 2, Duration::from_secs(5)), Some(408));
    // Each server saw one transaction per call, retransmitted a bounded number of times.
    for s in &silent {
        let (distinct, datagrams) = branches(s);
        assert_eq!(distinct, 2, "one branch per call at each server");
        assert!(
            datagrams <= 2 * 8,
            "{datagrams} datagrams for 2 transactions"
        );
    }
    // The quota is given back once they ended.
    assert_eq!(place(&alice, server.udp, 4), 100);
}

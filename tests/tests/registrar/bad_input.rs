//! REGISTERs that must be refused with a reason and change nothing.

use crate::db_bindings;
use openline_sip::digest::{Algorithm, Credentials, expected_response, ha1};
use openline_tests::subject::Subject;
use openline_tests::wire::{self, recv_until, status};
use std::net::UdpSocket;
use std::time::Duration;

/// A minimal digest client: sends `request(auth)` and answers the 401 once.
pub(crate) fn register_raw(
    server: &Subject,
    build: impl Fn(&str) -> String,
    password: &str,
) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |auth: &str| {
        let msg = build(auth);
        sock.send_to(msg.as_bytes(), server.udp).unwrap();
        let got = recv_until(&[&sock], Duration::from_secs(5), |m| status(m).is_some());
        got.into_iter().last().expect("an answer")
    };
    let first = send("");
    if status(&first) != Some(401) {
        return first;
    }
    let text = String::from_utf8_lossy(&first).into_owned();
    let md5 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("WWW-Authenticate: ")
                .filter(|c| c.contains("MD5"))
        })
        .unwrap();
    let nonce = openline_sip::header::AuthParams::parse(md5)
        .unwrap()
        .get("nonce")
        .unwrap()
        .into_owned();
    let creds = format!(
        "Digest username=\"grace\", realm=\"openline.test\", nonce=\"{nonce}\", uri=\"sip:openline.test\", response=\"R\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\""
    );
    let parsed = Credentials::parse(&creds).unwrap();
    let response = expected_response(
        Algorithm::Md5,
        &ha1(Algorithm::Md5, "grace", "openline.test", password),
        "REGISTER",
        &parsed,
    );
    send(&format!(
        "Authorization: {}\r\n",
        creds.replace("response=\"R\"", &format!("response=\"{response}\""))
    ))
}

/// Makes every request a new transaction.
static NEXT_BRANCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn register_with(contacts: &str, extra: &str) -> impl Fn(&str) -> String {
    let (contacts, extra) = (contacts.to_string(), extra.to_string());
    move |auth: &str| {
        let cseq = if auth.is_empty() { 1 } else { 2 };
        format!(
            "REGISTER sip:openline.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKbad{cseq}-{};rport\r\nFrom: <sip:grace@openline.test>;tag=g1\r\nTo: <sip:grace@openline.test>\r\nCall-ID: bad-{}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n{contacts}{extra}{auth}Content-Length: 0\r\n\r\n",
            NEXT_BRANCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            contacts.len()
        )
    }
}

fn grace(extra: &[&str]) -> Subject {
    Subject::start_with_users(&[("grace@openline.test", "pw-grace")], extra)
}

#[test]
fn bad_registers_get_a_reason_and_change_nothing() {
    let server = grace(&[]);
    let cases: Vec<(String, String, &str)> = vec![
        (
            "Contact: <sip:grace@127.0.0.1:5151\r\n".into(),
            String::new(),
            "SIP/2.0 400 Bad Request (malformed Contact header)",
        ),
        (
            "Contact: <sip:grace@127.0.0.1:5151>\r\n".into(),
            "Expires: 99999999999999999999\r\n".into(),
            "SIP/2.0 400 Bad Request (malformed Expires header)",
        ),
        (
            (0..1800)
                .map(|i| format!("Contact: <sip:g@127.0.0.1:{}>\r\n", 10000 + i))
                .collect(),
            String::new(),
            "SIP/2.0 400 Bad Request (more than 16 contacts)",
        ),
        (
            "Contact: <sip:grace@127.0.0.1:5151>\r\n".into(),
            "Expires: 5\r\n".into(),
            "SIP/2.0 423 Interval Too Brief",
        ),
    ];
    for (contacts, extra, expected) in &cases {
        let answer = register_raw(&server, register_with(contacts, extra), "pw-grace");
        assert_eq!(wire::first_line(&answer), *expected);
    }
    // (1,800 contacts: as many as fit in one UDP datagram.)
    // Credentials missing a field: 400 naming it.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let msg = register_with("Contact: <sip:grace@127.0.0.1:5151>\r\n", "")(
        "Authorization: Digest username=\"grace\", realm=\"openline.test\", nonce=\"x\", uri=\"sip:openline.test\"\r\n",
    );
    sock.send_to(msg.as_bytes(), server.udp).unwrap();
    let got = recv_until(&[&sock], Duration::from_secs(5), |m| status(m).is_some());
    assert_eq!(
        wire::first_line(&got[0]),
        "SIP/2.0 400 Bad Request (digest credentials without response)"
    );
    assert!(db_bindings(&server.db).is_empty(), "nothing was bound");
    // And a good one still works, with the 423's Min-Expires honoured.
    let ok = register_raw(
        &server,
        register_with("Contact: <sip:grace@127.0.0.1:5151>\r\n", "Expires: 60\r\n"),
        "pw-grace",
    );
    assert_eq!(wire::first_line(&ok), "SIP/2.0 200 OK");
    assert_eq!(db_bindings(&server.db).len(), 1);
}

#[test]
fn repeated_failures_are_throttled() {
    let server = grace(&["--auth-throttle", "30"]);
    let mut last = String::new();
    for _ in 0..6 {
        last = wire::first_line(&register_raw(
            &server,
            register_with("Contact: <sip:grace@127.0.0.1:5151>\r\n", ""),
            "wrong",
        ));
    }
    assert_eq!(
        last,
        "SIP/2.0 403 Forbidden (too many failed attempts, try later)"
    );
    // Even the right password is refused while the throttle lasts.
    let right = register_raw(
        &server,
        register_with("Contact: <sip:grace@127.0.0.1:5151>\r\n", ""),
        "pw-grace",
    );
    assert_eq!(wire::first_line(&right), last);
    assert!(db_bindings(&server.db).is_empty());
}

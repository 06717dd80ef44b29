#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // Instant::now() is the origin of virtual time here
//! Registration in virtual time, against responses made by the registrar's own digest code.

use super::*;
use openline_sip::digest::{Algorithm, Credentials, challenge, expected_response, ha1};

const VIA: &str = "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKtest;rport";
const CONTACT: &str = "<sip:alice@127.0.0.1:5099>";

fn registration() -> Registration {
    let account = Account {
        user: "alice".into(),
        domain: "club-a.test".into(),
        password: "s3cret".into(),
    };
    Registration::new(account, 600, "call-1".into(), "tag-1".into())
}

/// A response to `request` with status `code` and extra header lines.
fn respond(request: &[u8], code: u16, reason: &str, extra: &str) -> Vec<u8> {
    let m = Message::parse(request).unwrap();
    let cseq = format!("{} REGISTER", m.cseq.seq);
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {VIA}\r\nFrom: <sip:alice@club-a.test>;tag=tag-1\r\nTo: <sip:alice@club-a.test>;tag=srv\r\nCall-ID: {}\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n",
        m.call_id
    )
    .into_bytes()
}

/// Whether `request` carries credentials the registrar accepts for alice/s3cret.
fn accepted(request: &[u8]) -> bool {
    let m = Message::parse(request).unwrap();
    let Some(value) = m.header(HeaderName::Authorization) else {
        return false;
    };
    let c = Credentials::parse(value).unwrap();
    let ha1 = ha1(c.algorithm, "alice", "club-a.test", "s3cret");
    c.response == expected_response(c.algorithm, &ha1, "REGISTER", &c)
}

#[test]
fn challenged_then_registered_then_refreshed_before_expiry() {
    let t0 = Instant::now();
    let mut r = registration();
    let first = r.request(VIA, CONTACT, "c1");
    let m = Message::parse(&first).unwrap();
    assert!(m.header(HeaderName::Authorization).is_none());
    assert_eq!(m.expires(), Some(Some(600)));
    // Openline offers SHA-256 first, then MD5: either is answered.
    let challenges = format!(
        "WWW-Authenticate: {}\r\nWWW-Authenticate: {}\r\n",
        challenge(Algorithm::Sha256, "club-a.test", "n1", false),
        challenge(Algorithm::Md5, "club-a.test", "n1", false)
    );
    let c401 = respond(&first, 401, "Unauthorized", &challenges);
    assert_eq!(
        r.on_response(t0, &Message::parse(&c401).unwrap()),
        Next::Send
    );
    let second = r.request(VIA, CONTACT, "c2");
    assert!(accepted(&second), "{}", String::from_utf8_lossy(&second));
    let m2 = Message::parse(&second).unwrap();
    assert_eq!(
        (m2.call_id, m2.cseq.seq),
        ("call-1", 2),
        "same Call-ID, next CSeq"
    );
    let ok = respond(
        &second,
        200,
        "OK",
        &format!("Contact: {CONTACT};expires=120\r\n"),
    );
    assert_eq!(
        r.on_response(t0, &Message::parse(&ok).unwrap()),
        Next::Tell(RegEvent::Registered { expires: 120 })
    );
    // The refresh is due 30 s before the 120 s run out, not before.
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(90)));
    assert!(!r.handle_timeout(t0 + Duration::from_secs(89)));
    assert!(r.handle_timeout(t0 + Duration::from_secs(90)));
    let refresh = r.request(VIA, CONTACT, "c3");
    assert!(accepted(&refresh), "the refresh reuses the challenge");
    // A response to an older request is ignored.
    assert_eq!(
        r.on_response(t0, &Message::parse(&ok).unwrap()),
        Next::Nothing
    );
}

#[test]
fn a_wrong_password_stops_and_a_stale_nonce_is_answered_again() {
    let t0 = Instant::now();
    let mut r = registration();
    let c = format!(
        "WWW-Authenticate: {}\r\n",
        challenge(Algorithm::Md5, "club-a.test", "n1", false)
    );
    let first = r.request(VIA, CONTACT, "c1");
    assert_eq!(
        r.on_response(
            t0,
            &Message::parse(&respond(&first, 401, "Unauthorized", &c)).unwrap()
        ),
        Next::Send
    );
    let second = r.request(VIA, CONTACT, "c2");
    // Stale: answered once more with the new nonce.
    let stale = format!(
        "WWW-Authenticate: {}\r\n",
        challenge(Algorithm::Md5, "club-a.test", "n2", true)
    );
    assert_eq!(
        r.on_response(
            t0,
            &Message::parse(&respond(&second, 401, "Unauthorized", &stale)).unwrap()
        ),
        Next::Send
    );
    let third = r.request(VIA, CONTACT, "c3");
    assert!(String::from_utf8_lossy(&third).contains("nonce=\"n2\""));
    // Refused again, not stale: the password is wrong; no retry is scheduled.
    let next = r.on_response(
        t0,
        &Message::parse(&respond(&third, 401, "Unauthorized", &c)).unwrap(),
    );
    assert!(
        matches!(next, Next::Tell(RegEvent::Failed { code: 401, ref reason }) if reason.contains("password")),
        "{next:?}"
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn failures_retry_with_a_growing_pause_and_423_raises_the_expiry() {
    let t0 = Instant::now();
    let mut r = registration();
    let mut at = t0;
    let mut pauses = Vec::new();
    for _ in 0..8 {
        r.request(VIA, CONTACT, "c");
        let e = r.on_no_answer(at);
        assert_eq!(
            e,
            RegEvent::Failed {
                code: 0,
                reason: "the server did not answer".into()
            }
        );
        let wake = r.poll_timeout().unwrap();
        pauses.push((wake - at).as_secs());
        at = wake;
        assert!(r.handle_timeout(at));
    }
    assert_eq!(pauses, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    // 503 is a failure too; a 200 resets the pause.
    let req = r.request(VIA, CONTACT, "c");
    let next = r.on_response(
        at,
        &Message::parse(&respond(&req, 503, "Service Unavailable", "")).unwrap(),
    );
    assert!(matches!(
        next,
        Next::Tell(RegEvent::Failed { code: 503, .. })
    ));
    // 423 with Min-Expires: asked again at once with that much.
    let req = r.request(VIA, CONTACT, "c");
    assert_eq!(
        r.on_response(
            at,
            &Message::parse(&respond(
                &req,
                423,
                "Interval Too Brief",
                "Min-Expires: 900\r\n"
            ))
            .unwrap()
        ),
        Next::Send
    );
    let again = r.request(VIA, CONTACT, "c");
    assert_eq!(Message::parse(&again).unwrap().expires(), Some(Some(900)));
}

#[test]
fn leaving_asks_for_zero_seconds_and_nothing_follows() {
    let t0 = Instant::now();
    let mut r = registration();
    let first = r.request(VIA, CONTACT, "c1");
    let ok = respond(&first, 200, "OK", "Expires: 600\r\n");
    assert!(matches!(
        r.on_response(t0, &Message::parse(&ok).unwrap()),
        Next::Tell(RegEvent::Registered { .. })
    ));
    r.leave();
    assert_eq!(r.poll_timeout(), None, "no refresh after goodbye");
    let bye = r.request(VIA, CONTACT, "c2");
    assert_eq!(Message::parse(&bye).unwrap().expires(), Some(Some(0)));
    let ok = respond(&bye, 200, "OK", "");
    assert_eq!(
        r.on_response(t0, &Message::parse(&ok).unwrap()),
        Next::Tell(RegEvent::Unregistered)
    );
    // A failure while leaving is said, and not retried.
    let mut r = registration();
    r.leave();
    r.request(VIA, CONTACT, "c");
    assert!(matches!(r.on_no_answer(t0), RegEvent::Failed { .. }));
    assert_eq!(r.poll_timeout(), None);
}

//! Presence on the wire (issue #8): openline as the presence agent of its users. Scripted
//! phones subscribe, register, publish and unsubscribe; what the NOTIFYs say is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod baresip;
mod cluster;
mod federation;
mod tui_phone;

use openline_tests::phone::{Phone, Received};
use openline_tests::subject::Subject;
use openline_tests::wire::{header, status};
use std::time::Duration;

const DOMAIN: &str = "openline.test";
const ARRIVES: Duration = Duration::from_secs(5);

fn server() -> Subject {
    Subject::start_with_users(
        &[
            ("alice@openline.test", "pw-a"),
            ("bob@openline.test", "pw-b"),
        ],
        &[],
    )
}

/// A SUBSCRIBE from `phone` to `presentity` (`user@domain`) with `expires`, in the dialog
/// `(call_id, to_tag)` when given: the final response.
fn subscribe(
    phone: &mut Phone,
    presentity: &str,
    expires: u32,
    dialog: Option<(&str, &str)>,
    event: &str,
) -> Vec<u8> {
    let uri = format!("sip:{presentity}");
    let to = match dialog {
        Some((_, tag)) => format!("<{uri}>;tag={tag}"),
        None => format!("<{uri}>"),
    };
    let extra = format!(
        "Event: {event}\r\nExpires: {expires}\r\nAccept: application/pidf+xml\r\nContact: <sip:{}>\r\n",
        phone.addr
    );
    phone
        .last_response_in(dialog.map(|d| d.0), "SUBSCRIBE", &uri, &to, &extra, "", b"")
        .expect("an answer to SUBSCRIBE")
}

/// The next NOTIFY, and whether its PIDF says open (None: no body).
fn next_notify(phone: &mut Phone) -> (Received, Option<bool>) {
    let n = phone
        .requests("NOTIFY", 1, ARRIVES)
        .into_iter()
        .next()
        .expect("a NOTIFY");
    let body = n.body();
    let open = if body.contains("<basic>open</basic>") {
        Some(true)
    } else if body.contains("<basic>closed</basic>") {
        Some(false)
    } else {
        None
    };
    (n, open)
}

fn publish(phone: &mut Phone, body: &str, extra: &str) -> Vec<u8> {
    let uri = format!("sip:{}", phone.aor());
    let extra =
        format!("Event: presence\r\nExpires: 600\r\nContent-Type: application/pidf+xml\r\n{extra}");
    phone
        .last_response(
            "PUBLISH",
            &uri,
            &format!("<{uri}>"),
            &extra,
            "",
            body.as_bytes(),
        )
        .expect("an answer to PUBLISH")
}

fn pidf(entity: &str, basic: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         entity=\"sip:{entity}\"><tuple id=\"t\"><status><basic>{basic}</basic></status><note>{note}</note></tuple></presence>"
    )
}

#[test]
fn alice_sees_bob_come_online_set_a_note_and_leave() {
    let server = server();
    let mut alice = Phone::new("alice", DOMAIN, "pw-a", server.udp);
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", server.udp);
    let ok = subscribe(&mut alice, "bob@openline.test", 600, None, "presence");
    assert_eq!(status(&ok), Some(200), "{}", String::from_utf8_lossy(&ok));
    let to_tag = header(&ok, "To", Some("t"))
        .and_then(|t| t.split("tag=").nth(1).map(str::to_string))
        .expect("a To tag");
    let call_id = header(&ok, "Call-ID", Some("i")).unwrap();
    let (first, open) = next_notify(&mut alice);
    assert_eq!(open, Some(false), "nobody registered: closed");
    assert!(
        first
            .header("Subscription-State")
            .unwrap()
            .starts_with("active")
    );
    assert_eq!(first.header("Event").as_deref(), Some("presence"));

    assert_eq!(bob.register(300), 200);
    let (_, open) = next_notify(&mut alice);
    assert_eq!(open, Some(true), "bob registered: open");

    let published = publish(
        &mut bob,
        &pidf("bob@openline.test", "open", "in a meeting"),
        "",
    );
    assert_eq!(status(&published), Some(200));
    assert!(header(&published, "SIP-ETag", None).is_some());
    let (noted, open) = next_notify(&mut alice);
    assert_eq!(open, Some(true));
    assert!(noted.body().contains("in a meeting"), "{}", noted.body());

    // A malformed PIDF is refused and changes nothing.
    let refused = publish(&mut bob, "<presence><oops", "");
    assert_eq!(
        status(&refused),
        Some(400),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert!(
        alice
            .requests("NOTIFY", 1, Duration::from_millis(500))
            .is_empty()
    );

    assert_eq!(bob.register(0), 200);
    let (gone, open) = next_notify(&mut alice);
    assert_eq!(open, Some(false), "bob unregistered: closed");
    assert!(gone.body().contains("in a meeting"), "the note stays");

    let bye = subscribe(
        &mut alice,
        "bob@openline.test",
        0,
        Some((&call_id, &to_tag)),
        "presence",
    );
    assert_eq!(status(&bye), Some(200));
    let (last, _) = next_notify(&mut alice);
    assert!(
        last.header("Subscription-State")
            .unwrap()
            .starts_with("terminated")
    );
}

#[test]
fn when_bob_s_binding_lapses_alice_hears_him_go_offline_at_once() {
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "pw-a"),
            ("bob@openline.test", "pw-b"),
        ],
        &["--min-expires", "1"],
    );
    let mut alice = Phone::new("alice", DOMAIN, "pw-a", server.udp);
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", server.udp);
    assert_eq!(
        status(&subscribe(
            &mut alice,
            "bob@openline.test",
            600,
            None,
            "presence"
        )),
        Some(200)
    );
    next_notify(&mut alice);
    assert_eq!(bob.register(2), 200);
    assert_eq!(next_notify(&mut alice).1, Some(true));
    // Bob's phone never refreshes: he is offline when his binding lapses, within the 5 s
    // next_notify waits (the purge that also notices it runs once a minute).
    let (_, open) = next_notify(&mut alice);
    assert_eq!(open, Some(false));
}

#[test]
fn one_subscriber_holds_no_more_subscriptions_than_configured() {
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "pw-a"),
            ("bob@openline.test", "pw-b"),
            ("carol@openline.test", "pw-c"),
        ],
        &["--max-subscriptions", "2"],
    );
    let mut alice = Phone::new("alice", DOMAIN, "pw-a", server.udp);
    for who in ["bob@openline.test", "carol@openline.test"] {
        let ok = subscribe(&mut alice, who, 600, None, "presence");
        assert_eq!(status(&ok), Some(200));
    }
    let refused = subscribe(&mut alice, "alice@openline.test", 600, None, "presence");
    assert_eq!(
        status(&refused),
        Some(403),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert!(String::from_utf8_lossy(&refused).contains("at most 2 subscriptions"));
    // Someone else is not held to alice's count.
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", server.udp);
    assert_eq!(
        status(&subscribe(
            &mut bob,
            "carol@openline.test",
            600,
            None,
            "presence"
        )),
        Some(200)
    );
}

#[test]
fn an_unknown_event_gets_489_and_a_stranger_learns_nothing() {
    let server = server();
    let mut alice = Phone::new("alice", DOMAIN, "pw-a", server.udp);
    let refused = subscribe(&mut alice, "bob@openline.test", 600, None, "dialog");
    assert_eq!(status(&refused), Some(489));
    assert_eq!(
        header(&refused, "Allow-Events", None).as_deref(),
        Some("presence")
    );
    // Too brief: 423 with the shortest the server takes.
    let brief = subscribe(&mut alice, "bob@openline.test", 5, None, "presence");
    assert_eq!(status(&brief), Some(423));
    assert_eq!(header(&brief, "Min-Expires", None).as_deref(), Some("60"));
    // Someone of another domain: pending, and its NOTIFYs carry no presence.
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", server.udp);
    assert_eq!(bob.register(300), 200);
    let mut mallory = Phone::new("mallory", "elsewhere.test", "x", server.udp);
    let pending = subscribe(&mut mallory, "bob@openline.test", 600, None, "presence");
    assert_eq!(
        status(&pending),
        Some(202),
        "{}",
        String::from_utf8_lossy(&pending)
    );
    let (n, open) = next_notify(&mut mallory);
    assert_eq!(open, None, "no body: {}", String::from_utf8_lossy(&n.raw));
    assert!(
        n.header("Subscription-State")
            .unwrap()
            .starts_with("pending")
    );
    // And a stranger may not publish for bob.
    let forged = mallory
        .last_response(
            "PUBLISH",
            "sip:bob@openline.test",
            "<sip:bob@openline.test>",
            "Event: presence\r\nContent-Type: application/pidf+xml\r\n",
            "",
            pidf("bob@openline.test", "closed", "gone").as_bytes(),
        )
        .unwrap();
    assert_eq!(status(&forged), Some(403));
}

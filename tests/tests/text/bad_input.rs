//! What the text path refuses, and how it says so: types it does not carry, bodies too large
//! for the limit or for UDP, a full mailbox, a user who does not exist; and a device that does
//! not answer.

use super::*;
use openline_tests::wire::{first_line, header};

/// The final response to a MESSAGE from `phone` with this type and body.
fn refused(phone: &mut Phone, content_type: &str, body: &[u8]) -> Vec<u8> {
    let uri = "sip:bob@openline.test";
    let extra = format!("Content-Type: {content_type}\r\n");
    phone
        .last_response("MESSAGE", uri, &format!("<{uri}>"), &extra, "", body)
        .expect("a final response")
}

#[test]
fn unsupported_types_and_oversized_bodies_are_refused_with_the_reason() {
    let server = server_on(&sqlite_db("text-refused"), &["--max-message-body", "2000"]);
    let mut alice = phone("alice", &server);

    let r = refused(&mut alice, "application/json", b"{}");
    assert!(
        first_line(&r).starts_with("SIP/2.0 415 "),
        "{}",
        first_line(&r)
    );
    assert_eq!(
        header(&r, "Accept", None).as_deref(),
        Some("text/plain, message/cpim")
    );

    let r = refused(&mut alice, "text/plain", &[b'x'; 2001]);
    assert!(
        first_line(&r).starts_with("SIP/2.0 413 "),
        "{}",
        first_line(&r)
    );
    assert!(first_line(&r).contains("2000 bytes"), "{}", first_line(&r));

    // Within the limit but too large for UDP (RFC 3428 section 4).
    let r = refused(&mut alice, "text/plain", &[b'x'; 1500]);
    assert!(
        first_line(&r).starts_with("SIP/2.0 513 "),
        "{}",
        first_line(&r)
    );
    assert!(
        first_line(&r).contains("use TCP or TLS"),
        "{}",
        first_line(&r)
    );

    assert_eq!(alice.message("nobody@openline.test", "hello?"), 404);
    // Nothing of that was stored: bob's first device gets nothing.
    let mut bob = phone("bob", &server);
    assert_eq!(bob.register(3600), 200);
    assert!(bob.messages(1, QUIET).is_empty());
}

#[test]
fn a_full_mailbox_refuses_more_and_keeps_what_it_accepted() {
    let server = server_on(&sqlite_db("text-quota"), &["--message-quota", "3"]);
    let mut alice = phone("alice", &server);
    for i in 0..3 {
        assert_eq!(alice.message("bob@openline.test", &format!("q{i}")), 202);
    }
    let uri = "sip:bob@openline.test";
    let r = alice
        .last_response(
            "MESSAGE",
            uri,
            &format!("<{uri}>"),
            "Content-Type: text/plain\r\n",
            "",
            b"one too many",
        )
        .unwrap();
    assert!(
        first_line(&r).starts_with("SIP/2.0 480 "),
        "{}",
        first_line(&r)
    );
    assert!(
        first_line(&r).contains("mailbox is full"),
        "{}",
        first_line(&r)
    );

    let mut bob = phone("bob", &server);
    assert_eq!(bob.register(3600), 200);
    assert_eq!(bodies(&bob.messages(3, ARRIVES)), ["q0", "q1", "q2"]);
    assert!(bob.messages(1, QUIET).is_empty(), "each once");
    // Delivered, the mailbox has room again; and bob is online now.
    let (code, got) = send_while_receiving(
        &mut alice,
        "bob@openline.test",
        "room again",
        &mut [&mut bob],
        1,
        ARRIVES,
    );
    assert_eq!(code, 200);
    assert_eq!(bodies(&got[0]), ["room again"]);
}

#[test]
fn a_device_that_does_not_answer_gets_it_stored_for_later() {
    let dir = scratch_dir("text-silent");
    let config = dir.join("openline.toml");
    std::fs::write(&config, "[text]\ndevice_wait_ms = 300\n").unwrap();
    let server = server_on(
        &sqlite_db("text-silent-db"),
        &["--config", config.to_str().unwrap()],
    );
    let (mut alice, mut bob) = (phone("alice", &server), phone("bob", &server));
    assert_eq!(bob.register(3600), 200);
    bob.answer = None;
    let (code, got) = send_while_receiving(
        &mut alice,
        "bob@openline.test",
        "wake up",
        &mut [&mut bob],
        1,
        ARRIVES,
    );
    assert_eq!(code, 202, "nobody took it: stored");
    assert_eq!(bodies(&got[0]), ["wake up"], "it was offered");
    // The device comes back to life and registers again: the stored copy comes, once.
    bob.answer = Some(200);
    assert_eq!(bob.register(3600), 200);
    let got = bob.messages(1, ARRIVES);
    assert_eq!(bodies(&got), ["wake up"]);
    assert!(got[0].header("Date").is_some());
    assert!(bob.messages(1, QUIET).is_empty());
}

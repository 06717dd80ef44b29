#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use openline_registrar::store::NewMessage;
use openline_sip::Transport;
use openline_sip::transaction::Destination;

fn target() -> Target {
    Target::hop(
        Some("sip:bob@127.0.0.1:5070".into()),
        Destination {
            transport: Transport::Udp,
            addr: "127.0.0.1:5070".parse().unwrap(),
        },
        None,
    )
}

fn stored(id: i64) -> StoredMessage {
    StoredMessage {
        id,
        message: NewMessage {
            recipient: "bob@a".into(),
            sender: "<sip:alice@a>".into(),
            content_type: "text/plain".into(),
            body: format!("m{id}").into_bytes(),
            accepted_at: 1,
            expires_at: 2,
            sent_to: None,
            request_key: None,
        },
    }
}

fn key() -> DeviceKey {
    ("bob@a".into(), "phone".into())
}

/// Drives the outbox as the core does: each Send gets client id `1000 + message id`.
fn sends(outbox: &mut Outbox<u64>, out: &mut Vec<OutboxAction>) -> Vec<i64> {
    let mut sent = Vec::new();
    for action in std::mem::take(out) {
        match action {
            OutboxAction::Send(k, m, _) => {
                outbox.sent(&k, 1000 + m.id as u64, m.id);
                sent.push(m.id);
            }
            other => out.push(other),
        }
    }
    sent
}

#[test]
fn messages_go_one_at_a_time_in_order_page_after_page_and_each_is_settled() {
    let mut o = Outbox::<u64>::default();
    let mut out = Vec::new();
    o.start("bob@a", "phone", target(), &mut out);
    assert_eq!(out, [OutboxAction::Read(key())]);
    assert!(o.is_active("bob@a", "phone"));
    out.clear();
    o.loaded(&key(), Some(vec![stored(1), stored(2)]), &mut out);
    assert_eq!(sends(&mut o, &mut out), [1], "one at a time");
    assert!(o.on_response(1001, 100, &mut out));
    assert!(out.is_empty());
    o.on_response(1001, 200, &mut out);
    assert_eq!(out[0], OutboxAction::Delivered(1, key()));
    out.remove(0);
    assert_eq!(sends(&mut o, &mut out), [2]);
    o.on_response(1002, 202, &mut out);
    assert_eq!(
        out,
        [OutboxAction::Delivered(2, key()), OutboxAction::Read(key())]
    );
    out.clear();
    o.loaded(&key(), Some(vec![stored(3)]), &mut out);
    assert_eq!(sends(&mut o, &mut out), [3]);
    // A device that refuses one outright does not hold back the rest.
    o.on_response(1003, 415, &mut out);
    assert_eq!(
        out,
        [OutboxAction::Delivered(3, key()), OutboxAction::Read(key())]
    );
    out.clear();
    o.loaded(&key(), Some(Vec::new()), &mut out);
    assert!(out.is_empty());
    assert!(o.is_empty(), "nothing more owed: done");
}

#[test]
fn a_device_that_does_not_answer_keeps_its_messages_for_its_next_registration() {
    let mut o = Outbox::<u64>::default();
    let mut out = Vec::new();
    o.start("bob@a", "phone", target(), &mut out);
    out.clear();
    o.loaded(&key(), Some(vec![stored(1), stored(2)]), &mut out);
    sends(&mut o, &mut out);
    assert!(o.on_failure(1001, &mut out));
    assert!(out.is_empty(), "nothing settled");
    assert!(o.is_empty());
    assert!(!o.on_response(1001, 200, &mut out), "forgotten");
    // It registers again: read afresh from the store.
    o.start("bob@a", "phone", target(), &mut out);
    assert_eq!(out, [OutboxAction::Read(key())]);
}

#[test]
fn what_is_stored_while_a_read_is_under_way_is_read_before_ending() {
    let mut o = Outbox::<u64>::default();
    let mut out = Vec::new();
    o.start("bob@a", "phone", target(), &mut out);
    out.clear();
    // A copy stored meanwhile asks again: no second session, but one more read.
    o.start("bob@a", "phone", target(), &mut out);
    assert!(out.is_empty());
    o.loaded(&key(), Some(Vec::new()), &mut out);
    assert_eq!(out, [OutboxAction::Read(key())]);
    out.clear();
    o.loaded(&key(), Some(vec![stored(4)]), &mut out);
    assert_eq!(sends(&mut o, &mut out), [4]);
    // A failed read ends it quietly.
    o.on_response(1004, 200, &mut out);
    out.clear();
    o.loaded(&key(), None, &mut out);
    assert!(o.is_empty());
}

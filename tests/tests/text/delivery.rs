//! Delivery: online devices at once, offline ones when they register, in order, once each,
//! after a crash too; copies for the sender's other devices. Each scenario runs on SQLite and
//! on PostgreSQL.

use super::*;
use openline_tests::fresh_postgres_database;

/// bob's phone is online, his laptop known but offline: the phone gets it at once and the
/// sender hears 200; the laptop gets it, with the sender and the time, when it registers;
/// neither gets it twice.
fn online_now_offline_later(db: &str) {
    let server = server_on(db, &[]);
    let (mut alice, mut phone, mut laptop) = (
        phone("alice", &server),
        phone("bob", &server),
        phone("bob", &server),
    );
    assert_eq!(laptop.register(3600), 200);
    assert_eq!(laptop.register(0), 200, "the laptop goes offline");
    assert_eq!(phone.register(3600), 200);

    let (code, got) = send_while_receiving(
        &mut alice,
        "bob@openline.test",
        "are you there?",
        &mut [&mut phone],
        1,
        ARRIVES,
    );
    assert_eq!(code, 200, "a device took it");
    assert_eq!(bodies(&got[0]), ["are you there?"]);
    assert_eq!(
        got[0][0].header("Proxy-Authorization"),
        None,
        "alice's credentials stop at her proxy"
    );

    assert_eq!(laptop.register(3600), 200);
    let later = laptop.messages(1, ARRIVES);
    assert_eq!(bodies(&later), ["are you there?"]);
    let m = &later[0];
    assert!(
        m.header("From")
            .unwrap()
            .contains("sip:alice@openline.test"),
        "{:?}",
        m.header("From")
    );
    assert!(m.header("To").unwrap().contains("sip:bob@openline.test"));
    let date = m.header("Date").expect("a stored message carries its Date");
    assert!(date.ends_with(" GMT"), "{date}");
    // Exactly once, on each device.
    assert!(laptop.messages(1, QUIET).is_empty());
    assert!(phone.messages(1, Duration::from_millis(10)).is_empty());
    assert_eq!(laptop.register(3600), 200, "a refresh brings nothing again");
    assert!(laptop.messages(1, QUIET).is_empty());
}

/// A 202 is a promise: the server is killed right after it, starts again, and the message
/// reaches bob's device once.
fn survives_kill_9_after_202(db: &str) {
    let mut server = server_on(db, &[]);
    let mut alice = phone("alice", &server);
    assert_eq!(
        alice.message("bob@openline.test", "kept through a crash"),
        202
    );
    server.kill();
    let restarted = Subject::start_on(db, &[]);
    let mut bob = phone("bob", &restarted);
    assert_eq!(bob.register(3600), 200);
    assert_eq!(bodies(&bob.messages(1, ARRIVES)), ["kept through a crash"]);
    assert!(bob.messages(1, QUIET).is_empty(), "once");
    // Delivered is durable too: after another crash it does not come back.
    drop(restarted);
    let again = Subject::start_on(db, &[]);
    bob.set_server(again.udp);
    assert_eq!(bob.register(3600), 200);
    assert!(
        bob.messages(1, QUIET).is_empty(),
        "not again after a restart"
    );
}

/// 1,000 messages to a user with no device at all arrive complete and in order at the first
/// device that registers.
fn a_thousand_in_order(db: &str) {
    const N: usize = 1000;
    let server = server_on(db, &[]);
    let mut alice = phone("alice", &server);
    for i in 0..N {
        assert_eq!(
            alice.message("carol@openline.test", &format!("m{i:04}")),
            202,
            "message {i}"
        );
    }
    let mut carol = phone("carol", &server);
    assert_eq!(carol.register(3600), 200);
    let got = carol.messages(N, Duration::from_secs(120));
    let want: Vec<String> = (0..N).map(|i| format!("m{i:04}")).collect();
    assert_eq!(bodies(&got), want);
    assert!(carol.messages(1, QUIET).is_empty(), "none twice");
}

/// What alice sends from her phone reaches her laptop at once and her tablet when it
/// registers, marked as her own.
fn copies_for_the_senders_other_devices(db: &str) {
    let server = server_on(db, &[]);
    let (mut a_phone, mut a_laptop, mut a_tablet, mut bob) = (
        phone("alice", &server),
        phone("alice", &server),
        phone("alice", &server),
        phone("bob", &server),
    );
    assert_eq!(a_tablet.register(3600), 200);
    assert_eq!(a_tablet.register(0), 200);
    assert_eq!(a_laptop.register(3600), 200);
    assert_eq!(a_phone.register(3600), 200);
    assert_eq!(bob.register(3600), 200);
    let (code, got) = send_while_receiving(
        &mut a_phone,
        "bob@openline.test",
        "lunch at one?",
        &mut [&mut bob, &mut a_laptop],
        1,
        ARRIVES,
    );
    assert_eq!(code, 200);
    assert_eq!(bodies(&got[0]), ["lunch at one?"], "bob");
    assert_eq!(bodies(&got[1]), ["lunch at one?"], "alice's laptop");
    let copy = &got[1][0];
    assert_eq!(copy.header("Openline-Copy").as_deref(), Some("sent"));
    assert!(
        copy.header("From")
            .unwrap()
            .contains("sip:alice@openline.test")
    );
    assert!(copy.header("To").unwrap().contains("sip:bob@openline.test"));
    assert!(
        a_phone.messages(1, QUIET).is_empty(),
        "the sending device gets no copy"
    );
    assert_eq!(a_tablet.register(3600), 200);
    let later = a_tablet.messages(1, ARRIVES);
    assert_eq!(bodies(&later), ["lunch at one?"]);
    assert_eq!(later[0].header("Openline-Copy").as_deref(), Some("sent"));
    assert!(
        a_laptop.messages(1, QUIET).is_empty(),
        "the laptop got its copy once"
    );
}

#[test]
fn online_now_offline_later_on_sqlite() {
    online_now_offline_later(&sqlite_db("text-online"));
}

#[test]
fn online_now_offline_later_on_postgresql() {
    online_now_offline_later(&fresh_postgres_database("openline_text_online"));
}

#[test]
fn survives_kill_9_after_202_on_sqlite() {
    survives_kill_9_after_202(&sqlite_db("text-kill"));
}

#[test]
fn survives_kill_9_after_202_on_postgresql() {
    survives_kill_9_after_202(&fresh_postgres_database("openline_text_kill"));
}

#[test]
fn a_thousand_in_order_on_sqlite() {
    a_thousand_in_order(&sqlite_db("text-thousand"));
}

#[test]
fn a_thousand_in_order_on_postgresql() {
    a_thousand_in_order(&fresh_postgres_database("openline_text_thousand"));
}

#[test]
fn copies_for_the_senders_other_devices_on_sqlite() {
    copies_for_the_senders_other_devices(&sqlite_db("text-copies"));
}

#[test]
fn copies_for_the_senders_other_devices_on_postgresql() {
    copies_for_the_senders_other_devices(&fresh_postgres_database("openline_text_copies"));
}

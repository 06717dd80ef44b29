//! Text between two openline domains over TLS: alice@club-a.test writes to bob@club-b.test,
//! whose server fans it out or stores it; bob answers the other way. Each server knows the
//! other from its peer table.

use super::*;
use openline_tests::certs::TestPki;

/// club-a.test's and club-b.test's TLS ports (fixed: each must be in the other's table).
const A_TLS: u16 = 5291;
const B_TLS: u16 = 5292;

fn domain_phone(user: &str, domain: &str, server: &Subject) -> Phone {
    Phone::new(user, domain, &password(user), server.udp)
}

#[test]
fn two_domains_text_each_other_online_and_offline() {
    let dir = scratch_dir("text-federation");
    let pki = TestPki::new(&dir);
    let server = |domain: &str, user: &str, port: u16, other: (&str, u16)| {
        let db = sqlite_db(&format!("text-{domain}"));
        add_user(&db, &format!("{user}@{domain}"), &password(user));
        openline_tests::certs::federated_server(&pki, &db, domain, port, other)
    };
    let a = server("club-a.test", "alice", A_TLS, ("club-b.test", B_TLS));
    let b = server("club-b.test", "bob", B_TLS, ("club-a.test", A_TLS));
    let mut alice = domain_phone("alice", "club-a.test", &a);
    let mut bob = domain_phone("bob", "club-b.test", &b);
    assert_eq!(alice.register(3600), 200);

    // bob is offline (never registered): club-b stores it and the 202 comes back.
    assert_eq!(
        alice.message("bob@club-b.test", "first, while you were away"),
        202
    );
    assert_eq!(bob.register(3600), 200);
    let got = bob.messages(1, ARRIVES);
    assert_eq!(bodies(&got), ["first, while you were away"]);
    assert!(
        got[0]
            .header("From")
            .unwrap()
            .contains("sip:alice@club-a.test")
    );
    assert!(bob.messages(1, QUIET).is_empty(), "once");

    // Online: bob's device takes it and alice hears its 200.
    let (code, got) = send_while_receiving(
        &mut alice,
        "bob@club-b.test",
        "and now live",
        &mut [&mut bob],
        1,
        ARRIVES,
    );
    assert_eq!(code, 200);
    assert_eq!(bodies(&got[0]), ["and now live"]);

    // The other way.
    let (code, got) = send_while_receiving(
        &mut bob,
        "alice@club-a.test",
        "hello from club-b",
        &mut [&mut alice],
        1,
        ARRIVES,
    );
    assert_eq!(code, 200);
    assert_eq!(bodies(&got[0]), ["hello from club-b"]);
    assert!(
        got[0][0]
            .header("From")
            .unwrap()
            .contains("sip:bob@club-b.test")
    );
    assert!(bob.messages(1, QUIET).is_empty(), "nothing twice");
}

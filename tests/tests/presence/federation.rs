//! Presence between two openline domains over TLS (issue #8 items 2 and 3): alice@club-a
//! subscribes to bob@club-b through both servers; she is pending (club-b reveals nothing)
//! until bob writes to her; from then on she sees him, online and with his note.

use super::*;
use openline_tests::certs::TestPki;
use openline_tests::subject::{add_user, scratch_dir};

const A_TLS: u16 = 5293;

/// `openline presence ACTION bob@club-b.test dave@club-a.test` on club-b's database.
fn presence_cli(action: &str, db: &str) {
    let out = std::process::Command::new(openline_tests::subject::openline_bin())
        .args([
            "presence",
            action,
            "bob@club-b.test",
            "dave@club-a.test",
            "--db",
            db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
const B_TLS: u16 = 5297;

#[test]
fn across_domains_a_watcher_is_pending_until_the_presentity_writes_to_her() {
    let dir = scratch_dir("presence-federation");
    let pki = TestPki::new(&dir);
    let db_of = |domain: &str| format!("sqlite://{}/{domain}.db", dir.display());
    let server = |domain: &str, user: &str, password: &str, port: u16, other: (&str, u16)| {
        let db = db_of(domain);
        add_user(&db, &format!("{user}@{domain}"), password);
        openline_tests::certs::federated_server(&pki, &db, domain, port, other)
    };
    add_user(&db_of("club-a.test"), "dave@club-a.test", "pw-d");
    let a = server(
        "club-a.test",
        "alice",
        "pw-a",
        A_TLS,
        ("club-b.test", B_TLS),
    );
    let b = server("club-b.test", "bob", "pw-b", B_TLS, ("club-a.test", A_TLS));
    let mut alice = Phone::new("alice", "club-a.test", "pw-a", a.udp);
    let mut bob = Phone::new("bob", "club-b.test", "pw-b", b.udp);
    assert_eq!(alice.register(3600), 200);
    assert_eq!(bob.register(3600), 200);

    let pending = subscribe(&mut alice, "bob@club-b.test", 600, None, "presence");
    assert_eq!(
        status(&pending),
        Some(202),
        "{}",
        String::from_utf8_lossy(&pending)
    );
    let (n, open) = next_notify(&mut alice);
    assert_eq!(
        open,
        None,
        "club-b says nothing yet: {}",
        String::from_utf8_lossy(&n.raw)
    );
    assert!(
        n.header("Subscription-State")
            .unwrap()
            .starts_with("pending")
    );
    assert!(n.header("From").unwrap().contains("sip:bob@club-b.test"));

    // Bob writes to alice: club-b lets her see him, and tells her at once.
    // (alice's scripted phone is not reading while bob waits: club-a stores it, 202.)
    let sent = bob.message("alice@club-a.test", "hi alice");
    assert!(matches!(sent, 200 | 202), "{sent}");
    let (active, open) = next_notify(&mut alice);
    assert!(
        active
            .header("Subscription-State")
            .unwrap()
            .starts_with("active")
    );
    assert_eq!(open, Some(true), "bob is online: {}", active.body());
    let _ = alice.messages(1, ARRIVES);

    // Someone claiming to be alice, straight to club-b over UDP (not through club-a's
    // server, whose certificate vouches for its users): still pending, still nothing.
    let mut forger = Phone::new("alice", "club-a.test", "guess", b.udp);
    let pending = subscribe(&mut forger, "bob@club-b.test", 600, None, "presence");
    assert_eq!(status(&pending), Some(202));
    assert_eq!(next_notify(&mut forger).1, None);

    let noted = publish(
        &mut bob,
        &pidf("bob@club-b.test", "open", "at the club"),
        "",
    );
    assert_eq!(status(&noted), Some(200));
    let (n, _) = next_notify(&mut alice);
    assert!(n.body().contains("at the club"), "{}", n.body());

    // dave@club-a is pending until bob's operator lets him see bob explicitly; the running
    // server picks the permission up from the database by itself.
    let mut dave = Phone::new("dave", "club-a.test", "pw-d", a.udp);
    assert_eq!(dave.register(3600), 200);
    let pending = subscribe(&mut dave, "bob@club-b.test", 600, None, "presence");
    assert_eq!(status(&pending), Some(202));
    assert_eq!(next_notify(&mut dave).1, None);
    presence_cli("allow", &db_of("club-b.test"));
    let (active, open) = next_notify(&mut dave);
    assert!(
        active
            .header("Subscription-State")
            .unwrap()
            .starts_with("active")
    );
    assert_eq!(open, Some(true));

    // Denied again: his subscription turns pending and says nothing more.
    presence_cli("deny", &db_of("club-b.test"));
    let (pending, open) = next_notify(&mut dave);
    assert!(
        pending
            .header("Subscription-State")
            .unwrap()
            .starts_with("pending")
    );
    assert_eq!(open, None);

    // club-b restarts: subscriptions are gone (alice's refresh would get 481), but what bob's
    // server learnt and was told is in its database. alice subscribes again and sees him at
    // once; dave stays pending. (club-a's TLS connection to the old club-b is dead: the
    // SUBSCRIBE must go over a new one, not be written into the old one and lost.)
    drop(b);
    let b = server("club-b.test", "bob", "pw-b", B_TLS, ("club-a.test", A_TLS));
    let mut bob = Phone::new("bob", "club-b.test", "pw-b", b.udp);
    assert_eq!(bob.register(3600), 200);
    let again = subscribe(&mut alice, "bob@club-b.test", 600, None, "presence");
    assert_eq!(
        status(&again),
        Some(200),
        "{}",
        String::from_utf8_lossy(&again)
    );
    let (n, open) = next_notify(&mut alice);
    assert_eq!(open, Some(true), "learnt before the restart: {}", n.body());
    let pending = subscribe(&mut dave, "bob@club-b.test", 600, None, "presence");
    assert_eq!(status(&pending), Some(202), "denied before the restart");
    assert_eq!(next_notify(&mut dave).1, None);
}

//! Interop (issue #8 item 5): baresip's presence module watches an openline user and sees
//! him come online and go offline. (baresip-ua loads no presence module; it is loaded with
//! /insmod, and the contact is marked `;presence=p2p` through the CONTACTS line; TRACE=1 has
//! it print the SIP it sees.)

use super::*;
use openline_tests::baresip::Ua;
use openline_tests::subject::scratch_dir;

/// How many times baresip said bob's status changed, and the last thing it said of it.
fn changes(carol: &Ua) -> (usize, String) {
    let said = carol.said();
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("<sip:bob@openline.test> changed status from"))
        .collect();
    (
        lines.len(),
        lines.last().map(|l| l.to_string()).unwrap_or_default(),
    )
}

fn wait_for_changes(carol: &Ua, n: usize) -> String {
    for _ in 0..100 {
        let (count, last) = changes(carol);
        if count >= n {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "baresip saw bob change {n} times? It said:\n{}",
        carol.said()
    );
}

#[test]
fn baresip_sees_an_openline_user_come_online_and_go() {
    let server = Subject::start_with_users(
        &[
            ("carol@openline.test", "s3cret"),
            ("bob@openline.test", "pw-b"),
        ],
        &[],
    );
    let dir = scratch_dir("presence-baresip");
    let mut carol = Ua::start(
        server.udp,
        "carol@openline.test",
        5496,
        dir.join("carol.log"),
        &[
            (
                "CONTACTS",
                "sip:bob@openline.test>;presence=p2p;x=<sip:unused",
            ),
            ("TRACE", "1"),
        ],
    );
    carol.command("/insmod presence");
    carol.wait_for("Subscribing to 1 contacts");
    // Its subscription is in place once openline's first NOTIFY (closed) reached it: TRACE
    // prints the SIP it gets. (baresip tells a change only between two known states.)
    carol.wait_for("Subscription-State: active");
    let mut bob = Phone::new("bob", DOMAIN, "pw-b", server.udp);
    assert_eq!(bob.register(300), 200);
    let online = wait_for_changes(&carol, 1);
    assert!(
        online.ends_with("Online\u{1b}[;m") || online.contains("to \u{1b}[32mOnline"),
        "{online}"
    );
    assert_eq!(bob.register(0), 200);
    let offline = wait_for_changes(&carol, 2);
    assert!(offline.contains("to \u{1b}[31mOffline"), "{offline}");
    carol.quit();
}

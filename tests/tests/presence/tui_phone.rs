//! tui-phone shows who is online (issue #8 item 4): alice's phone watches bob; his phone
//! registering, setting a note and quitting each reach alice as a presence event.

use super::*;
use openline_tests::subject::scratch_dir;
use openline_tests::tui_phone::TuiPhone;

#[test]
fn alice_s_tui_phone_sees_bob_s_come_online_set_a_note_and_go() {
    let server = server();
    let dir = scratch_dir("presence-tui");
    let mut alice = TuiPhone::start(
        "alice@openline.test",
        "pw-a",
        server.udp,
        &dir.join("alice"),
    );
    alice.expect("registered", ARRIVES);
    alice.command("watch bob@openline.test");
    let first = alice.expect("presence", ARRIVES);
    assert!(first.contains("\"state\":\"offline\""), "{first}");
    let mut bob = TuiPhone::start("bob@openline.test", "pw-b", server.udp, &dir.join("bob"));
    bob.expect("registered", ARRIVES);
    let online = alice.expect("presence", ARRIVES);
    assert!(
        online.contains("\"who\":\"sip:bob@openline.test\""),
        "{online}"
    );
    assert!(online.contains("\"state\":\"online\""), "{online}");
    bob.command("note in a meeting");
    assert!(bob.expect("note_set", ARRIVES).contains("\"ok\":true"));
    let noted = alice.expect("presence", ARRIVES);
    assert!(noted.contains("\"note\":\"in a meeting\""), "{noted}");
    bob.command("quit");
    bob.expect("unregistered", ARRIVES);
    let gone = alice.expect("presence", ARRIVES);
    assert!(gone.contains("\"state\":\"offline\""), "{gone}");
}

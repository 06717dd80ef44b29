//! Two tui-phones in headless mode through openline (issue #7 item 5, text so far): both
//! register, alice writes to bob, bob's phone shows the message, alice's the 200; bob quits
//! (unregistering), a message to him is stored (202) and shown when the same phone is back.

use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::tui_phone::TuiPhone;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn two_headless_phones_register_and_text_through_openline() {
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "pw-a"),
            ("bob@openline.test", "pw-b"),
        ],
        &[],
    );
    let (alice_dir, bob_dir) = (scratch_dir("phone-alice"), scratch_dir("phone-bob"));
    let mut alice = TuiPhone::start("alice@openline.test", "pw-a", server.udp, &alice_dir);
    let mut bob = TuiPhone::start("bob@openline.test", "pw-b", server.udp, &bob_dir);
    assert!(alice.expect("registered", WAIT).contains("\"expires\":"));
    bob.expect("registered", WAIT);
    alice.command("msg sip:bob@openline.test hello from the terminal");
    let got = bob.expect("message", WAIT);
    assert!(
        got.contains("\"text\":\"hello from the terminal\""),
        "{got}"
    );
    assert!(
        got.contains("\"from\":\"sip:alice@openline.test\""),
        "{got}"
    );
    let result = alice.expect("message_result", WAIT);
    assert!(result.contains("\"status\":200"), "{result}");
    // Bob quits (unregistering); alice's next message is stored (202), and shown when he is
    // back.
    bob.command("quit");
    bob.expect("unregistered", WAIT);
    drop(bob);
    alice.command("msg bob@openline.test while you were out");
    let stored = alice.expect("message_result", WAIT);
    assert!(stored.contains("\"status\":202"), "{stored}");
    // The same data folder: the same device (+sip.instance), owed what was stored for it.
    let mut bob = TuiPhone::start("bob@openline.test", "pw-b", server.udp, &bob_dir);
    bob.expect("registered", WAIT);
    let later = bob.expect("message", WAIT);
    assert!(later.contains("while you were out"), "{later}");
    assert!(
        !later.contains("\"date\":null"),
        "a stored message is dated: {later}"
    );
    // A wrong password is said, not retried for ever.
    let mut mallory = TuiPhone::start(
        "alice@openline.test",
        "guess",
        server.udp,
        &scratch_dir("phone-mallory"),
    );
    let failed = mallory.expect("registration_failed", WAIT);
    assert!(failed.contains("password"), "{failed}");
}

//! The web phone in a real browser (issue #23): Debian's chromium, headless, opens the page
//! openline serves over HTTPS, signs in over the server's WSS listener with JsSIP, gets the
//! message that waited while it was away, chats both ways with a desk phone and sees it
//! online, then offline; the
//! screenshot is kept (`chat.png` in the scratch directory) for a person to look at.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_tests::browser::Tab;
use openline_tests::certs::TestPki;
use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, scratch_dir};
use std::time::Duration;

mod calls;
mod forks;
mod kamailio;

/// The tab's `audio` answer: packets received, energy received, packets sent.
pub(crate) fn audio_of(answer: &str) -> (u64, f64, u64) {
    let parts: Vec<&str> = answer.split(' ').collect();
    assert_eq!(parts.first(), Some(&"audio"), "{answer}");
    assert!(parts.len() == 4, "audio flowed: {answer}");
    (
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        parts[3].parse().unwrap(),
    )
}

const ARRIVES: Duration = Duration::from_secs(15);

/// A server with alice and bob, a WSS listener and the web phone over HTTPS (a certificate
/// for 127.0.0.1 from a test CA); the page's URL.
fn web_server(dir: &std::path::Path) -> (Subject, String) {
    let pki = TestPki::new(dir);
    let cert = pki.issue_for_address("server", "127.0.0.1".parse().unwrap());
    let web = format!("127.0.0.1:{}", openline_tests::pebble::free_port());
    let mut args = pki.serve_args(&cert);
    args.extend([
        "--listen".into(),
        "wss:127.0.0.1:0".into(),
        "--web".into(),
        format!("https:{web}"),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "ecila"),
            ("bob@openline.test", "bob-pw"),
            ("carol@openline.test", "s3cret"),
            ("dave@openline.test", "s3cret"),
        ],
        &args,
    );
    (server, format!("https://{web}/phone/"))
}

#[test]
fn a_tab_signs_in_gets_what_waited_and_chats_both_ways_with_a_desk_phone() {
    let dir = scratch_dir("web-phone");
    let (server, url) = web_server(&dir);
    let mut alice = Phone::new("alice", "openline.test", "ecila", server.udp);
    assert_eq!(alice.register(600), 200);
    assert_eq!(
        alice.message("bob@openline.test", "waiting for you"),
        202,
        "bob has no device yet: stored"
    );

    let (mut tab, first) = Tab::open(&url, ("bob@openline.test", "bob-pw"), &dir);
    assert_eq!(first, "signed-in");
    assert_eq!(
        tab.command("expect alice@openline.test waiting for you"),
        "seen",
        "what waited arrives when the tab registers"
    );

    // Online now: alice's message is answered by the tab itself.
    let sent = std::thread::scope(|s| {
        let sender = s.spawn(|| alice.message("bob@openline.test", "are you there?"));
        assert_eq!(
            tab.command("expect alice@openline.test are you there?"),
            "seen"
        );
        sender.join().unwrap()
    });
    assert_eq!(sent, 200, "delivered to the tab");

    // And back: typed in the tab, it reaches alice's desk phone.
    let (answer, got) = std::thread::scope(|s| {
        let receiver = s.spawn(|| alice.messages(1, ARRIVES));
        (
            tab.command("send see you at noon"),
            receiver.join().unwrap(),
        )
    });
    assert_eq!(answer, "sent delivered");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), "see you at noon");
    assert!(
        got[0]
            .header("From")
            .unwrap()
            .contains("sip:bob@openline.test")
    );
    // A call to bob, whose only device is the tab: it rings there (the relay offers the tab
    // WebRTC for the desk phone's PCMU) and, cancelled, shows as missed.
    let call = openline_tests::sipp::call(
        &dir,
        server.udp,
        "uac-auth-ring-cancel.xml",
        ("alice", "openline.test", "ecila"),
        ("bob", "openline.test"),
        Duration::from_secs(30),
    );
    assert!(
        call.status.success(),
        "{}",
        String::from_utf8_lossy(&call.stdout)
    );
    assert_eq!(
        tab.command("notice alice@openline.test Missed call"),
        "seen"
    );

    // alice is registered: online; she unregisters: offline.
    assert_eq!(
        tab.command("presence alice@openline.test online"),
        "presence online"
    );
    assert_eq!(tab.command("shot chat"), "shot");
    assert_eq!(alice.register(0), 200);
    assert_eq!(
        tab.command("presence alice@openline.test offline"),
        "presence offline"
    );
    assert!(std::fs::metadata(dir.join("chat.png")).unwrap().len() > 10_000);
}

/// Two tabs of one person (a laptop and a phone's browser): a message to them reaches both,
/// and what one sends shows in the other as sent from another device.
#[test]
fn two_tabs_of_one_person_share_the_conversation() {
    let dir = scratch_dir("web-phone-tabs");
    let (server, url) = web_server(&dir);
    let (mut laptop, first) = Tab::open(&url, ("bob@openline.test", "bob-pw"), &dir);
    assert_eq!(first, "signed-in");
    let (mut phone, first) = Tab::open(&url, ("bob@openline.test", "bob-pw"), &dir);
    assert_eq!(first, "signed-in");
    let mut alice = Phone::new("alice", "openline.test", "ecila", server.udp);
    assert_eq!(alice.register(600), 200);

    assert_eq!(alice.message("bob@openline.test", "to both of you"), 200);
    assert_eq!(
        laptop.command("expect alice@openline.test to both of you"),
        "seen"
    );
    assert_eq!(
        phone.command("expect alice@openline.test to both of you"),
        "seen"
    );

    let (answer, got) = std::thread::scope(|s| {
        let receiver = s.spawn(|| alice.messages(1, ARRIVES));
        (
            laptop.command("send typed on the laptop"),
            receiver.join().unwrap(),
        )
    });
    assert_eq!(answer, "sent delivered");
    assert_eq!(got.len(), 1);
    assert_eq!(
        phone.command("mine alice@openline.test typed on the laptop"),
        "seen",
        "the other tab shows it as sent by bob"
    );
    assert_eq!(phone.command("shot other-tab"), "shot");
}

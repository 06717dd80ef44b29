//! A person with a desk phone and a browser tab (issue #23): both ring, each offered what it
//! can take (plain RTP for the desk phone, WebRTC for the tab), and whichever answers has
//! audio both ways. dave's baresip calls carol and her tab answers (the relay's browsers'
//! session wins); bob's tab calls carol and her desk phone answers (bob's offer goes to the
//! tab untouched and to the desk phone through the bridge, which wins).

use super::calls::signed_in_tab;
use super::*;
use openline_tests::audio::{hears, recording};
use openline_tests::baresip::Ua;

#[test]
fn a_desk_phone_and_a_tab_of_one_person_both_ring_and_either_answers_with_audio() {
    let dir = scratch_dir("web-phone-fork");
    let (server, url) = web_server(&dir);
    let desk_heard = dir.join("desk-heard.wav");
    let mut desk = Ua::start_with_audio(
        server.udp,
        "carol@openline.test",
        5592,
        dir.join("desk.log"),
        &[],
        ("sine:700", desk_heard.to_str().unwrap()),
    );
    let mut carols_tab = signed_in_tab(&url, &dir, ("carol@openline.test", "s3cret"));
    let dave_heard = dir.join("dave-heard.wav");
    let mut dave = Ua::start_with_audio(
        server.udp,
        "dave@openline.test",
        5594,
        dir.join("dave.log"),
        &[],
        ("sine:1000", dave_heard.to_str().unwrap()),
    );

    // dave's phone calls carol: her desk phone and her tab ring; the tab answers.
    dave.command("/dial sip:carol@openline.test");
    desk.wait_for("Incoming call from:");
    assert!(
        carols_tab
            .command("callstate incoming")
            .starts_with("callstate incoming Incoming call"),
        "the tab rings beside the desk phone"
    );
    assert_eq!(carols_tab.command("press answer"), "pressed");
    dave.wait_for("Call established");
    let (received, energy, sent) = audio_of(&carols_tab.command("audio"));
    assert!(
        received > 100 && sent > 100 && energy > 0.0,
        "dave heard in the tab: {received} in, {sent} out, energy {energy}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(carols_tab.command("press hangup"), "pressed");
    dave.wait_for("session closed");
    dave.quit();
    let (share, _) = hears(&recording(&dave_heard), 440.0);
    assert!(share > 0.7, "dave hears the tab's 440 Hz: {share}");

    // bob's tab calls carol: both ring again; her desk phone answers this time.
    let mut bobs_tab = signed_in_tab(&url, &dir, ("bob@openline.test", "bob-pw"));
    assert_eq!(bobs_tab.command("call carol@openline.test"), "calling");
    desk.wait_for_count("Incoming call from:", 2, Duration::from_secs(20));
    assert!(
        carols_tab
            .command("callstate incoming")
            .starts_with("callstate incoming"),
        "the tab rings too"
    );
    desk.command("/accept");
    assert!(
        bobs_tab
            .command("callstate active")
            .starts_with("callstate active In call")
    );
    assert_eq!(
        carols_tab.command("notice bob@openline.test answered on another device"),
        "seen"
    );
    let (received, energy, sent) = audio_of(&bobs_tab.command("audio"));
    assert!(
        received > 100 && sent > 100 && energy > 0.0,
        "the desk phone heard in bob's tab: {received} in, {sent} out, energy {energy}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(bobs_tab.command("press hangup"), "pressed");
    desk.wait_for("session closed");
    desk.quit();
    let (share, _) = hears(&recording(&desk_heard), 440.0);
    assert!(share > 0.7, "the desk phone hears bob's 440 Hz: {share}");
}

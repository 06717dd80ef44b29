//! tui-phone and baresip call each other through openline, audio both ways.

use super::*;
use openline_tests::baresip::Ua;

#[test]
fn tui_phone_calls_baresip_over_sdes_srtp_and_each_hears_the_other() {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir("calls-tui-to-baresip");
    let (tone, heard, baresip_heard) = (
        dir.join("tone.wav"),
        dir.join("alice-heard.wav"),
        dir.join("carol-heard.wav"),
    );
    tone_wav(&tone, 440.0, 10);
    let mut carol = Ua::start_with_audio(
        server.udp,
        "carol@openline.test",
        5392,
        dir.join("carol.log"),
        &[("MEDIAENC", "srtp")],
        ("sine:1000", baresip_heard.to_str().unwrap()),
    );
    let mut alice = phone(
        "alice@openline.test",
        &server,
        &dir,
        (Some(&tone), Some(&heard)),
    );
    alice.command("call carol@openline.test");
    carol.wait_for("Incoming call from:");
    carol.command("/accept");
    let up = alice.expect_call_state("established", WAIT);
    assert!(
        up.contains("\"srtp\":true"),
        "baresip took the SDES key: {up}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup");
    carol.wait_for("session closed");
    eprintln!("{}", alice.expect("media_stats", WAIT));
    alice.expect("call_ended", WAIT);
    carol.quit();
    let (share, _) = hears(&recording(&heard), 1_000.0);
    assert!(share > 0.7, "alice hears baresip's 1 kHz: {share}");
    let (share, _) = hears(&recording(&baresip_heard), 440.0);
    assert!(share > 0.7, "baresip hears alice's 440 Hz: {share}");
}

#[test]
fn baresip_calls_tui_phone_with_pcmu_and_each_hears_the_other() {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir("calls-baresip-to-tui");
    let (tone, heard, baresip_heard) = (
        dir.join("tone.wav"),
        dir.join("bob-heard.wav"),
        dir.join("carol-heard.wav"),
    );
    tone_wav(&tone, 440.0, 10);
    let mut bob = phone(
        "bob@openline.test",
        &server,
        &dir,
        (Some(&tone), Some(&heard)),
    );
    let mut carol = Ua::start_with_audio(
        server.udp,
        "carol@openline.test",
        5394,
        dir.join("carol.log"),
        &[("CODECS", "PCMU/8000/1")],
        ("sine:1000", baresip_heard.to_str().unwrap()),
    );
    carol.command("/dial sip:bob@openline.test");
    assert!(
        bob.expect("incoming_call", WAIT)
            .contains("sip:carol@openline.test")
    );
    bob.command("answer");
    let up = bob.expect_call_state("established", WAIT);
    assert!(
        up.contains("\"codec\":\"PCMU\"") && up.contains("\"srtp\":false"),
        "{up}"
    );
    carol.wait_for("Call established");
    std::thread::sleep(Duration::from_secs(3));
    carol.command("/hangup");
    eprintln!("{}", bob.expect("media_stats", WAIT));
    let ended = bob.expect("call_ended", WAIT);
    assert!(ended.contains("the other side hung up"), "{ended}");
    carol.quit();
    let (share, _) = hears(&recording(&heard), 1_000.0);
    assert!(share > 0.7, "bob hears baresip's 1 kHz over PCMU: {share}");
    let (share, _) = hears(&recording(&baresip_heard), 440.0);
    assert!(share > 0.7, "baresip hears bob's 440 Hz over PCMU: {share}");
}

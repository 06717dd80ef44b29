//! Calls between the web phone and baresip through openline's WebRTC gateway: the tab's
//! microphone is a 440 Hz WAV, baresip sends 1 kHz and records what it hears. Each side's
//! audio is measured where it arrives: the tab's getStats (packets and audio energy
//! received), baresip's recording (the share of the loudest second at 440 Hz).

use super::*;
use openline_tests::audio::{hears, recording, tone_wav};
use openline_tests::baresip::Ua;

/// A signed-in tab for `credentials` whose microphone plays 440 Hz (`DIR/mic.wav`, written
/// by the first tab of a test).
pub(super) fn signed_in_tab(url: &str, dir: &std::path::Path, credentials: (&str, &str)) -> Tab {
    let mic = dir.join("mic.wav");
    if !mic.exists() {
        tone_wav(&mic, 440.0, 60);
    }
    let (tab, first) = Tab::open_with_microphone(url, credentials, dir, Some(&mic));
    assert_eq!(first, "signed-in");
    tab
}

/// carol's baresip on SIP port `port`, with `env` settings, sending 1 kHz and recording what
/// the last call brought to `heard` (`-`: nowhere).
fn carol(
    server: &Subject,
    dir: &std::path::Path,
    port: u16,
    (env, heard): (&[(&str, &str)], &str),
) -> Ua {
    Ua::start_with_audio(
        server.udp,
        "carol@openline.test",
        port,
        dir.join("carol.log"),
        env,
        ("sine:1000", heard),
    )
}

const BOB: (&str, &str) = ("bob@openline.test", "bob-pw");

#[test]
fn a_tab_calls_baresip_and_each_hears_the_other_with_dtmf_and_hold() {
    let dir = scratch_dir("web-phone-call-out");
    let (server, url) = web_server(&dir);
    let carol_heard = dir.join("carol-heard.wav");
    let mut carol = carol(&server, &dir, 5396, (&[], carol_heard.to_str().unwrap()));
    let mut tab = signed_in_tab(&url, &dir, BOB);

    assert_eq!(tab.command("call carol@openline.test"), "calling");
    carol.wait_for("Incoming call from:");
    assert!(
        tab.command("callstate ringing")
            .starts_with("callstate ringing Ringing")
    );
    carol.command("/accept");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active In call")
    );
    carol.wait_for("Call established");
    let (received, energy, sent) = audio_of(&tab.command("audio"));
    assert!(
        received > 100 && sent > 100,
        "packets both ways: {received} in, {sent} out"
    );
    assert!(
        energy > 0.0,
        "baresip's tone is heard in the tab (energy {energy})"
    );
    assert_eq!(tab.command("shot in-call"), "shot");
    assert_eq!(tab.command("sdp"), "sdp");

    // DTMF as RFC 4733 events through the gateway: baresip reports each key's end.
    assert_eq!(tab.command("dtmf 42#"), "dialed 42#");
    carol.wait_for("received event: '4' (end=1)");
    carol.wait_for("received event: '#' (end=1)");

    // Hold and resume: re-INVITEs through the gateway, the call survives both.
    assert_eq!(tab.command("press hold"), "pressed");
    assert!(
        tab.command("callstate held")
            .starts_with("callstate held On hold")
    );
    assert_eq!(tab.command("press hold"), "pressed");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active In call")
    );
    std::thread::sleep(Duration::from_secs(2));

    assert_eq!(tab.command("press hangup"), "pressed");
    carol.wait_for("session closed");
    assert!(tab.command("callstate idle").starts_with("callstate idle"));
    assert_eq!(
        tab.command("notice carol@openline.test Outgoing call"),
        "seen"
    );
    carol.quit();
    let (share, _) = hears(&recording(&carol_heard), 440.0);
    assert!(share > 0.7, "baresip hears the tab's 440 Hz: {share}");
}

#[test]
fn baresip_calls_a_tab_that_answers_and_both_hear_each_other_over_pcmu() {
    let dir = scratch_dir("web-phone-call-in");
    let (server, url) = web_server(&dir);
    let carol_heard = dir.join("carol-heard.wav");
    let mut tab = signed_in_tab(&url, &dir, BOB);
    let mut carol = carol(
        &server,
        &dir,
        5398,
        (&[("CODECS", "PCMU/8000/1")], carol_heard.to_str().unwrap()),
    );
    carol.command("/dial sip:bob@openline.test");
    assert!(
        tab.command("callstate incoming")
            .starts_with("callstate incoming Incoming call")
    );
    assert_eq!(tab.command("shot incoming"), "shot");
    assert_eq!(tab.command("press answer"), "pressed");
    carol.wait_for("Call established");
    assert!(
        tab.command("callstate active")
            .starts_with("callstate active")
    );
    let (received, energy, sent) = audio_of(&tab.command("audio"));
    assert!(
        received > 100 && sent > 100 && energy > 0.0,
        "{received} {energy} {sent}"
    );
    std::thread::sleep(Duration::from_secs(2));
    carol.command("/hangup");
    assert!(tab.command("callstate idle").starts_with("callstate idle"));
    assert_eq!(tab.command("notice carol@openline.test Call ·"), "seen");
    carol.quit();
    let (share, _) = hears(&recording(&carol_heard), 440.0);
    assert!(
        share > 0.7,
        "baresip hears the tab's 440 Hz over PCMU: {share}"
    );
}

#[test]
fn two_tabs_ring_and_the_one_not_answering_stops_with_answered_elsewhere() {
    let dir = scratch_dir("web-phone-two-ring");
    let (server, url) = web_server(&dir);
    let mut laptop = signed_in_tab(&url, &dir, BOB);
    let mut phone = signed_in_tab(&url, &dir, BOB);
    let mut carol = carol(&server, &dir, 5400, (&[], "-"));
    carol.command("/dial sip:bob@openline.test");
    assert!(
        laptop
            .command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert!(
        phone
            .command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert_eq!(laptop.command("press answer"), "pressed");
    carol.wait_for("Call established");
    assert!(
        phone
            .command("callstate idle")
            .starts_with("callstate idle")
    );
    assert_eq!(
        phone.command("notice carol@openline.test answered on another device"),
        "seen"
    );
    let (received, _, sent) = audio_of(&laptop.command("audio"));
    assert!(received > 100 && sent > 100);
    carol.command("/hangup");
    assert!(
        laptop
            .command("callstate idle")
            .starts_with("callstate idle")
    );
    carol.quit();
}

#[test]
fn a_tab_killed_mid_call_gets_the_phone_a_bye_within_the_consent_time() {
    let dir = scratch_dir("web-phone-killed");
    let (server, url) = web_server(&dir);
    let mut tab = signed_in_tab(&url, &dir, BOB);
    let mut carol = carol(&server, &dir, 5402, (&[], "-"));
    carol.command("/dial sip:bob@openline.test");
    assert!(
        tab.command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert_eq!(tab.command("press answer"), "pressed");
    carol.wait_for("Call established");
    let (received, _, _) = audio_of(&tab.command("audio"));
    assert!(received > 100);

    // The tab goes without a BYE; its media stops. The relay's leg notices (ICE consent) and
    // the proxy hangs up the desk phone's side.
    #[allow(clippy::disallowed_methods)] // the test measures a real time-out
    let killed = std::time::Instant::now();
    assert_eq!(tab.command("crash"), "crashed");
    carol.wait_for_count("session closed", 1, Duration::from_secs(40));
    let after = killed.elapsed();
    // Not the tab's own BYE (it sent none: that would come at once), the proxy's, once the
    // leg's consent checks went unanswered.
    assert!(
        after > Duration::from_secs(5) && after < Duration::from_secs(35),
        "BYE after {after:?}"
    );
    carol.quit();
}

#[test]
fn tui_phone_calls_a_tab_over_sdes_srtp_and_each_hears_the_other() {
    use openline_tests::tui_phone::TuiPhone;
    let dir = scratch_dir("web-phone-tui");
    let (server, url) = web_server(&dir);
    let (tone, heard) = (dir.join("tone.wav"), dir.join("alice-heard.wav"));
    tone_wav(&tone, 1_000.0, 30);
    let mut tab = signed_in_tab(&url, &dir, BOB);
    let mut alice = TuiPhone::start_with(
        "alice@openline.test",
        "ecila",
        server.udp,
        &dir.join("alice"),
        &[
            "--audio-in",
            tone.to_str().unwrap(),
            "--audio-out",
            heard.to_str().unwrap(),
        ],
    );
    alice.expect("registered", Duration::from_secs(10));
    alice.command("call bob@openline.test");
    assert!(
        tab.command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert_eq!(tab.command("press answer"), "pressed");
    let up = alice.expect_call_state("established", Duration::from_secs(15));
    assert!(
        up.contains("\"srtp\":true"),
        "the gateway answered tui-phone's SDES key: {up}"
    );
    let (received, energy, sent) = audio_of(&tab.command("audio"));
    assert!(
        received > 100 && sent > 100 && energy > 0.0,
        "{received} {energy} {sent}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup");
    alice.expect("call_ended", Duration::from_secs(10));
    assert!(tab.command("callstate idle").starts_with("callstate idle"));
    let (share, _) = hears(&recording(&heard), 440.0);
    assert!(
        share > 0.7,
        "tui-phone hears the tab's 440 Hz through SRTP: {share}"
    );
}

#[test]
fn a_tab_calls_another_tab_and_both_hear_each_other() {
    let dir = scratch_dir("web-phone-tab-to-tab");
    let (_server, url) = web_server(&dir);
    let mut bob = signed_in_tab(&url, &dir, BOB);
    let mut alice = signed_in_tab(&url, &dir, ("alice@openline.test", "ecila"));
    assert_eq!(bob.command("call alice@openline.test"), "calling");
    assert!(
        alice
            .command("callstate incoming")
            .starts_with("callstate incoming")
    );
    assert_eq!(alice.command("press answer"), "pressed");
    assert!(
        bob.command("callstate active")
            .starts_with("callstate active")
    );
    for tab in [&mut bob, &mut alice] {
        let (received, energy, sent) = audio_of(&tab.command("audio"));
        assert!(
            received > 100 && sent > 100 && energy > 0.0,
            "{received} {energy} {sent}"
        );
    }
    assert_eq!(alice.command("sdp"), "sdp");
    assert_eq!(bob.command("press hangup"), "pressed");
    assert!(
        alice
            .command("callstate idle")
            .starts_with("callstate idle")
    );
}

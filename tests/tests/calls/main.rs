//! Calls with tui-phone on the wire (issue #7): two headless tui-phones call each other
//! through openline (its relay anchoring the media) and the callee's recording holds the
//! caller's 440 Hz tone; tui-phone and baresip call each other with audio both ways (SDES-SRTP
//! with Opus one way, plain PCMU the other); a call to nobody ends with a clear reason; the
//! full screen in tmux (`screen.rs`); a phone behind a NAT (`nat.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod bad_answer;
mod baresip;
mod nat;
mod screen;

use openline_tests::audio::{hears, recording, tone_wav};
use openline_tests::subject::{Subject, scratch_dir};
use openline_tests::tui_phone::TuiPhone;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn users() -> [(&'static str, &'static str); 3] {
    [
        ("alice@openline.test", "pw-a"),
        ("bob@openline.test", "pw-b"),
        ("carol@openline.test", "s3cret"),
    ]
}

/// A registered headless tui-phone for `account` (one of [`users`]), its data under `dir`,
/// playing `audio_in` into calls and recording them to `audio_out`.
fn phone(
    account: &str,
    server: &Subject,
    dir: &Path,
    (audio_in, audio_out): (Option<&Path>, Option<&Path>),
) -> TuiPhone {
    let (_, password) = users()
        .into_iter()
        .find(|(a, _)| *a == account)
        .expect("one of users()");
    let mut args = Vec::new();
    for (flag, file) in [("--audio-in", audio_in), ("--audio-out", audio_out)] {
        if let Some(file) = file {
            args.extend([flag, file.to_str().unwrap()]);
        }
    }
    let user = account.split('@').next().unwrap();
    let mut phone = TuiPhone::start_with(account, password, server.udp, &dir.join(user), &args);
    phone.expect("registered", WAIT);
    phone
}

#[test]
fn two_tui_phones_call_through_openline_and_the_callee_hears_the_tone() {
    let control = "udp:127.0.0.1:5391";
    let server = Subject::start_with_users(
        &users(),
        &["--media-ports", "45000-45099", "--media-control", control],
    );
    let dir = scratch_dir("calls-two-phones");
    let (tone, heard) = (dir.join("tone.wav"), dir.join("bob-heard.wav"));
    tone_wav(&tone, 440.0, 10);
    let mut alice = phone("alice@openline.test", &server, &dir, (Some(&tone), None));
    let mut bob = phone("bob@openline.test", &server, &dir, (None, Some(&heard)));
    alice.command("call bob@openline.test");
    let incoming = bob.expect("incoming_call", WAIT);
    assert!(incoming.contains("sip:alice@openline.test"), "{incoming}");
    alice.expect_call_state("ringing", WAIT);
    bob.command("answer");
    let up = alice.expect_call_state("established", WAIT);
    assert!(
        up.contains("\"codec\":\"opus\"") && up.contains("\"srtp\":true"),
        "{up}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.command("dtmf 5#");
    assert!(bob.expect("dtmf", WAIT).contains("\"digit\":\"5\""));
    assert!(bob.expect("dtmf", WAIT).contains("\"digit\":\"#\""));
    alice.command("hangup");
    let ended = bob.expect("call_ended", WAIT);
    assert!(ended.contains("the other side hung up"), "{ended}");
    alice.expect("call_ended", WAIT);
    // The media went through openline's relay, both ways, and the session is gone.
    let (packets, sessions) =
        openline_tests::media::relayed(control.trim_start_matches("udp:").parse().unwrap());
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert!(
        packets.iter().all(|&p| p > 100),
        "RTP both ways: {packets:?}"
    );
    assert_eq!(sessions, 0);
    let (share, loud) = hears(&recording(&heard), 440.0);
    assert!(
        share > 0.7,
        "bob's recording holds alice's 440 Hz: share {share}"
    );
    assert!(loud > 0.4, "and is mostly not silence: {loud}");
}

#[test]
fn calling_nobody_ends_with_404_and_the_phone_carries_on() {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir("calls-nobody");
    let mut alice = phone("alice@openline.test", &server, &dir, (None, None));
    alice.command("call nobody@openline.test");
    let ended = alice.expect("call_ended", WAIT);
    assert!(ended.contains("\"code\":404"), "{ended}");
    alice.command("call bob@");
    let error = alice.expect("error", WAIT);
    assert!(error.contains("not an address"), "{error}");
    alice.command("msg alice@openline.test still here");
    alice.expect("message", WAIT);
}

#[test]
fn without_a_sound_card_or_wav_files_the_phone_says_calls_are_silent_and_runs() {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir("calls-no-sound");
    let mut alice = TuiPhone::start("alice@openline.test", "pw-a", server.udp, &dir);
    let has_card = std::fs::read_to_string("/proc/asound/cards")
        .is_ok_and(|cards| !cards.contains("no soundcards"));
    if has_card {
        // A machine with sound: the phone uses it and says nothing about silence.
        let first = alice.expect("registered", WAIT);
        assert!(first.contains("registered"));
    } else {
        let said = alice.expect("error", WAIT);
        assert!(
            said.contains("no sound card: calls send and play silence"),
            "{said}"
        );
        alice.expect("registered", WAIT);
    }
}

//! A callee (SIPp) answers with SDP the phone cannot use: a garbled connection address, or a
//! codec it never offered. The call ends with 488 and the reason as an event, the phone sends
//! the BYE that ends the dialog (SIPp's scenario counts it as a successful call only then), and
//! the phone carries on.

use super::*;
use openline_tests::sipp::{register_at, scenario};
use std::process::{Command, Stdio};

fn spoiled_answer(port: u16, (addr, pt, codec): (&str, &str, &str), expect: &str) {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir(&format!("calls-spoiled-{port}"));
    register_at(
        &server.udp.to_string(),
        &dir,
        "carol",
        "openline.test",
        &format!("sip:carol@127.0.0.1:{port}"),
        port + 10,
    );
    let sipp = Command::new("timeout")
        .args(["30", "sipp", "-sf"])
        .arg(scenario("uas-spoiled-answer.xml"))
        .args([
            "-key", "addr", addr, "-key", "pt", pt, "-key", "codec", codec,
        ])
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-nostdin",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (sip-tester, installed by scripts/install-test-deps)");
    let mut sipp = openline_tests::Background(sipp);
    std::thread::sleep(Duration::from_millis(300));
    let mut alice = phone("alice@openline.test", &server, &dir, (None, None));
    alice.command("call carol@openline.test");
    let ended = alice.expect("call_ended", WAIT);
    assert!(ended.contains("\"code\":488"), "{ended}");
    assert!(ended.contains(expect), "{ended}");
    // SIPp ends after the BYE it waits for: one successful call.
    let status = sipp.0.wait().unwrap();
    assert!(status.success(), "SIPp did not get its ACK and BYE");
    alice.command("msg alice@openline.test still here");
    alice.expect("message", WAIT);
}

#[test]
fn a_garbled_answer_ends_the_call_with_488_and_a_bye() {
    spoiled_answer(
        5396,
        ("not.an.address", "0", "PCMU/8000"),
        "unusable answer: garbled SDP: SDP line 4: malformed c= line",
    );
}

#[test]
fn an_answer_in_a_codec_never_offered_ends_the_call_naming_it() {
    spoiled_answer(
        5398,
        ("127.0.0.1", "97", "speex/16000"),
        "unusable answer: no codec in common (they speak: speex/16000)",
    );
}

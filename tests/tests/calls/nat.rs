//! tui-phone behind a NAT: inside the test's private network namespace an iptables SNAT rule
//! gives what the phone sends to coturn's STUN port another source (127.0.0.77:40000), as a
//! home router would. The phone learns that address from coturn, offers it in its SDP, and
//! the call through openline's relay still carries audio both ways: the relay latches on
//! where the phone's RTP really comes from.

use super::*;
use openline_tests::Background;
use std::process::Command;

/// The NAT's outside address for the phone's media socket.
const OUTSIDE: &str = "127.0.0.77:40000";
const STUN_PORT: u16 = 3591;

/// Only ever inside netns-run: the rule below must not touch a real machine's tables.
fn assert_private_namespace() {
    // Netlink, not /sys/class/net: sysfs may still show the machine's interfaces.
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    let interfaces: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect();
    assert_eq!(
        interfaces,
        ["lo"],
        "this test changes iptables: run it inside scripts/netns-run (scripts/test does)"
    );
}

/// The SNAT rule, removed when dropped.
struct Nat(Vec<String>);

impl Nat {
    fn add() -> Nat {
        let rule: Vec<String> = [
            "POSTROUTING",
            "-p",
            "udp",
            "-d",
            "127.0.0.1",
            "--dport",
            &STUN_PORT.to_string(),
            "-j",
            "SNAT",
            "--to-source",
            OUTSIDE,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ok = Command::new("iptables")
            .args(["-t", "nat", "-A"])
            .args(&rule)
            .status()
            .expect("iptables (installed by scripts/install-test-deps)")
            .success();
        assert!(ok, "iptables -t nat -A failed");
        Nat(rule)
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-t", "nat", "-D"])
            .args(&self.0)
            .status();
    }
}

#[test]
fn behind_a_nat_the_phone_offers_its_stun_address_and_the_relay_carries_the_call() {
    assert_private_namespace();
    let _nat = Nat::add();
    let _coturn = Background(
        Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip",
                "127.0.0.1",
                "-p",
                &STUN_PORT.to_string(),
            ])
            .args([
                "--no-tls",
                "--no-dtls",
                "--stun-only",
                "--no-cli",
                "--log-file",
                "stdout",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver (coturn, installed by scripts/install-test-deps)"),
    );
    let control = "udp:127.0.0.1:5395";
    let server = Subject::start_with_users(
        &users(),
        &["--media-ports", "45100-45199", "--media-control", control],
    );
    let dir = scratch_dir("calls-nat");
    let (tone, alice_heard, bob_heard) = (
        dir.join("tone.wav"),
        dir.join("alice-heard.wav"),
        dir.join("bob-heard.wav"),
    );
    tone_wav(&tone, 440.0, 10);
    let stun = format!("udp:127.0.0.1:{STUN_PORT}");
    let mut alice = TuiPhone::start_with(
        "alice@openline.test",
        "pw-a",
        server.udp,
        &dir.join("alice"),
        &[
            "--stun",
            &stun,
            "--audio-in",
            tone.to_str().unwrap(),
            "--audio-out",
            alice_heard.to_str().unwrap(),
        ],
    );
    // coturn may take a moment to listen: the phone retries (0.5, 1, 2 s ...).
    let learned = alice.expect("media_address", Duration::from_secs(15));
    assert!(learned.contains(OUTSIDE), "{learned}");
    let bob_tone = dir.join("bob-tone.wav");
    tone_wav(&bob_tone, 1_000.0, 10);
    let mut bob = phone(
        "bob@openline.test",
        &server,
        &dir,
        (Some(&bob_tone), Some(&bob_heard)),
    );
    alice.command("call bob@openline.test");
    bob.expect("incoming_call", WAIT);
    bob.command("answer");
    alice.expect_call_state("established", WAIT);
    std::thread::sleep(Duration::from_secs(3));
    alice.command("hangup");
    bob.expect("call_ended", WAIT);
    alice.expect("call_ended", WAIT);
    let (share, _) = hears(&recording(&bob_heard), 440.0);
    assert!(share > 0.7, "bob hears alice behind the NAT: {share}");
    let (share, _) = hears(&recording(&alice_heard), 1_000.0);
    assert!(share > 0.7, "alice behind the NAT hears bob: {share}");
}

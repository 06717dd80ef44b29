//! openline-media's TURN server against coturn's own client (issue #6 item 6):
//! turnutils_uclient allocates, binds channels (or sends indications) towards turnutils_peer,
//! an echo, and counts what comes back; with long-term credentials (-u/-w) and with coturn's
//! shared-secret REST credentials (-W). A relay to 127.0.0.1 is refused unless allowed.

use openline_tests::media::Media;
use openline_tests::{Background, run_peer};
use std::process::{Command, Stdio};
use std::time::Duration;

/// turnutils_peer echoing on a free loopback port.
fn echo_peer() -> (Background, u16) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let peer = Background(
        Command::new("timeout")
            .args([
                "120",
                "turnutils_peer",
                "-L",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnutils_peer (coturn is installed by scripts/install-test-deps)"),
    );
    std::thread::sleep(Duration::from_millis(300));
    (peer, port)
}

/// turnutils_uclient against `media` towards the echo on `peer_port`, `clients` clients of
/// `messages` messages each, with `auth` options: what it printed.
fn uclient(media: &Media, peer_port: u16, clients: u32, messages: u32, auth: &[&str]) -> String {
    let dir = openline_tests::subject::scratch_dir("media-turn");
    let (port, peer, m, n) = (
        media.stun.port().to_string(),
        peer_port.to_string(),
        clients.to_string(),
        messages.to_string(),
    );
    let mut args: Vec<&str> = auth.to_vec();
    args.extend([
        "-p",
        &port,
        "-e",
        "127.0.0.1",
        "-r",
        &peer,
        "-m",
        &m,
        "-n",
        &n,
    ]);
    args.extend(["-l", "160", "-z", "10", "-c", "-X", "127.0.0.1"]);
    let out = run_peer(&dir, "turnutils_uclient", args, Duration::from_secs(60));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The final "tot_send_msgs=N, tot_recv_msgs=M" of a uclient run.
fn totals(out: &str) -> Option<(u64, u64)> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
    let number = |key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((number("tot_send_msgs=")?, number("tot_recv_msgs=")?))
}

#[test]
fn coturns_client_relays_through_openline_turn_with_long_term_credentials() {
    let (_peer, peer_port) = echo_peer();
    let mut media = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-ports",
        "51000-51099",
    ]);
    // Channels (uclient's default), 4 clients x 30 messages, each echoed back.
    let out = uclient(&media, peer_port, 4, 30, &["-u", "alice", "-w", "s3cret"]);
    assert_eq!(totals(&out), Some((120, 120)), "channels: {out}");
    assert!(out.contains("Total lost packets 0 "), "{out}");
    // Send and Data indications (-s).
    let out = uclient(
        &media,
        peer_port,
        2,
        20,
        &["-s", "-u", "alice", "-w", "s3cret"],
    );
    assert_eq!(totals(&out), Some((40, 40)), "indications: {out}");
    // A wrong password gets no allocation: nothing is sent.
    let out = uclient(&media, peer_port, 1, 5, &["-u", "alice", "-w", "guess"]);
    assert!(
        out.contains("error 401") || totals(&out).is_none_or(|(_, r)| r == 0),
        "{out}"
    );
    assert!(
        totals(&out).is_none_or(|(_, r)| r == 0),
        "wrong password relayed: {out}"
    );
    media.stop();
}

#[test]
fn coturns_client_relays_with_shared_secret_credentials_but_not_to_loopback_unless_allowed() {
    let (_peer, peer_port) = echo_peer();
    let mut open = Media::start(&[
        "--turn-secret",
        "north",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-ports",
        "51100-51199",
    ]);
    let out = uclient(&open, peer_port, 2, 20, &["-W", "north", "-u", "carol"]);
    assert_eq!(totals(&out), Some((40, 40)), "REST credentials: {out}");
    open.stop();

    // The same, without --turn-allow-loopback: 403 for the channel, nothing relayed.
    let mut strict = Media::start(&[
        "--turn-secret",
        "north",
        "--realm",
        "turn.test",
        "--turn-ports",
        "51200-51299",
    ]);
    let out = uclient(&strict, peer_port, 1, 10, &["-W", "north", "-u", "carol"]);
    assert!(
        out.contains("error 403"),
        "loopback peer not refused: {out}"
    );
    assert!(
        totals(&out).is_none_or(|(_, r)| r == 0),
        "relayed to loopback: {out}"
    );
    strict.stop();
}

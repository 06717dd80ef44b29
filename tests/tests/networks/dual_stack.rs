//! Dual stack: the server on its default listeners (0.0.0.0 and [::]) with one link of each
//! family; alice (baresip) on an IPv6-only network, bob (Linphone) on an IPv4-only one. They
//! register, call each other both ways and hear each other: the relay's ports are dual-stack
//! and each side's SDP names the relay in its own family (`c=IN IP6` for alice, `IP4` for
//! bob), and the server records the route twice so each side's in-dialog requests reach it
//! on an address of its own family.

use super::*;

/// The c= lines of the first INVITE carrying `marker` in `log`.
fn connection_lines<'a>(log: &'a str, marker: &str) -> Vec<&'a str> {
    let Some(start) = log.find(marker) else {
        return Vec::new();
    };
    let invite = &log[start..];
    let end = invite[1..]
        .find("\nSIP/2.0")
        .map_or(invite.len(), |e| e + 1);
    invite[..end]
        .lines()
        .filter(|l| l.starts_with("c="))
        .collect()
}

#[test]
fn an_ipv6_only_phone_and_an_ipv4_only_phone_call_each_other_with_audio_both_ways() {
    let server_ns = Namespace::new("server");
    let v6_net = Namespace::new("v6-only");
    let v4_net = Namespace::new("v4-only");
    let v6 = Link::new(&server_ns, &v6_net, Family::V6);
    let v4 = Link::new(&server_ns, &v4_net, Family::V4);
    let server = Server::start(&server_ns, &USERS, &["--domain", "club-a.test"]);
    let dir = scratch_dir("dual-stack");
    let tone = dir.join("tone.wav");
    tone_wav(&tone, 440.0, 30);
    let bob_heard = dir.join("bob-heard.wav");
    let alice_heard = dir.join("alice-heard.wav");
    // alice prints the SIP she sees (TRACE), to read what she was offered.
    let mut alice = Ua::start_in(
        (&v6_net, v6.b(true)),
        (SocketAddr::new(v6.a(true), 5060), "alice@club-a.test", 5501),
        dir.join("alice-baresip.log"),
        &[("ANSWER", "manual"), ("TRACE", "1")],
        ("sine:1000", alice_heard.to_str().unwrap()),
    );
    let mut bob = linphone(
        (&v4_net, &dir),
        "bob@club-a.test",
        (SocketAddr::new(v4.a(false), 5060), "udp", 5503),
        (Some(&tone), Some(&bob_heard)),
    );

    // alice (IPv6) calls bob (IPv4); bob hangs up.
    baresip_calls_linphone(
        (&mut alice, "alice@club-a.test"),
        (&mut bob, "bob@club-a.test"),
    );
    let heard = heard_so_far(&bob_heard, &dir, "bob-heard-1.wav");
    assert_hears(&heard, 1000.0, "bob (IPv4), called by alice (IPv6)");
    // What bob was offered: the relay in IPv4 only.
    let bob_log = bob.log();
    let offered = connection_lines(&bob_log, "INVITE sip:bob@");
    assert!(
        !offered.is_empty() && offered.iter().all(|c| c.starts_with("c=IN IP4 ")),
        "bob must be given the relay in IPv4: {offered:?}"
    );

    // bob (IPv4) calls alice (IPv6); alice hangs up.
    linphone_calls_baresip((&mut bob, 1), (&mut alice, "alice@club-a.test"));
    let alice_log = alice.said();
    let offered = connection_lines(&alice_log, "INVITE sip:alice");
    assert!(
        !offered.is_empty() && offered.iter().all(|c| c.starts_with("c=IN IP6 ")),
        "alice must be given the relay in IPv6: {offered:?}"
    );
    alice.quit();
    assert_hears(&alice_heard, 440.0, "alice (IPv6), called by bob (IPv4)");
    bob.quit();
    assert!(!server.log().contains("ERROR"), "{}", server.log());
}

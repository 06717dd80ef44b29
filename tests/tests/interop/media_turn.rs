//! openline-media's TURN server against coturn's own client (issue #6 item 6):
//! turnutils_uclient allocates, binds channels (or sends indications) towards turnutils_peer,
//! an echo, and counts what comes back; with long-term credentials (-u/-w) and with coturn's
//! shared-secret REST credentials (-W). A relay to 127.0.0.1 is refused unless allowed.

use openline_tests::media::{Media, echo_peer, uclient, uclient_totals as totals};

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
    let out = uclient(
        media.stun,
        peer_port,
        4,
        30,
        &["-c", "-u", "alice", "-w", "s3cret"],
    );
    assert_eq!(totals(&out), Some((120, 120)), "channels: {out}");
    assert!(out.contains("Total lost packets 0 "), "{out}");
    // Send and Data indications (-s).
    let out = uclient(
        media.stun,
        peer_port,
        2,
        20,
        &["-c", "-s", "-u", "alice", "-w", "s3cret"],
    );
    assert_eq!(totals(&out), Some((40, 40)), "indications: {out}");
    // A wrong password gets no allocation: nothing is sent.
    let out = uclient(
        media.stun,
        peer_port,
        1,
        5,
        &["-c", "-u", "alice", "-w", "guess"],
    );
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
    let out = uclient(
        open.stun,
        peer_port,
        2,
        20,
        &["-c", "-W", "north", "-u", "carol"],
    );
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
    let out = uclient(
        strict.stun,
        peer_port,
        1,
        10,
        &["-c", "-W", "north", "-u", "carol"],
    );
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

#[test]
fn coturns_client_gets_an_rtp_rtcp_pair_and_relays_over_tcp_and_tls() {
    let (_peer, peer_port) = echo_peer();
    let dir = openline_tests::subject::scratch_dir("turn-tls");
    let pki = openline_tests::certs::TestPki::new(&dir);
    let cert = pki.issue("turn", &["turn.test"]);
    let (cert_file, key_file) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let mut media = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-ports",
        "51300-51399",
        "--turn-tcp",
        "tcp:127.0.0.1:0",
        "--turn-tcp",
        "tls:127.0.0.1:0",
        "--turn-cert",
        &cert_file,
        "--turn-key",
        &key_file,
    ]);
    let auth = ["-u", "alice", "-w", "s3cret"];
    // uclient's default: RTP on an even port with the next reserved (EVEN-PORT, R), RTCP on it
    // by RESERVATION-TOKEN; 508 here would stop it before it sends.
    let out = uclient(media.stun, peer_port, 2, 20, &auth);
    assert!(!out.contains("error 508"), "{out}");
    assert_eq!(totals(&out), Some((40, 40)), "RTP/RTCP pair: {out}");
    // Over TCP, then TLS, to each listener (both take either): ChannelData padded on the stream.
    for (stream, how) in [
        (media.streams[0], "-t"),
        (media.streams[1], "-S"),
        (media.streams[0], "-S"),
    ] {
        let mut options = vec!["-t", how, "-c"];
        options.extend(auth);
        let out = uclient(stream, peer_port, 2, 20, &options);
        assert_eq!(totals(&out), Some((40, 40)), "{how} to {stream}: {out}");
        assert!(out.contains("Total lost packets 0 "), "{how}: {out}");
    }
    media.stop();
}

#[test]
fn coturns_client_gets_an_ipv6_relayed_address_and_a_dual_allocation() {
    let mut media = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-relay-ip6",
        "::1",
        "--turn-ports",
        "51400-51499",
    ]);
    let (_peer4, peer_port) = echo_peer();
    let auth = ["-c", "-u", "alice", "-w", "s3cret"];
    // -Z: RFC 8656 dual allocation (ADDITIONAL-ADDRESS-FAMILY), IPv4 traffic over it.
    let mut dual = vec!["-Z"];
    dual.extend(auth);
    let out = uclient(media.stun, peer_port, 2, 20, &dual);
    assert_eq!(totals(&out), Some((40, 40)), "dual allocation: {out}");
    assert!(!out.contains("error"), "{out}");
    // -x: an IPv6 relayed address, towards an echo on [::1], for a client reaching us on IPv4.
    let (_peer6, peer6_port) = openline_tests::media::echo_peer_on("::1");
    let mut six = vec!["-x"];
    six.extend(auth);
    let out = uclient(media.stun, peer6_port, 2, 20, &six);
    assert_eq!(totals(&out), Some((40, 40)), "IPv6 relayed address: {out}");
    media.stop();
    // Without an IPv6 relay address, -x is refused with 440 and nothing is relayed.
    let mut v4_only = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-ports",
        "51500-51599",
    ]);
    let out = uclient(v4_only.stun, peer6_port, 1, 5, &six);
    assert!(out.contains("440"), "{out}");
    assert!(totals(&out).is_none_or(|(_, r)| r == 0), "{out}");
    v4_only.stop();
}

#[test]
#[allow(clippy::disallowed_methods)] // the wall-clock bound on when the server closes
fn a_turn_connection_that_never_allocates_is_closed_and_one_that_does_is_kept() {
    use std::io::Read;
    let (_peer, peer_port) = echo_peer();
    let mut media = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-ports",
        "51600-51699",
        "--turn-tcp",
        "tcp:127.0.0.1:0",
        "--turn-tcp-idle",
        "1",
    ]);
    let mut silent = std::net::TcpStream::connect(media.streams[0]).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    // The server closes it: EOF well before the 5 s read time-out.
    let started = std::time::Instant::now();
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed, not timed out");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    // A client that allocates keeps its connection past the idle time (uclient runs ~2 s).
    let out = uclient(
        media.streams[0],
        peer_port,
        1,
        100,
        &["-t", "-c", "-u", "alice", "-w", "s3cret"],
    );
    assert_eq!(totals(&out), Some((100, 100)), "{out}");
    media.stop();
}

#[test]
fn an_ipv6_client_reaches_turn_on_its_own_socket_and_relays_to_an_ipv6_peer() {
    let mut media = Media::start(&[
        "--turn-user",
        "alice:s3cret",
        "--realm",
        "turn.test",
        "--turn-allow-loopback",
        "--turn-relay-ip6",
        "::1",
        "--turn6",
        "udp:[::1]:0",
        "--turn-ports",
        "51700-51799",
    ]);
    let (_peer6, peer6_port) = openline_tests::media::echo_peer_on("::1");
    let stun6 = media.stun6.expect("the IPv6 TURN socket");
    let out = uclient(
        stun6,
        peer6_port,
        2,
        20,
        &["-x", "-c", "-u", "alice", "-w", "s3cret"],
    );
    assert_eq!(
        totals(&out),
        Some((40, 40)),
        "client and peer on IPv6: {out}"
    );
    media.stop();
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    *T0.get_or_init(Instant::now)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A 172-byte RTP packet (version 2, PCMU, 160 bytes of payload).
fn rtp() -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, 1, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe];
    p.resize(172, 0xff);
    p
}

fn relay() -> Relay {
    Relay::new(PortPool::new(30000, 30009), Duration::from_secs(30))
}

#[test]
fn media_goes_to_the_sdp_address_until_the_other_side_speaks_then_to_where_it_speaks_from() {
    let mut r = relay();
    let (id, [alice_port, bob_port]) = r.create(t0()).unwrap();
    assert_ne!(alice_port, bob_port);
    r.describe(id, Side::Offerer, addr("10.0.0.5:4000"))
        .unwrap();
    r.describe(id, Side::Answerer, addr("10.0.0.9:5000"))
        .unwrap();
    let alice = addr("203.0.113.5:41000"); // alice behind NAT: not her SDP address
    // Alice's packet goes out of bob's port to bob's SDP address.
    assert_eq!(
        r.handle(t0(), alice_port, alice, &rtp()),
        Forward::To {
            from: bob_port,
            to: addr("10.0.0.9:5000")
        }
    );
    // Bob sends from elsewhere too: it goes to where alice spoke from, not her SDP address.
    let bob = addr("198.51.100.9:62000");
    assert_eq!(
        r.handle(t0(), bob_port, bob, &rtp()),
        Forward::To {
            from: alice_port,
            to: alice
        }
    );
    // And alice's next packet goes to bob's latched address.
    assert_eq!(
        r.handle(t0(), alice_port, alice, &rtp()),
        Forward::To {
            from: bob_port,
            to: bob
        }
    );
    // RTCP, one port above, latches on its own and goes to the other's RTCP port.
    let alice_rtcp = addr("203.0.113.5:41001");
    let rtcp = [0x81, 200, 0, 6, 0xca, 0xfe, 0xba, 0xbe];
    assert_eq!(
        r.handle(t0(), alice_port + 1, alice_rtcp, &rtcp),
        Forward::To {
            from: bob_port + 1,
            to: addr("10.0.0.9:5001")
        }
    );
    let c = r.counters(id).unwrap();
    assert_eq!(c[0].packets, 3);
    assert_eq!(c[0].bytes, 2 * 172 + 8);
    assert_eq!(c[1].packets, 1);
}

#[test]
fn a_third_address_after_latching_is_not_forwarded() {
    let mut r = relay();
    let (id, [alice_port, _]) = r.create(t0()).unwrap();
    r.describe(id, Side::Answerer, addr("10.0.0.9:5000"))
        .unwrap();
    let alice = addr("203.0.113.5:41000");
    assert!(matches!(
        r.handle(t0(), alice_port, alice, &rtp()),
        Forward::To { .. }
    ));
    let intruder = addr("192.0.2.66:41000");
    assert_eq!(
        r.handle(t0(), alice_port, intruder, &rtp()),
        Forward::Drop(Dropped::WrongSource)
    );
    assert_eq!(r.counters(id).unwrap()[0].dropped, 1);
    assert_eq!(r.counters(id).unwrap()[0].packets, 1);
}

#[test]
fn only_rtp_rtcp_stun_and_dtls_pass_and_only_to_a_known_place() {
    let mut r = relay();
    let (id, [alice_port, bob_port]) = r.create(t0()).unwrap();
    let alice = addr("127.0.0.1:4000");
    assert_eq!(
        r.handle(t0(), alice_port, alice, &rtp()),
        Forward::Drop(Dropped::NoDestination)
    );
    r.describe(id, Side::Answerer, addr("127.0.0.1:5000"))
        .unwrap();
    for junk in [
        &[0x80u8, 0, 0][..],
        &[0x40; 40][..],
        &[][..],
        &[0xff; 100][..],
    ] {
        assert_eq!(
            r.handle(t0(), alice_port, alice, junk),
            Forward::Drop(Dropped::Malformed)
        );
    }
    let dtls = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let stun = [
        0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    for ok in [&dtls[..], &stun[..]] {
        assert_eq!(
            r.handle(t0(), alice_port, alice, ok),
            Forward::To {
                from: bob_port,
                to: addr("127.0.0.1:5000")
            }
        );
    }
    assert_eq!(
        r.handle(t0(), 1, alice, &rtp()),
        Forward::Drop(Dropped::UnknownPort)
    );
}

#[test]
fn a_session_without_media_ends_and_gives_its_ports_back() {
    let mut r = relay();
    assert_eq!(r.free_pairs(), 5);
    let (quiet, _) = r.create(t0()).unwrap();
    let (busy, [busy_port, _]) = r.create(t0()).unwrap();
    r.describe(busy, Side::Answerer, addr("127.0.0.1:5000"))
        .unwrap();
    assert_eq!(r.free_pairs(), 1);
    assert_eq!(r.poll_timeout(), Some(t0() + Duration::from_secs(30)));
    // Media on one of them at 20 s keeps it alive.
    r.handle(
        t0() + Duration::from_secs(20),
        busy_port,
        addr("127.0.0.1:4000"),
        &rtp(),
    );
    assert_eq!(r.handle_timeout(t0() + Duration::from_secs(30)), [quiet]);
    assert_eq!(r.len(), 1);
    assert_eq!(r.free_pairs(), 3);
    assert!(r.handle_timeout(t0() + Duration::from_secs(49)).is_empty());
    assert_eq!(r.handle_timeout(t0() + Duration::from_secs(50)), [busy]);
    assert!(r.is_empty());
    assert_eq!(r.free_pairs(), 5);
}

#[test]
fn a_full_range_refuses_a_session_and_loses_no_port() {
    let mut r = Relay::new(PortPool::new(30000, 30005), Duration::from_secs(30));
    assert_eq!(r.free_pairs(), 3);
    let (id, _) = r.create(t0()).unwrap();
    assert_eq!(r.create(t0()), Err(RelayError::PortsExhausted));
    assert_eq!(
        r.free_pairs(),
        1,
        "the pair taken for the refused session came back"
    );
    let counters = r.delete(id).unwrap();
    assert_eq!(counters, [Counters::default(); 2]);
    assert_eq!(r.free_pairs(), 3);
    assert_eq!(r.delete(id), Err(RelayError::UnknownSession(id)));
}

#[test]
fn each_leg_measures_what_its_party_sends_and_keeps_it_past_the_end() {
    let mut r = relay();
    let (id, [alice_port, bob_port]) = r.create(t0()).unwrap();
    let (alice, bob) = (addr("10.0.0.5:4000"), addr("10.0.0.9:5000"));
    r.describe(id, Side::Offerer, alice).unwrap();
    r.describe(id, Side::Answerer, bob).unwrap();
    // alice sends 1..=10 without 4; bob 1..=10; alice's RTCP RR says she lost 1/4 of bob's.
    let numbered = |seq: u16| {
        let mut p = rtp();
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p
    };
    for seq in 1..=10u16 {
        let at = t0() + Duration::from_millis(20 * u64::from(seq));
        if seq != 4 {
            r.handle(at, alice_port, alice, &numbered(seq));
        }
        r.handle(at, bob_port, bob, &numbered(seq));
    }
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 64, 0, 0, 1];
    rr.extend_from_slice(&[0u8; 16]);
    let alice_rtcp = addr("10.0.0.5:4001");
    r.handle(t0(), alice_port + 1, alice_rtcp, &rr);
    let end = t0() + Duration::from_millis(200);
    let [a, b] = r.quality(id, end).unwrap();
    assert_eq!((a.packets, a.lost, b.packets, b.lost), (9, 1, 10, 0));
    assert_eq!(a.reported.map(|q| q.fraction_lost), Some(0.25));
    assert_eq!(b.reported, None);
    r.delete(id).unwrap();
    let [a, _] = r.take_final_quality(id).unwrap();
    assert_eq!(a.lost, 1);
    assert_eq!(r.take_final_quality(id), None, "taken once");
}

#![allow(clippy::unwrap_used)]
//! The data path in virtual time: permissions, Send/Data indications, channels both ways.

use super::*;

#[test]
fn permissions_guard_both_directions_and_loopback_is_refused_unless_allowed() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let relayed = allocate(&mut s, &c, now);
    let loopback: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let r = c.request(
        CREATE_PERMMISSION,
        vec![XorPeerAddress::from(loopback).into()],
    );
    assert_eq!(
        error_code(&decode(
            &reply(s.handle_client(now, WALL, c.addr, &r)),
            None
        )),
        403
    );
    let r = c.request(
        CHANNEL_BIND,
        vec![
            ChannelNumber::new(0x4000).into(),
            XorPeerAddress::from(loopback).into(),
        ],
    );
    assert_eq!(
        error_code(&decode(
            &reply(s.handle_client(now, WALL, c.addr, &r)),
            None
        )),
        403
    );
    let v6: SocketAddr = "[2001:db8::1]:9".parse().unwrap();
    let r = c.request(CREATE_PERMMISSION, vec![XorPeerAddress::from(v6).into()]);
    assert_eq!(
        error_code(&decode(
            &reply(s.handle_client(now, WALL, c.addr, &r)),
            None
        )),
        443
    );
    let r = c.request(CREATE_PERMMISSION, vec![]);
    assert_eq!(
        error_code(&decode(
            &reply(s.handle_client(now, WALL, c.addr, &r)),
            None
        )),
        400
    );

    // A public peer: nothing passes before the permission, both ways after.
    let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let send = encode(
        SEND,
        MessageClass::Indication,
        vec![
            XorPeerAddress::from(peer).into(),
            Data::new(b"hello").into(),
        ],
    );
    assert_eq!(
        s.handle_client(now, WALL, c.addr, &send),
        FromClient::Drop(Dropped::NoPermission)
    );
    let mut buf = *b"....from peer";
    assert_eq!(
        s.handle_peer(now, relayed.port(), peer, &mut buf),
        ToClient::Drop(Dropped::NoPermission)
    );
    let r = c.request(CREATE_PERMMISSION, vec![XorPeerAddress::from(peer).into()]);
    let ok = decode(
        &reply(s.handle_client(now, WALL, c.addr, &r)),
        Some(c.key()),
    );
    assert_eq!(ok.class(), MessageClass::SuccessResponse);
    assert_eq!(
        s.handle_client(now, WALL, c.addr, &send),
        FromClient::Relay {
            port: relayed.port(),
            peer,
            payload: Cow::Owned(b"hello".to_vec())
        }
    );
    // Without a channel the peer's datagram comes as a Data indication.
    let ToClient::Send { client, bytes } = s.handle_peer(now, relayed.port(), peer, &mut buf)
    else {
        panic!("expected a Data indication");
    };
    assert_eq!(client, c.addr);
    let data = decode(&bytes, None);
    assert_eq!(data.class(), MessageClass::Indication);
    assert_eq!(
        data.get::<Data>().unwrap().as_data().unwrap().as_bytes(),
        b"from peer"
    );
    let from = data
        .get::<XorPeerAddress>()
        .unwrap()
        .as_xor_peer_address()
        .unwrap();
    assert_eq!(*from.socket_address(), peer);
    // Five minutes later the permission is gone.
    let later = now + PERMISSION_LIFETIME;
    assert_eq!(
        s.handle_client(later, WALL, c.addr, &send),
        FromClient::Drop(Dropped::NoPermission)
    );

    // Allowed by the operator: loopback peers work.
    let mut open = server(|c| c.peers.allow_loopback = true);
    let c2 = Client::new(40_001, "alice", "wonder", &open);
    allocate(&mut open, &c2, now);
    let r = c2.request(
        CREATE_PERMMISSION,
        vec![XorPeerAddress::from(loopback).into()],
    );
    let ok = decode(
        &reply(open.handle_client(now, WALL, c2.addr, &r)),
        Some(c2.key()),
    );
    assert_eq!(ok.class(), MessageClass::SuccessResponse);
}

#[test]
fn channels_carry_data_both_ways_without_copying_the_payload() {
    let mut s = server(|c| c.peers.allow_loopback = true);
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let relayed = allocate(&mut s, &c, now);
    let peer: SocketAddr = "127.0.0.1:3480".parse().unwrap();
    let data = [0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0x00];
    assert_eq!(
        s.handle_client(now, WALL, c.addr, &data),
        FromClient::Drop(Dropped::NoChannel)
    );
    for number in [0x3fff_u16, 0x8000] {
        let r = c.request(
            CHANNEL_BIND,
            vec![
                ChannelNumber::new(number).into(),
                XorPeerAddress::from(peer).into(),
            ],
        );
        assert_eq!(
            error_code(&decode(
                &reply(s.handle_client(now, WALL, c.addr, &r)),
                None
            )),
            400
        );
    }
    let r = c.request(
        CHANNEL_BIND,
        vec![
            ChannelNumber::new(0x4001).into(),
            XorPeerAddress::from(peer).into(),
        ],
    );
    let ok = decode(
        &reply(s.handle_client(now, WALL, c.addr, &r)),
        Some(c.key()),
    );
    assert_eq!(ok.class(), MessageClass::SuccessResponse);
    // Padded (as uclient -D sends) or not, the payload is the three bytes.
    for packet in [&data[..], &data[..7]] {
        let FromClient::Relay {
            port,
            peer: to,
            payload,
        } = s.handle_client(now, WALL, c.addr, packet)
        else {
            panic!("expected a relay");
        };
        assert_eq!(
            (port, to, &payload[..]),
            (relayed.port(), peer, &b"abc"[..])
        );
        assert!(matches!(payload, Cow::Borrowed(_)));
    }
    // A length past the end is malformed; a stranger's ChannelData has no allocation.
    assert_eq!(
        s.handle_client(now, WALL, c.addr, &[0x40, 0x01, 0x00, 0x09, 1]),
        FromClient::Drop(Dropped::Malformed)
    );
    let stranger: SocketAddr = "127.0.0.1:40999".parse().unwrap();
    assert_eq!(
        s.handle_client(now, WALL, ClientAddr::udp(stranger), &data),
        FromClient::Drop(Dropped::NoAllocation)
    );
    // The peer's answer: ChannelData written in front of it, in place.
    let mut buf = *b"....pong";
    let ToClient::Send { client, bytes } = s.handle_peer(now, relayed.port(), peer, &mut buf)
    else {
        panic!("expected ChannelData");
    };
    assert_eq!(client, c.addr);
    assert_eq!(
        &bytes[..],
        &[0x40, 0x01, 0x00, 0x04, b'p', b'o', b'n', b'g']
    );
    assert!(matches!(bytes, Cow::Borrowed(_)));
    // Another port of the same peer host is permitted (permissions are per IP) but has no
    // channel: a Data indication.
    let mut buf = *b"....pong";
    let other: SocketAddr = "127.0.0.1:3481".parse().unwrap();
    let ToClient::Send { bytes, .. } = s.handle_peer(now, relayed.port(), other, &mut buf) else {
        panic!("expected a Data indication");
    };
    assert_eq!(bytes[0] & 0xc0, 0, "STUN, not ChannelData");
    // A port nobody holds.
    assert_eq!(
        s.handle_peer(now, 50_009, peer, &mut buf),
        ToClient::Drop(Dropped::NoAllocation)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    /// Whatever arrives, from a client or a peer, nothing panics.
    #[test]
    fn garbage_is_dropped_or_answered_never_a_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        cookie in proptest::prelude::any::<bool>(),
    ) {
        let mut s = server(|c| c.peers.allow_loopback = true);
        let now = Instant::now();
        let c = Client::new(40_000, "alice", "wonder", &s);
        allocate(&mut s, &c, now);
        let mut packet = bytes.clone();
        if cookie && packet.len() >= 20 {
            packet[0] &= 0x3f;
            packet[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        }
        let _ = s.handle_client(now, WALL, c.addr, &packet);
        let mut buf = bytes;
        let _ = s.handle_peer(now, 50_000, "127.0.0.1:9".parse().unwrap(), &mut buf);
    }
}

#![allow(clippy::unwrap_used)]
//! Address families in virtual time: an IPv6 relayed address asked for, one of each (RFC 8656
//! dual allocation), and the refusals when the relay has no IPv6 address.

use super::*;
use stun_rs::attributes::turn::{AdditionalAddressFamily, AddressErrorCode};

fn relayed_addresses(answer: &StunMessage) -> Vec<SocketAddr> {
    answer
        .attributes()
        .iter()
        .filter_map(|a| a.as_xor_relayed_address().ok())
        .map(|a| *a.socket_address())
        .collect()
}

fn allocate_with(
    s: &mut TurnServer,
    c: &Client,
    now: Instant,
    family: StunAttribute,
) -> Result<StunMessage, u16> {
    let request = c.request(ALLOCATE, vec![RequestedTrasport::new(UDP).into(), family]);
    match s.handle_client(now, WALL, c.addr, &request) {
        FromClient::Bind(pending) => Ok(decode(&s.allocated(now, pending), Some(c.key()))),
        other => Err(error_code(&decode(&reply(other), None))),
    }
}

#[test]
fn a_dual_stack_relay_gives_ipv6_or_one_address_of_each_and_relays_each_family_from_its_own() {
    let mut s = server(|c| {
        c.relay_ip_v6 = Some("::1".parse().unwrap());
        c.peers.allow_loopback = true;
    });
    let now = Instant::now();
    let (six, dual) = (
        Client::new(40_000, "alice", "wonder", &s),
        Client::new(40_001, "alice", "wonder", &s),
    );
    let v6 = RequestedAddressFamily::new(stun_rs::AddressFamily::IPv6).into();
    let answer = allocate_with(&mut s, &six, now, v6).unwrap();
    assert_eq!(
        relayed_addresses(&answer),
        vec!["[::1]:50000".parse().unwrap()]
    );
    let both = AdditionalAddressFamily::new(stun_rs::AddressFamily::IPv6).into();
    let FromClient::Bind(pending) = s.handle_client(
        now,
        WALL,
        dual.addr,
        &dual.request(ALLOCATE, vec![RequestedTrasport::new(UDP).into(), both]),
    ) else {
        panic!("expected ports to bind");
    };
    assert_eq!(
        pending.binds(&s),
        vec![
            "127.0.0.1:50001".parse::<SocketAddr>().unwrap(),
            "[::1]:50002".parse().unwrap()
        ]
    );
    let answer = decode(&s.allocated(now, pending), Some(dual.key()));
    assert_eq!(relayed_addresses(&answer).len(), 2);
    // Permissions for a peer of each family; each is relayed to from the port of its family.
    let (p4, p6): (SocketAddr, SocketAddr) = (
        "127.0.0.1:9000".parse().unwrap(),
        "[::1]:9000".parse().unwrap(),
    );
    let r = dual.request(
        CREATE_PERMMISSION,
        vec![
            XorPeerAddress::from(p4).into(),
            XorPeerAddress::from(p6).into(),
        ],
    );
    let ok = decode(&reply(s.handle_client(now, WALL, dual.addr, &r)), None);
    assert_eq!(ok.class(), MessageClass::SuccessResponse);
    for (peer, port) in [(p4, 50_001), (p6, 50_002)] {
        let send = encode(
            SEND,
            MessageClass::Indication,
            vec![XorPeerAddress::from(peer).into(), Data::new(b"hi").into()],
        );
        let FromClient::Relay { port: from, .. } = s.handle_client(now, WALL, dual.addr, &send)
        else {
            panic!("expected a relay to {peer}");
        };
        assert_eq!(from, port, "to {peer}");
    }
    // The IPv6-only allocation may not reach an IPv4 peer: 443.
    let r = six.request(CREATE_PERMMISSION, vec![XorPeerAddress::from(p4).into()]);
    assert_eq!(
        error_code(&decode(
            &reply(s.handle_client(now, WALL, six.addr, &r)),
            None
        )),
        443
    );
}

#[test]
fn an_ipv4_relay_refuses_ipv6_and_grants_a_dual_request_its_ipv4_half() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let v6 = RequestedAddressFamily::new(stun_rs::AddressFamily::IPv6).into();
    assert_eq!(allocate_with(&mut s, &c, now, v6).unwrap_err(), 440);
    let both = AdditionalAddressFamily::new(stun_rs::AddressFamily::IPv6).into();
    let answer = allocate_with(&mut s, &c, now, both).unwrap();
    assert_eq!(
        relayed_addresses(&answer),
        vec!["127.0.0.1:50000".parse().unwrap()]
    );
    let refused = answer
        .get::<AddressErrorCode>()
        .unwrap()
        .as_address_error_code()
        .unwrap();
    assert_eq!(refused.family(), stun_rs::AddressFamily::IPv6);
    assert_eq!(refused.error_code().error_code(), 440);
    // Both family attributes at once: 400.
    let d = Client::new(40_001, "alice", "wonder", &s);
    let request = d.request(
        ALLOCATE,
        vec![
            RequestedTrasport::new(UDP).into(),
            RequestedAddressFamily::new(stun_rs::AddressFamily::IPv4).into(),
            AdditionalAddressFamily::new(stun_rs::AddressFamily::IPv6).into(),
        ],
    );
    let m = decode(&reply(s.handle_client(now, WALL, d.addr, &request)), None);
    assert_eq!(error_code(&m), 400);
}

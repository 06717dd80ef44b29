//! Routing decisions from requests alone, without a network.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

const NOW: u64 = 1_800_000_000;

fn us() -> Us {
    Us {
        domains: vec!["club-a.test".into()],
        local: vec![Listener {
            transport: Transport::Udp,
            bound: "127.0.0.1:5070".parse().unwrap(),
            advertised: None,
        }],
        peers: vec![],
        cluster: Default::default(),
        ..Default::default()
    }
}

fn binding(contact: &str, source: &str, q: u16) -> Binding {
    Binding {
        aor: "bob@club-a.test".into(),
        contact: contact.into(),
        instance: None,
        reg_id: None,
        expires_at: NOW + 60,
        q,
        call_id: "r".into(),
        cseq: 1,
        source: source.into(),
        node: String::new(),
    }
}

fn location() -> Location {
    Location::load([
        binding("sip:bob@127.0.0.1:6001", "udp:127.0.0.1:6001", 500),
        // Behind NAT: the contact names a private address; the flow is what reaches it.
        binding("sip:bob@10.0.0.7:5060", "udp:127.0.0.2:40000", 1000),
    ])
}

fn request(first_line: &str, extra: &str) -> Vec<u8> {
    let method = first_line.split(' ').next().unwrap();
    format!(
        "{first_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa\r\nFrom: <sip:alice@b.test>;tag=1\r\n\
         To: <sip:bob@club-a.test>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn decide_on(raw: &[u8]) -> Decision {
    decide_as(raw, false)
}

/// `local_sender`: the request comes from a local user who authenticated.
fn decide_as(raw: &[u8], local_sender: bool) -> Decision {
    let m = Message::parse(raw).unwrap();
    let mut us = us();
    us.peers = vec![(
        "club-b.test".into(),
        Destination {
            transport: Transport::Udp,
            addr: "127.0.0.1:5080".parse().unwrap(),
        },
    )];
    decide(
        &m,
        &us,
        &location(),
        |a| a == "carol@club-a.test" || a == "bob@club-a.test",
        NOW,
        local_sender,
    )
}

#[test]
fn a_local_user_rings_every_device_best_first_by_their_flows() {
    let Decision::Fork {
        aor,
        targets,
        route,
    } = decide_on(&request("INVITE sip:bob@club-a.test SIP/2.0", ""))
    else {
        panic!()
    };
    assert_eq!(aor, "bob@club-a.test");
    assert_eq!(route, RouteEdit::Keep);
    let got: Vec<_> = targets
        .iter()
        .map(|t| {
            (
                t.request_uri.clone().unwrap(),
                t.destination.addr.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "sip:bob@10.0.0.7:5060".to_string(),
                "127.0.0.2:40000".to_string()
            ),
            (
                "sip:bob@127.0.0.1:6001".to_string(),
                "127.0.0.1:6001".to_string()
            ),
        ]
    );
}

#[test]
fn unknown_offline_looping_and_exhausted_requests_are_refused() {
    assert_eq!(
        decide_on(&request("INVITE sip:nobody@club-a.test SIP/2.0", "")),
        Decision::Refuse(404, "Not Found")
    );
    assert!(matches!(
        decide_on(&request("INVITE sip:carol@club-a.test SIP/2.0", "")),
        Decision::Refuse(480, _)
    ));
    assert_eq!(
        decide_on(&request(
            "INVITE sip:bob@club-a.test SIP/2.0",
            "Max-Forwards: 0\r\n"
        )),
        Decision::Refuse(483, "Too Many Hops")
    );
    // Our own Via with this request's hash: it came back unchanged.
    let first = request("INVITE sip:bob@club-a.test SIP/2.0", "");
    let hash = loop_hash(&Message::parse(&first).unwrap());
    let looped = String::from_utf8(first).unwrap().replacen(
        "Via:",
        &format!(
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch={}.x\r\nVia:",
            branch_prefix(hash)
        ),
        1,
    );
    assert_eq!(
        decide_on(looped.as_bytes()),
        Decision::Refuse(482, "Loop Detected")
    );
}

#[test]
fn never_a_relay_for_strangers_but_dialogs_we_record_routed_go_on() {
    assert_eq!(
        decide_on(&request("INVITE sip:bob@b.test SIP/2.0", "")),
        Decision::Refuse(403, "Forbidden (relaying not allowed)")
    );
    // A preloaded route through us to elsewhere, outside a dialog: refused too.
    assert_eq!(
        decide_on(&request(
            "INVITE sip:bob@b.test SIP/2.0",
            "Route: <sip:127.0.0.1:5070;lr>, <sip:127.0.0.9;lr>\r\n"
        )),
        Decision::Refuse(403, "Forbidden (relaying not allowed)")
    );
    let bye = request(
        "BYE sip:alice@127.0.0.1:5061 SIP/2.0",
        "Route: <sip:127.0.0.1:5070;lr>\r\n",
    )
    .into_iter()
    .collect::<Vec<u8>>();
    let bye = String::from_utf8(bye).unwrap().replace(
        "To: <sip:bob@club-a.test>",
        "To: <sip:bob@club-a.test>;tag=9",
    );
    assert_eq!(
        decide_on(bye.as_bytes()),
        Decision::Relay {
            target: Target::hop(
                None,
                Destination {
                    transport: Transport::Udp,
                    addr: "127.0.0.1:5061".parse().unwrap()
                },
                None,
            ),
            route: RouteEdit::DropLeading(1)
        }
    );
    assert_eq!(
        decide_on(&request("OPTIONS sip:127.0.0.1:5070 SIP/2.0", "")),
        Decision::Answer
    );
}

#[test]
fn a_strict_router_before_us_is_understood() {
    let bye = String::from_utf8(request(
        "BYE sip:127.0.0.1:5070;lr SIP/2.0",
        "Route: <sip:bob@127.0.0.1:6001>\r\n",
    ))
    .unwrap()
    .replace(
        "To: <sip:bob@club-a.test>",
        "To: <sip:bob@club-a.test>;tag=9",
    );
    assert_eq!(
        decide_on(bye.as_bytes()),
        Decision::Relay {
            target: Target::hop(
                Some("sip:bob@127.0.0.1:6001".into()),
                Destination {
                    transport: Transport::Udp,
                    addr: "127.0.0.1:6001".parse().unwrap()
                },
                None,
            ),
            route: RouteEdit::DropLast
        }
    );
}

#[test]
fn only_an_authenticated_local_user_reaches_another_domain() {
    let invite = request("INVITE sip:dan@club-b.test SIP/2.0", "");
    assert_eq!(
        decide_as(&invite, false),
        Decision::Refuse(403, "Forbidden (relaying not allowed)")
    );
    let Decision::Relay { target, route } = decide_as(&invite, true) else {
        panic!()
    };
    assert_eq!(target.destination.addr, "127.0.0.1:5080".parse().unwrap());
    assert_eq!((target.request_uri, route), (None, RouteEdit::Keep));
    // A domain with no configured server is located by DNS.
    assert_eq!(
        decide_as(&request("INVITE sip:dan@Club-C.test SIP/2.0", ""), true),
        Decision::Locate {
            domain: "club-c.test".into(),
            uri: "sip:dan@Club-C.test".into(),
            route: RouteEdit::Keep
        }
    );
}

#[test]
fn a_tls_hop_of_a_dialog_must_prove_the_other_partys_domain() {
    // Bob (ours) hangs up on alice@club-b.test: the next hop is club-b's Record-Route entry.
    let bye = String::from_utf8(request(
        "BYE sip:alice@127.0.0.1:5061 SIP/2.0",
        "Route: <sip:127.0.0.1:5070;lr>, <sip:127.0.0.9:5061;transport=tls;lr>\r\n",
    ))
    .unwrap()
    .replace(
        "To: <sip:bob@club-a.test>",
        "To: <sip:alice@Club-B.test>;tag=9",
    )
    .replace("From: <sip:alice@b.test>", "From: <sip:bob@club-a.test>");
    let Decision::Relay { target, route } = decide_on(bye.as_bytes()) else {
        panic!()
    };
    assert_eq!(route, RouteEdit::DropLeading(1));
    assert_eq!(target.destination.transport, Transport::Tls);
    assert_eq!(target.destination.addr, "127.0.0.9:5061".parse().unwrap());
    assert_eq!(target.tls_name.as_deref(), Some("club-b.test"));
}

#[test]
fn an_outbound_device_is_reached_over_its_flow_even_when_its_contact_names_its_ip() {
    // A contact on the source's own IP means "that port" for a plain binding (no NAT between)...
    let plain = binding("sip:bob@127.0.0.1:6001", "udp:127.0.0.1:40000", 1000);
    assert_eq!(
        binding_destination(&plain).unwrap().addr,
        "127.0.0.1:6001".parse().unwrap()
    );
    // ...but a device that asked for outbound (RFC 5626) is always reached over its flow.
    let mut outbound = plain.clone();
    outbound.instance = Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into());
    outbound.reg_id = Some(1);
    assert_eq!(
        binding_destination(&outbound).unwrap().addr,
        "127.0.0.1:40000".parse().unwrap()
    );
    // Over a stream, the connection it registered on, whatever the contact says.
    let tcp = binding(
        "sip:bob@127.0.0.9:5060;transport=tcp",
        "tcp:127.0.0.1:40001",
        1000,
    );
    let d = binding_destination(&tcp).unwrap();
    assert_eq!(
        (d.transport, d.addr),
        (Transport::Tcp, "127.0.0.1:40001".parse().unwrap())
    );
}

#[test]
fn inside_a_dialog_a_device_behind_nat_is_reached_down_its_flow_not_at_its_contact() {
    let bye = b"BYE sip:bob@10.0.0.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKb\r\n\
Route: <sip:127.0.0.1:5070;lr>\r\nFrom: <sip:alice@b.test>;tag=1\r\nTo: <sip:bob@club-a.test>;tag=2\r\n\
Call-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    let Decision::Relay { target, .. } = decide_on(bye) else {
        panic!("not relayed: {:?}", decide_on(bye));
    };
    assert_eq!(target.destination.addr, "127.0.0.2:40000".parse().unwrap());
    // A contact no binding has goes where it says, as before.
    let other = String::from_utf8_lossy(bye).replace("10.0.0.7:5060", "127.0.0.9:5060");
    let Decision::Relay { target, .. } = decide_on(other.as_bytes()) else {
        panic!("not relayed");
    };
    assert_eq!(target.destination.addr, "127.0.0.9:5060".parse().unwrap());
}

/// A phone that changed network (Wi-Fi to mobile data) registers again with the same
/// +sip.instance: its binding is replaced at once, new calls ring only the new flow, and a
/// call it carried over with a re-INVITE (its new Contact) is reached down the new flow.
#[test]
fn a_device_that_moves_network_is_replaced_and_its_calls_follow_the_new_flow() {
    let instance = |contact: &str, source: &str| Binding {
        instance: Some("<urn:uuid:00000000-0000-4000-8000-0000000000a1>".into()),
        ..binding(contact, source, 1000)
    };
    let mut location = Location::load([instance("sip:bob@10.0.0.7:5060", "udp:127.0.0.2:40000")]);
    let moved = instance("sip:bob@10.20.0.9:5060", "udp:127.0.0.3:41000");
    location.apply(&openline_registrar::ChangeSet {
        aor: "bob@club-a.test".into(),
        upserts: vec![moved],
        removals: Vec::new(),
    });
    assert_eq!(
        location.live("bob@club-a.test", NOW).len(),
        1,
        "no ghost binding"
    );
    let us = us();
    let decide_here = |raw: &[u8]| {
        let m = Message::parse(raw).unwrap();
        decide(&m, &us, &location, |a| a == "bob@club-a.test", NOW, false)
    };
    let invite = request("INVITE sip:bob@club-a.test SIP/2.0", "");
    let Decision::Fork { targets, .. } = decide_here(&invite) else {
        panic!("not forked");
    };
    let ringing: Vec<_> = targets.iter().map(|t| t.destination.addr).collect();
    assert_eq!(ringing, ["127.0.0.3:41000".parse().unwrap()]);
    let bye = b"BYE sip:bob@10.20.0.9:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKb\r\n\
Route: <sip:127.0.0.1:5070;lr>\r\nFrom: <sip:alice@b.test>;tag=1\r\nTo: <sip:bob@club-a.test>;tag=2\r\n\
Call-ID: c\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n";
    let Decision::Relay { target, .. } = decide_here(bye) else {
        panic!("not relayed");
    };
    assert_eq!(target.destination.addr, "127.0.0.3:41000".parse().unwrap());
}

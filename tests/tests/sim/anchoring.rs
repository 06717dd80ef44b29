//! Media anchoring in the server core, in virtual time with the relay's answers played by the
//! test: the INVITE waits for its rewritten offer, the 200 for its rewritten answer; a CANCEL
//! while the offer is at the relay ends the INVITE with 487 and the call at the relay.

use openline_media::control::Command;
use openline_proxy::core::{MediaMode, ServerCore};
use openline_registrar::User;
use openline_sip::endpoint::Transmit;
use openline_sip::{SeededEntropy, Transport};
use openline_tests::wire::{first_line, status};
use std::net::SocketAddr;
use std::time::Instant;

const WALL: u64 = 1_800_000_000;
const CAROL: &str = "127.0.0.1:41000";
const BOB: &str = "127.0.0.1:42000";

fn core() -> ServerCore {
    core_with_bob_at(BOB)
}

/// The core with bob's one device at `at`.
fn core_with_bob_at(at: &str) -> ServerCore {
    let config = openline_tests::sim::core_config(MediaMode::Always);
    let bob = openline_tests::sim::udp_binding("bob@club-a.test", at, WALL + 3600);
    let mut core = ServerCore::new(
        config,
        vec![User::new("bob@club-a.test", "s3cret").unwrap()],
        vec![bob],
        Box::new(SeededEntropy::new(1)),
        Box::new(SeededEntropy::new(2)),
    );
    core.set_local(&[(Transport::Udp, "127.0.0.1:5060".parse().unwrap())]);
    core
}

const OFFER: &str = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";

/// carol@elsewhere.test (a stranger: no challenge) calls bob with SDP.
fn invite() -> Vec<u8> {
    format!(
        "INVITE sip:bob@club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP {CAROL};branch=z9hG4bKanc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\nTo: <sip:bob@club-a.test>\r\n\
         Call-ID: anchored-1\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{CAROL}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    )
    .into_bytes()
}

fn from(core: &mut ServerCore, now: Instant, who: &str, data: &[u8]) -> Vec<Transmit> {
    let addr: SocketAddr = who.parse().unwrap();
    core.handle_received(now, WALL, (Transport::Udp, addr), data, None);
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn drain(core: &mut ServerCore) -> Vec<Transmit> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn body(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn the_invite_and_the_200_each_wait_for_the_relay_and_carry_its_sdp() {
    let t0 = Instant::now();
    let mut core = core();
    let out = from(&mut core, t0, CAROL, &invite());
    assert!(
        out.iter()
            .all(|t| !first_line(&t.payload).starts_with("INVITE")),
        "not before the relay answered"
    );
    let op = core.poll_media_op().expect("an offer for the relay");
    let Command::Offer {
        call_id, tag, sdp, ..
    } = &op.command
    else {
        panic!("{op:?}")
    };
    assert_eq!(
        (call_id.as_str(), tag.as_str(), sdp.as_slice()),
        ("anchored-1", "c1", OFFER.as_bytes())
    );
    let relayed_offer = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30002 RTP/AVP 0\r\n";
    core.handle_media(t0, op.id, Ok(relayed_offer.into()));
    let out = drain(&mut core);
    let to_bob = out
        .iter()
        .find(|t| first_line(&t.payload).starts_with("INVITE"))
        .expect("the INVITE goes on");
    assert_eq!(body(&to_bob.payload), relayed_offer);
    // bob answers 200 with his SDP: held until the relay rewrote it.
    let via = openline_tests::wire::vias(&to_bob.payload);
    let answer_sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP 0\r\n";
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nVia: {}\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\n\
         To: <sip:bob@club-a.test>;tag=b1\r\nCall-ID: anchored-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:bob@{BOB}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer_sdp}",
        via[0],
        via[1],
        answer_sdp.len()
    );
    let out = from(&mut core, t0, BOB, ok.as_bytes());
    assert!(
        out.iter().all(|t| status(&t.payload) != Some(200)),
        "the 200 waits"
    );
    let op = core.poll_media_op().expect("an answer for the relay");
    assert!(
        matches!(&op.command, Command::Answer { tag, .. } if tag == "b1"),
        "{op:?}"
    );
    let relayed_answer = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
    core.handle_media(t0, op.id, Ok(relayed_answer.into()));
    let out = drain(&mut core);
    let to_carol = out
        .iter()
        .find(|t| status(&t.payload) == Some(200))
        .expect("the 200 goes to carol");
    assert_eq!(body(&to_carol.payload), relayed_answer);
    assert_eq!(
        to_carol.destination.addr,
        CAROL.parse::<SocketAddr>().unwrap()
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn a_cancel_while_the_offer_is_at_the_relay_ends_the_invite_there() {
    let t0 = Instant::now();
    let mut core = core();
    from(&mut core, t0, CAROL, &invite());
    let offer = core.poll_media_op().expect("an offer");
    let cancel = format!(
        "CANCEL sip:bob@club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP {CAROL};branch=z9hG4bKanc1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:carol@elsewhere.test>;tag=c1\r\nTo: <sip:bob@club-a.test>\r\n\
         Call-ID: anchored-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    let out = from(&mut core, t0, CAROL, cancel.as_bytes());
    let codes: Vec<u16> = out.iter().filter_map(|t| status(&t.payload)).collect();
    assert!(codes.contains(&200) && codes.contains(&487), "{codes:?}");
    let delete = core.poll_media_op().expect("the call ends at the relay");
    assert!(
        matches!(delete.command, Command::Delete { .. }),
        "{delete:?}"
    );
    // The relay's late answer to the offer changes nothing: bob is never called.
    core.handle_media(t0, offer.id, Ok(OFFER.into()));
    assert!(
        drain(&mut core)
            .iter()
            .all(|t| !first_line(&t.payload).starts_with("INVITE"))
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn an_offer_the_relay_cannot_read_is_refused_488() {
    let t0 = Instant::now();
    let mut core = core();
    from(&mut core, t0, CAROL, &invite());
    let op = core.poll_media_op().unwrap();
    let error =
        openline_media::control::ControlError::Sdp(openline_media::sdp::SdpError::BadLine(2));
    core.handle_media(t0, op.id, Err(error));
    let out = drain(&mut core);
    let refusal = out
        .iter()
        .find(|t| status(&t.payload).is_some_and(|c| c >= 400))
        .expect("a refusal");
    assert!(
        first_line(&refusal.payload).starts_with("SIP/2.0 488 Not Acceptable Here (SDP line 2"),
        "{}",
        first_line(&refusal.payload)
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin
fn each_party_is_given_the_relay_address_advertised_for_its_family_and_named() {
    let t0 = Instant::now();
    for (bob_at, expected) in [
        ("127.0.0.1:42000", "198.51.100.7"),
        ("[::1]:42000", "2001:db8::7"),
    ] {
        let mut core = core_with_bob_at(bob_at);
        core.set_media_advertised([
            Some("198.51.100.7".parse().unwrap()),
            Some("2001:db8::7".parse().unwrap()),
        ]);
        from(&mut core, t0, CAROL, &invite());
        let op = core.poll_media_op().expect("an offer for the relay");
        let Command::Offer { facing, party, .. } = &op.command else {
            panic!("{op:?}")
        };
        // The rewritten offer goes to bob: his family's address.
        assert_eq!(
            facing.map(|f| f.to_string()).as_deref(),
            Some(expected),
            "bob at {bob_at}"
        );
        assert_eq!(party.as_deref(), Some("carol@elsewhere.test"));
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::relay::{Forward, PortPool};
use crate::sdp::Media;
use std::net::SocketAddr;
use std::time::Duration;

fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    *T0.get_or_init(Instant::now)
}

fn calls(pairs: u16) -> Calls {
    let relay = Relay::new(
        PortPool::new(30000, 30000 + 2 * pairs - 1),
        Duration::from_secs(60),
    );
    Calls::new(relay, "203.0.113.1".parse().unwrap())
}

fn sdp(ip: &str, audio: u16, video: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {audio} RTP/AVP 0\r\nm=video {video} RTP/AVP 96\r\n"
    )
    .into_bytes()
}

fn streams(text: &str) -> Vec<Media> {
    Description::parse(text).unwrap().media().cloned().collect()
}

fn rtp() -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    p.resize(172, 0);
    p
}

#[test]
fn offer_and_answer_each_point_the_other_party_at_the_relay_and_media_flows() {
    let mut c = calls(8);
    let offer = c
        .offer(t0(), "call-1", "alice-tag", &sdp("10.0.0.1", 4000, 0))
        .unwrap();
    let to_bob = streams(&offer);
    assert_eq!(to_bob[0].rtp.ip().to_string(), "203.0.113.1");
    assert_eq!(
        to_bob[1].rtp.port(),
        0,
        "a stream that is off stays off, with no ports"
    );
    let answer = c
        .answer(t0(), "call-1", "bob-tag", &sdp("10.0.0.2", 5000, 0))
        .unwrap();
    let to_alice = streams(&answer);
    let (alice_sends_to, bob_sends_to) = (to_alice[0].rtp.port(), to_bob[0].rtp.port());
    assert_ne!(alice_sends_to, bob_sends_to);
    // Alice's RTP reaches bob's SDP address from the port bob sends to, and back.
    let alice: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let bob: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    assert_eq!(
        c.relay().handle(t0(), alice_sends_to, alice, &rtp()),
        Forward::To {
            from: bob_sends_to,
            to: bob
        }
    );
    assert_eq!(
        c.relay().handle(t0(), bob_sends_to, bob, &rtp()),
        Forward::To {
            from: alice_sends_to,
            to: alice
        }
    );
    // A re-offer from bob (hold, a new address) keeps the ports and moves bob.
    let reoffer = c
        .offer(t0(), "call-1", "bob-tag", &sdp("10.0.0.3", 6000, 0))
        .unwrap();
    assert_eq!(streams(&reoffer)[0].rtp.port(), alice_sends_to);
    let counters = c.delete("call-1").unwrap();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0][0].packets, 1);
    assert_eq!(counters[0][1].packets, 1);
    assert!(c.is_empty());
    assert_eq!(c.relay().free_pairs(), 8, "every pair back");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let mut c = calls(3);
    assert_eq!(
        c.answer(t0(), "never-offered", "x", &sdp("10.0.0.1", 4000, 0)),
        Err(ControlError::UnknownCall)
    );
    assert_eq!(
        c.offer(t0(), "c", "a", &[0xff, 0xfe]),
        Err(ControlError::NotText)
    );
    assert!(matches!(
        c.offer(t0(), "c", "a", b"v=0\r\nbogus\r\n"),
        Err(ControlError::Sdp(_))
    ));
    // Three pairs: one call of one stream fits (two pairs); a call of two streams does not.
    assert!(c.offer(t0(), "one", "a", &sdp("10.0.0.1", 4000, 0)).is_ok());
    assert_eq!(
        c.offer(t0(), "two", "a", &sdp("10.0.0.1", 4000, 4002)),
        Err(ControlError::Relay(RelayError::PortsExhausted))
    );
    assert_eq!(c.len(), 1, "the refused call left nothing");
    assert_eq!(c.delete("nope"), Err(ControlError::UnknownCall));
    let many: String = format!(
        "v=0\r\nc=IN IP4 10.0.0.1\r\n{}",
        "m=audio 4000 RTP/AVP 0\r\n".repeat(MAX_STREAMS + 1)
    );
    assert_eq!(
        c.offer(t0(), "many", "a", many.as_bytes()),
        Err(ControlError::TooManyStreams(MAX_STREAMS + 1))
    );
}

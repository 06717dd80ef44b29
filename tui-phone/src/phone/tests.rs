//! Two phones calling each other in virtual time, each other's "proxy", every datagram
//! through a network the test controls (it may drop some).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;
use crate::audio::codec::FRAME;
use crate::audio::tone::{share_at, sine};
use openline_sip::SeededEntropy;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A device that plays a tone and keeps what it hears where the test can read it.
#[derive(Clone)]
struct Ears {
    tone: Arc<Vec<i16>>,
    at: Arc<Mutex<usize>>,
    heard: Arc<Mutex<Vec<i16>>>,
}

impl Ears {
    fn new(frequency: f64) -> Self {
        Ears {
            tone: Arc::new(sine(frequency, 8_000.0, 48_000 * 60)),
            at: Arc::default(),
            heard: Arc::default(),
        }
    }
    fn heard(&self) -> Vec<i16> {
        self.heard.lock().unwrap().clone()
    }
}

impl AudioDevice for Ears {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        let mut at = self.at.lock().unwrap();
        frame.copy_from_slice(&self.tone[*at..*at + FRAME]);
        *at += FRAME;
    }
    fn play(&mut self, frame: &[i16; FRAME]) {
        self.heard.lock().unwrap().extend_from_slice(frame);
    }
}

struct World {
    now: Instant,
    a: Phone,
    b: Phone,
    ears: (Ears, Ears),
    events: (Vec<PhoneEvent>, Vec<PhoneEvent>),
    /// Drops a SIP datagram when it says so (it sees the text).
    drop_sip: Box<dyn FnMut(&str) -> bool>,
    /// Rewrites what b sends a (same length: Content-Length stays right).
    rewrite_to_a: Box<dyn FnMut(String) -> String>,
}

const A_SIP: ([u8; 4], u16) = ([127, 0, 0, 1], 5061);
const B_SIP: ([u8; 4], u16) = ([127, 0, 0, 1], 5062);

fn phone(
    user: &str,
    me: ([u8; 4], u16),
    other: ([u8; 4], u16),
    rtp: u16,
    seed: u64,
    ears: &Ears,
    now: Instant,
) -> Phone {
    let account = Account {
        user: user.into(),
        domain: "club-a.test".into(),
        password: "pw".into(),
    };
    let mut p = Phone::new(
        account,
        (SocketAddr::from(me), SocketAddr::from(other)),
        None,
        Box::new(SeededEntropy::new(seed)),
        now,
    );
    p.set_media(
        SocketAddr::from(([127, 0, 0, 1], rtp)),
        Box::new(ears.clone()),
        true,
    );
    p
}

impl World {
    fn new() -> Self {
        let now = Instant::now();
        let ears = (Ears::new(440.0), Ears::new(1_000.0));
        let a = phone("alice", A_SIP, B_SIP, 4000, 1, &ears.0, now);
        let b = phone("bob", B_SIP, A_SIP, 6000, 2, &ears.1, now);
        World {
            now,
            a,
            b,
            ears,
            events: (Vec::new(), Vec::new()),
            drop_sip: Box::new(|_| false),
            rewrite_to_a: Box::new(|t| t),
        }
    }

    /// Moves datagrams and time forward by `ms`, 5 ms at a time.
    fn run(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            self.now += Duration::from_millis(5);
            let now = self.now;
            for p in [&mut self.a, &mut self.b] {
                if p.poll_timeout().is_some_and(|t| t <= now) {
                    p.handle_timeout(now);
                }
            }
            loop {
                let mut moved = false;
                while let Some(t) = self.a.poll_transmit() {
                    moved = true;
                    if !(self.drop_sip)(&String::from_utf8_lossy(&t.payload)) {
                        self.b.handle_datagram(now, A_SIP.into(), &t.payload);
                    }
                }
                while let Some(t) = self.b.poll_transmit() {
                    moved = true;
                    let text = (self.rewrite_to_a)(String::from_utf8_lossy(&t.payload).into());
                    if !(self.drop_sip)(&text) {
                        self.a.handle_datagram(now, B_SIP.into(), text.as_bytes());
                    }
                }
                while let Some((to, packet)) = self.a.poll_media_transmit() {
                    moved = true;
                    assert_eq!(to.port(), 6000, "a sends media to b's port");
                    self.b.handle_media(now, &packet);
                }
                while let Some((to, packet)) = self.b.poll_media_transmit() {
                    moved = true;
                    assert_eq!(to.port(), 4000);
                    self.a.handle_media(now, &packet);
                }
                if !moved {
                    break;
                }
            }
            while let Some(e) = self.a.poll_event() {
                self.events.0.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.events.1.push(e);
            }
        }
    }

    fn states(events: &[PhoneEvent]) -> Vec<&'static str> {
        events
            .iter()
            .filter_map(|e| match e {
                PhoneEvent::CallState { state, .. } => Some(state.as_str()),
                PhoneEvent::CallEnded { .. } => Some("ended"),
                PhoneEvent::IncomingCall { .. } => Some("incoming_call"),
                _ => None,
            })
            .collect()
    }

    fn ended(events: &[PhoneEvent]) -> Option<(u16, String)> {
        events.iter().find_map(|e| match e {
            PhoneEvent::CallEnded { code, reason, .. } => Some((*code, reason.clone())),
            _ => None,
        })
    }
}

#[test]
fn a_call_rings_is_answered_carries_tones_both_ways_holds_resumes_and_ends() {
    let mut w = World::new();
    w.a.dial(w.now, "bob@club-a.test");
    w.run(200);
    assert!(w.events.1.contains(&PhoneEvent::IncomingCall {
        from: "sip:alice@club-a.test".into()
    }));
    w.b.answer(w.now);
    w.run(3_000);
    let established = w.events.0.iter().find_map(|e| match e {
        PhoneEvent::CallState {
            state: CallState::Established,
            codec,
            srtp,
            ..
        } => Some((*codec, *srtp)),
        _ => None,
    });
    assert_eq!(established, Some((Some("opus"), true)));
    let heard_by_b = w.ears.1.heard();
    let heard_by_a = w.ears.0.heard();
    assert!(
        share_at(440.0, &heard_by_b[heard_by_b.len() - 48_000..]) > 0.7,
        "bob hears alice"
    );
    assert!(
        share_at(1_000.0, &heard_by_a[heard_by_a.len() - 48_000..]) > 0.7,
        "alice hears bob"
    );

    w.a.hold(w.now, true);
    w.run(500);
    let (before, before_a) = (w.ears.1.heard().len(), w.ears.0.heard().len());
    w.run(1_000);
    let during_hold = w.ears.1.heard()[before..].to_vec();
    assert!(
        share_at(440.0, &during_hold) < 0.05,
        "nothing of alice's reaches bob on hold"
    );
    let heard_by_a = w.ears.0.heard();
    let tail = &heard_by_a[before_a..];
    assert!(tail.len() >= 48_000);
    assert!(
        share_at(1_000.0, tail) < 0.05,
        "nor of bob's alice (sendonly: she receives nothing)"
    );
    w.a.hold(w.now, false);
    w.a.dtmf("42#");
    w.run(2_000);
    let digits: String = w
        .events
        .1
        .iter()
        .filter_map(|e| match e {
            PhoneEvent::Dtmf(d) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "42#");

    w.b.hangup(w.now);
    w.run(500);
    assert_eq!(
        World::states(&w.events.0),
        [
            "calling",
            "ringing",
            "established",
            "on_hold",
            "established",
            "ended"
        ]
    );
    assert_eq!(
        World::states(&w.events.1),
        [
            "incoming_call",
            "incoming",
            "established",
            "held_by_peer",
            "established",
            "ended"
        ]
    );
    assert_eq!(
        World::ended(&w.events.0).unwrap().1,
        "the other side hung up"
    );
    assert!(w.a.call.is_none() && w.b.call.is_none() && w.a.media.is_none());
}

#[test]
fn a_declined_call_ends_with_603_on_both_sides() {
    let mut w = World::new();
    w.a.dial(w.now, "sip:bob@club-a.test");
    w.run(200);
    w.b.hangup(w.now);
    w.run(200);
    assert_eq!(World::ended(&w.events.0), Some((603, "Decline".into())));
    assert_eq!(
        World::states(&w.events.1),
        ["incoming_call", "incoming", "ended"]
    );
    assert!(w.a.call.is_none() && w.b.call.is_none());
}

#[test]
fn hanging_up_while_it_rings_cancels_and_both_sides_end_with_487() {
    let mut w = World::new();
    w.a.dial(w.now, "bob@club-a.test");
    w.run(200);
    w.a.hangup(w.now);
    w.run(200);
    assert_eq!(World::ended(&w.events.0), Some((487, "cancelled".into())));
    assert_eq!(
        World::ended(&w.events.1),
        Some((487, "the caller hung up".into()))
    );
    assert!(w.a.call.is_none() && w.b.call.is_none());
}

#[test]
fn a_lost_ack_is_made_good_by_the_retransmitted_200() {
    let mut w = World::new();
    let dropped = Arc::new(Mutex::new(0));
    let d = dropped.clone();
    w.drop_sip = Box::new(move |text| {
        let mut d = d.lock().unwrap();
        if text.starts_with("ACK ") && *d == 0 {
            *d += 1;
            return true;
        }
        false
    });
    w.a.dial(w.now, "bob@club-a.test");
    w.run(200);
    w.b.answer(w.now);
    w.run(2_000);
    assert_eq!(*dropped.lock().unwrap(), 1);
    assert!(
        w.b.call.as_ref().unwrap().ok_retransmit.is_none(),
        "the second ACK arrived"
    );
    assert!(World::ended(&w.events.1).is_none());
    w.a.hangup(w.now);
    w.run(200);
    assert_eq!(
        World::ended(&w.events.1).unwrap().1,
        "the other side hung up"
    );
}

#[test]
fn commands_without_a_call_are_refused_not_fatal() {
    let mut w = World::new();
    w.a.answer(w.now);
    w.a.hangup(w.now);
    w.a.hold(w.now, true);
    w.a.dtmf("1");
    w.a.dial(w.now, "not a uri");
    w.run(10);
    let refusals = w
        .events
        .0
        .iter()
        .filter(|e| matches!(e, PhoneEvent::CallRefused(_)))
        .count();
    assert_eq!(refusals, 5);
}

/// The answer bob's phone sends, spoiled on the way: alice's call ends with 488 and the reason,
/// bob's with her BYE; neither phone stops.
fn spoiled_answer(from: &'static str, to: &'static str) -> (PhoneEvent, Option<(u16, String)>) {
    let mut w = World::new();
    w.rewrite_to_a = Box::new(move |text| {
        if text.starts_with("SIP/2.0 200") && text.contains("application/sdp") {
            assert_eq!(from.len(), to.len());
            text.replacen(from, to, 1)
        } else {
            text
        }
    });
    w.a.dial(w.now, "bob@club-a.test");
    w.run(200);
    w.b.answer(w.now);
    w.run(500);
    let a_end = w
        .events
        .0
        .iter()
        .find(|e| matches!(e, PhoneEvent::CallEnded { .. }))
        .cloned()
        .unwrap();
    assert!(w.a.call.is_none() && w.a.media.is_none());
    (a_end, World::ended(&w.events.1))
}

#[test]
fn a_garbled_answer_ends_the_call_with_the_reason_and_a_bye() {
    let (a_end, b_end) = spoiled_answer("c=IN IP4 127.0.0.1", "c=IN IP4 127.0.0.x");
    let PhoneEvent::CallEnded { code, reason, .. } = a_end else {
        unreachable!()
    };
    assert_eq!(code, 488);
    assert_eq!(
        reason,
        "unusable answer: garbled SDP: SDP line 4: malformed c= line"
    );
    assert_eq!(b_end.unwrap().1, "the other side hung up");
}

#[test]
fn an_answer_with_an_unknown_codec_ends_the_call_naming_it() {
    let (a_end, b_end) = spoiled_answer("opus/48000/2", "spex/48000/2");
    let PhoneEvent::CallEnded { code, reason, .. } = a_end else {
        unreachable!()
    };
    assert_eq!(code, 488);
    assert!(
        reason.contains("no codec in common (they speak: spex/48000/2"),
        "{reason}"
    );
    assert_eq!(b_end.unwrap().1, "the other side hung up");
}

#[test]
fn the_stun_learned_address_goes_into_the_next_offer() {
    let mut w = World::new();
    let stun_server: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    w.a.set_stun(w.now, stun_server);
    let (to, request) = w.a.poll_media_transmit().unwrap();
    assert_eq!(to, stun_server);
    let outside: SocketAddr = "203.0.113.5:40000".parse().unwrap();
    let openline_media::stun::Outcome::Reply(answer) =
        openline_media::stun::StunServer::new("test", None, [0; 32]).handle(&request, outside, 0)
    else {
        panic!("no STUN answer")
    };
    w.a.handle_media(w.now, &answer);
    assert_eq!(w.a.poll_event(), Some(PhoneEvent::MediaAddress(outside)));
    w.a.dial(w.now, "bob@club-a.test");
    let invite = std::iter::from_fn(|| w.a.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.payload).into_owned())
        .find(|t| t.starts_with("INVITE "))
        .unwrap();
    assert!(invite.contains("c=IN IP4 203.0.113.5\r\n"), "{invite}");
    assert!(invite.contains("m=audio 40000 RTP/AVP"), "{invite}");
}

/// An INVITE as bob's phone would get it, to be spoiled by the property below.
const INVITE: &str = "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKprop;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@club-a.test>;tag=a1\r\nTo: <sip:bob@club-a.test>\r\n\
Call-ID: prop-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5061>\r\n\
Content-Type: application/sdp\r\nContent-Length: 94\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever arrives on either socket, the phone neither panics nor stops answering.
    #[test]
    fn nothing_from_the_network_makes_the_phone_panic(
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        cut in 0usize..400,
        flip in 0usize..400,
    ) {
        let mut w = World::new();
        let now = w.now;
        let from: SocketAddr = A_SIP.into();
        w.b.handle_datagram(now, from, &noise);
        w.b.handle_media(now, &noise);
        let mut spoiled = INVITE.as_bytes().to_vec();
        if let Some(b) = spoiled.get_mut(flip) {
            *b = b.wrapping_add(1);
        }
        spoiled.truncate(cut.max(20));
        w.b.handle_datagram(now, from, &spoiled);
        w.b.answer(now);
        w.b.handle_media(now, &noise);
        w.b.hangup(now);
        w.run(20);
    }
}

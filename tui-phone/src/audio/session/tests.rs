#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use super::*;
use crate::audio::tone::{share_at, sine};
use crate::ua::offer::{Codec, Direction};

/// Plays a tone and records what it is given.
struct Recorder {
    tone: Vec<i16>,
    at: usize,
    heard: Vec<i16>,
}

impl Recorder {
    fn new(frequency: f64) -> Self {
        Recorder {
            tone: sine(frequency, 8_000.0, 48_000 * 4),
            at: 0,
            heard: Vec::new(),
        }
    }
}

impl AudioDevice for Recorder {
    fn capture(&mut self, frame: &mut [i16; FRAME]) {
        let n = FRAME.min(self.tone.len() - self.at);
        frame[..n].copy_from_slice(&self.tone[self.at..self.at + n]);
        frame[n..].fill(0);
        self.at += n;
    }
    fn play(&mut self, frame: &[i16; FRAME]) {
        self.heard.extend_from_slice(frame);
    }
}

fn negotiated(codec: Codec, to_port: u16, keys: Option<([u8; 30], [u8; 30])>) -> Negotiated {
    Negotiated {
        codec,
        pt: match codec {
            Codec::Opus => 111,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        },
        dtmf_pt: Some(101),
        remote_rtp: SocketAddr::from(([127, 0, 0, 1], to_port)),
        remote_rtcp: None,
        direction: Direction::SendRecv,
        srtp: keys,
    }
}

/// Runs two sessions against each other for `ms` of virtual time, every datagram passed
/// through `network` (which may drop or alter it).
fn talk(
    a: &mut MediaSession,
    b: &mut MediaSession,
    devices: (&mut Recorder, &mut Recorder),
    ms: u64,
    mut network: impl FnMut(u64, Vec<u8>) -> Option<Vec<u8>>,
) {
    let start = Instant::now();
    let (da, db) = devices;
    let mut n = 0;
    for step in 0..ms / 10 {
        let now = start + Duration::from_millis(step * 10);
        a.handle_timeout(now, da);
        b.handle_timeout(now, db);
        while let Some((to, packet)) = a.poll_transmit() {
            assert_eq!(to.port(), 2000);
            n += 1;
            if let Some(p) = network(n, packet) {
                b.handle_datagram(&p);
            }
        }
        while let Some((to, packet)) = b.poll_transmit() {
            assert_eq!(to.port(), 1000);
            a.handle_datagram(&packet);
        }
    }
}

fn pair(codec: Codec, srtp: bool) -> (MediaSession, MediaSession) {
    let (ka, kb) = ([3u8; 30], [4u8; 30]);
    let now = Instant::now();
    let a = MediaSession::new(
        now,
        negotiated(codec, 2000, srtp.then_some((ka, kb))),
        1,
        "a",
    )
    .unwrap();
    let b = MediaSession::new(
        now,
        negotiated(codec, 1000, srtp.then_some((kb, ka))),
        2,
        "b",
    )
    .unwrap();
    (a, b)
}

#[test]
fn each_codec_carries_each_sides_tone_to_the_other_with_and_without_srtp() {
    for codec in [Codec::Opus, Codec::Pcmu, Codec::Pcma] {
        for srtp in [false, true] {
            let (mut a, mut b) = pair(codec, srtp);
            let (mut da, mut db) = (Recorder::new(440.0), Recorder::new(1_000.0));
            talk(&mut a, &mut b, (&mut da, &mut db), 2_000, |_, p| Some(p));
            let what = format!("{codec:?} srtp={srtp}");
            assert!(a.stats().sent >= 95, "{what}: {:?}", a.stats());
            assert_eq!(b.stats().rejected, 0, "{what}");
            let heard_b = &db.heard[48_000 / 2..];
            let heard_a = &da.heard[48_000 / 2..];
            assert!(share_at(440.0, heard_b) > 0.7, "{what}: b hears 440");
            assert!(share_at(1_000.0, heard_a) > 0.7, "{what}: a hears 1000");
            assert!(
                share_at(1_000.0, heard_b) < 0.05,
                "{what}: b does not hear itself"
            );
        }
    }
}

#[test]
fn srtp_refuses_tampered_packets_and_the_tone_survives_them() {
    let (mut a, mut b) = pair(Codec::Pcmu, true);
    let (mut da, mut db) = (Recorder::new(440.0), Recorder::new(1_000.0));
    talk(&mut a, &mut b, (&mut da, &mut db), 2_000, |n, mut p| {
        if n % 10 == 0 {
            let last = p.len() - 1;
            p[last] ^= 1; // the authentication tag no longer matches
        }
        Some(p)
    });
    assert!(b.stats().rejected >= 9, "{:?}", b.stats());
    assert!(share_at(440.0, &db.heard[24_000..]) > 0.6);
}

#[test]
fn dtmf_digits_arrive_once_each_in_order() {
    let (mut a, mut b) = pair(Codec::Opus, true);
    assert_eq!(a.send_dtmf("1x#9"), 3);
    let (mut da, mut db) = (Recorder::new(440.0), Recorder::new(1_000.0));
    talk(&mut a, &mut b, (&mut da, &mut db), 2_000, |_, p| Some(p));
    let digits: String = std::iter::from_fn(|| b.poll_digit()).collect();
    assert_eq!(digits, "1#9");
}

#[test]
fn a_stream_on_hold_sends_nothing_and_garbage_is_counted_not_fatal() {
    let now = Instant::now();
    let mut n = negotiated(Codec::Pcmu, 2000, None);
    n.direction = Direction::RecvOnly;
    let mut s = MediaSession::new(now, n, 1, "a").unwrap();
    let mut d = Recorder::new(440.0);
    s.handle_timeout(now + Duration::from_millis(100), &mut d);
    assert!(std::iter::from_fn(|| s.poll_transmit()).next().is_none());
    s.handle_datagram(&[]);
    s.handle_datagram(&[0x80; 5]);
    s.handle_datagram(&[0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff]);
    assert_eq!(s.stats().rejected, 2);
    assert!(!d.heard.is_empty(), "it still plays (silence) while held");
}

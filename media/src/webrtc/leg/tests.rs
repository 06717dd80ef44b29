//! A browser leg in virtual time against a second str0m playing the browser (full ICE,
//! DTLS, its own offer): it connects, the browser's Opus arrives as plain RTP with the
//! browser's sequence numbers, and RTP written to the leg reaches the browser decrypted.
//! Packets are dropped at random on the way, as a real network does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::time::Duration;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, MediaTime};

const LEG: &str = "198.18.0.1:30000";
const BROWSER: &str = "198.18.0.2:50000";

fn t0() -> Instant {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived
    *T0.get_or_init(Instant::now)
}

struct Browser {
    rtc: Rtc,
    mid: Mid,
    got: Vec<(u8, Vec<u8>)>,
    connected: bool,
}

/// The browser's side offers audio with one host candidate; the leg answers and the browser
/// takes the answer: both sides, the offer and the answer.
fn negotiate(now: Instant) -> (BrowserLeg, Browser, String, String) {
    let mut rtc = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = offer.to_sdp_string();
    let shared = super::super::codecs::shared(&super::super::codecs::audio_codecs(&offer));
    let (leg, answer) = BrowserLeg::answer(&offer, LEG.parse().unwrap(), &shared, now).unwrap();
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let browser = Browser {
        rtc,
        mid,
        got: Vec::new(),
        connected: false,
    };
    (leg, browser, offer, answer)
}

/// Runs both sides for `span` of virtual time, dropping every `drop_every`th datagram (0:
/// none); what the leg decrypted.
fn run(
    leg: &mut BrowserLeg,
    browser: &mut Browser,
    (now, span): (&mut Instant, Duration),
    drop_every: usize,
) -> (Vec<PlainRtp>, bool) {
    let end = *now + span;
    let (mut from_leg, mut rtp, mut leg_connected) = (Vec::new(), Vec::new(), false);
    let mut sent = 0usize;
    while *now < end {
        let mut wake = end;
        loop {
            match leg.poll().unwrap() {
                LegOutput::Wait(at) => {
                    wake = wake.min(at);
                    break;
                }
                LegOutput::Transmit { data, .. } => from_leg.push(data),
                LegOutput::Rtp(p) => rtp.push(p),
                LegOutput::Connected => leg_connected = true,
                LegOutput::Closed => panic!("the leg closed"),
            }
        }
        let mut to_leg = Vec::new();
        loop {
            match browser.rtc.poll_output().unwrap() {
                Output::Timeout(at) => {
                    wake = wake.min(at);
                    break;
                }
                Output::Transmit(t) => to_leg.push(t.contents.to_vec()),
                Output::Event(Event::Connected) => browser.connected = true,
                Output::Event(Event::MediaData(m)) => browser.got.push((*m.pt, m.data.to_vec())),
                Output::Event(_) => {}
            }
        }
        for data in from_leg.drain(..) {
            sent += 1;
            if drop_every > 0 && sent % drop_every == 0 {
                continue;
            }
            browser
                .rtc
                .handle_input(Input::Receive(
                    *now,
                    Receive {
                        proto: Protocol::Udp,
                        source: LEG.parse().unwrap(),
                        destination: BROWSER.parse().unwrap(),
                        contents: data.as_slice().try_into().unwrap(),
                    },
                ))
                .unwrap();
        }
        for data in to_leg {
            sent += 1;
            if drop_every > 0 && sent % drop_every == 0 {
                continue;
            }
            leg.handle_datagram(*now, BROWSER.parse().unwrap(), &data)
                .unwrap();
        }
        // Virtual time: straight to the next thing either side waits for, 1 ms at least.
        *now = (*now + Duration::from_millis(1)).max(wake.min(end));
        leg.handle_timeout(*now).unwrap();
        browser.rtc.handle_input(Input::Timeout(*now)).unwrap();
    }
    (rtp, leg_connected)
}

#[test]
fn a_browser_connects_over_ice_lite_and_dtls_and_audio_passes_both_ways_in_the_clear() {
    let mut now = t0();
    let (mut leg, mut browser, offer, answer) = negotiate(now);
    assert!(
        offer.contains("a=ice-options") || offer.contains("a=fingerprint"),
        "{offer}"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=setup:"), "DTLS roles in the answer");
    assert!(answer.contains("a=rtcp-mux"), "{answer}");
    assert!(answer.contains("a=mid:"), "{answer}");

    // A lossy start: every 7th datagram lost, handshakes retried.
    let (_, connected) = run(
        &mut leg,
        &mut browser,
        (&mut now, Duration::from_secs(5)),
        7,
    );
    assert!(
        connected && browser.connected,
        "ICE and DTLS done on both sides"
    );

    // The browser speaks: 50 packets of Opus, 20 ms apart.
    let opus = browser
        .rtc
        .writer(browser.mid)
        .unwrap()
        .payload_params()
        .find(|p| p.spec().codec == str0m::format::Codec::Opus)
        .map(|p| p.pt())
        .expect("Opus negotiated");
    let mut heard = Vec::new();
    for i in 0..50u32 {
        let frame = vec![0xF8, i as u8, 0xAA, 0x55];
        browser
            .rtc
            .writer(browser.mid)
            .unwrap()
            .write(
                opus,
                now,
                MediaTime::new(u64::from(i) * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ),
                frame,
            )
            .unwrap();
        let (rtp, _) = run(
            &mut leg,
            &mut browser,
            (&mut now, Duration::from_millis(20)),
            0,
        );
        heard.extend(rtp);
    }
    let payloads: Vec<u8> = heard.iter().map(|p| p.payload[1]).collect();
    assert_eq!(
        payloads,
        (0..50).collect::<Vec<u8>>(),
        "every frame, in order, in the clear"
    );
    assert!(heard.iter().all(|p| p.pt == *opus));
    assert!(
        heard
            .windows(2)
            .all(|w| w[1].seq == w[0].seq.wrapping_add(1)),
        "the browser's sequence numbers carry through"
    );

    // The SIP side speaks through the leg: the browser hears it.
    let ssrc = 0x1234_5678;
    for i in 0..20u16 {
        let packet = PlainRtp {
            pt: *opus,
            seq: 1000 + i,
            timestamp: 960 * u32::from(i),
            ssrc,
            marker: i == 0,
            payload: vec![0xF8, 0xB0, i as u8],
        };
        leg.write_rtp(now, packet.clone()).unwrap();
        run(
            &mut leg,
            &mut browser,
            (&mut now, Duration::from_millis(20)),
            0,
        );
    }
    let got: Vec<u8> = browser.got.iter().map(|(_, d)| d[2]).collect();
    assert_eq!(
        got,
        (0..20).collect::<Vec<u8>>(),
        "what the SIP side sent, decrypted by the browser"
    );
}

#[test]
fn a_browser_that_goes_silent_closes_the_leg_within_the_consent_time() {
    let mut now = t0();
    let (mut leg, mut browser, _, _) = negotiate(now);
    let (_, connected) = run(
        &mut leg,
        &mut browser,
        (&mut now, Duration::from_secs(3)),
        0,
    );
    assert!(connected);
    // The tab is killed: nothing more arrives. The leg only answers checks (ICE-lite), so it
    // must notice the silence itself.
    let killed = now;
    let closed = loop {
        match leg.poll().unwrap() {
            LegOutput::Closed => break Some(now),
            LegOutput::Wait(at) => {
                if at > killed + Duration::from_secs(60) {
                    break None;
                }
                now = at.max(now + Duration::from_millis(1));
                leg.handle_timeout(now).unwrap();
            }
            _ => {}
        }
    };
    let after = closed.expect("the leg closes").duration_since(killed);
    assert!(
        after <= Duration::from_secs(35),
        "closed {after:?} after the tab went"
    );
}

#[test]
fn an_offer_that_is_not_sdp_is_refused_with_a_reason() {
    let e = BrowserLeg::answer("hello", LEG.parse().unwrap(), &[], t0()).unwrap_err();
    assert!(matches!(e, LegError::Offer(_)), "{e}");
}

#[test]
fn a_leg_that_offers_the_phones_codecs_connects_and_keeps_their_numbers() {
    let mut now = t0();
    let phone = "v=0\r\nc=IN IP4 198.18.0.9\r\nm=audio 4000 RTP/AVP 0 101\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
    let codecs = super::super::codecs::shared(&super::super::codecs::audio_codecs(phone));
    let (mut leg, offer) = BrowserLeg::offer(LEG.parse().unwrap(), &codecs, now).unwrap();
    assert!(offer.contains("UDP/TLS/RTP/SAVPF 0 101"), "{offer}");
    assert!(
        offer.contains("a=ice-lite") && offer.contains("a=setup:actpass"),
        "{offer}"
    );

    let mut rtc = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .enable_pcmu(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let answer = rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
        .unwrap()
        .to_sdp_string();
    leg.accept_answer(&answer).unwrap();
    assert!(leg.accept_answer(&answer).is_err(), "one answer per offer");
    let mid = leg.mid.unwrap();
    let mut browser = Browser {
        rtc,
        mid,
        got: Vec::new(),
        connected: false,
    };
    let (_, connected) = run(
        &mut leg,
        &mut browser,
        (&mut now, Duration::from_secs(5)),
        7,
    );
    assert!(
        connected && browser.connected,
        "the browser's full ICE against our lite"
    );
    for i in 0..5u16 {
        let packet = PlainRtp {
            pt: 0,
            seq: 7 + i,
            timestamp: 160 * u32::from(i),
            ssrc: 99,
            marker: false,
            payload: vec![0xFF; 160],
        };
        leg.write_rtp(now, packet.clone()).unwrap();
        run(
            &mut leg,
            &mut browser,
            (&mut now, Duration::from_millis(20)),
            0,
        );
    }
    assert_eq!(browser.got.len(), 5, "PCMU reached the browser");
    assert!(browser.got.iter().all(|(pt, _)| *pt == 0));
}

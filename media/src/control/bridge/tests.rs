//! A browser and a phone through the call table and the relay, in virtual time: a second
//! str0m plays the browser (full ICE, DTLS, its own offer or answer), the phone is plain UDP
//! addresses. What each side gets in SDP, and what reaches each side on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::relay::{Forward, PortPool, Relay};
use std::sync::Arc;
use std::time::Duration;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const BROWSER: &str = "198.18.0.2:50000";
const PHONE: &str = "198.18.0.9:4000";

fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    *T0.get_or_init(Instant::now)
}

fn calls() -> Calls {
    let relay = Relay::new(PortPool::new(30000, 30003), Duration::from_secs(60));
    Calls::new(relay, "198.18.0.1".parse().unwrap())
}

fn browser_rtc(now: Instant) -> Rtc {
    // What a browser offers: Opus, G.711 and telephone events at 8 kHz.
    let mut config = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .enable_pcmu(true, false)
        .enable_pcma(true, false);
    config.codec_config().add_config(
        126.into(),
        None,
        str0m::format::Codec::Tele,
        str0m::media::Frequency::EIGHT_KHZ,
        None,
        str0m::format::FormatParams::default(),
    );
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    rtc
}

/// The relay's port in a browser's SDP: its one host candidate's (the m= port is 9).
fn candidate_port(sdp: &str) -> u16 {
    let c = sdp.lines().find(|l| l.starts_with("a=candidate:")).unwrap();
    c.split(' ').nth(5).unwrap().parse().unwrap()
}

fn port_of(sdp: &str) -> u16 {
    let m = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .unwrap();
    m.split(' ').next().unwrap().parse().unwrap()
}

/// What the phone received, and what the browser did, while both ran for `span`.
#[derive(Default)]
struct Heard {
    phone: Vec<PlainRtpSeen>,
    browser: Vec<u8>,
    connected: bool,
    /// The browser gave up (its str0m failed): it is no longer driven, the relay still is.
    gave_up: Option<String>,
}

struct PlainRtpSeen {
    pt: u8,
    seq: u16,
    from: u16,
}

/// The phone's SRTP: its own key out, the relay's key in.
struct PhoneKeys {
    out: rtc_srtp::context::Context,
    inbound: rtc_srtp::context::Context,
}

fn srtp(key: &[u8; 30]) -> rtc_srtp::context::Context {
    crate::relay::srtp_context(key).unwrap()
}

thread_local! {
    /// The phone's SRTP in the test that has one.
    static KEYS: std::cell::RefCell<Option<PhoneKeys>> = const { std::cell::RefCell::new(None) };
}

/// Runs the browser against the relay's gateway for `span`; the phone sends one PCMU
/// packet to `phone_port` every 20 ms when `phone_talks` (over SRTP when it has keys).
fn run(
    calls: &mut Calls,
    rtc: &mut Rtc,
    (browser_port, phone_port): (u16, u16),
    (now, span): (&mut Instant, Duration),
    phone_talks: bool,
) -> Heard {
    let mut heard = Heard::default();
    let end = *now + span;
    let mut next_phone = *now;
    while *now < end {
        let mut wake = end;
        while heard.gave_up.is_none() {
            let output = match rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    heard.gave_up = Some(e.to_string());
                    break;
                }
            };
            match output {
                Output::Timeout(at) => {
                    wake = wake.min(at);
                    break;
                }
                Output::Transmit(t) => {
                    let f = calls.relay().handle(
                        *now,
                        browser_port,
                        BROWSER.parse().unwrap(),
                        &t.contents,
                    );
                    assert!(matches!(f, Forward::Gateway | Forward::Drop(_)), "{f:?}");
                }
                Output::Event(Event::Connected) => heard.connected = true,
                Output::Event(Event::MediaData(m)) => heard.browser.push(*m.pt),
                Output::Event(_) => {}
            }
        }
        if phone_talks && *now >= next_phone {
            // The phone's clock: a packet per 20 ms slot, numbered by the slot.
            let seq = (now.duration_since(t0()).as_millis() / 20) as u16;
            let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0B, 0xEE];
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet.resize(172, 0xFF);
            KEYS.with_borrow_mut(|k| {
                if let Some(k) = k {
                    packet = k.out.encrypt_rtp(&packet).unwrap().to_vec();
                }
            });
            calls
                .relay()
                .handle(*now, phone_port, PHONE.parse().unwrap(), &packet);
            next_phone = *now + Duration::from_millis(20);
        }
        calls.relay().handle_gateway_timeout(*now);
        while let Some(d) = calls.relay().poll_datagram() {
            if d.to == BROWSER.parse().unwrap() {
                assert_eq!(d.from, browser_port);
                if heard.gave_up.is_some() {
                    continue;
                }
                rtc.handle_input(Input::Receive(
                    *now,
                    Receive {
                        proto: Protocol::Udp,
                        source: SocketAddr::new("198.18.0.1".parse().unwrap(), d.from),
                        destination: BROWSER.parse().unwrap(),
                        contents: d.data.as_slice().try_into().unwrap(),
                    },
                ))
                .unwrap();
            } else {
                assert_eq!(d.to, PHONE.parse().unwrap());
                let d = KEYS.with_borrow_mut(|k| match k {
                    Some(k) => crate::relay::Datagram {
                        data: k.inbound.decrypt_rtp(&d.data).expect("our key").to_vec(),
                        ..d
                    },
                    None => d,
                });
                heard.phone.push(PlainRtpSeen {
                    pt: d.data[1] & 0x7F,
                    seq: u16::from_be_bytes([d.data[2], d.data[3]]),
                    from: d.from,
                });
            }
        }
        let gw = calls.relay().poll_gateway_timeout().unwrap_or(wake);
        *now = (*now + Duration::from_millis(1)).max(wake.min(gw).min(end));
        if heard.gave_up.is_none() {
            rtc.handle_input(Input::Timeout(*now)).unwrap();
        }
    }
    heard
}

/// A phone's `offer` to a browser, as call `call_id`: what the browser is offered, the
/// browser (a str0m), and its answer.
fn browser_answering(
    calls: &mut Calls,
    now: Instant,
    call_id: &str,
    offer: &str,
) -> (String, Rtc, String) {
    let to_browser = calls
        .offer_to(now, (call_id, "phone"), offer.as_bytes(), true)
        .unwrap();
    let mut rtc = browser_rtc(now);
    let answer = rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&to_browser).unwrap())
        .unwrap()
        .to_sdp_string();
    (to_browser, rtc, answer)
}

/// The browser writes `n` PCMU frames, 20 ms apart, while everything runs.
fn browser_speaks(
    calls: &mut Calls,
    rtc: &mut Rtc,
    mid: Mid,
    ports: (u16, u16),
    now: &mut Instant,
    n: u32,
) -> Heard {
    let mut all = Heard::default();
    for i in 0..n {
        let pt = rtc
            .writer(mid)
            .unwrap()
            .payload_params()
            .find(|p| p.spec().codec == str0m::format::Codec::PCMU)
            .map(|p| p.pt())
            .expect("PCMU negotiated");
        rtc.writer(mid)
            .unwrap()
            .write(
                pt,
                *now,
                MediaTime::new(u64::from(i) * 160, str0m::media::Frequency::EIGHT_KHZ),
                vec![0xFF; 160],
            )
            .unwrap();
        let heard = run(calls, rtc, ports, (now, Duration::from_millis(20)), true);
        all.phone.extend(heard.phone);
        all.browser.extend(heard.browser);
    }
    all
}

/// The browser presses a key: telephone-event packets (RFC 4733) written on its payload
/// type; how many the phone received on 126.
fn dtmf(calls: &mut Calls, rtc: &mut Rtc, mid: Mid, ports: (u16, u16), now: &mut Instant) -> usize {
    let mut got = 0;
    for i in 0..5u32 {
        let pt = rtc
            .writer(mid)
            .unwrap()
            .payload_params()
            .find(|p| p.spec().codec == str0m::format::Codec::Tele)
            .map(|p| p.pt())
            .expect("telephone events negotiated");
        // Event 4, volume 10, duration growing.
        let duration = (160 * (i + 1)) as u16;
        let payload = vec![4, 10, (duration >> 8) as u8, duration as u8];
        rtc.writer(mid)
            .unwrap()
            .write(
                pt,
                *now,
                MediaTime::new(0, str0m::media::Frequency::EIGHT_KHZ),
                payload,
            )
            .unwrap();
        let heard = run(calls, rtc, ports, (now, Duration::from_millis(20)), false);
        got += heard.phone.iter().filter(|p| p.pt == 126).count();
    }
    got
}

#[test]
fn a_browser_calls_a_phone_that_gets_rtp_avp_and_audio_crosses_both_ways() {
    let mut now = t0();
    let mut calls = calls();
    let mut rtc = browser_rtc(now);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = offer.to_sdp_string();

    let to_phone = calls
        .offer_to(now, ("c1", "browser"), offer.as_bytes(), false)
        .unwrap();
    assert!(to_phone.contains(" RTP/AVP "), "{to_phone}");
    assert!(to_phone.contains("c=IN IP4 198.18.0.1"), "{to_phone}");
    assert!(to_phone.contains("a=rtpmap:0 PCMU/8000"), "{to_phone}");
    assert!(!to_phone.contains("a=fingerprint") && !to_phone.contains("a=ice"));
    let phone_port = port_of(&to_phone);

    let answer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\n\
        t=0 0\r\nm=audio 4000 RTP/AVP 0 126\r\na=rtpmap:126 telephone-event/8000\r\n\
        a=sendrecv\r\n";
    let to_browser = calls.answer(now, "c1", "phone", answer.as_bytes()).unwrap();
    assert!(
        to_browser.contains("UDP/TLS/RTP/SAVPF 0 126\r\n"),
        "PCMU and its DTMF only: {to_browser}"
    );
    assert!(to_browser.contains("a=ice-lite") && to_browser.contains("a=rtcp-mux"));
    let browser_port = candidate_port(&to_browser);
    assert!(
        to_browser.contains(&format!("198.18.0.1 {browser_port} typ host")),
        "{to_browser}"
    );
    assert_eq!(
        calls.answer(now, "c1", "phone", answer.as_bytes()).unwrap(),
        to_browser,
        "a repeated answer (183, then 200) gets the same"
    );
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&to_browser).unwrap())
        .unwrap();

    let ports = (browser_port, phone_port);
    let start = run(
        &mut calls,
        &mut rtc,
        ports,
        (&mut now, Duration::from_secs(3)),
        false,
    );
    assert!(
        start.connected,
        "ICE-lite and DTLS through the relay's port"
    );
    let heard = browser_speaks(&mut calls, &mut rtc, mid, ports, &mut now, 30);
    assert!(
        heard.phone.len() >= 28,
        "the phone heard {} packets",
        heard.phone.len()
    );
    assert!(
        heard
            .phone
            .iter()
            .all(|p| p.pt == 0 && p.from == phone_port)
    );
    assert!(
        heard
            .phone
            .windows(2)
            .all(|w| w[1].seq == w[0].seq.wrapping_add(1)),
        "the browser's sequence numbers, continuous"
    );
    assert!(
        heard.browser.len() >= 25,
        "the browser heard {}",
        heard.browser.len()
    );
    assert!(heard.browser.iter().all(|pt| *pt == 0));

    // DTMF from the browser (RFC 4733 at 8 kHz beside Opus, as desk phones answer): the
    // events reach the phone on their own payload type.
    let events = dtmf(&mut calls, &mut rtc, mid, ports, &mut now);
    assert!(events >= 3, "the phone got {events} telephone events");

    // The call ends: every port goes back.
    calls.delete("c1").unwrap();
    assert_eq!(calls.relay().free_pairs(), 2);
    assert!(calls.relay().poll_gateway_timeout().is_none());
}

#[test]
fn a_phone_calls_a_browser_that_is_offered_webrtc_with_the_phones_codecs() {
    let mut now = t0();
    let mut calls = calls();
    let offer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 8 0 18 101\r\na=rtpmap:18 G729/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
    let (to_browser, mut rtc, answer) = browser_answering(&mut calls, now, "c2", offer);
    assert!(
        to_browser.contains("UDP/TLS/RTP/SAVPF 8 0 101"),
        "G.729 left out: {to_browser}"
    );
    assert!(to_browser.contains("a=setup:actpass") && to_browser.contains("a=fingerprint"));
    let browser_port = candidate_port(&to_browser);

    let to_phone = calls
        .answer(now, "c2", "browser", answer.as_bytes())
        .unwrap();
    assert!(to_phone.contains(" RTP/AVP "), "{to_phone}");
    let phone_port = port_of(&to_phone);
    assert_ne!(phone_port, browser_port);
    let mid = Mid::from(
        to_browser
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap(),
    );

    let ports = (browser_port, phone_port);
    let start = run(
        &mut calls,
        &mut rtc,
        ports,
        (&mut now, Duration::from_secs(3)),
        false,
    );
    assert!(start.connected);
    let heard = browser_speaks(&mut calls, &mut rtc, mid, ports, &mut now, 20);
    assert!(heard.phone.len() >= 18 && heard.browser.len() >= 15);
}

#[test]
fn a_phone_offering_sdes_srtp_gets_our_key_and_both_directions_are_encrypted() {
    let mut now = t0();
    let mut calls = calls();
    let theirs = [0x42u8; 30];
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(theirs)
        }
    );
    let (to_browser, mut rtc, answer) = browser_answering(&mut calls, now, "c5", &offer);
    assert!(
        !to_browser.contains("a=crypto"),
        "the browser gets DTLS-SRTP"
    );
    let browser_port = candidate_port(&to_browser);
    let to_phone = calls
        .answer(now, "c5", "browser", answer.as_bytes())
        .unwrap();
    let ours = codecs::sdes(&to_phone).expect("our key in the answer");
    assert_eq!(ours.tag, 3, "the answer's a=crypto answers the offer's tag");
    assert_ne!(ours.key, theirs);
    KEYS.with_borrow_mut(|k| {
        *k = Some(PhoneKeys {
            out: srtp(&theirs),
            inbound: srtp(&ours.key),
        });
    });
    let mid = Mid::from(
        to_browser
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap(),
    );
    let ports = (browser_port, port_of(&to_phone));
    let start = run(
        &mut calls,
        &mut rtc,
        ports,
        (&mut now, Duration::from_secs(3)),
        false,
    );
    assert!(start.connected);
    let heard = browser_speaks(&mut calls, &mut rtc, mid, ports, &mut now, 20);
    KEYS.with_borrow_mut(|k| *k = None);
    assert!(
        heard.phone.len() >= 18,
        "the phone decrypted {}",
        heard.phone.len()
    );
    assert!(heard.phone.iter().all(|p| p.pt == 0));
    assert!(
        heard.browser.len() >= 15,
        "the browser heard the phone's SRTP, decrypted"
    );
}

#[test]
fn no_codec_in_common_is_a_488_reason_naming_them_and_leaves_no_ports_taken() {
    let mut calls = calls();
    let offer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let e = calls
        .offer_to(t0(), ("c3", "phone"), offer.as_bytes(), true)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no codec shared by the browser and the phone (offered: G729/8000)"
    );
    assert_eq!(calls.relay().free_pairs(), 2);
    assert!(calls.is_empty());
}

#[test]
fn a_browser_answer_without_a_fingerprint_is_refused_and_the_call_can_be_deleted() {
    let mut calls = calls();
    let offer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\n";
    let to_browser = calls
        .offer_to(t0(), ("c4", "phone"), offer.as_bytes(), true)
        .unwrap();
    let broken: String = to_browser
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert!(
        calls
            .answer(t0(), "c4", "browser", broken.as_bytes())
            .is_err()
    );
    calls.delete("c4").unwrap();
    assert_eq!(calls.relay().free_pairs(), 2);
}

#[test]
fn a_browser_offer_or_answer_without_rtcp_mux_is_refused_and_leaves_no_ports_taken() {
    let now = t0();
    let mut calls = calls();
    let mut rtc = browser_rtc(now);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, _pending) = change.apply().unwrap();
    let unmuxed: String = offer
        .to_sdp_string()
        .lines()
        .filter(|l| !l.starts_with("a=rtcp-mux"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let e = calls
        .offer_to(now, ("c5", "browser"), unmuxed.as_bytes(), false)
        .unwrap_err();
    assert_eq!(e.to_string(), "the browser's SDP has no a=rtcp-mux");
    assert_eq!(calls.relay().free_pairs(), 2);
    assert!(calls.is_empty());

    // A phone's offer to a browser that answers without rtcp-mux.
    let offer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\n";
    let to_browser = calls
        .offer_to(now, ("c6", "phone"), offer.as_bytes(), true)
        .unwrap();
    let unmuxed: String = to_browser
        .lines()
        .filter(|l| !l.starts_with("a=rtcp-mux"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let e = calls
        .answer(now, "c6", "browser", unmuxed.as_bytes())
        .unwrap_err();
    assert_eq!(e.to_string(), "the browser's SDP has no a=rtcp-mux");
    calls.delete("c6").unwrap();
    assert_eq!(calls.relay().free_pairs(), 2);
}

#[test]
fn a_browser_whose_dtls_fingerprint_is_wrong_never_connects_and_its_call_is_reported_gone() {
    let mut now = t0();
    let mut calls = calls();
    let offer = "v=0\r\no=- 1 1 IN IP4 198.18.0.9\r\ns=-\r\nc=IN IP4 198.18.0.9\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\n";
    let (to_browser, mut rtc, answer) = browser_answering(&mut calls, now, "c7", offer);
    let browser_port = candidate_port(&to_browser);
    // Another certificate's fingerprint than the one the browser's DTLS will show.
    let forged: String = answer
        .lines()
        .map(|l| match l.strip_prefix("a=fingerprint:sha-256 ") {
            Some(_) => format!("a=fingerprint:sha-256 {}\r\n", ["AB"; 32].join(":")),
            None => format!("{l}\r\n"),
        })
        .collect();
    let to_phone = calls
        .answer(now, "c7", "browser", forged.as_bytes())
        .unwrap();
    let phone_port = port_of(&to_phone);
    let heard = run(
        &mut calls,
        &mut rtc,
        (browser_port, phone_port),
        (&mut now, Duration::from_secs(40)),
        true,
    );
    assert!(!heard.connected, "{:?}", heard.gave_up);
    assert!(heard.phone.is_empty(), "nothing reaches the phone");
    assert!(heard.browser.is_empty(), "nor the browser");
    assert_eq!(calls.poll_browser_gone().as_deref(), Some("c7"));
    assert_eq!(calls.relay().free_pairs(), 2, "its ports are back");
}

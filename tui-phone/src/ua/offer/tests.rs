#![allow(clippy::unwrap_used)]

use super::*;

const KEY_A: SrtpKey = [1; 30];
const KEY_B: SrtpKey = [2; 30];

fn local(port: u16, direction: Direction, key: Option<&SrtpKey>) -> Local<'_> {
    Local {
        rtp: SocketAddr::from(([127, 0, 0, 1], port)),
        session: (7, 1),
        direction,
        key,
    }
}

#[test]
fn our_offer_answered_by_us_settles_opus_srtp_and_dtmf_both_ways() {
    let a = local(4000, Direction::SendRecv, Some(&KEY_A));
    let offer_text = offer(&a);
    let b = local(5000, Direction::SendRecv, Some(&KEY_B));
    let (answer_text, at_b) = answer(&offer_text, &b).unwrap();
    assert_eq!(at_b.codec, Codec::Opus);
    assert_eq!(at_b.pt, OPUS_PT);
    assert_eq!(at_b.dtmf_pt, Some(DTMF_PT));
    assert_eq!(at_b.remote_rtp, "127.0.0.1:4000".parse().unwrap());
    assert_eq!(at_b.remote_rtcp, None, "rtcp-mux offered");
    assert_eq!(at_b.srtp, Some((KEY_B, KEY_A)));
    let at_a = read_answer(&answer_text, &a).unwrap();
    assert_eq!(at_a.codec, Codec::Opus);
    assert_eq!(at_a.remote_rtp, "127.0.0.1:5000".parse().unwrap());
    assert_eq!(at_a.srtp, Some((KEY_A, KEY_B)));
    assert_eq!(at_a.direction, Direction::SendRecv);
}

#[test]
fn a_pcmu_only_plain_rtp_offer_is_answered_with_pcmu_and_no_crypto() {
    let offer_text = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
                      m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let (text, n) = answer(offer_text, &local(5000, Direction::SendRecv, Some(&KEY_B))).unwrap();
    assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcmu, 0, Some(101)));
    assert_eq!(n.remote_rtcp, Some("127.0.0.2:6001".parse().unwrap()));
    assert_eq!(n.srtp, None);
    assert!(text.contains("m=audio 5000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(!text.contains("a=crypto"), "{text}");
}

#[test]
fn the_offerers_order_wins() {
    let offer_text = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/AVP 8 0 96\r\n\
                      a=rtpmap:96 opus/48000/2\r\n";
    let (_, n) = answer(offer_text, &local(5000, Direction::SendRecv, None)).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    let (_, n) = answer(
        &offer_text.replace("8 0 96", "96 8"),
        &local(5000, Direction::SendRecv, None),
    )
    .unwrap();
    assert_eq!((n.codec, n.pt), (Codec::Opus, 96));
}

#[test]
fn an_unknown_codec_is_refused_naming_what_was_offered() {
    let offer_text = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/AVP 97 18\r\n\
                      a=rtpmap:97 speex/16000\r\n";
    let e = answer(offer_text, &local(5000, Direction::SendRecv, None)).unwrap_err();
    assert_eq!(e, OfferError::NoCodec("speex/16000, 18".into()));
    assert_eq!(
        e.to_string(),
        "no codec in common (they speak: speex/16000, 18)"
    );
}

#[test]
fn savp_without_a_key_we_speak_is_refused() {
    let offer_text = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/SAVP 0\r\n\
                      a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n";
    let e = answer(offer_text, &local(5000, Direction::SendRecv, Some(&KEY_B))).unwrap_err();
    assert_eq!(e, OfferError::NoCrypto);
}

#[test]
fn hold_is_sendonly_and_its_answer_recvonly() {
    let holder = local(4000, Direction::SendOnly, None);
    let offer_text = offer(&holder);
    assert!(offer_text.contains("a=sendonly\r\n"));
    let (answer_text, held) = answer(&offer_text, &local(5000, Direction::SendRecv, None)).unwrap();
    assert_eq!(held.direction, Direction::RecvOnly);
    assert!(answer_text.contains("a=recvonly\r\n"), "{answer_text}");
    let at_holder = read_answer(&answer_text, &holder).unwrap();
    assert_eq!(at_holder.direction, Direction::SendOnly);
}

#[test]
fn session_level_direction_applies_to_the_stream() {
    let offer_text = "v=0\r\nc=IN IP4 127.0.0.2\r\na=inactive\r\nm=audio 6000 RTP/AVP 0\r\n";
    let (_, n) = answer(offer_text, &local(5000, Direction::SendRecv, None)).unwrap();
    assert_eq!(n.direction, Direction::Inactive);
}

#[test]
fn garbled_sdp_and_missing_audio_are_errors_not_panics() {
    let l = local(5000, Direction::SendRecv, None);
    assert!(matches!(answer("hello", &l), Err(OfferError::Garbled(_))));
    assert!(matches!(
        answer("v=0\r\nc=IN IP4 1.2.3\r\nm=audio 1 RTP/AVP 0\r\n", &l),
        Err(OfferError::Garbled(_))
    ));
    assert_eq!(
        answer(
            "v=0\r\nc=IN IP4 127.0.0.2\r\nm=video 6000 RTP/AVP 96\r\n",
            &l
        ),
        Err(OfferError::NoAudio)
    );
    assert_eq!(
        answer("v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 0 RTP/AVP 0\r\n", &l),
        Err(OfferError::NoAudio)
    );
    let ours = local(4000, Direction::SendRecv, Some(&KEY_A));
    let bad_crypto = "v=0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/AVP 0\r\n\
                      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:not-base64!\r\n";
    assert_eq!(read_answer(bad_crypto, &ours), Err(OfferError::BadCrypto));
}

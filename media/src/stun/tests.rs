#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use stun_rs::attributes::stun::{Software, UserName, XorMappedAddress};
use stun_rs::{Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey};

/// An RFC 5769 sample message from testdata/media-vectors.
fn vector(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/media-vectors")
        .join(format!("rfc5769_{name}.hex"));
    let text = std::fs::read_to_string(&path).expect("the media vectors (testdata/)");
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_with(
    packet: &[u8],
    key: HMACKey,
) -> Result<StunMessage, stun_rs::error::StunDecodeError> {
    let ctx = DecoderContextBuilder::default()
        .with_key(key)
        .with_validation()
        .build();
    MessageDecoderBuilder::default()
        .with_context(ctx)
        .build()
        .decode(packet)
        .map(|(m, _)| m)
}

const SHORT_TERM: &str = "VOkJxbRl1RmTxUk/WvJxBt";

#[test]
fn the_codec_passes_the_rfc_5769_vectors() {
    let key = || HMACKey::new_short_term(SHORT_TERM).unwrap();
    // 2.1: request, short-term credentials, integrity and fingerprint check out.
    let request = decode_with(&vector("sample_request"), key()).unwrap();
    assert_eq!(request.class(), MessageClass::Request);
    assert_eq!(
        request
            .get::<UserName>()
            .unwrap()
            .as_user_name()
            .unwrap()
            .as_str(),
        "evtj:h6vY"
    );
    // 2.2 and 2.3: responses with the mapped address XOR'ed, IPv4 and IPv6.
    for (name, addr) in [
        ("sample_ipv4_response", "192.0.2.1:32853"),
        (
            "sample_ipv6_response",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ] {
        let m = decode_with(&vector(name), key()).unwrap();
        let mapped = m
            .get::<XorMappedAddress>()
            .unwrap()
            .as_xor_mapped_address()
            .unwrap();
        assert_eq!(
            *mapped.socket_address(),
            addr.parse::<SocketAddr>().unwrap()
        );
        let software = m.get::<Software>().unwrap().as_software().unwrap();
        assert_eq!(software.as_str(), "test vector");
    }
    // 2.4: long-term credentials. RFC 5769 prepared the printed password with SASLprep (RFC
    // 5389), giving "TheMatrIX"; stun-rs prepares passwords with OpaqueString (RFC 8489), which
    // refuses the soft hyphen in it, so the prepared form is what a user's password must be.
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    let md5 = || Algorithm::from(AlgorithmId::MD5);
    let long = HMACKey::new_long_term(user, "example.org", "TheMatrIX", md5()).unwrap();
    assert!(decode_with(&vector("sample_request_long_term_auth"), long).is_ok());
    assert!(
        HMACKey::new_long_term(user, "example.org", "The\u{00AD}M\u{00AA}tr\u{2168}", md5())
            .is_err()
    );
    // Our own integrity check (auth.rs, on the raw bytes) agrees with the vectors, and a
    // changed byte or key fails it.
    let long = HMACKey::new_long_term(user, "example.org", "TheMatrIX", md5()).unwrap();
    let request = vector("sample_request_long_term_auth");
    assert!(auth::integrity_holds(&request, long.as_bytes()));
    let mut altered = request.clone();
    altered[30] ^= 1;
    assert!(!auth::integrity_holds(&altered, long.as_bytes()));
    let short = HMACKey::new_short_term(SHORT_TERM).unwrap();
    assert!(auth::integrity_holds(
        &vector("sample_request"),
        short.as_bytes()
    ));
    assert!(!auth::integrity_holds(&request, short.as_bytes()));
    assert!(
        !auth::integrity_holds(&request[..20], long.as_bytes()),
        "no integrity at all"
    );
    // A wrong key fails: the check is real.
    let wrong = HMACKey::new_short_term("not the password").unwrap();
    assert!(decode_with(&vector("sample_request"), wrong).is_err());
}

fn server(credentials: Option<Credentials>) -> StunServer {
    StunServer::new("openline-media test", credentials, [9; 32])
}

fn binding(attributes: Vec<StunAttribute>) -> Vec<u8> {
    let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request);
    for a in attributes {
        b = b.with_attribute(a);
    }
    let mut buf = [0u8; 512];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, &b.build())
        .unwrap();
    buf[..n].to_vec()
}

fn reply(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Reply(r) => r,
        other => panic!("no reply: {other:?}"),
    }
}

fn error_code(packet: &[u8]) -> u16 {
    let (m, _) = MessageDecoderBuilder::default()
        .build()
        .decode(packet)
        .unwrap();
    m.get::<ErrorCode>()
        .unwrap()
        .as_error_code()
        .unwrap()
        .error_code()
        .error_code()
}

#[test]
fn a_binding_request_learns_its_source_v4_and_v6() {
    let s = server(None);
    for source in ["198.51.100.7:40000", "[2001:db8::7]:5000"] {
        let source: SocketAddr = source.parse().unwrap();
        let request = binding(Vec::new());
        let answer = reply(s.handle(&request, source, 1000));
        let (m, _) = MessageDecoderBuilder::default()
            .build()
            .decode(&answer)
            .unwrap();
        assert_eq!(m.class(), MessageClass::SuccessResponse);
        assert_eq!(m.transaction_id().as_bytes(), &request[8..20]);
        let mapped = m
            .get::<XorMappedAddress>()
            .unwrap()
            .as_xor_mapped_address()
            .unwrap();
        assert_eq!(*mapped.socket_address(), source);
        assert!(m.get::<Fingerprint>().is_none(), "the request had none");
        assert!(m.get::<MessageIntegrity>().is_none(), "none was asked");
        // With FINGERPRINT in the request, the answer has one too.
        let request = binding(vec![Fingerprint::default().into()]);
        let answer = reply(s.handle(&request, source, 1000));
        let (m, _) = MessageDecoderBuilder::default()
            .build()
            .decode(&answer)
            .unwrap();
        assert!(m.get::<Fingerprint>().is_some());
    }
}

#[test]
fn what_is_not_a_request_gets_no_answer() {
    let s = server(None);
    let source: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // RTP (version 2: top bits 10), a truncated header, noise with the cookie, a response.
    assert_eq!(
        s.handle(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], source, 0),
        Outcome::Dropped(Dropped::NotStun)
    );
    assert_eq!(
        s.handle(&vector("sample_request")[..19], source, 0),
        Outcome::Dropped(Dropped::NotStun)
    );
    let mut broken = vector("sample_request");
    broken[3] = 0xff; // a length past the end
    assert_eq!(
        s.handle(&broken, source, 0),
        Outcome::Dropped(Dropped::Malformed)
    );
    assert_eq!(
        s.handle(&vector("sample_ipv4_response"), source, 0),
        Outcome::Dropped(Dropped::NotARequest)
    );
}

fn alice() -> Credentials {
    Credentials {
        realm: "media.test".into(),
        users: [("alice".to_string(), "s3cret".to_string())].into(),
        secret: None,
    }
}

/// A Binding request with long-term credentials for `user`/`password`, `nonce`, integrity of
/// the kinds asked for.
fn signed(user: &str, password: &str, nonce: &str, (sha1, sha256): (bool, bool)) -> Vec<u8> {
    let key = HMACKey::new_long_term(
        user,
        "media.test",
        password,
        Algorithm::from(AlgorithmId::MD5),
    )
    .unwrap();
    let mut attributes = vec![
        StunAttribute::from(UserName::new(user).unwrap()),
        StunAttribute::from(Realm::new("media.test").unwrap()),
        StunAttribute::from(Nonce::new(nonce).unwrap()),
    ];
    if sha1 {
        attributes.push(MessageIntegrity::new(key.clone()).into());
    }
    if sha256 {
        attributes.push(MessageIntegritySha256::new(key).into());
    }
    attributes.push(Fingerprint::default().into());
    binding(attributes)
}

#[test]
fn integrity_is_checked_against_long_term_credentials_and_answered_in_kind() {
    let s = server(Some(alice()));
    let source: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let now = 1_800_000_000;
    // An unknown nonce: 438 with the realm and a nonce to use.
    let stale = reply(s.handle(
        &signed(
            "alice",
            "s3cret",
            "00000000000000000000000000000000",
            (true, false),
        ),
        source,
        now,
    ));
    assert_eq!(error_code(&stale), 438);
    let (m, _) = MessageDecoderBuilder::default()
        .build()
        .decode(&stale)
        .unwrap();
    let nonce = m
        .get::<Nonce>()
        .unwrap()
        .as_nonce()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(
        m.get::<Realm>().unwrap().as_realm().unwrap().as_str(),
        "media.test"
    );
    // With it: success, signed with the same key, both kinds when both were used.
    let key = HMACKey::new_long_term(
        "alice",
        "media.test",
        "s3cret",
        Algorithm::from(AlgorithmId::MD5),
    )
    .unwrap();
    for kinds in [(true, false), (false, true), (true, true)] {
        let answer = reply(s.handle(&signed("alice", "s3cret", &nonce, kinds), source, now + 1));
        let m = decode_with(&answer, key.clone()).expect("an answer whose integrity checks out");
        assert_eq!(m.class(), MessageClass::SuccessResponse);
        assert_eq!(m.get::<MessageIntegrity>().is_some(), kinds.0);
        assert_eq!(m.get::<MessageIntegritySha256>().is_some(), kinds.1);
    }
    // A wrong password or an unknown user: 401 with a challenge.
    for (user, password) in [("alice", "guess"), ("mallory", "s3cret")] {
        let answer = reply(s.handle(
            &signed(user, password, &nonce, (true, false)),
            source,
            now + 1,
        ));
        assert_eq!(error_code(&answer), 401);
    }
    // The nonce ages out.
    let late = reply(s.handle(
        &signed("alice", "s3cret", &nonce, (true, false)),
        source,
        now + NONCE_LIFETIME + 1,
    ));
    assert_eq!(error_code(&late), 438);
    // Integrity without USERNAME/REALM/NONCE: 400.
    let key2 = key.clone();
    let bare = binding(vec![MessageIntegrity::new(key2).into()]);
    assert_eq!(error_code(&reply(s.handle(&bare, source, now))), 400);
    // A server without credentials refuses integrity it cannot check.
    let open = server(None);
    assert_eq!(
        error_code(&reply(open.handle(
            &signed("alice", "s3cret", &nonce, (true, false)),
            source,
            now
        ))),
        401
    );
}

#[test]
fn an_attribute_that_must_be_understood_and_is_not_gets_420_naming_it() {
    let s = server(None);
    let source: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    // A Binding request with attribute 0x7777 (comprehension-required, unknown) and 0xc0de
    // (comprehension-optional, unknown: ignored).
    let mut request = binding(Vec::new());
    request.extend_from_slice(&[0x77, 0x77, 0, 4, 1, 2, 3, 4, 0xc0, 0xde, 0, 4, 5, 6, 7, 8]);
    request[2..4].copy_from_slice(&16u16.to_be_bytes());
    let answer = reply(s.handle(&request, source, 0));
    assert_eq!(error_code(&answer), 420);
    let (m, _) = MessageDecoderBuilder::default()
        .build()
        .decode(&answer)
        .unwrap();
    let listed = m
        .get::<UnknownAttributes>()
        .unwrap()
        .as_unknown_attributes()
        .unwrap();
    assert_eq!(listed.attributes(), &[0x7777]);
    // Only the optional one: answered as usual.
    let mut optional = binding(Vec::new());
    optional.extend_from_slice(&[0xc0, 0xde, 0, 4, 5, 6, 7, 8]);
    optional[2..4].copy_from_slice(&8u16.to_be_bytes());
    let (m, _) = MessageDecoderBuilder::default()
        .build()
        .decode(&reply(s.handle(&optional, source, 0)))
        .unwrap();
    assert_eq!(m.class(), MessageClass::SuccessResponse);
}

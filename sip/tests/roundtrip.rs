//! Property: any message built from the grammar's pieces, with random compact names, header-name
//! case, white space and line folding, parses to what was built, and printing it gives an
//! equivalent message that prints the same again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_sip::{Message, fuzz};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,12}"
}

/// A URI user part: unreserved characters (a `%` would need two hex digits after it).
fn user() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._!~*'()-]{0,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9-]{0,7}[a-z0-9])?(\\.[a-z][a-z0-9]{0,6}){0,2}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::10]".to_string()),
    ]
}

fn name(full: &'static str, compact: Option<&'static str>) -> impl Strategy<Value = String> {
    (any::<bool>(), any::<u64>()).prop_map(move |(use_compact, case)| {
        let n = match (use_compact, compact) {
            (true, Some(c)) => c,
            _ => full,
        };
        n.chars()
            .enumerate()
            .map(|(i, ch)| {
                if case >> (i % 64) & 1 == 1 {
                    ch.to_ascii_uppercase()
                } else {
                    ch.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// White space that may hold a fold.
fn lws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(" "),
        Just("  "),
        Just("\t"),
        Just("\r\n "),
        Just(" \r\n\t")
    ]
}

#[derive(Debug, Clone)]
struct Built {
    bytes: Vec<u8>,
    method: String,
    branch: String,
    call_id: String,
    seq: u32,
    from_tag: String,
    body: Vec<u8>,
}

fn message() -> impl Strategy<Value = Built> {
    (
        prop_oneof![
            Just("INVITE".to_string()),
            Just("OPTIONS".to_string()),
            Just("MESSAGE".to_string()),
            "[A-Z]{3,10}"
        ],
        (user(), host(), proptest::option::of(1u16..)),
        (
            name("Via", Some("v")),
            lws(),
            lws(),
            host(),
            "[a-zA-Z0-9]{1,16}",
        ),
        (
            name("From", Some("f")),
            proptest::option::of("[a-zA-Z ]{1,10}"),
            user(),
            host(),
            lws(),
            token(),
        ),
        (name("To", Some("t")), user(), host()),
        (
            name("Call-ID", Some("i")),
            "[a-zA-Z0-9.@-]{1,24}",
            name("CSeq", None),
            0u32..(1 << 31),
            lws(),
        ),
        (name("Max-Forwards", None), 0u8..=255),
        proptest::collection::vec(("X-[A-Za-z]{1,8}", "[ -~]{0,20}", lws()), 0..4),
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<bool>(),
            name("Content-Length", Some("l")),
        ),
    )
        .prop_map(
            |(
                method,
                (user, rhost, port),
                via,
                from,
                to,
                ids,
                mf,
                extra,
                (body, with_length, cl),
            )| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let (via_name, sp1, sp2, via_host, branch_suffix) = via;
                let branch = format!("z9hG4bK{branch_suffix}");
                let (from_name, display, from_user, from_host, fold, from_tag) = from;
                let display = display.map(|d| format!("\"{d}\" ")).unwrap_or_default();
                let (to_name, to_user, to_host) = to;
                let (cid_name, call_id, cseq_name, seq, cseq_sp) = ids;
                let (mf_name, mf) = mf;
                let mut text = format!("{method} sip:{user}@{rhost}{port} SIP/2.0\r\n");
                text += &format!(
                    "{via_name} :{sp1}SIP{sp2}/2.0/UDP {via_host};branch={branch};rport\r\n"
                );
                text += &format!(
                    "{from_name}: {display}<sip:{from_user}@{from_host}>{fold};tag={from_tag}\r\n"
                );
                text += &format!("{to_name}:<sip:{to_user}@{to_host}>\r\n");
                text += &format!(
                    "{cid_name}: {call_id}\r\n{cseq_name}: {seq}{} {method}\r\n",
                    if cseq_sp.is_empty() { " " } else { cseq_sp }
                );
                text += &format!("{mf_name}: {mf}\r\n");
                for (n, v, fold) in extra {
                    text += &format!("{n}:{fold}{v}\r\n");
                }
                if with_length {
                    text += &format!("{cl}: {}\r\n", body.len());
                }
                text += "\r\n";
                let mut bytes = text.into_bytes();
                bytes.extend_from_slice(&body);
                Built {
                    bytes,
                    method,
                    branch,
                    call_id,
                    seq,
                    from_tag,
                    body,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn built_messages_parse_to_what_was_built_and_round_trip(b in message()) {
        let m = Message::parse(&b.bytes).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&b.bytes))))?;
        prop_assert_eq!(m.method().as_str(), b.method.as_str());
        prop_assert_eq!(m.top_via.branch, Some(b.branch.as_str()));
        prop_assert_eq!(m.call_id, b.call_id.as_str());
        prop_assert_eq!(m.cseq.seq, b.seq);
        prop_assert_eq!(m.from_tag, Some(b.from_tag.as_str()));
        prop_assert_eq!(m.to_tag, None);
        prop_assert_eq!(m.body, &b.body[..]);
        prop_assert!(m.check_headers().is_ok(), "{:?}", m.check_headers());
        fuzz::message_round_trip(&b.bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::message_round_trip(&data);
    }
}

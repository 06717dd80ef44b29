//! Fuzz bodies (STYLE.md principle 10). They live here so that they compile with every build;
//! `fuzz/` runs them under libFuzzer, and the test suite replays a corpus through them on stable.
//! A panic is the finding.

use crate::endpoint::{Inbound, Output, Verdict};
use crate::framing::StreamFramer;
use crate::header::{AuthParams, HeaderName, MediaType, Via, scalar};
use crate::message::{Message, Salvaged};
use crate::transaction::{Destination, State};
use crate::{Endpoint, EndpointConfig, SeededEntropy, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Folds every run of white space holding a line break into one space, for comparing values
/// before and after printing.
fn collapsed(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    crate::message::write_collapsed_for_fuzz(&mut out, s);
    String::from_utf8_lossy(&out).into_owned()
}

fn same_via(a: &Via<'_>, b: &Via<'_>) -> bool {
    let params = |v: &Via<'_>| {
        v.params
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(collapsed)))
            .collect::<Vec<_>>()
    };
    a.transport == b.transport
        && a.host == b.host
        && a.port == b.port
        && a.branch.map(collapsed) == b.branch.map(collapsed)
        && params(a) == params(b)
}

/// Parses `data`; if it parses, printing must give an equivalent message that prints the same
/// again, and every typed view must read its header without panicking.
pub fn message_round_trip(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        let printed = m.to_bytes();
        let again = match Message::parse(&printed) {
            Ok(a) => a,
            Err(e) => panic!(
                "printed message does not parse ({e}): {:?}",
                String::from_utf8_lossy(&printed)
            ),
        };
        assert_eq!(again.start, m.start);
        assert_eq!(again.body, m.body);
        assert_eq!(again.call_id, m.call_id);
        assert_eq!(again.cseq, m.cseq);
        assert_eq!(again.max_forwards, m.max_forwards);
        assert_eq!(again.from_tag.map(collapsed), m.from_tag.map(collapsed));
        assert_eq!(again.to_tag.map(collapsed), m.to_tag.map(collapsed));
        assert!(
            same_via(&again.top_via, &m.top_via),
            "{:?} vs {:?}",
            again.top_via,
            m.top_via
        );
        fn names(m: &Message<'_>) -> Vec<(String, String)> {
            m.headers
                .iter()
                .map(|h| (h.name.as_str().to_ascii_lowercase(), collapsed(h.value)))
                .collect()
        }
        let (before, after) = (names(&m), names(&again));
        // Printing adds a Content-Length when there was none.
        // Printing writes Content-Length from the body (adding one when there was none).
        let is_length = |n: &String| HeaderName::parse(n) == HeaderName::ContentLength;
        let before: Vec<_> = before.into_iter().filter(|(n, _)| !is_length(n)).collect();
        let after: Vec<_> = after.into_iter().filter(|(n, _)| !is_length(n)).collect();
        assert_eq!(before, after);
        assert_eq!(again.to_bytes(), printed, "printing is stable");
        read_every_view(&m);
    }
    if let Some(s) = Salvaged::scan(data) {
        let _ = s.top_via().sent_by_port();
    }
    let mut framer = StreamFramer::new();
    framer.push(data);
    for _ in 0..data.len() + 2 {
        match framer.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

fn read_every_view(m: &Message<'_>) {
    let _ = m.check_headers();
    let _ = (
        m.from(),
        m.to(),
        m.contacts(),
        m.content_type(),
        m.expires(),
    );
    for via in m.vias().flatten() {
        let _ = (via.rport(), via.received(), via.transport());
    }
    for h in &m.headers {
        match h.name {
            HeaderName::Authorization
            | HeaderName::ProxyAuthorization
            | HeaderName::WwwAuthenticate
            | HeaderName::ProxyAuthenticate => {
                if let Some(a) = AuthParams::parse(h.value) {
                    let _ = (a.get("realm"), a.get("nonce"), a.iter().count());
                }
            }
            HeaderName::AuthenticationInfo => {
                let _ = AuthParams::parse_info(h.value).map(|a| a.get("nextnonce"));
            }
            HeaderName::ContentType => {
                let _ = MediaType::parse(h.value);
            }
            HeaderName::MinExpires => {
                let _ = scalar::delta_seconds(h.value);
            }
            _ => {}
        }
    }
}

/// Drives one endpoint with operations read from `data`, as a state machine: messages in from
/// two peers over UDP and TCP, answers with any status, requests out, time jumps. No panic,
/// and once time has run on, only transactions waiting on their user (Proceeding) remain.
pub fn endpoint_operations(data: &[u8], start: Instant) {
    let mut endpoint = Endpoint::new(EndpointConfig::default(), Box::new(SeededEntropy::new(7)));
    let peers: [SocketAddr; 2] = [
        SocketAddr::from(([127, 0, 0, 1], 5060)),
        SocketAddr::from(([127, 0, 0, 2], 5070)),
    ];
    let mut now = start;
    for op in data.split(|&b| b == 0xff) {
        let Some((&code, rest)) = op.split_first() else {
            continue;
        };
        match code % 4 {
            0 => now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(1)) * 50),
            1 | 2 => {
                let transport = if code % 4 == 1 {
                    Transport::Udp
                } else {
                    Transport::Tcp
                };
                let source = peers[usize::from(code / 4 % 2)];
                let inbound = Inbound {
                    transport,
                    source,
                    data: rest,
                };
                if let Verdict::Request {
                    request,
                    transaction: Some(id),
                } = endpoint.handle(now, inbound)
                {
                    let status = 100 + u16::from(code / 8) * 600 / 32;
                    let echo = request.echo();
                    let _ = endpoint.reply(now, id, &echo, source, status.min(699), &[]);
                }
            }
            _ => {
                let destination = Destination {
                    transport: Transport::Udp,
                    addr: peers[usize::from(code / 4 % 2)],
                };
                let _ = endpoint.send_request(now, rest.to_vec(), destination);
            }
        }
        endpoint.handle_timeout(now);
        while let Some(output) = endpoint.poll_output() {
            if let Output::Transmit(t) = output {
                assert!(!t.payload.is_empty());
            }
        }
    }
    // Let every timer run out.
    for _ in 0..64 {
        now += Duration::from_secs(8);
        endpoint.handle_timeout(now);
        while endpoint.poll_output().is_some() {}
    }
    for (id, state) in endpoint.transactions() {
        assert_eq!(state, State::Proceeding, "{id} stuck in {state:?}");
    }
}

/// A PIDF presence document (RFC 3863): read, and what is read writes a document that reads
/// the same.
pub fn pidf(data: &[u8]) {
    if let Ok(status) = crate::pidf::parse(data) {
        let written = crate::pidf::document("sip:fuzz@fuzz.test", &status);
        match crate::pidf::parse(written.as_bytes()) {
            Ok(again) => assert_eq!(again, status, "{written}"),
            Err(e) => panic!("a written document does not read ({e}):\n{written}"),
        }
    }
}

/// Digest header values: credentials (Authorization) and challenges (WWW-Authenticate) as a
/// user agent answers them.
pub fn digest(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = crate::digest::Credentials::parse(value) {
        let _ = c.nonce_count();
        let _ = crate::digest::constant_time_eq(c.username, value);
    }
    let _ = AuthParams::parse_info(value);
    let answer = crate::digest::Answer {
        username: "alice",
        password: "wonder",
        method: "REGISTER",
        uri: "sip:fuzz.test",
        cnonce: "0a4f113b",
        nc: 1,
    };
    if let Some(credentials) = crate::digest::answer(value, &answer) {
        // What we answer must read as credentials.
        if let Err(e) = crate::digest::Credentials::parse(&credentials) {
            panic!("our answer does not read ({e}): {credentials}");
        }
    }
}

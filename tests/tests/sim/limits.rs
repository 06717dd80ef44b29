//! Limits in the server core (issue #24), in virtual time: calls in progress per user, calls
//! to other domains per user per hour, and requests per source per second, each refused on
//! the wire with a reason and let through again once the cause is gone.

use openline_proxy::core::{GuardConfig, MediaMode, ServerCore};
use openline_registrar::User;
use openline_sip::digest::{Answer, answer};
use openline_sip::endpoint::Transmit;
use openline_sip::transaction::Destination;
use openline_sip::{SeededEntropy, Transport};
use openline_tests::wire::{first_line, header, response_to, status};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WALL: u64 = 1_800_000_000;
const ALICE: &str = "198.18.0.10:5060";
const BOB: &str = "198.18.0.20:5060";
const CLUB_B: &str = "198.18.1.1:5060";

fn core(guard: GuardConfig) -> ServerCore {
    let mut config = openline_tests::sim::core_config(MediaMode::Never);
    config.guard = guard;
    config.peers = vec![(
        "club-b.test".into(),
        Destination {
            transport: Transport::Udp,
            addr: CLUB_B.parse().unwrap(),
        },
    )];
    let bob = openline_tests::sim::udp_binding("bob@club-a.test", BOB, WALL + 3600);
    let users = ["alice", "bob"]
        .map(|u| User::new(&format!("{u}@club-a.test"), "s3cret").unwrap())
        .to_vec();
    let mut core = ServerCore::new(
        config,
        users,
        vec![bob],
        Box::new(SeededEntropy::new(1)),
        Box::new(SeededEntropy::new(2)),
    );
    core.set_local(&[(Transport::Udp, "198.18.0.1:5060".parse().unwrap())]);
    core
}

fn from(core: &mut ServerCore, now: Instant, who: &str, data: &[u8]) -> Vec<Transmit> {
    let addr: SocketAddr = who.parse().unwrap();
    core.handle_received(now, WALL, (Transport::Udp, addr), data, None);
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn invite(to: &str, call: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "INVITE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{call}-{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@club-a.test>;tag={call}\r\nTo: <sip:{to}>\r\n\
         Call-ID: {call}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Alice calls `to`, answering the challenge: what the core sent for the authenticated
/// INVITE.
fn call(core: &mut ServerCore, now: Instant, to: &str, call: &str) -> Vec<Transmit> {
    let sent = from(core, now, ALICE, &invite(to, call, 1, None));
    let challenge = sent
        .iter()
        .find(|t| status(&t.payload) == Some(407))
        .and_then(|t| header(&t.payload, "Proxy-Authenticate", None))
        .expect("a 407 challenge");
    let uri = format!("sip:{to}");
    let credentials = answer(
        &challenge,
        &Answer {
            username: "alice",
            password: "s3cret",
            method: "INVITE",
            uri: &uri,
            cnonce: "0a4f113b",
            nc: 1,
        },
    )
    .unwrap();
    from(core, now, ALICE, &invite(to, call, 2, Some(&credentials)))
}

/// The INVITE forwarded to `to`, if one was.
fn forwarded<'a>(sent: &'a [Transmit], to: &str) -> Option<&'a Transmit> {
    sent.iter().find(|t| {
        t.destination.addr.to_string() == to && first_line(&t.payload).starts_with("INVITE")
    })
}

/// The final answer alice got, with its reason.
fn final_to_alice(sent: &[Transmit]) -> Option<String> {
    sent.iter()
        .filter(|t| t.destination.addr.to_string() == ALICE)
        .map(|t| first_line(&t.payload))
        .find(|l| !l.starts_with("SIP/2.0 1"))
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn a_user_with_the_most_calls_in_progress_is_refused_until_one_ends() {
    let guard = GuardConfig {
        calls_per_user: 2,
        ..GuardConfig::default()
    };
    let mut core = core(guard);
    let now = Instant::now();
    let first = call(&mut core, now, "bob@club-a.test", "c1");
    let ringing = forwarded(&first, BOB)
        .expect("the first call rings bob")
        .payload
        .clone();
    assert!(forwarded(&call(&mut core, now, "bob@club-a.test", "c2"), BOB).is_some());
    let third = call(&mut core, now, "bob@club-a.test", "c3");
    assert!(
        forwarded(&third, BOB).is_none(),
        "a third call must not ring"
    );
    assert_eq!(
        final_to_alice(&third).as_deref(),
        Some("SIP/2.0 403 Forbidden (you have the most calls in progress allowed)")
    );
    // Bob is busy for the first: it ends, and there is room for one more call.
    let busy = response_to(&ringing, 486, "Busy Here", "b1", "");
    let relayed = from(&mut core, now, BOB, &busy);
    assert_eq!(
        final_to_alice(&relayed).as_deref(),
        Some("SIP/2.0 486 Busy Here")
    );
    assert!(forwarded(&call(&mut core, now, "bob@club-a.test", "c4"), BOB).is_some());
    assert!(forwarded(&call(&mut core, now, "bob@club-a.test", "c5"), BOB).is_none());
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn calls_to_other_domains_stop_at_the_hourly_limit_and_resume_an_hour_later() {
    let guard = GuardConfig {
        calls_out_per_hour: 2,
        ..GuardConfig::default()
    };
    let mut core = core(guard);
    let t0 = Instant::now();
    for (i, at) in [0u64, 600].into_iter().enumerate() {
        let now = t0 + Duration::from_secs(at);
        let sent = call(&mut core, now, "carol@club-b.test", &format!("out{i}"));
        let out = forwarded(&sent, CLUB_B).expect("a call to club-b goes out");
        // It ends at once (carol declines), so only the hourly limit can refuse the next.
        let declined = response_to(&out.payload.clone(), 603, "Decline", "x", "");
        from(&mut core, now, CLUB_B, &declined);
    }
    let now = t0 + Duration::from_secs(1200);
    let third = call(&mut core, now, "carol@club-b.test", "out3");
    assert!(
        forwarded(&third, CLUB_B).is_none(),
        "a third call out must not leave"
    );
    assert_eq!(
        final_to_alice(&third).as_deref(),
        Some("SIP/2.0 403 Forbidden (hourly limit of calls to other domains reached)")
    );
    // Calls inside the domain are not limited by it.
    assert!(forwarded(&call(&mut core, now, "bob@club-a.test", "in1"), BOB).is_some());
    // An hour after the first call out, there is room for one.
    let later = t0 + Duration::from_secs(3601);
    assert!(forwarded(&call(&mut core, later, "carol@club-b.test", "out4"), CLUB_B).is_some());
}

fn options(n: u32, from_addr: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP {from_addr};branch=z9hG4bKo{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@elsewhere.test>;tag=o{n}\r\nTo: <sip:club-a.test>\r\n\
         Call-ID: o{n}@{from_addr}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn a_source_over_its_rate_is_dropped_unanswered_while_others_and_the_office_are_served() {
    let guard = GuardConfig {
        requests: openline_guard::Rate {
            per_second: 10,
            burst: 20,
        },
        allow: openline_guard::AllowList::parse(&["198.18.7.0/24"]).unwrap(),
        ..GuardConfig::default()
    };
    let mut core = core(guard);
    let t0 = Instant::now();
    let answered = |core: &mut ServerCore, now, who: &str, range: std::ops::Range<u32>| {
        range
            .filter(|&n| {
                from(core, now, who, &options(n, who))
                    .iter()
                    .any(|t| status(&t.payload) == Some(200))
            })
            .count()
    };
    let flood = "198.18.0.66:5060";
    assert_eq!(
        answered(&mut core, t0, flood, 0..100),
        20,
        "the burst, then nothing"
    );
    assert_eq!(answered(&mut core, t0, "198.18.0.67:5060", 100..110), 10);
    assert_eq!(
        answered(&mut core, t0, "198.18.7.5:5060", 200..300),
        100,
        "the office"
    );
    // A second later the flooding source has ten more.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(answered(&mut core, t1, flood, 300..400), 10);
}

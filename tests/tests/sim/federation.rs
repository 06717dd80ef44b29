//! The server core locating another domain, in virtual time and without a network: a local
//! user's INVITE for club-b.test waits for a look-up, goes to the first server, moves to the
//! second when the first cannot be reached, and the failed server goes last for 30 seconds.

use openline_proxy::core::{MediaMode, ServerCore};
use openline_registrar::User;
use openline_sip::endpoint::Transmit;
use openline_sip::transaction::Destination;
use openline_sip::{SeededEntropy, Transport};
use openline_sip_net::LocateError;
use openline_tests::wire::{first_line, header, md5_credentials, status};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WALL: u64 = 1_800_000_000;

fn core() -> ServerCore {
    let mut config = openline_tests::sim::core_config(MediaMode::Never);
    // These tests count calls to a busy domain; one user's own call limit is not what they test.
    config.guard.calls_per_user = 0;
    let alice = User::new("alice@club-a.test", "s3cret").unwrap();
    let mut core = ServerCore::new(
        config,
        vec![alice],
        Vec::new(),
        Box::new(SeededEntropy::new(1)),
        Box::new(SeededEntropy::new(2)),
    );
    core.set_local(&[
        (Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
        (Transport::Tls, "127.0.0.1:5061".parse().unwrap()),
    ]);
    core
}

const ALICE: &str = "127.0.0.1:40000";

fn invite(n: u32, cseq: u32, auth: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@club-b.test SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsim{n}c{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@club-a.test>;tag=a{n}\r\nTo: <sip:bob@club-b.test>\r\n\
         Call-ID: sim-{n}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn drain(core: &mut ServerCore) -> Vec<Transmit> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn receive(core: &mut ServerCore, now: Instant, data: &[u8]) -> Vec<Transmit> {
    let from: SocketAddr = ALICE.parse().unwrap();
    core.handle_received(now, WALL, (Transport::Udp, from), data, None);
    drain(core)
}

/// Sends call `n` as alice, answering the 407: what the core sent after the authenticated
/// INVITE.
fn authenticated_invite(core: &mut ServerCore, now: Instant, n: u32) -> Vec<Transmit> {
    let out = receive(core, now, &invite(n, 1, ""));
    let challenge = out
        .iter()
        .find(|t| status(&t.payload) == Some(407))
        .and_then(|t| header(&t.payload, "Proxy-Authenticate", None))
        .expect("a 407 first");
    let credentials = md5_credentials(
        &challenge,
        "alice",
        "s3cret",
        "INVITE",
        "sip:bob@club-b.test",
    );
    receive(
        core,
        now,
        &invite(n, 2, &format!("Proxy-Authorization: {credentials}\r\n")),
    )
}

/// Places call `n` as alice (answering the 407): the look-up the core then asks for.
fn call(core: &mut ServerCore, now: Instant, n: u32) -> openline_proxy::core::Lookup {
    let out = authenticated_invite(core, now, n);
    assert!(
        out.iter()
            .all(|t| !first_line(&t.payload).starts_with("INVITE")),
        "nothing goes out before the domain is located"
    );
    let lookup = core.poll_lookup().expect("a look-up for club-b.test");
    assert_eq!(lookup.uri, "sip:bob@club-b.test");
    // We listen on UDP and TLS: TLS first.
    assert_eq!(lookup.transports, [Transport::Tls, Transport::Udp]);
    lookup
}

fn server(last: u8) -> Destination {
    Destination {
        transport: Transport::Tls,
        addr: SocketAddr::from(([127, 0, 0, last], 5061)),
    }
}

/// The INVITEs among `out`, and where each went.
fn invites(out: &[Transmit]) -> Vec<Destination> {
    out.iter()
        .filter(|t| first_line(&t.payload).starts_with("INVITE"))
        .map(|t| t.destination)
        .collect()
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn a_located_domain_fails_over_and_remembers_the_server_that_failed() {
    let t0 = Instant::now();
    let mut core = core();
    let servers = vec![server(2), server(3)];

    // Call 1: to sip1, which refuses the connection; then to sip2.
    let lookup = call(&mut core, t0, 1);
    core.handle_located(t0, lookup.id, Ok(servers.clone()));
    let out = drain(&mut core);
    assert_eq!(invites(&out), [server(2)]);
    // The driver is told which domain the certificate there must name.
    assert_eq!(core.send_policy(&server(2)), (Some("club-b.test"), true));
    let first = out
        .into_iter()
        .find(|t| first_line(&t.payload).starts_with("INVITE"))
        .unwrap();
    core.handle_send_failure(t0, &first);
    let out = drain(&mut core);
    assert_eq!(
        invites(&out),
        [server(3)],
        "the next server, as a new branch"
    );
    let second = out
        .iter()
        .find(|t| first_line(&t.payload).starts_with("INVITE"))
        .unwrap();
    assert_ne!(
        header(&first.payload, "Via", Some("v")),
        header(&second.payload, "Via", Some("v"))
    );
    // sip2 is busy: alice hears its 486.
    let via = header(&second.payload, "Via", Some("v")).unwrap();
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\nVia: {via}\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsim1c2;rport\r\n\
         From: <sip:alice@club-a.test>;tag=a1\r\nTo: <sip:bob@club-b.test>;tag=b\r\nCall-ID: sim-1\r\n\
         CSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    let from_b: SocketAddr = "127.0.0.3:5061".parse().unwrap();
    core.handle_received(t0, WALL, (Transport::Tls, from_b), busy.as_bytes(), None);
    let out = drain(&mut core);
    assert!(
        out.iter().any(
            |t| status(&t.payload) == Some(486) && t.destination.addr == ALICE.parse().unwrap()
        ),
        "alice hears 486"
    );

    // Call 2, a second later: sip1 failed lately, so sip2 comes first.
    let t1 = t0 + Duration::from_secs(1);
    let lookup = call(&mut core, t1, 2);
    core.handle_located(t1, lookup.id, Ok(servers.clone()));
    assert_eq!(invites(&drain(&mut core)), [server(3)]);

    // Call 3, after the 30 s: sip1 is tried first again.
    let t2 = t0 + Duration::from_secs(31);
    let lookup = call(&mut core, t2, 3);
    core.handle_located(t2, lookup.id, Ok(servers));
    assert_eq!(invites(&drain(&mut core)), [server(2)]);

    // No server at all: 404; DNS not answering: 504.
    let lookup = call(&mut core, t2, 4);
    core.handle_located(t2, lookup.id, Err(LocateError::NotFound));
    assert!(
        drain(&mut core)
            .iter()
            .any(|t| status(&t.payload) == Some(404))
    );
    let lookup = call(&mut core, t2, 5);
    core.handle_located(t2, lookup.id, Err(LocateError::Failed("timed out".into())));
    assert!(
        drain(&mut core)
            .iter()
            .any(|t| status(&t.payload) == Some(504))
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived from it
fn a_busy_domain_still_gets_the_bye_that_ends_a_call() {
    let t0 = Instant::now();
    let mut core = core();
    // The quota (10) taken by calls to club-b.test that ring on.
    for n in 1..=10 {
        let lookup = call(&mut core, t0, n);
        core.handle_located(t0, lookup.id, Ok(vec![server(2)]));
        assert_eq!(invites(&drain(&mut core)), [server(2)]);
    }
    let out = authenticated_invite(&mut core, t0, 11);
    assert!(
        out.iter().any(|t| status(&t.payload) == Some(503)),
        "a new call finds the domain's quota taken"
    );
    assert!(core.poll_lookup().is_none(), "and costs no look-up");
    // A call established earlier ends: its BYE, record-routed through us over TLS, goes on.
    let bye = format!(
        "BYE sip:bob@127.0.0.2:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsimbye;rport\r\n\
         Route: <sip:127.0.0.1:5060;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:alice@club-a.test>;tag=a0\r\n\
         To: <sip:bob@club-b.test>;tag=b0\r\nCall-ID: sim-0\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = receive(&mut core, t0, bye.as_bytes());
    assert!(
        out.iter().all(|t| status(&t.payload) != Some(503)),
        "a hang-up is never refused for the quota"
    );
    assert!(
        out.iter()
            .any(|t| first_line(&t.payload).starts_with("BYE") && t.destination == server(2)),
        "{:?}",
        out.iter()
            .map(|t| first_line(&t.payload))
            .collect::<Vec<_>>()
    );
}

//! The response context in virtual time: which answer goes upstream, and when.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::routing::Target;
use openline_sip::Transport;

const SERVER: u64 = 1;

fn invite(branch: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKcaller\r\nFrom: <sip:alice@a.test>;tag=1\r\n\
         To: <sip:bob@a.test>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n",
        port = 6000 + branch.len()
    )
    .into_bytes()
}

fn response(code: u16, branch: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKcaller\r\nFrom: <sip:alice@a.test>;tag=1\r\n\
         To: <sip:bob@a.test>;tag={branch}\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A context with two branches (client ids 10 and 11) for an INVITE.
fn two_branches() -> Forwarding<u64> {
    with_later(Vec::new())
}

/// Like [`two_branches`], with lower-q groups to try afterwards.
fn with_later(later: Vec<Vec<Target>>) -> Forwarding<u64> {
    let mut f = Forwarding::default();
    let dest = |port| Destination {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    f.start(
        SERVER,
        (b"INVITE".to_vec(), SocketAddr::from(([127, 0, 0, 1], 5061))),
        Some(t0() + Duration::from_secs(60)),
        vec![
            branch(10, invite("z9hG4bKa"), dest(6001)),
            branch(11, invite("z9hG4bKbb"), dest(6002)),
        ],
        (later, RouteEdit::Keep),
    );
    f
}

use std::net::SocketAddr;
use std::time::Duration;

fn branch(client: u64, sent: Vec<u8>, destination: Destination) -> NewBranch<u64> {
    NewBranch {
        client,
        sent,
        destination,
        fallback: None,
    }
}

/// A fixed start of (virtual) time.
fn t0() -> Instant {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // a fixed origin; every other instant is derived
    *T0.get_or_init(Instant::now)
}

fn feed(f: &mut Forwarding<u64>, client: u64, code: u16) -> Vec<Action<u64>> {
    let branch = if client == 10 {
        "z9hG4bKa"
    } else {
        "z9hG4bKbb"
    };
    let bytes = response(code, branch);
    let mut out = Vec::new();
    f.on_response(client, &Message::parse(&bytes).unwrap(), &mut out);
    out
}

fn codes(actions: &[Action<u64>]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Respond { response, .. } => {
                format!(
                    "respond {}",
                    Message::parse(response).unwrap().status().unwrap()
                )
            }
            Action::Reply { code, .. } => format!("reply {code}"),
            Action::Cancel { destination, .. } => format!("cancel {}", destination.addr.port()),
            Action::Forward { targets, .. } => format!("forward {}", targets.len()),
        })
        .collect()
}

#[test]
fn provisionals_pass_and_the_2xx_cancels_the_other_ringing_branch() {
    let mut f = two_branches();
    assert_eq!(codes(&feed(&mut f, 10, 100)), Vec::<String>::new());
    assert_eq!(codes(&feed(&mut f, 10, 180)), ["respond 180"]);
    assert_eq!(codes(&feed(&mut f, 11, 180)), ["respond 180"]);
    let actions = feed(&mut f, 11, 200);
    assert_eq!(codes(&actions), ["respond 200", "cancel 6001"]);
    let Some(Action::Cancel { request, .. }) = actions.last() else {
        panic!("a CANCEL")
    };
    assert!(
        String::from_utf8_lossy(request)
            .contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n"),
        "the other phone is told it was answered elsewhere (RFC 3326)"
    );
    // The cancelled branch ends with 487: nothing more goes upstream.
    assert_eq!(codes(&feed(&mut f, 10, 487)), Vec::<String>::new());
}

#[test]
fn the_forwarded_response_loses_our_via_and_cancel_matches_the_branch() {
    let mut f = two_branches();
    feed(&mut f, 10, 180);
    let out = feed(&mut f, 11, 200);
    let Action::Respond { response, server } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*server, SERVER);
    let r = Message::parse(response).unwrap();
    assert_eq!(r.top_via.branch, Some("z9hG4bKcaller"));
    let Action::Cancel { request, .. } = &out[1] else {
        panic!("{out:?}")
    };
    let c = Message::parse(request).unwrap();
    assert_eq!(c.method(), openline_sip::Method::Cancel);
    assert_eq!(c.top_via.branch, Some("z9hG4bKa"));
    assert_eq!(c.request_uri().unwrap().as_str(), "sip:bob@127.0.0.1:6008");
    assert_eq!((c.cseq.seq, c.call_id), (7, "c"));
    assert_eq!(c.vias().count(), 1);
}

#[test]
fn best_final_waits_for_every_branch_and_6xx_wins() {
    let mut f = two_branches();
    assert_eq!(codes(&feed(&mut f, 10, 486)), Vec::<String>::new());
    assert_eq!(codes(&feed(&mut f, 11, 404)), ["respond 404"]);
    let mut f = two_branches();
    feed(&mut f, 10, 180);
    // A 6xx ends the search: the ringing branch is cancelled.
    assert_eq!(codes(&feed(&mut f, 11, 603)), ["cancel 6001"]);
    assert_eq!(codes(&feed(&mut f, 10, 487)), ["respond 603"]);
}

#[test]
fn a_cancel_waits_for_the_branch_to_ring_and_time_outs_become_408() {
    let mut f = two_branches();
    let mut out = Vec::new();
    f.cancel(SERVER, &mut out);
    assert!(out.is_empty(), "nothing rang yet: {out:?}");
    assert_eq!(
        codes(&feed(&mut f, 11, 180)),
        ["cancel 6002", "respond 180"]
    );
    let mut f = two_branches();
    let mut out = Vec::new();
    f.on_timeout(10, &mut out);
    assert!(out.is_empty());
    f.on_timeout(11, &mut out);
    assert_eq!(codes(&out), ["reply 408"]);
    f.on_terminated(SERVER);
    assert!(f.is_empty());
}

#[test]
fn nobody_answers_in_time_480_after_ringing_408_before() {
    let mut f = two_branches();
    assert_eq!(f.poll_timeout(), Some(t0() + Duration::from_secs(60)));
    feed(&mut f, 10, 180);
    let mut out = Vec::new();
    f.handle_timeout(t0() + Duration::from_secs(59), &mut out);
    assert!(out.is_empty());
    f.handle_timeout(t0() + Duration::from_secs(60), &mut out);
    assert_eq!(codes(&out), ["cancel 6001", "reply 480"]);
    // The branches end with 487 afterwards: nothing more goes upstream.
    assert!(feed(&mut f, 10, 487).is_empty());
    // The branch that never rang is cancelled as soon as it does.
    assert_eq!(codes(&feed(&mut f, 11, 180)), ["cancel 6002"]);

    let mut f = two_branches();
    let mut out = Vec::new();
    f.handle_timeout(t0() + Duration::from_secs(61), &mut out);
    assert_eq!(codes(&out), ["reply 408"]);
}

#[test]
fn lower_q_devices_ring_only_when_every_better_one_declined() {
    let third = Target {
        request_uri: Some("sip:bob@127.0.0.1:6003".into()),
        destination: Destination {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], 6003)),
        },
        q: 500,
        tls_name: None,
        fallbacks: Vec::new(),
        flow: Default::default(),
        route: None,
    };
    let mut f = with_later(vec![vec![third.clone()]]);
    assert!(feed(&mut f, 10, 486).is_empty());
    let out = feed(&mut f, 11, 480);
    let [
        Action::Forward {
            server, targets, ..
        },
    ] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (*server, targets.as_slice()),
        (SERVER, std::slice::from_ref(&third))
    );
    // The next group's branch answers: that is the call.
    f.extend(
        SERVER,
        vec![branch(12, invite("z9hG4bKccc"), third.destination)],
    );
    let bytes = response(200, "z9hG4bKccc");
    let mut out = Vec::new();
    assert!(f.on_response(12, &Message::parse(&bytes).unwrap(), &mut out));
    assert_eq!(codes(&out), ["respond 200"]);

    // A 6xx means nowhere: the next group is not tried. Nor after the caller cancels.
    let mut f = with_later(vec![vec![third.clone()]]);
    feed(&mut f, 10, 486);
    assert_eq!(codes(&feed(&mut f, 11, 603)), ["respond 603"]);
    let mut f = with_later(vec![vec![third]]);
    let mut out = Vec::new();
    f.cancel(SERVER, &mut out);
    feed(&mut f, 10, 487);
    assert_eq!(codes(&feed(&mut f, 11, 487)), ["respond 487"]);
}

/// One branch to the first server of a domain, with a second one to fall back on.
fn with_second_server() -> (Forwarding<u64>, Target) {
    let udp = |port| Destination {
        transport: Transport::Tls,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let second = Target {
        request_uri: None,
        destination: udp(7002),
        q: 1000,
        tls_name: Some("club-b.test".into()),
        fallbacks: Vec::new(),
        flow: Default::default(),
        route: None,
    };
    let mut f = Forwarding::default();
    f.start(
        SERVER,
        (b"INVITE".to_vec(), SocketAddr::from(([127, 0, 0, 1], 5061))),
        Some(t0() + Duration::from_secs(60)),
        vec![NewBranch {
            client: 10,
            sent: invite("z9hG4bKa"),
            destination: udp(7001),
            fallback: Some(second.clone()),
        }],
        (Vec::new(), RouteEdit::Keep),
    );
    (f, second)
}

#[test]
fn a_server_that_fails_hands_the_request_to_the_next_one() {
    // Connection refused: the second server gets the request, and its 200 is the answer.
    let (mut f, second) = with_second_server();
    let mut out = Vec::new();
    f.on_transport_error(10, 503, &mut out);
    let [Action::Forward { targets, .. }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(targets.as_slice(), std::slice::from_ref(&second));
    f.extend(
        SERVER,
        vec![branch(11, invite("z9hG4bKbb"), second.destination)],
    );
    assert_eq!(codes(&feed(&mut f, 11, 200)), ["respond 200"]);

    // A 503 and a time-out also move on.
    let (mut f, _) = with_second_server();
    assert_eq!(codes(&feed(&mut f, 10, 503)), ["forward 1"]);
    let (mut f, _) = with_second_server();
    let mut out = Vec::new();
    f.on_timeout(10, &mut out);
    assert!(matches!(out.as_slice(), [Action::Forward { .. }]));

    // A 486 is an answer, not a failure: no second try.
    let (mut f, _) = with_second_server();
    assert_eq!(codes(&feed(&mut f, 10, 486)), ["respond 486"]);
}

#[test]
fn when_every_server_fails_the_caller_hears_500_not_503() {
    let (mut f, second) = with_second_server();
    let mut out = Vec::new();
    f.on_transport_error(10, 503, &mut out);
    f.extend(
        SERVER,
        vec![branch(11, invite("z9hG4bKbb"), second.destination)],
    );
    let mut out = Vec::new();
    f.on_transport_error(11, 503, &mut out);
    assert_eq!(codes(&out), ["reply 500"]);
    assert!(f.is_empty(), "the context is forgotten once answered");

    // A forward that found no socket counts as failed too.
    let (mut f, _) = with_second_server();
    let mut out = Vec::new();
    f.on_transport_error(10, 503, &mut out);
    let mut out = Vec::new();
    f.forward_failed(SERVER, &mut out);
    assert_eq!(codes(&out), ["reply 500"]);

    // The caller cancelled: the next server is not tried.
    let (mut f, _) = with_second_server();
    let mut out = Vec::new();
    f.cancel(SERVER, &mut out);
    let mut out = Vec::new();
    f.on_transport_error(10, 503, &mut out);
    assert_eq!(codes(&out), ["reply 500"]);
}

#[test]
fn requests_to_another_domain_are_counted_until_their_context_ends() {
    let (mut f, _) = with_second_server();
    let domain: Arc<str> = "club-b.test".into();
    f.tag_domain(SERVER, &domain);
    f.tag_domain(SERVER, &domain); // once per context
    assert_eq!(f.in_flight("club-b.test"), 1);
    assert_eq!(f.destination_of(10).map(|d| d.addr.port()), Some(7001));
    assert_eq!(codes(&feed(&mut f, 10, 486)), ["respond 486"]);
    assert_eq!(
        f.in_flight("club-b.test"),
        0,
        "answered and over: not counted"
    );
}

/// A context for an INVITE with no branch yet, one device awaited (RFC 8599).
fn waiting_for_one() -> Forwarding<u64> {
    let mut f = Forwarding::default();
    f.hold(SERVER, 1);
    assert!(f.is_holding(SERVER));
    f.start(
        SERVER,
        (b"INVITE".to_vec(), SocketAddr::from(([127, 0, 0, 1], 5061))),
        Some(t0() + Duration::from_secs(60)),
        Vec::new(),
        (Vec::new(), RouteEdit::Keep),
    );
    f
}

fn replied(out: &[Action<u64>]) -> Vec<u16> {
    out.iter()
        .filter_map(|a| match a {
            Action::Reply { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

#[test]
fn an_awaited_device_that_never_wakes_leaves_a_480() {
    let mut f = waiting_for_one();
    let mut out = Vec::new();
    f.handle_timeout(t0() + Duration::from_secs(1), &mut out);
    assert!(out.is_empty(), "not answered while the device may wake");
    f.release(SERVER, &mut out);
    assert_eq!(replied(&out), [480]);
    assert!(f.is_empty(), "the context is over");
}

#[test]
fn an_awaited_device_that_wakes_gets_the_request_and_answers() {
    let mut f = waiting_for_one();
    let (request, _, _) = f.woken(SERVER).expect("the request to forward");
    assert_eq!(request, b"INVITE");
    assert!(f.woken(SERVER).is_none(), "one device was awaited");
    let dest = Destination {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], 6001)),
    };
    f.extend(SERVER, vec![branch(10, invite("z9hG4bKa"), dest)]);
    let out = feed(&mut f, 10, 200);
    assert!(
        matches!(out.as_slice(), [Action::Respond { .. }]),
        "{out:?}"
    );
}

#[test]
fn a_cancel_while_a_device_is_awaited_answers_487_at_once() {
    let mut f = waiting_for_one();
    let mut out = Vec::new();
    f.cancel(SERVER, &mut out);
    assert_eq!(replied(&out), [487]);
    assert!(
        f.woken(SERVER).is_none(),
        "nothing goes to a device that wakes later"
    );
}

#[test]
fn branches_end_but_the_awaited_device_still_may_answer() {
    let mut f = two_branches();
    f.hold(SERVER, 1);
    assert!(feed(&mut f, 10, 486).is_empty());
    assert!(
        feed(&mut f, 11, 486).is_empty(),
        "the pushed device may still take it"
    );
    let mut out = Vec::new();
    f.release(SERVER, &mut out);
    assert!(
        matches!(out.as_slice(), [Action::Respond { .. }]),
        "the best of the rest (486) goes up: {out:?}"
    );
}

#[test]
fn the_ring_time_out_while_a_device_is_awaited_is_a_480_not_a_408() {
    let mut f = waiting_for_one();
    let mut out = Vec::new();
    f.handle_timeout(t0() + Duration::from_secs(61), &mut out);
    assert_eq!(replied(&out), [480]);
}

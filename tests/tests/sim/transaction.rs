//! The four RFC 3261 section 17 machines, observed on the (simulated) wire.

use openline_sip::transaction::{State, TimerConfig, TransactionEvent};
use openline_sip::{EndpointConfig, Method, Transport};
use openline_tests::sim::{Policy, Seen, Sim, gaps};
use std::time::Duration;

const MS: fn(u64) -> Duration = Duration::from_millis;
const LIMIT: Duration = Duration::from_secs(120);
const STEPS: usize = 10_000;

fn pair(policy: Policy, loss_per_mille: u64, seed: u64) -> Sim {
    let mut sim = Sim::new(seed, MS(10), loss_per_mille);
    sim.add_node(
        "127.0.0.1:5060",
        EndpointConfig::default(),
        Policy::default(),
    );
    sim.add_node("127.0.0.2:5060", EndpointConfig::default(), policy);
    sim
}

fn events(seen: &[Seen]) -> Vec<(Duration, TransactionEvent)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event { at, event } => Some((*at, *event)),
            _ => None,
        })
        .collect()
}

fn responses(seen: &[Seen]) -> Vec<u16> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Response { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

#[test]
fn non_invite_retransmits_double_up_to_t2_and_timer_f_fires_at_64_t1() {
    let mut sim = pair(Policy { reply: None }, 0, 1);
    let id = sim.send_request(0, 1, Method::Options, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    let sent = sim.sent_times("OPTIONS");
    // Timer E: 500 ms, 1 s, 2 s, then 4 s (T2) until Timer F at 32 s.
    let g = gaps(&sent);
    assert_eq!(&g[..4], &[MS(500), MS(1000), MS(2000), MS(4000)]);
    assert!(g[4..].iter().all(|&d| d == MS(4000)), "{g:?}");
    assert_eq!(*sent.last().unwrap(), MS(31_500));
    let ev = events(&sim.nodes[0].seen);
    assert_eq!(
        ev[0],
        (Duration::from_secs(32), TransactionEvent::TimedOut(id))
    );
    assert_eq!(
        ev[1],
        (Duration::from_secs(32), TransactionEvent::Terminated(id))
    );
    assert_eq!(sim.nodes[0].endpoint.transaction_count(), 0);
}

#[test]
fn invite_retransmits_double_without_cap_and_timer_b_fires_at_64_t1() {
    let mut sim = pair(Policy { reply: None }, 0, 2);
    // The server stays silent and is not even there: drop everything it would get.
    sim.drop_when(|w| w.first_line.starts_with("INVITE"));
    let id = sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    let sent = sim.sent_times("INVITE");
    assert_eq!(
        gaps(&sent),
        vec![MS(500), MS(1000), MS(2000), MS(4000), MS(8000), MS(16000)]
    );
    let ev = events(&sim.nodes[0].seen);
    assert_eq!(
        ev[0],
        (Duration::from_secs(32), TransactionEvent::TimedOut(id))
    );
}

#[test]
fn provisional_stops_invite_retransmission() {
    let mut sim = pair(Policy { reply: Some(180) }, 0, 3);
    let id = sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(Duration::from_secs(10), STEPS);
    assert_eq!(
        sim.sent_times("INVITE").len(),
        1,
        "100 Trying arrives before Timer A"
    );
    assert_eq!(responses(&sim.nodes[0].seen), vec![100, 180]);
    assert_eq!(sim.nodes[0].endpoint.state(id), Some(State::Proceeding));
}

#[test]
fn non_2xx_final_is_retransmitted_by_timer_g_and_timer_h_fires_without_ack() {
    let mut sim = pair(Policy { reply: Some(486) }, 0, 4);
    sim.drop_when(|w| w.first_line.starts_with("ACK"));
    sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    let finals = sim.sent_times("SIP/2.0 486");
    let g = gaps(&finals);
    assert_eq!(
        &g[..4],
        &[MS(500), MS(1000), MS(2000), MS(4000)],
        "Timer G doubles up to T2"
    );
    assert!(g[4..].iter().all(|&d| d == MS(4000)), "{g:?}");
    let server_events = events(&sim.nodes[1].seen);
    let (at, ev) = server_events[0];
    assert!(matches!(ev, TransactionEvent::AckNotReceived(_)));
    // The 486 left at 10 ms (one link delay after the INVITE); Timer H is 64*T1 later.
    assert_eq!(at, MS(10) + Duration::from_secs(32));
    // The client saw the 486 once, however often it came.
    assert_eq!(responses(&sim.nodes[0].seen), vec![100, 486]);
}

#[test]
fn ack_confirms_the_server_invite_and_absorbs_retransmissions() {
    let mut sim = pair(Policy { reply: Some(486) }, 0, 5);
    sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    assert_eq!(sim.sent_times("SIP/2.0 486").len(), 1);
    assert_eq!(sim.sent_times("ACK").len(), 1);
    // Server: Confirmed then Terminated after T4; no AckNotReceived.
    let server_events = events(&sim.nodes[1].seen);
    assert_eq!(server_events.len(), 1);
    assert!(matches!(
        server_events[0].1,
        TransactionEvent::Terminated(_)
    ));
    assert_eq!(
        server_events[0].0,
        MS(30) + Duration::from_secs(5),
        "Timer I = T4 after the ACK (sent at 20 ms, arrived at 30 ms)"
    );
    assert_eq!(
        sim.nodes[0].endpoint.transaction_count() + sim.nodes[1].endpoint.transaction_count(),
        0
    );
}

#[test]
fn lost_final_response_is_recovered_by_retransmission() {
    let mut sim = pair(Policy { reply: Some(200) }, 0, 6);
    let mut dropped = false;
    sim.drop_when(move |w| {
        let first = !dropped && w.first_line.starts_with("SIP/2.0 200");
        dropped |= first;
        first
    });
    let id = sim.send_request(0, 1, Method::Message, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    // The request was sent again by Timer E; the server transaction answered it with the
    // stored 200, and the user on the server side saw the request only once.
    assert_eq!(sim.sent_times("MESSAGE").len(), 2);
    assert_eq!(sim.sent_times("SIP/2.0 200").len(), 2);
    assert_eq!(responses(&sim.nodes[0].seen), vec![200]);
    let requests = sim.nodes[1]
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Request { .. }))
        .count();
    assert_eq!(requests, 1);
    let ev = events(&sim.nodes[0].seen);
    assert_eq!(
        ev,
        vec![(
            MS(520) + Duration::from_secs(5),
            TransactionEvent::Terminated(id)
        )],
        "Timer K = T4"
    );
}

#[test]
fn lost_non_2xx_to_invite_is_recovered_by_timer_g() {
    let mut sim = pair(Policy { reply: Some(603) }, 0, 7);
    let mut dropped = false;
    sim.drop_when(move |w| {
        let first = !dropped && w.first_line.starts_with("SIP/2.0 603");
        dropped |= first;
        first
    });
    sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    assert_eq!(sim.sent_times("SIP/2.0 603"), vec![MS(10), MS(510)]);
    assert_eq!(responses(&sim.nodes[0].seen), vec![100, 603]);
    assert_eq!(sim.sent_times("ACK").len(), 1);
}

#[test]
fn nothing_is_retransmitted_over_tcp() {
    let mut sim = pair(Policy { reply: None }, 0, 8);
    // A peer that never answers the INVITE, not even with 100 (which would stop Timer B).
    sim.drop_when(|w| w.first_line.starts_with("INVITE"));
    let invite = sim.send_request(0, 1, Method::Invite, Transport::Tcp);
    let options = sim.send_request(0, 1, Method::Options, Transport::Tcp);
    sim.run_for(LIMIT, STEPS);
    assert_eq!(sim.sent_times("INVITE").len(), 1);
    assert_eq!(sim.sent_times("OPTIONS").len(), 1);
    // Timers B and F still bound the wait.
    let ev = events(&sim.nodes[0].seen);
    assert!(ev.contains(&(Duration::from_secs(32), TransactionEvent::TimedOut(invite))));
    assert!(ev.contains(&(Duration::from_secs(32), TransactionEvent::TimedOut(options))));

    let mut sim = pair(Policy { reply: Some(486) }, 0, 9);
    sim.drop_when(|w| w.first_line.starts_with("ACK"));
    sim.send_request(0, 1, Method::Invite, Transport::Tcp);
    sim.run_for(LIMIT, STEPS);
    assert_eq!(
        sim.sent_times("SIP/2.0 486").len(),
        1,
        "no Timer G over TCP"
    );
}

#[test]
fn timers_follow_a_configured_t1() {
    let mut sim = Sim::new(10, MS(5), 0);
    let timers = TimerConfig {
        t1: MS(100),
        t2: MS(400),
        ..TimerConfig::default()
    };
    sim.add_node(
        "127.0.0.1:5060",
        EndpointConfig { timers },
        Policy::default(),
    );
    sim.add_node(
        "127.0.0.2:5060",
        EndpointConfig { timers },
        Policy { reply: None },
    );
    let id = sim.send_request(0, 1, Method::Options, Transport::Udp);
    sim.run_for(LIMIT, STEPS);
    let g = gaps(&sim.sent_times("OPTIONS"));
    assert_eq!(&g[..3], &[MS(100), MS(200), MS(400)]);
    assert_eq!(
        events(&sim.nodes[0].seen)[0],
        (MS(6400), TransactionEvent::TimedOut(id))
    );
}

#[test]
fn accepted_state_passes_2xx_up_and_absorbs_invite_retransmissions() {
    let mut sim = pair(Policy { reply: Some(200) }, 0, 11);
    // Lose the 100 so that the client retransmits the INVITE once after the 2xx was sent.
    sim.drop_when(|w| w.first_line.starts_with("SIP/2.0 100"));
    let id = sim.send_request(0, 1, Method::Invite, Transport::Udp);
    sim.run_for(MS(200), STEPS);
    assert_eq!(sim.nodes[0].endpoint.state(id), Some(State::Accepted));
    sim.run_for(LIMIT, STEPS);
    // The user on the server side saw one INVITE; the transaction never re-sent its 200
    // (in Accepted the user, not the transaction, retransmits 2xx).
    let invites = sim.nodes[1]
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Request { method, .. } if method == "INVITE"))
        .count();
    assert_eq!(invites, 1);
    assert_eq!(sim.sent_times("SIP/2.0 200").len(), 1);
    assert_eq!(responses(&sim.nodes[0].seen), vec![200]);
}

#[test]
fn lossy_network_every_transaction_ends_exactly_once() {
    // 30% loss each way: each transaction either gets its 200 once, or times out once; none is
    // left behind, and the server's user never sees a request twice.
    for seed in 0..20 {
        let mut sim = pair(Policy { reply: Some(200) }, 300, 100 + seed);
        let ids: Vec<_> = (0..10)
            .map(|_| sim.send_request(0, 1, Method::Message, Transport::Udp))
            .collect();
        sim.run_for(LIMIT, 100_000);
        for id in &ids {
            let got = sim.nodes[0]
                .seen
                .iter()
                .filter(|s| matches!(s, Seen::Response { transaction, .. } if transaction == id))
                .count();
            let timed_out = events(&sim.nodes[0].seen)
                .iter()
                .any(|(_, e)| *e == TransactionEvent::TimedOut(*id));
            assert!(
                got + usize::from(timed_out) == 1,
                "seed {seed}: {id} got {got} responses, timed out: {timed_out}"
            );
        }
        let requests = sim.nodes[1]
            .seen
            .iter()
            .filter(|s| matches!(s, Seen::Request { .. }))
            .count();
        assert!(
            requests <= 10,
            "seed {seed}: server user saw {requests} requests"
        );
        assert_eq!(sim.nodes[0].endpoint.transaction_count(), 0, "seed {seed}");
        assert_eq!(sim.nodes[1].endpoint.transaction_count(), 0, "seed {seed}");
    }
}

#![allow(clippy::unwrap_used)]
//! EVEN-PORT and RESERVATION-TOKEN in virtual time: an RTP/RTCP pair, as coturn's uclient asks.

use super::*;
use stun_rs::attributes::turn::{EvenPort, ReservationToken};

/// Allocates with `attributes` besides REQUESTED-TRANSPORT: the bind asked for, or the error.
fn ask(
    s: &mut TurnServer,
    c: &Client,
    now: Instant,
    attributes: Vec<StunAttribute>,
) -> Result<PendingAllocation, u16> {
    let mut all = vec![RequestedTrasport::new(UDP).into()];
    all.extend(attributes);
    match s.handle_client(now, WALL, c.addr, &c.request(ALLOCATE, all)) {
        FromClient::Bind(pending) => Ok(pending),
        other => Err(error_code(&decode(&reply(other), None))),
    }
}

fn token_of(answer: &StunMessage) -> Option<Vec<u8>> {
    answer
        .get::<ReservationToken>()
        .map(|t| t.as_reservation_token().unwrap().token().to_vec())
}

#[test]
fn even_port_with_r_reserves_the_next_port_for_its_token_until_it_lapses() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let (rtp, rtcp, other) = (
        Client::new(40_000, "alice", "wonder", &s),
        Client::new(40_001, "alice", "wonder", &s),
        Client::new(40_002, "bob", "builder", &s),
    );
    // 50000 goes to someone first, so the pair is 50002/50003.
    allocate(&mut s, &other, now);
    let pending = ask(&mut s, &rtp, now, vec![EvenPort::new(true).into()]).unwrap();
    assert_eq!(pending.port, 50_002);
    let answer = decode(&s.allocated(now, pending), Some(rtp.key()));
    let token = token_of(&answer).expect("a RESERVATION-TOKEN");
    // Nobody else gets 50003 meanwhile.
    let carol = Client::new(40_003, "bob", "builder", &s);
    let next = ask(&mut s, &carol, now, vec![]).unwrap();
    assert_eq!(next.port, 50_001);
    // The token gets it, once.
    let token_attr = || ReservationToken::from(<[u8; 8]>::try_from(&token[..]).unwrap()).into();
    let pending = ask(&mut s, &rtcp, now, vec![token_attr()]).unwrap();
    assert_eq!(pending.port, 50_003);
    let answer = decode(&s.allocated(now, pending), Some(rtcp.key()));
    assert_eq!(token_of(&answer), None);
    let late = Client::new(40_004, "alice", "wonder", &s);
    assert_eq!(
        ask(&mut s, &late, now, vec![token_attr()]).unwrap_err(),
        508
    );
    // A token with EVEN-PORT is a bad request.
    assert_eq!(
        ask(
            &mut s,
            &late,
            now,
            vec![EvenPort::new(false).into(), token_attr()]
        )
        .unwrap_err(),
        400
    );
}

#[test]
fn an_unclaimed_reservation_lapses_and_its_port_is_free_again() {
    let mut s = server(|c| c.ports = (50_000, 50_001));
    let now = Instant::now();
    let c = Client::new(40_000, "alice", "wonder", &s);
    let pending = ask(&mut s, &c, now, vec![EvenPort::new(true).into()]).unwrap();
    let answer = decode(&s.allocated(now, pending), Some(c.key()));
    assert!(token_of(&answer).is_some());
    let d = Client::new(40_001, "alice", "wonder", &s);
    assert_eq!(
        ask(&mut s, &d, now, vec![]).unwrap_err(),
        508,
        "50001 is held"
    );
    assert_eq!(s.poll_timeout(), Some(now + RESERVATION_LIFETIME));
    s.handle_timeout(now + RESERVATION_LIFETIME);
    assert_eq!(ask(&mut s, &d, now, vec![]).unwrap().port, 50_001);
}

#[test]
fn even_port_without_r_takes_an_even_port_and_holds_nothing() {
    let mut s = server(|_| {});
    let now = Instant::now();
    let first = Client::new(40_000, "alice", "wonder", &s);
    allocate(&mut s, &first, now);
    let c = Client::new(40_001, "alice", "wonder", &s);
    let pending = ask(&mut s, &c, now, vec![EvenPort::new(false).into()]).unwrap();
    assert_eq!(pending.port, 50_002);
    let answer = decode(&s.allocated(now, pending), Some(c.key()));
    assert_eq!(token_of(&answer), None);
    let d = Client::new(40_002, "alice", "wonder", &s);
    assert_eq!(ask(&mut s, &d, now, vec![]).unwrap().port, 50_001);
}

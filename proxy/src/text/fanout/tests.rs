#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use std::time::Duration;

const SENDER: u64 = 1;
const PHONE: u64 = 10;
const LAPTOP: u64 = 11;

fn message() -> NewMessage {
    NewMessage {
        recipient: "bob@club-a.test".into(),
        sender: "<sip:alice@club-a.test>".into(),
        content_type: "text/plain".into(),
        body: b"hi".to_vec(),
        accepted_at: 1,
        expires_at: 2,
        sent_to: None,
        request_key: None,
    }
}

/// A fixed start of virtual time (the clock is read once, as drivers do).
fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    *T0.get_or_init(Instant::now)
}

fn source() -> std::net::SocketAddr {
    "127.0.0.1:5070".parse().unwrap()
}

/// A fan-out to the phone and the laptop (both registered), plus these offline devices.
fn start(offline: &[&str], now: Instant) -> (Fanouts<u64>, Vec<FanoutAction<u64>>) {
    let mut f = Fanouts::default();
    let mut out = Vec::new();
    f.start(
        SENDER,
        (b"MESSAGE".to_vec(), source()),
        message(),
        (
            vec![(PHONE, "phone".into()), (LAPTOP, "laptop".into())],
            offline.iter().map(|d| d.to_string()).collect(),
            false,
        ),
        now + Duration::from_secs(5),
        &mut out,
    );
    (f, out)
}

fn store_of(devices: &[&str]) -> FanoutAction<u64> {
    FanoutAction::Store {
        server: SENDER,
        message: message(),
        devices: devices.iter().map(|d| d.to_string()).collect(),
    }
}

fn reply(code: u16) -> FanoutAction<u64> {
    FanoutAction::Answer(Action::Reply {
        server: SENDER,
        code,
        request: b"MESSAGE".to_vec(),
        source: source(),
    })
}

fn respond(response: &[u8]) -> FanoutAction<u64> {
    FanoutAction::Answer(Action::Respond {
        server: SENDER,
        response: response.to_vec(),
    })
}

#[test]
fn the_first_device_to_take_it_answers_the_sender_and_one_that_fails_gets_it_stored() {
    let (mut f, out) = start(&[], t0());
    assert!(out.is_empty());
    let mut out = Vec::new();
    assert!(f.on_response(PHONE, 180, Vec::new, &mut out));
    assert!(out.is_empty(), "provisionals are not passed on");
    f.on_response(PHONE, 200, || b"200 phone".to_vec(), &mut out);
    assert_eq!(out, [respond(b"200 phone")]);
    out.clear();
    f.on_response(LAPTOP, 480, Vec::new, &mut out);
    assert_eq!(out, [store_of(&["laptop"])]);
    out.clear();
    f.stored(SENDER, Some(7), vec!["laptop".into()], &mut out);
    assert!(out.is_empty(), "answered once");
    assert!(f.is_empty());
    assert!(!f.on_response(PHONE, 200, Vec::new, &mut out), "forgotten");
}

#[test]
fn an_offline_device_is_stored_for_at_once_and_the_200_waits_until_that_is_durable() {
    let (mut f, out) = start(&["tablet"], t0());
    assert_eq!(out, [store_of(&["tablet"])]);
    let mut out = Vec::new();
    f.on_response(LAPTOP, 200, || b"200 laptop".to_vec(), &mut out);
    f.on_response(PHONE, 200, || b"200 phone".to_vec(), &mut out);
    assert!(out.is_empty(), "not before the tablet's copy is durable");
    f.stored(SENDER, Some(3), vec!["tablet".into()], &mut out);
    assert_eq!(out, [respond(b"200 laptop")]);
    assert!(f.is_empty());
}

#[test]
fn when_no_device_takes_it_the_sender_hears_202_once_it_is_stored() {
    let (mut f, _) = start(&[], t0());
    let mut out = Vec::new();
    f.on_response(PHONE, 486, Vec::new, &mut out);
    assert!(out.is_empty(), "the laptop is still deciding");
    assert!(f.on_failure(LAPTOP, &mut out));
    assert_eq!(out, [store_of(&["phone", "laptop"])]);
    out.clear();
    f.stored(
        SENDER,
        Some(9),
        vec!["phone".into(), "laptop".into()],
        &mut out,
    );
    assert_eq!(out, [reply(202)]);
}

#[test]
fn a_store_that_fails_with_no_device_taking_it_is_a_503_to_retry() {
    let (mut f, _) = start(&[], t0());
    let mut out = Vec::new();
    f.on_response(PHONE, 500, Vec::new, &mut out);
    f.on_response(LAPTOP, 500, Vec::new, &mut out);
    out.clear();
    f.stored(
        SENDER,
        None,
        vec!["phone".into(), "laptop".into()],
        &mut out,
    );
    assert_eq!(out, [reply(503)]);
}

#[test]
fn a_silent_device_is_given_up_at_the_wait_and_settled_if_it_takes_it_late() {
    let now = t0();
    let (mut f, _) = start(&[], now);
    let mut out = Vec::new();
    f.on_response(PHONE, 603, Vec::new, &mut out);
    f.handle_timeout(now + Duration::from_secs(4), &mut out);
    assert!(out.is_empty(), "not yet");
    assert_eq!(f.poll_timeout(), Some(now + Duration::from_secs(5)));
    f.handle_timeout(now + Duration::from_secs(5), &mut out);
    assert_eq!(out, [store_of(&["phone", "laptop"])]);
    out.clear();
    // The laptop answers after its copy was asked for but before it is durable.
    f.on_response(LAPTOP, 200, || b"200 late".to_vec(), &mut out);
    assert!(out.is_empty());
    f.stored(
        SENDER,
        Some(4),
        vec!["phone".into(), "laptop".into()],
        &mut out,
    );
    assert_eq!(
        out,
        [
            FanoutAction::Delivered {
                id: 4,
                device: "laptop".into(),
                aor: "bob@club-a.test".into()
            },
            reply(202)
        ]
    );
    assert!(f.is_empty());
}

#[test]
fn a_late_200_after_the_copy_is_durable_settles_it_at_once() {
    let now = t0();
    let (mut f, _) = start(&[], now);
    let mut out = Vec::new();
    f.on_response(PHONE, 200, || b"200 phone".to_vec(), &mut out);
    f.handle_timeout(now + Duration::from_secs(5), &mut out);
    assert_eq!(out, [respond(b"200 phone"), store_of(&["laptop"])]);
    out.clear();
    f.stored(SENDER, Some(5), vec!["laptop".into()], &mut out);
    assert!(out.is_empty());
    assert_eq!(f.len(), 1, "the laptop's branch may still answer");
    f.on_response(LAPTOP, 200, Vec::new, &mut out);
    assert_eq!(
        out,
        [FanoutAction::Delivered {
            id: 5,
            device: "laptop".into(),
            aor: "bob@club-a.test".into()
        }]
    );
    assert!(f.is_empty());
}

#[test]
fn nobody_registered_is_stored_for_any_device_then_202() {
    let mut f = Fanouts::<u64>::default();
    let mut out = Vec::new();
    f.start(
        SENDER,
        (b"MESSAGE".to_vec(), source()),
        message(),
        (Vec::new(), Vec::new(), true),
        t0(),
        &mut out,
    );
    assert_eq!(out, [store_of(&[])]);
    out.clear();
    f.stored(SENDER, Some(1), Vec::new(), &mut out);
    assert_eq!(out, [reply(202)]);
    assert!(f.is_empty());
}

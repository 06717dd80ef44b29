//! tui-phone's registration state machine (issue #7) against the real registrar: challenged,
//! answered with digest, registered for what the registrar granted; a wrong password stops.

use openline_phone::ua::{Account, Next, RegEvent, Registration};
use openline_sip::Message;
use openline_tests::subject::Subject;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Runs `r` against `server` until it tells the user something final: that event.
fn register(r: &mut Registration, server: std::net::SocketAddr) -> RegEvent {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let contact = format!("sip:alice@{local}");
    for n in 0..4 {
        let via = format!("SIP/2.0/UDP {local};branch=z9hG4bKphone{n};rport");
        socket
            .send_to(&r.request(&via, &contact, &format!("c{n}")), server)
            .unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = socket
            .recv_from(&mut buf)
            .expect("an answer from the registrar");
        let response = Message::parse(&buf[..len]).unwrap();
        #[allow(clippy::disallowed_methods)] // a wire test's clock
        match r.on_response(Instant::now(), &response) {
            Next::Send | Next::Nothing => continue,
            Next::Tell(event) => return event,
        }
    }
    panic!("no final answer after four REGISTERs");
}

#[test]
fn the_phone_registers_with_digest_at_the_real_registrar() {
    let server = Subject::start_with_users(&[("alice@openline.test", "s3cret")], &[]);
    let account = |password: &str| Account {
        user: "alice".into(),
        domain: "openline.test".into(),
        password: password.into(),
    };
    let mut r = Registration::new(account("s3cret"), 300, "phone-1".into(), "t1".into());
    assert_eq!(
        register(&mut r, server.udp),
        RegEvent::Registered { expires: 300 }
    );
    assert!(r.poll_timeout().is_some(), "a refresh is planned");
    let mut wrong = Registration::new(account("guess"), 300, "phone-2".into(), "t2".into());
    match register(&mut wrong, server.udp) {
        RegEvent::Failed { code, reason } => {
            assert!(matches!(code, 401 | 403), "{code} {reason}");
        }
        other => panic!("a wrong password registered: {other:?}"),
    }
}

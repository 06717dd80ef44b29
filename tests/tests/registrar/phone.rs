//! tui-phone's registration state machine (issue #7) against the real registrar: challenged,
//! answered with digest, registered for what the registrar granted; a wrong password stops.

use openline_phone::ua::chat::{Outgoing, incoming};
use openline_phone::ua::{Account, Next, RegEvent, Registration};
use openline_sip::Message;
use openline_tests::subject::Subject;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Runs `r` against `server` until it tells the user something final: that event.
fn register(r: &mut Registration, server: std::net::SocketAddr) -> RegEvent {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    register_on(&socket, r, server)
}

/// The same, from `socket`.
fn register_on(socket: &UdpSocket, r: &mut Registration, server: std::net::SocketAddr) -> RegEvent {
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let contact = format!("<sip:alice@{local}>");
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
            assert!(reason.contains("password"), "{reason}");
            assert_eq!(
                wrong.poll_timeout(),
                None,
                "no retry with a refused password"
            );
        }
        other => panic!("a wrong password registered: {other:?}"),
    }
}

#[test]
fn a_message_stored_while_the_phone_was_away_is_read_when_it_registers() {
    let server = Subject::start_with_users(&[("alice@openline.test", "s3cret")], &[]);
    // Carol, of no account here, writes to alice, who has no device yet: stored, 202.
    let carol = UdpSocket::bind("127.0.0.1:0").unwrap();
    carol
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let via = format!(
        "SIP/2.0/UDP {};branch=z9hG4bKcarol1;rport",
        carol.local_addr().unwrap()
    );
    let request = Outgoing {
        from: "sip:carol@127.0.0.1",
        from_tag: "c1",
        to: "sip:alice@openline.test",
        call_id: "carol-1",
        via: &via,
        text: "are you there?",
    }
    .request();
    carol.send_to(&request, server.udp).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = carol.recv_from(&mut buf).unwrap();
    assert_eq!(Message::parse(&buf[..n]).unwrap().status(), Some(202));
    // Alice's phone registers and is handed it, dated, from carol.
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let account = Account {
        user: "alice".into(),
        domain: "openline.test".into(),
        password: "s3cret".into(),
    };
    let mut r = Registration::new(account, 300, "phone-3".into(), "t3".into());
    assert!(matches!(
        register_on(&phone, &mut r, server.udp),
        RegEvent::Registered { .. }
    ));
    let (n, from) = phone.recv_from(&mut buf).expect("the stored MESSAGE");
    let m = Message::parse(&buf[..n]).unwrap();
    let read = incoming(&m).unwrap();
    assert_eq!(read.text, "are you there?");
    assert_eq!(read.from, "sip:carol@127.0.0.1");
    assert!(
        read.date.is_some(),
        "a stored message says when it was accepted"
    );
    assert!(!read.sent_by_me);
    let ok = openline_sip::message::ResponseBuilder::new(200, "OK", &m.echo(), from, Some("a1"))
        .finish();
    phone.send_to(&ok, from).unwrap();
}

//! NAT over TCP: a device that registered over a TCP connection is reached over that same
//! connection (RFC 3261 18.2.2's reasoning, RFC 5626 flows), never by dialling its Contact.

use openline_tests::subject::Subject;
use openline_tests::wire::{first_line, header, md5_credentials, read_responses, status};
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// Registers `user`@openline.test (password s3cret) over a new TCP connection with `contact`
/// and `extra` header lines, answering the digest challenge: the connection and the 200.
fn register_over_tcp(
    server: &Subject,
    user: &str,
    contact: &str,
    extra: &str,
) -> (TcpStream, Vec<u8>) {
    let mut phone = TcpStream::connect(server.tcp).unwrap();
    let me = phone.local_addr().unwrap();
    let register = |cseq: u32, authorization: &str| {
        format!(
            "REGISTER sip:openline.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKreg{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@openline.test>;tag=e\r\nTo: <sip:{user}@openline.test>\r\n\
             Call-ID: flow-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n{extra}{authorization}\
             Content-Length: 0\r\n\r\n"
        )
    };
    phone.write_all(register(1, "").as_bytes()).unwrap();
    let (got, _) = read_responses(&mut phone, Duration::from_secs(5), |m| {
        status(m) == Some(401)
    });
    let challenge = got
        .iter()
        .find(|m| status(m) == Some(401))
        .and_then(|m| header(m, "WWW-Authenticate", None))
        .expect("a 401 with a challenge");
    assert!(challenge.contains("algorithm=MD5"), "{challenge}");
    let authorization = format!(
        "Authorization: {}\r\n",
        md5_credentials(&challenge, user, "s3cret", "REGISTER", "sip:openline.test")
    );
    phone
        .write_all(register(2, &authorization).as_bytes())
        .unwrap();
    let (got, _) = read_responses(&mut phone, Duration::from_secs(5), |m| {
        status(m) == Some(200)
    });
    let ok = got
        .into_iter()
        .find(|m| status(m) == Some(200))
        .expect("a 200 to the REGISTER");
    (phone, ok)
}

/// An INVITE for `user`@openline.test from a stranger over UDP: the caller's socket.
fn call(server: &Subject, user: &str) -> UdpSocket {
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let invite = format!(
        "INVITE sip:{user}@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKfl{user};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:frank@elsewhere.test>;tag=f\r\nTo: <sip:{user}@openline.test>\r\n\
         Call-ID: flow-call-{user}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        c = caller.local_addr().unwrap()
    );
    caller.send_to(invite.as_bytes(), server.udp).unwrap();
    caller
}

/// The first final status `caller` hears within five seconds.
fn final_status(caller: &UdpSocket) -> Option<u16> {
    caller
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while let Ok(n) = caller.recv(&mut buf) {
        match status(&buf[..n]) {
            Some(code) if code >= 200 => return Some(code),
            _ => {}
        }
    }
    None
}

#[test]
fn a_device_registered_over_tcp_is_called_over_that_connection() {
    let server = Subject::start_with_users(&[("erin@openline.test", "s3cret")], &[]);
    // The Contact names a port where something listens, to see that it is never dialled.
    let decoy = TcpListener::bind("127.0.0.1:0").unwrap();
    decoy.set_nonblocking(true).unwrap();
    let contact = format!("<sip:erin@{};transport=tcp>", decoy.local_addr().unwrap());
    let (mut phone, ok) = register_over_tcp(&server, "erin", &contact, "");
    assert!(
        header(&ok, "Require", None).is_none(),
        "outbound was not asked for"
    );

    // A call for erin arrives over UDP from elsewhere; it reaches her over her connection.
    let _caller = call(&server, "erin");
    let (got, _) = read_responses(&mut phone, Duration::from_secs(5), |m| {
        first_line(m).starts_with("INVITE ")
    });
    let at_phone = got
        .iter()
        .find(|m| first_line(m).starts_with("INVITE "))
        .unwrap_or_else(|| panic!("no INVITE over the registered connection: {got:?}"));
    assert!(
        header(at_phone, "Via", Some("v"))
            .unwrap()
            .starts_with("SIP/2.0/TCP "),
        "{}",
        String::from_utf8_lossy(at_phone)
    );
    assert!(
        decoy.accept().is_err(),
        "the proxy dialled the Contact instead of using the connection"
    );
}

#[test]
fn a_lost_flow_is_never_redialled_and_an_outbound_one_answers_430() {
    let server = Subject::start_with_users(
        &[
            ("gina@openline.test", "s3cret"),
            ("hank@openline.test", "s3cret"),
        ],
        &[],
    );
    // gina asks for outbound (RFC 5626): instance, reg-id, Supported: outbound.
    let (phone, ok) = register_over_tcp(
        &server,
        "gina",
        "<sip:gina@127.0.0.1:9;transport=tcp;ob>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-00000000000a>\";reg-id=1",
        "Supported: outbound, path\r\n",
    );
    assert_eq!(header(&ok, "Require", None).as_deref(), Some("outbound"));
    // hank registers over TCP without outbound.
    let (hank_phone, _) =
        register_over_tcp(&server, "hank", "<sip:hank@127.0.0.1:9;transport=tcp>", "");
    // Both connections close; once the server has let go of them (it lingers 2 s for answers),
    // a call finds no flow: gina's caller hears 430 Flow Failed, hank's 480, and nothing is dialled.
    drop(phone);
    drop(hank_phone);
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(final_status(&call(&server, "gina")), Some(430));
    assert_eq!(final_status(&call(&server, "hank")), Some(480));
}

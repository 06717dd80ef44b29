//! NAT over TCP: a device that registered over a TCP connection is reached over that same
//! connection (RFC 3261 18.2.2's reasoning, RFC 5626 flows), never by dialling its Contact.

use openline_sip::digest::Algorithm;
use openline_tests::subject::Subject;
use openline_tests::wire::{first_line, header, read_responses, status};
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// The `name="value"` (or bare) parameter of a challenge.
fn param(challenge: &str, name: &str) -> String {
    let at = challenge.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &challenge[at..];
    match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"').unwrap()].to_string(),
        None => rest.split([',', ' ']).next().unwrap().to_string(),
    }
}

#[test]
fn a_device_registered_over_tcp_is_called_over_that_connection() {
    let server = Subject::start_with_users(&[("erin@openline.test", "s3cret")], &[]);
    // The Contact names a port where something listens, to see that it is never dialled.
    let decoy = TcpListener::bind("127.0.0.1:0").unwrap();
    decoy.set_nonblocking(true).unwrap();
    let contact = format!("<sip:erin@{};transport=tcp>", decoy.local_addr().unwrap());
    let mut phone = TcpStream::connect(server.tcp).unwrap();
    let me = phone.local_addr().unwrap();
    let register = |cseq: u32, authorization: &str| {
        format!(
            "REGISTER sip:openline.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKreg{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:erin@openline.test>;tag=e\r\nTo: <sip:erin@openline.test>\r\n\
             Call-ID: flow-1\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n{authorization}\
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
    // RFC 7616 3.4.1 with qop=auth, computed here (MD5, the first challenge).
    let (realm, nonce) = (param(&challenge, "realm"), param(&challenge, "nonce"));
    let md5 = |parts: &[&str]| Algorithm::Md5.hash_hex(parts);
    let ha1 = md5(&["erin", &realm, "s3cret"]);
    let ha2 = md5(&["REGISTER", "sip:openline.test"]);
    let response = md5(&[&ha1, &nonce, "00000001", "c0ffee", "auth", &ha2]);
    let authorization = format!(
        "Authorization: Digest username=\"erin\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"sip:openline.test\", response=\"{response}\", algorithm=MD5, qop=auth, \
         nc=00000001, cnonce=\"c0ffee\"\r\n"
    );
    phone
        .write_all(register(2, &authorization).as_bytes())
        .unwrap();
    let (got, _) = read_responses(&mut phone, Duration::from_secs(5), |m| {
        status(m) == Some(200)
    });
    assert!(got.iter().any(|m| status(m) == Some(200)), "{got:?}");

    // A call for erin arrives over UDP from elsewhere; it reaches her over her connection.
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    let invite = format!(
        "INVITE sip:erin@openline.test SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKfl1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:frank@elsewhere.test>;tag=f\r\nTo: <sip:erin@openline.test>\r\n\
         Call-ID: flow-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        c = caller.local_addr().unwrap()
    );
    caller.send_to(invite.as_bytes(), server.udp).unwrap();
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

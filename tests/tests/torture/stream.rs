//! Hostile streams: garbage, an over-long message, a broken Content-Length, keep-alives. Each
//! bad connection is closed alone; the others keep being served.

use openline_tests::subject::Subject;
use openline_tests::wire::{self, read_responses, status};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Waits for the server to close `conn`; true if it did within the limit.
fn closed_by_server(conn: &mut TcpStream, limit: Duration) -> bool {
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn garbage_closes_only_that_connection() {
    crate::require_private_network();
    let server = Subject::start(&[]);
    // A healthy connection, opened first and used after the garbage.
    let mut healthy = TcpStream::connect(server.tcp).unwrap();
    let mut garbage = TcpStream::connect(server.tcp).unwrap();
    garbage.write_all(&vec![b'x'; 20 * 1024]).unwrap();
    assert!(
        closed_by_server(&mut garbage, Duration::from_secs(5)),
        "a header section that never ends closes the connection"
    );
    let local = healthy.local_addr().unwrap();
    healthy
        .write_all(&wire::options(server.tcp, local, "TCP", "healthy-1"))
        .unwrap();
    let (got, closed) = read_responses(&mut healthy, Duration::from_secs(3), |m| {
        status(m).is_some()
    });
    assert!(!closed);
    assert_eq!(got.last().and_then(|m| status(m)), Some(200));
}

#[test]
fn over_long_message_closes_the_connection() {
    crate::require_private_network();
    let server = Subject::start(&[]);
    let mut conn = TcpStream::connect(server.tcp).unwrap();
    let head = "MESSAGE sip:a@openline.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKbig\r\nContent-Length: 70000\r\n\r\n";
    conn.write_all(head.as_bytes()).unwrap();
    assert!(closed_by_server(&mut conn, Duration::from_secs(5)));
    assert_eq!(
        wire::tcp_options_status(server.tcp, "after-long"),
        Some(200)
    );
}

#[test]
fn duplicate_content_length_is_answered_then_closed() {
    crate::require_private_network();
    let server = Subject::start(&[]);
    let mut conn = TcpStream::connect(server.tcp).unwrap();
    let local = conn.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKmcl\r\nMax-Forwards: 70\r\nFrom: <sip:a@{local}>;tag=1\r\nTo: <sip:{0}>\r\nCall-ID: mcl-tcp\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        server.tcp
    );
    conn.write_all(msg.as_bytes()).unwrap();
    let (got, _) = read_responses(&mut conn, Duration::from_secs(3), |m| status(m).is_some());
    let reply = got.last().expect("an answer before the close");
    assert_eq!(
        wire::first_line(reply),
        "SIP/2.0 400 Bad Request (duplicate Content-Length header)"
    );
    assert!(closed_by_server(&mut conn, Duration::from_secs(5)));
}

#[test]
fn crlf_ping_gets_a_pong_and_the_connection_stays() {
    crate::require_private_network();
    let server = Subject::start(&[]);
    let mut conn = TcpStream::connect(server.tcp).unwrap();
    conn.write_all(b"\r\n\r\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut pong = [0u8; 2];
    conn.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    let local = conn.local_addr().unwrap();
    conn.write_all(&wire::options(server.tcp, local, "TCP", "after-ping"))
        .unwrap();
    let (got, _) = read_responses(&mut conn, Duration::from_secs(3), |m| status(m).is_some());
    assert_eq!(got.last().and_then(|m| status(m)), Some(200));
}

#[test]
fn udp_garbage_is_dropped_and_the_server_goes_on() {
    crate::require_private_network();
    let server = Subject::start(&[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b"\x00\x01\x02"[..],
        b"INVITE",
        b"SIP/2.0 200 OK\r\n\r\n",
        &[0xff; 1400],
        b"\r\n\r\n",
    ] {
        sock.send_to(junk, server.udp).unwrap();
    }
    let local = sock.local_addr().unwrap();
    sock.send_to(
        &wire::options(server.udp, local, "UDP", "after-junk"),
        server.udp,
    )
    .unwrap();
    let got = wire::recv_until(&[&sock], Duration::from_secs(3), |m| status(m).is_some());
    assert_eq!(got.len(), 1, "nothing answered the junk");
    assert_eq!(status(&got[0]), Some(200));
}

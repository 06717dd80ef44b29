//! Reading SIP off the wire in tests, independently of the parser under test: a test that used
//! our own parser to judge our own server could not catch a bug the two share.
// Real sockets need real deadlines: this is a driver, not protocol code.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The status code of a response's first line.
pub fn status(msg: &[u8]) -> Option<u16> {
    let line = msg.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

/// The first line, as text.
pub fn first_line(msg: &[u8]) -> String {
    String::from_utf8_lossy(
        msg.split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or(&[]),
    )
    .into_owned()
}

/// The value of the first header named `long` or `short` (case-insensitive), unfolded.
pub fn header(msg: &[u8], long: &str, short: Option<&str>) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n").skip(1).peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case(long) || short.is_some_and(|s| name.eq_ignore_ascii_case(s)) {
            let mut v = value.trim().to_string();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                v.push(' ');
                v.push_str(next.trim());
                lines.next();
            }
            return Some(v);
        }
    }
    None
}

/// The Call-ID of a message, if it has one.
pub fn call_id(msg: &[u8]) -> Option<String> {
    header(msg, "Call-ID", Some("i"))
}

/// An OPTIONS request with the given Call-ID and branch, sent from `local`.
pub fn options(target: SocketAddr, local: SocketAddr, transport: &str, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{call_id};rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p1\r\nTo: <sip:{target}>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Receives datagrams on any of `sockets` until `until` returns true for one or `limit` passes.
pub fn recv_until(
    sockets: &[&UdpSocket],
    limit: Duration,
    mut until: impl FnMut(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for s in sockets {
        s.set_nonblocking(true).expect("nonblocking");
    }
    while Instant::now() < deadline {
        let mut any = false;
        let mut done = false;
        // Drain every socket before deciding: an answer on another port may have come first.
        for s in sockets {
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                any = true;
                let msg = buf[..n].to_vec();
                done |= until(&msg);
                got.push(msg);
            }
        }
        if done {
            return got;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    got
}

/// Reads whole responses (by Content-Length) from a stream until `until` holds or `limit` passes.
pub fn read_responses(
    stream: &mut TcpStream,
    limit: Duration,
    mut until: impl FnMut(&[u8]) -> bool,
) -> (Vec<Vec<u8>>, bool) {
    let deadline = Instant::now() + limit;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut closed = false;
    while Instant::now() < deadline {
        while let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = &buf[..end + 4];
            let len = header(head, "Content-Length", Some("l"))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
            let done = until(&msg);
            out.push(msg);
            if done {
                return (out, false);
            }
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(50))))
            .expect("timeout");
        match stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    (out, closed)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends an OPTIONS over a new TCP connection and returns the status, for liveness checks.
pub fn tcp_options_status(target: SocketAddr, call_id: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
    let local = s.local_addr().ok()?;
    s.write_all(&options(target, local, "TCP", call_id)).ok()?;
    let (got, _) = read_responses(&mut s, Duration::from_secs(3), |m| {
        status(m).is_some_and(|c| c >= 200)
    });
    got.last().and_then(|m| status(m))
}

/// Sends an OPTIONS in one datagram and returns the final status, for liveness checks.
pub fn udp_options_status(target: SocketAddr, call_id: &str) -> Option<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    let local = s.local_addr().ok()?;
    s.send_to(&options(target, local, "UDP", call_id), target)
        .ok()?;
    let got = recv_until(&[&s], Duration::from_secs(3), |m| {
        status(m).is_some_and(|c| c >= 200)
    });
    got.last().and_then(|m| status(m))
}

/// The `name="value"` (or bare) parameter of a digest challenge.
pub fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest.split([',', ' ']).next()?.to_string(),
    })
}

/// The credentials answering an MD5 digest `challenge` for `method` on `uri` (RFC 7616 3.4.1,
/// qop=auth, nc 00000001), computed here rather than by the code under test.
pub fn md5_credentials(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> String {
    use openline_sip::digest::Algorithm;
    let realm = challenge_param(challenge, "realm").expect("realm");
    let nonce = challenge_param(challenge, "nonce").expect("nonce");
    let md5 = |parts: &[&str]| Algorithm::Md5.hash_hex(parts);
    let ha1 = md5(&[user, &realm, password]);
    let ha2 = md5(&[method, uri]);
    let response = md5(&[&ha1, &nonce, "00000001", "c0ffee", "auth", &ha2]);
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    )
}

/// Every Via value of `msg`, top first, one line each.
pub fn vias(msg: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    head.split("\r\n")
        .filter_map(|l| l.strip_prefix("Via:").or_else(|| l.strip_prefix("v:")))
        .map(|v| v.trim().to_string())
        .collect()
}

/// A response to `request` as a UAS writes it (RFC 3261 8.2.6).
pub fn response_to(request: &[u8], code: u16, reason: &str, to_tag: &str, extra: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in vias(request) {
        out += &format!("Via: {v}\r\n");
    }
    if let Some(rr) = header(request, "Record-Route", None) {
        out += &format!("Record-Route: {rr}\r\n");
    }
    let to = header(request, "To", Some("t")).unwrap();
    let to = if to.contains("tag=") {
        to
    } else {
        format!("{to};tag={to_tag}")
    };
    out += &format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(request, "From", Some("f")).unwrap(),
        header(request, "Call-ID", Some("i")).unwrap(),
        header(request, "CSeq", None).unwrap(),
    );
    out.into_bytes()
}

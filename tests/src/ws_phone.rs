//! A scripted SIP user agent over WebSocket (RFC 7118), as a browser's SIP.js or JsSIP is:
//! its Contact a `.invalid` host reached only over its socket, `+sip.instance` and `reg-id`
//! (RFC 5626) as those libraries send. Plain `ws:` or `wss:` with the test CA.

// Test support: a broken expectation is a failed test; the socket's read timeout is set here.
#![allow(clippy::disallowed_methods)]

use crate::wire::{header, md5_credentials, status};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// A stream tungstenite can read and write: TCP, or TLS over it.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// What the server answered to the WebSocket handshake when it refused it.
#[derive(Debug)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The body (the reason).
    pub body: String,
}

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct Dial<'a> {
    /// Over TLS, trusting this CA and expecting this name.
    pub tls: Option<(&'a Path, &'a str)>,
    /// The Origin header a browser sends.
    pub origin: Option<&'a str>,
    /// The subprotocols offered (`sip` unless told otherwise).
    pub protocols: Option<&'a str>,
}

/// One browser tab's SIP over WebSocket.
pub struct WsPhone {
    ws: WebSocket<Box<dyn Stream>>,
    tcp: TcpStream,
    user: String,
    domain: String,
    password: String,
    /// Its `.invalid` host, as SIP.js makes one.
    pub host: String,
    /// Its +sip.instance.
    pub instance: String,
    /// Whether it registers with `reg-id` (RFC 5626 outbound), as SIP.js and JsSIP do.
    pub outbound: bool,
    cseq: u32,
    /// Requests received and not yet taken.
    inbox: Vec<Vec<u8>>,
}

impl WsPhone {
    /// Connects to `server` (`ws://` or, with `dial.tls`, `wss://`) as `user@domain`.
    pub fn connect(
        server: SocketAddr,
        (user, domain, password): (&str, &str, &str),
        dial: &Dial<'_>,
    ) -> Result<WsPhone, Refused> {
        let tcp = TcpStream::connect(server).expect("connect");
        let _ = tcp.set_nodelay(true);
        let handle = tcp.try_clone().expect("clone");
        let (stream, scheme): (Box<dyn Stream>, &str) = match dial.tls {
            None => (Box::new(tcp), "ws"),
            Some((ca, name)) => {
                use rustls_pki_types::pem::PemObject as _;
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("CA") {
                    roots.add(c.expect("CA certificate")).expect("a root");
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = rustls_pki_types::ServerName::try_from(name.to_string()).expect("name");
                let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS");
                (Box::new(rustls::StreamOwned::new(conn, tcp)), "wss")
            }
        };
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{scheme}://{server}/"
        ))
        .expect("a request");
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            dial.protocols.unwrap_or("sip").parse().expect("header"),
        );
        if let Some(o) = dial.origin {
            headers.insert("origin", o.parse().expect("header"));
        }
        let config = WebSocketConfig::default().max_message_size(Some(32 << 20));
        handle
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let (ws, response) =
            match tungstenite::client::client_with_config(request, stream, Some(config)) {
                Ok(r) => r,
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                    return Err(Refused {
                        status: r.status().as_u16(),
                        body: r
                            .body()
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default(),
                    });
                }
                Err(e) => panic!("WebSocket handshake: {e}"),
            };
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("sip"),
            "the server names the sip subprotocol"
        );
        let n = server.port() as u64 * 1000 + u64::from(std::process::id() % 1000);
        Ok(WsPhone {
            ws,
            tcp: handle,
            user: user.into(),
            domain: domain.into(),
            password: password.into(),
            host: format!("t{n}.invalid"),
            instance: format!("urn:uuid:00000000-0000-4000-8000-{n:012}"),
            outbound: true,
            cseq: 0,
            inbox: Vec::new(),
        })
    }

    /// Sends one SIP message as a text frame.
    pub fn send(&mut self, message: &[u8]) {
        let text = String::from_utf8_lossy(message).into_owned();
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Sends raw bytes as a binary frame.
    pub fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::binary(bytes))
    }

    /// The next SIP message within `limit`; Err with the close frame's code when the server
    /// closed the connection.
    pub fn recv(&mut self, limit: Duration) -> Result<Option<Vec<u8>>, Option<u16>> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self
                .tcp
                .set_read_timeout(Some(left.min(Duration::from_millis(200))));
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(Some(t.as_bytes().to_vec())),
                Ok(Message::Binary(b)) => return Ok(Some(b.to_vec())),
                Ok(Message::Close(frame)) => return Err(frame.map(|f| u16::from(f.code))),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(None);
                }
                Err(e) => panic!("WebSocket read: {e}"),
            }
        }
    }

    /// This tab's address of record.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// Its Contact, as SIP.js writes it.
    pub fn contact(&self) -> String {
        let reg_id = if self.outbound { ";reg-id=1" } else { "" };
        format!(
            "<sip:{}@{};transport=ws>;+sip.instance=\"<{}>\"{reg_id}",
            self.user, self.host, self.instance
        )
    }

    /// Registers for `expires` seconds; the final status.
    pub fn register(&mut self, expires: u32) -> u16 {
        let uri = format!("sip:{}", self.domain);
        let extra = format!(
            "Contact: {}\r\nExpires: {expires}\r\nSupported: path, outbound, gruu\r\n",
            self.contact()
        );
        let to = format!("<sip:{}>", self.aor());
        self.request("REGISTER", &uri, &to, &extra, b"")
            .and_then(|r| status(&r))
            .unwrap_or(0)
    }

    /// Sends a request outside a dialog and returns its final response, answering one
    /// challenge; requests arriving meanwhile go to the inbox.
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        to: &str,
        extra: &str,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        let call_id = format!("{}-{}", method.to_lowercase(), self.host);
        let mut auth = String::new();
        for _ in 0..2 {
            self.cseq += 1;
            let branch = format!("z9hG4bKws{}x{}", self.cseq, self.host.len());
            let msg = format!(
                "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/WSS {};branch={branch}\r\nMax-Forwards: 70\r\n\
                 From: <sip:{}>;tag=ws{}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {} {method}\r\n\
                 {extra}{auth}Content-Length: {}\r\n\r\n",
                self.host,
                self.aor(),
                self.cseq,
                self.cseq,
                body.len()
            );
            let mut bytes = msg.into_bytes();
            bytes.extend_from_slice(body);
            self.send(&bytes);
            let response = self.final_response(&branch)?;
            let code = status(&response)?;
            if auth.is_empty() && (code == 401 || code == 407) {
                let (challenge, answer) = if code == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let challenge = header(&response, challenge, None)?;
                let credentials =
                    md5_credentials(&challenge, &self.user, &self.password, method, uri);
                auth = format!("{answer}: {credentials}\r\n");
                continue;
            }
            return Some(response);
        }
        None
    }

    fn final_response(&mut self, branch: &str) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Ok(Some(msg)) = self.recv(deadline - Instant::now()) else {
                return None;
            };
            match status(&msg) {
                Some(code) if code >= 200 => {
                    if header(&msg, "Via", Some("v")).is_some_and(|v| v.contains(branch)) {
                        return Some(msg);
                    }
                }
                Some(_) => {}
                None => self.inbox.push(msg),
            }
        }
        None
    }

    /// The next request of `method` within `limit` (from the inbox first).
    pub fn next_request(&mut self, method: &str, limit: Duration) -> Option<Vec<u8>> {
        let start = format!("{method} ");
        if let Some(i) = self
            .inbox
            .iter()
            .position(|m| m.starts_with(start.as_bytes()))
        {
            return Some(self.inbox.remove(i));
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.recv(deadline - Instant::now()) {
                Ok(Some(m)) if m.starts_with(start.as_bytes()) => return Some(m),
                Ok(Some(m)) if status(&m).is_none() => self.inbox.push(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Answers `request` with `code` (a To tag of its own, this tab's Contact).
    pub fn answer(&mut self, request: &[u8], code: u16, reason: &str) {
        self.answer_with_sdp(request, (code, reason), "");
    }

    /// Answers `request` with `code` and `sdp` as its body (none when empty).
    pub fn answer_with_sdp(&mut self, request: &[u8], (code, reason): (u16, &str), sdp: &str) {
        let mut extra = format!(
            "Contact: <sip:{}@{};transport=ws>\r\n",
            self.user, self.host
        );
        if !sdp.is_empty() {
            extra += "Content-Type: application/sdp\r\n";
        }
        let reply = crate::wire::response_to(request, code, reason, "tab", &extra);
        let text = String::from_utf8_lossy(&reply).replacen(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()),
            1,
        );
        self.send(text.as_bytes());
    }
}

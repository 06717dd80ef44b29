//! A phone the tests drive by hand over UDP: it registers and sends MESSAGEs answering digest
//! challenges itself (the credentials computed here, not by the code under test), and takes
//! the MESSAGEs the server sends it, answering each with a chosen status (or not at all).

// A phone on a real network reads the real clock.
#![allow(clippy::disallowed_methods)]

use crate::wire::{first_line, header, md5_credentials, status};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a phone waits for a response.
const WAIT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A received request.
#[derive(Debug, Clone)]
pub struct Received {
    /// The whole request.
    pub raw: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.raw, name, None)
    }

    /// The body as text.
    pub fn body(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// One scripted device of one user.
pub struct Phone {
    socket: UdpSocket,
    /// Where it listens.
    pub addr: SocketAddr,
    server: SocketAddr,
    user: String,
    domain: String,
    password: String,
    /// Its +sip.instance URN, which names it as a device.
    pub instance: String,
    cseq: u32,
    /// What it answers to a MESSAGE: a status, or None to stay silent.
    pub answer: Option<u16>,
    /// Requests received and not yet taken.
    inbox: Vec<Received>,
    /// Via branches of requests already taken: a retransmission is answered, not kept twice.
    seen: Vec<String>,
    /// Via branches of requests that came while it was silent.
    deaf: Vec<String>,
    /// The contact it registers, when not its own address (a responder elsewhere).
    contact: Option<String>,
    /// URI parameters of its own contact (RFC 8599 `;pn-provider=...`).
    contact_params: String,
    /// How long it waits for a final response before giving up on a request.
    pub wait: Duration,
}

impl Phone {
    /// A device of `user@domain` talking to `server`.
    pub fn new(user: &str, domain: &str, password: &str, server: SocketAddr) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a phone");
        let addr = socket.local_addr().expect("phone address");
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Phone {
            socket,
            addr,
            server,
            user: user.into(),
            domain: domain.into(),
            password: password.into(),
            instance: format!(
                "urn:uuid:00000000-0000-4000-8000-{:06}{:06}",
                std::process::id() % 1_000_000,
                n
            ),
            cseq: 0,
            answer: Some(200),
            inbox: Vec::new(),
            seen: Vec::new(),
            deaf: Vec::new(),
            contact: None,
            contact_params: String::new(),
            wait: WAIT,
        }
    }

    /// Registers its address with these URI parameters (`;pn-provider=...;pn-prid=...`).
    pub fn set_contact_params(&mut self, params: &str) {
        self.contact_params = params.to_string();
    }

    /// Registers `contact` instead of its own address (for a responder that cannot register).
    pub fn set_contact(&mut self, contact: &str) {
        self.contact = Some(contact.to_string());
    }

    /// Talks to another server from now on (the same one restarted elsewhere).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.server = server;
    }

    /// This device's address of record.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// Registers for `expires` seconds (0: unregisters); the final status.
    pub fn register(&mut self, expires: u32) -> u16 {
        let contact = match &self.contact {
            Some(c) => format!("<{c}>"),
            None => format!(
                "<sip:{}@{}{}>;+sip.instance=\"<{}>\"",
                self.user, self.addr, self.contact_params, self.instance
            ),
        };
        let uri = format!("sip:{}", self.domain);
        let extra = format!("Contact: {contact}\r\nExpires: {expires}\r\n");
        let to = format!("<sip:{}>", self.aor());
        let response = self.last_response("REGISTER", &uri, &to, &extra, "", b"");
        response.and_then(|r| status(&r)).unwrap_or(0)
    }

    /// Sends a text/plain MESSAGE to `to` (`user@domain`); the final status.
    pub fn message(&mut self, to: &str, body: &str) -> u16 {
        self.message_typed(to, "text/plain;charset=UTF-8", body.as_bytes())
    }

    /// Sends a MESSAGE with this Content-Type and body; the final status.
    pub fn message_typed(&mut self, to: &str, content_type: &str, body: &[u8]) -> u16 {
        let uri = format!("sip:{to}");
        let extra = format!("Content-Type: {content_type}\r\n");
        let response = self.last_response("MESSAGE", &uri, &format!("<{uri}>"), &extra, "", body);
        response.and_then(|r| status(&r)).unwrap_or(0)
    }

    /// Sends a request and returns its final response, answering one challenge.
    pub fn last_response(
        &mut self,
        method: &str,
        uri: &str,
        to: &str,
        extra: &str,
        auth: &str,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        self.last_response_in(None, method, uri, to, extra, auth, body)
    }

    /// Like [`Phone::last_response`], inside the dialog with Call-ID `call_id` when given (a
    /// new Call-ID otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn last_response_in(
        &mut self,
        call_id: Option<&str>,
        method: &str,
        uri: &str,
        to: &str,
        extra: &str,
        auth: &str,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}x{}", self.addr.port(), self.cseq);
        let call_id = call_id.map_or_else(
            || {
                format!(
                    "{}-{}-{}",
                    method.to_lowercase(),
                    self.addr.port(),
                    self.cseq
                )
            },
            str::to_string,
        );
        let msg = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{}>;tag=t{}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {} {method}\r\n{extra}{auth}\
             Content-Length: {}\r\n\r\n",
            self.addr,
            self.aor(),
            self.addr.port(),
            self.cseq,
            body.len()
        );
        let mut bytes = msg.into_bytes();
        bytes.extend_from_slice(body);
        self.socket.send_to(&bytes, self.server).expect("send");
        let response = self.final_response(&branch)?;
        let code = status(&response)?;
        if auth.is_empty() && (code == 401 || code == 407) {
            let (challenge_name, answer_name) = if code == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            let challenge = header(&response, challenge_name, None)?;
            let credentials = md5_credentials(&challenge, &self.user, &self.password, method, uri);
            let auth = format!("{answer_name}: {credentials}\r\n");
            return self.last_response_in(Some(&call_id), method, uri, to, extra, &auth, body);
        }
        Some(response)
    }

    /// Waits for the final response whose Via carries `branch`, taking requests meanwhile.
    fn final_response(&mut self, branch: &str) -> Option<Vec<u8>> {
        let deadline = Instant::now() + self.wait;
        while Instant::now() < deadline {
            let Some(msg) = self.recv(deadline - Instant::now()) else {
                continue;
            };
            if let Some(code) = status(&msg) {
                let ours = header(&msg, "Via", Some("v")).is_some_and(|v| v.contains(branch));
                if ours && code >= 200 {
                    return Some(msg);
                }
            } else {
                self.take_request(msg);
            }
        }
        None
    }

    fn recv(&self, limit: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_536];
        self.socket
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))))
            .ok()?;
        let (n, _) = self.socket.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }

    /// A request arrived: answered as set, kept once.
    fn take_request(&mut self, msg: Vec<u8>) {
        let branch = header(&msg, "Via", Some("v")).unwrap_or_default();
        // What came while it was silent stays lost, as on a device that crashed: even its
        // retransmissions go unanswered.
        if self.deaf.contains(&branch) {
            return;
        }
        if self.answer.is_none() {
            self.deaf.push(branch.clone());
        }
        if first_line(&msg).starts_with("MESSAGE") || first_line(&msg).starts_with("NOTIFY") {
            if let Some(code) = self.answer {
                let reply = crate::wire::response_to(&msg, code, "Phone", "tag-phone", "");
                let _ = self.socket.send_to(&reply, self.server);
            }
        }
        if self.seen.contains(&branch) {
            return;
        }
        self.seen.push(branch);
        self.inbox.push(Received { raw: msg });
    }

    /// The MESSAGEs received within `limit` until `count` are in (taken from the inbox).
    pub fn messages(&mut self, count: usize, limit: Duration) -> Vec<Received> {
        self.requests("MESSAGE", count, limit)
    }

    /// The requests of `method` received within `limit` until `count` are in (taken from the
    /// inbox); MESSAGE and NOTIFY are answered as [`Phone::answer`] says.
    pub fn requests(&mut self, method: &str, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        let start = format!("{method} ");
        loop {
            let have = self
                .inbox
                .iter()
                .filter(|r| first_line(&r.raw).starts_with(&start))
                .count();
            if have >= count || Instant::now() >= deadline {
                break;
            }
            if let Some(msg) = self.recv((deadline - Instant::now()).min(Duration::from_millis(50)))
            {
                if status(&msg).is_none() {
                    self.take_request(msg);
                }
            }
        }
        let (messages, rest) = std::mem::take(&mut self.inbox)
            .into_iter()
            .partition(|r| first_line(&r.raw).starts_with(&start));
        self.inbox = rest;
        messages
    }
}

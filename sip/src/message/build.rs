//! Writing new requests and responses.

use super::RequestEcho;
use super::print::write_collapsed;
use crate::header::{HeaderName, NameAddr};
use crate::lex::split_list;
use crate::method::Method;
use std::fmt::Display;
// Formatting straight into the output buffer: no temporary String per header.
use std::io::Write as _;
use std::net::SocketAddr;

/// The reason phrase RFC 3261 gives a status code.
pub fn standard_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// Builds a response to a received request: status line, the echoed Via/From/To/Call-ID/CSeq,
/// then whatever headers the caller adds, then Content-Length and the body.
#[derive(Debug)]
pub struct ResponseBuilder {
    buf: Vec<u8>,
}

impl ResponseBuilder {
    /// Starts a response; `to_tag` is added to To when the request's To has no tag.
    pub fn new(
        code: u16,
        reason: &str,
        echo: &RequestEcho<'_, '_>,
        source: SocketAddr,
        to_tag: Option<&str>,
    ) -> Self {
        let mut buf = Vec::with_capacity(512);
        let _ = write!(buf, "SIP/2.0 {code} ");
        // A reason phrase may not hold a line break.
        buf.extend(
            reason
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        buf.extend_from_slice(b"\r\n");
        let mut top_written = false;
        let mut via_text = String::new();
        for h in echo.headers {
            match h.name {
                HeaderName::Via => {
                    for element in split_list(h.value) {
                        buf.extend_from_slice(b"Via: ");
                        if top_written {
                            write_collapsed(&mut buf, element);
                        } else {
                            echo.top_via.write_received(&mut via_text, source);
                            buf.extend_from_slice(via_text.as_bytes());
                            top_written = true;
                        }
                        buf.extend_from_slice(b"\r\n");
                    }
                }
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    buf.extend_from_slice(h.name.as_str().as_bytes());
                    buf.extend_from_slice(b": ");
                    write_collapsed(&mut buf, h.value);
                    buf.extend_from_slice(b"\r\n");
                }
                HeaderName::To => {
                    buf.extend_from_slice(b"To: ");
                    write_collapsed(&mut buf, h.value);
                    if let Some(tag) = to_tag {
                        if NameAddr::parse(h.value).is_some_and(|t| t.tag().is_none()) {
                            buf.extend_from_slice(b";tag=");
                            buf.extend_from_slice(tag.as_bytes());
                        }
                    }
                    buf.extend_from_slice(b"\r\n");
                }
                _ => {}
            }
        }
        ResponseBuilder { buf }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    /// Finishes with no body.
    pub fn finish(self) -> Vec<u8> {
        self.body(None, b"")
    }

    /// Finishes with a body of the given type.
    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        finish_body(&mut self.buf, content_type, body);
        self.buf
    }
}

fn finish_body(buf: &mut Vec<u8>, content_type: Option<&str>, body: &[u8]) {
    if let Some(ct) = content_type {
        let _ = write!(buf, "Content-Type: {ct}\r\n");
    }
    let _ = write!(buf, "Content-Length: {}\r\n\r\n", body.len());
    buf.extend_from_slice(body);
}

/// Builds a request line by line.
#[derive(Debug)]
pub struct RequestBuilder {
    buf: Vec<u8>,
}

impl RequestBuilder {
    /// Starts `METHOD uri SIP/2.0`.
    pub fn new(method: Method<'_>, uri: &str) -> Self {
        let mut buf = Vec::with_capacity(512);
        let _ = write!(buf, "{method} {uri} SIP/2.0\r\n");
        RequestBuilder { buf }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    /// Finishes with no body.
    pub fn finish(self) -> Vec<u8> {
        self.body(None, b"")
    }

    /// Finishes with a body of the given type.
    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        finish_body(&mut self.buf, content_type, body);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    #[test]
    fn response_echoes_and_stamps_via() {
        let req = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bK1;rport, SIP/2.0/TCP p2\r\n ;branch=z9hG4bK2\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=9\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
        let m = Message::parse(req).unwrap();
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let out = ResponseBuilder::new(200, "OK", &m.echo(), src, Some("abc"))
            .header("Allow", "OPTIONS")
            .finish();
        let r = Message::parse(&out).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.to_tag, Some("abc"));
        assert_eq!(r.top_via.received(), Some("127.0.0.1"));
        assert_eq!(r.top_via.rport(), Some(Some(40000)));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.header(HeaderName::Allow), Some("OPTIONS"));
        assert_eq!(r.header(HeaderName::MaxForwards), None);
    }
}

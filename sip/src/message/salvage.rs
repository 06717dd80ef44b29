//! Reading just enough of a malformed request to answer it with a 400 (RFC 3261 section 8.2.6,
//! RFC 4475): its header lines and a top Via that can be routed to.

use super::RequestEcho;
use super::parse::{find_head_end, lines, skip_leading_crlf};
use crate::header::{Header, HeaderName, Via};
use crate::lex::{split_list, trim_lws};

/// The parts of a malformed message that a reply needs.
#[derive(Debug, Clone)]
pub struct Salvaged<'a> {
    /// Whether the start line looks like a request (responses are never answered).
    pub is_request: bool,
    /// Whether it is an ACK, which is never answered either.
    pub is_ack: bool,
    headers: Vec<Header<'a>>,
    top_via: Via<'a>,
}

impl<'a> Salvaged<'a> {
    /// Reads header lines leniently; `None` when there is no usable top Via to answer to.
    pub fn scan(buf: &'a [u8]) -> Option<Self> {
        let buf = &buf[skip_leading_crlf(buf)..];
        let end = find_head_end(buf).map_or(buf.len(), |(e, _)| e);
        let head = match std::str::from_utf8(&buf[..end]) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).ok()?,
        };
        let mut lines = lines(head);
        let (_, first) = lines.next()?;
        let is_request = !first.starts_with("SIP/");
        let is_ack = first.starts_with("ACK ");
        let mut headers = Vec::new();
        let mut current: Option<(HeaderName<'a>, usize, usize)> = None;
        for (offset, line) in lines {
            if line.starts_with([' ', '\t']) {
                if let Some(c) = current.as_mut() {
                    c.2 = offset + line.len();
                }
                continue;
            }
            if let Some((name, s, e)) = current.take() {
                headers.push(Header {
                    name,
                    value: trim_lws(&head[s..e]),
                });
            }
            if let Some(colon) = line.find(':') {
                let name = line[..colon].trim_end();
                current = Some((
                    HeaderName::parse(name),
                    offset + colon + 1,
                    offset + line.len(),
                ));
            }
        }
        if let Some((name, s, e)) = current.take() {
            headers.push(Header {
                name,
                value: trim_lws(&head[s..e]),
            });
        }
        let top = headers.iter().find(|h| h.name == HeaderName::Via)?;
        let top_via = Via::parse(split_list(top.value).next()?)?;
        Some(Salvaged {
            is_request,
            is_ack,
            headers,
            top_via,
        })
    }

    /// What a response copies from the request.
    pub fn echo(&self) -> RequestEcho<'_, 'a> {
        RequestEcho {
            top_via: self.top_via,
            headers: &self.headers,
        }
    }

    /// The top Via.
    pub fn top_via(&self) -> &Via<'a> {
        &self.top_via
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_request_with_a_broken_to() {
        let raw = b"INVITE sip:user@example.com SIP/2.0\r\nTo: \"Mr. J. User <sip:j.user@example.com>\r\nVia: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\r\n\r\n";
        let s = Salvaged::scan(raw).unwrap();
        assert!(s.is_request);
        assert_eq!(s.top_via().port, Some(5050));
    }

    #[test]
    fn no_via_no_answer() {
        assert!(Salvaged::scan(b"INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n").is_none());
        assert!(
            Salvaged::scan(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n\r\n")
                .is_none()
        );
        assert!(Salvaged::scan(b"\xff\xfe").is_none());
    }
}

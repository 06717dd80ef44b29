//! One pass from bytes to [`Message`].

use super::{Message, StartLine};
use crate::ParseError;
use crate::header::name_addr::tag_of;
use crate::header::{CSeq, Header, HeaderName, NameAddr, Via, scalar};
use crate::lex::{find_byte, rfind_byte, split_list, trim_lws};
use crate::method::Method;
use crate::uri::Uri;

/// The largest message we accept, on any transport.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Where the header section ends: (end of the last header line, start of the body).
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + off;
        // An empty line: "\n\n" or "\n\r\n".
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl + 1, nl + 2)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl + 1, nl + 3)),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// Skips the CRLFs a peer may send before a message (RFC 3261 section 7.5).
pub(crate) fn skip_leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Splits a header section into lines without their line ends.
pub(crate) fn lines(head: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= head.len() {
            return None;
        }
        let start = pos;
        let end = find_byte(&head[pos..], b'\n').map_or(head.len(), |o| pos + o);
        pos = end + 1;
        let line = &head[start..end];
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    })
}

pub(super) fn parse(buf: &[u8]) -> Result<Message<'_>, ParseError> {
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    let buf = &buf[skip_leading_crlf(buf)..];
    // First find where the header section ends, so that it is checked as UTF-8 in one call;
    // then split it into lines as text.
    let (head_end, body_start) = find_head_end(buf).ok_or(ParseError::Unterminated)?;
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ParseError::NotUtf8)?;
    let bytes = head.as_bytes();
    let first_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let start = parse_start_line(strip_cr(&head[..first_end]))?;

    // One pass over the header lines: names are checked as tokens while scanning, values are
    // spans grown over continuation lines.
    let mut headers: Vec<Header<'_>> = Vec::with_capacity(16);
    let mut pending: Option<(HeaderName<'_>, usize, usize)> = None;
    let mut pos = first_end + 1;
    while pos < bytes.len() {
        let newline = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |o| pos + o);
        let line_end = if newline > pos && bytes[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        if matches!(bytes[pos], b' ' | b'\t') {
            pending.as_mut().ok_or(ParseError::HeaderLine)?.2 = line_end;
        } else if line_end > pos {
            if let Some((name, s, e)) = pending.take() {
                headers.push(Header {
                    name,
                    value: trim_lws(&head[s..e]),
                });
            }
            let mut i = pos;
            while i < line_end && crate::lex::is_token(bytes[i]) {
                i += 1;
            }
            let name_end = i;
            while i < line_end && matches!(bytes[i], b' ' | b'\t') {
                i += 1;
            }
            if name_end == pos || i == line_end || bytes[i] != b':' {
                return Err(ParseError::HeaderLine);
            }
            pending = Some((HeaderName::parse(&head[pos..name_end]), i + 1, line_end));
        }
        pos = newline + 1;
    }
    if let Some((name, s, e)) = pending {
        headers.push(Header {
            name,
            value: trim_lws(&head[s..e]),
        });
    }

    let mut top_via = None;
    let mut call_id = None;
    let mut cseq = None;
    let mut from = None;
    let mut to = None;
    let mut max_forwards = None;
    let mut content_length = None;
    let mut top_route = None;
    for h in &headers {
        match h.name {
            HeaderName::Via => {
                for element in split_list(h.value) {
                    let via = Via::parse(element).ok_or(ParseError::Header("Via"))?;
                    top_via.get_or_insert(via);
                }
            }
            HeaderName::CallId => {
                let v = h.value;
                if v.is_empty() || v.bytes().any(|b| b.is_ascii_whitespace()) {
                    return Err(ParseError::Header("Call-ID"));
                }
                once(&mut call_id, v, "Call-ID")?;
            }
            HeaderName::CSeq => once(
                &mut cseq,
                CSeq::parse(h.value).ok_or(ParseError::Header("CSeq"))?,
                "CSeq",
            )?,
            // From and To: only the tags now; the whole value is checked on demand.
            HeaderName::From => once(&mut from, tag_of(h.value), "From")?,
            HeaderName::To => once(&mut to, tag_of(h.value), "To")?,
            HeaderName::MaxForwards => once(
                &mut max_forwards,
                scalar::max_forwards(h.value).ok_or(ParseError::Header("Max-Forwards"))?,
                "Max-Forwards",
            )?,
            HeaderName::ContentLength => once(
                &mut content_length,
                scalar::content_length(h.value).ok_or(ParseError::Header("Content-Length"))?,
                "Content-Length",
            )?,
            HeaderName::Route if top_route.is_none() => {
                let first = split_list(h.value).next().unwrap_or("");
                top_route = Some(NameAddr::parse(first).ok_or(ParseError::Header("Route"))?);
            }
            _ => {}
        }
    }

    let body_all = &buf[body_start..];
    let body = match content_length {
        Some(n) if n > body_all.len() => return Err(ParseError::BodyTruncated),
        Some(n) => &body_all[..n],
        None => body_all,
    };
    let cseq = cseq.ok_or(ParseError::Missing("CSeq"))?;
    if let StartLine::Request { method, .. } = start {
        if method != cseq.method {
            return Err(ParseError::CSeqMismatch);
        }
    }
    Ok(Message {
        start,
        top_via: top_via.ok_or(ParseError::Missing("Via"))?,
        call_id: call_id.ok_or(ParseError::Missing("Call-ID"))?,
        from_tag: from.ok_or(ParseError::Missing("From"))?,
        to_tag: to.ok_or(ParseError::Missing("To"))?,
        cseq,
        max_forwards,
        top_route,
        headers,
        body,
    })
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn is_version(s: &str) -> Result<(), ParseError> {
    if s.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    // Well-formed but another version: 505 rather than 400.
    match s.get(..4) {
        Some(p)
            if p.eq_ignore_ascii_case("SIP/")
                && s[4..].split('.').count() == 2
                && s[4..]
                    .split('.')
                    .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Err(ParseError::Version)
        }
        _ => Err(ParseError::StartLine),
    }
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    // Compare bytes: byte 4 need not be a character boundary (found by the fuzzer).
    if line
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = find_byte(line, b' ').ok_or(ParseError::StartLine)?;
        let (version, rest) = (&line[..sp], &line[sp + 1..]);
        is_version(version)?;
        let (code, reason) =
            find_byte(rest, b' ').map_or((rest, ""), |sp| (&rest[..sp], &rest[sp + 1..]));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StartLine);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::StartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response { code, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly one space each.
    let sp = find_byte(line, b' ').ok_or(ParseError::StartLine)?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = rfind_byte(rest, b' ').ok_or(ParseError::StartLine)?;
    let (uri, version) = (&rest[..sp], &rest[sp + 1..]);
    is_version(version)?;
    let method = Method::parse(method).ok_or(ParseError::StartLine)?;
    if uri.is_empty() || uri.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::StartLine);
    }
    let uri = Uri::parse(uri).map_err(|_| ParseError::RequestUri)?;
    // A Request-URI never carries headers (RFC 3261 section 19.1.5; RFC 4475 escruri).
    if uri.sip().is_some_and(|u| u.headers.is_some()) {
        return Err(ParseError::RequestUri);
    }
    Ok(StartLine::Request { method, uri })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@club-b.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@club-b.test>\r\n\
From: Alice <sip:alice@club-a.test>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5062>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\r\n";

    #[test]
    fn typical_invite() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Method::Invite);
        assert_eq!(m.top_via.branch, Some("z9hG4bK776asdhds"));
        assert_eq!(m.from_tag, Some("1928301774"));
        assert_eq!(m.to_tag, None);
        assert_eq!(m.from().unwrap().display, Some("Alice"));
        assert_eq!(m.cseq.seq, 314159);
        assert_eq!(m.max_forwards, Some(70));
        assert_eq!(m.body, b"v=0\r");
        assert_eq!(m.headers.len(), 9);
    }

    #[test]
    fn errors_name_the_problem() {
        let bad =
            |from: &str, to: &str| Message::parse(INVITE.replace(from, to).as_bytes()).unwrap_err();
        assert_eq!(
            bad("Call-ID: a84b4c76e66710@127.0.0.1\r\n", ""),
            ParseError::Missing("Call-ID")
        );
        assert_eq!(
            bad("CSeq: 314159 INVITE", "CSeq: 314159 OPTIONS"),
            ParseError::CSeqMismatch
        );
        assert_eq!(
            bad("Max-Forwards: 70", "Max-Forwards: 70\r\nMax-Forwards: 69"),
            ParseError::Duplicate("Max-Forwards")
        );
        assert_eq!(
            bad("Content-Length: 4", "Content-Length: 40"),
            ParseError::BodyTruncated
        );
        assert_eq!(bad("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"), ParseError::Version);
        assert_eq!(
            bad("INVITE sip:bob", "INVITE  sip:bob"),
            ParseError::StartLine
        );
        // From and To are read whole only when checked (or asked for).
        let spaced = INVITE.replace("To: Bob <sip:", "To: Bob < sip:");
        let m = Message::parse(spaced.as_bytes()).unwrap();
        assert_eq!(m.check_headers(), Err(ParseError::Header("To")));
    }

    #[test]
    fn responses() {
        let r = "SIP/2.0 100 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n\r\n";
        let m = Message::parse(r.as_bytes()).unwrap();
        assert_eq!(m.status(), Some(100));
        assert!(Message::parse(r.replace("100 ", "4294967301 x").as_bytes()).is_err());
    }

    #[test]
    fn multibyte_character_across_the_version_prefix() {
        let raw = b"S62\xc7\x9d 0  286\r\n\r\n";
        assert_eq!(Message::parse(raw).unwrap_err(), ParseError::StartLine);
    }

    #[test]
    fn not_utf8_and_unterminated() {
        assert_eq!(
            Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n").unwrap_err(),
            ParseError::NotUtf8
        );
        assert_eq!(
            Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\n").unwrap_err(),
            ParseError::Unterminated
        );
    }
}

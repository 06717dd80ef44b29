//! Text messages (RFC 3428), sans-IO: the MESSAGE a user sends, and what a received one says,
//! including the stored ones the server hands over at registration (their `Date` is when the
//! server accepted them) and the copies of what this user sent from another device (marked
//! `Openline-Copy: sent`: From is the user, To whom it went to). Bodies are text/plain, or
//! message/cpim (RFC 3862) wrapping text/plain.

use openline_sip::Message;
use openline_sip::header::HeaderName;
use openline_sip::message::RequestBuilder;

/// The header Openline marks a copy of its user's own message with (ARCHITECTURE.md).
pub const COPY_HEADER: &str = "Openline-Copy";

/// A MESSAGE to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Our address of record, `sip:user@domain`.
    pub from: &'a str,
    /// Our From tag.
    pub from_tag: &'a str,
    /// Whom to: `sip:user@domain`.
    pub to: &'a str,
    /// A fresh Call-ID (each MESSAGE is its own transaction outside a dialog).
    pub call_id: &'a str,
    /// The Via value, with a fresh branch.
    pub via: &'a str,
    /// The text.
    pub text: &'a str,
}

impl Outgoing<'_> {
    /// The request, ready for a client transaction.
    pub fn request(&self) -> Vec<u8> {
        RequestBuilder::new(openline_sip::Method::Message, self.to)
            .header("Via", self.via)
            .header("Max-Forwards", 70)
            .header("From", format!("<{}>;tag={}", self.from, self.from_tag))
            .header("To", format!("<{}>", self.to))
            .header("Call-ID", self.call_id)
            .header("CSeq", "1 MESSAGE")
            .body(Some("text/plain;charset=UTF-8"), self.text.as_bytes())
    }
}

/// A received message, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Who wrote it (for a copy: this user).
    pub from: String,
    /// To whom (for a copy: the other party).
    pub to: String,
    /// The text.
    pub text: String,
    /// When the server accepted it, if it says (a stored message carries it).
    pub date: Option<String>,
    /// A copy of what this user sent from another device.
    pub sent_by_me: bool,
}

/// Why a MESSAGE is refused: the status and reason to answer with.
pub type Refusal = (u16, &'static str);

/// Reads a received MESSAGE (answer 200 when Ok, the refusal otherwise).
pub fn incoming(m: &Message<'_>) -> Result<Incoming, Refusal> {
    let from = m
        .from()
        .ok_or((400, "Bad Request (no From)"))?
        .uri
        .to_string();
    let to = m.to().ok_or((400, "Bad Request (no To)"))?.uri.to_string();
    let kind = m.content_type().flatten();
    let body = std::str::from_utf8(m.body)
        .map_err(|_| (415, "Unsupported Media Type (not UTF-8 text)"))?;
    let text = match kind {
        None => body.to_string(),
        Some(t) if t.is("text", "plain") => body.to_string(),
        Some(t) if t.is("message", "cpim") => {
            cpim_text(body).ok_or((415, "Unsupported Media Type (CPIM without text/plain)"))?
        }
        Some(_) => return Err((415, "Unsupported Media Type (text/plain or message/cpim)")),
    };
    let sent_by_me = m
        .header(HeaderName::parse(COPY_HEADER))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("sent"));
    Ok(Incoming {
        from,
        to,
        text,
        date: m
            .header(HeaderName::parse("Date"))
            .map(|d| d.trim().to_string()),
        sent_by_me,
    })
}

/// The text/plain inside a CPIM message: message headers, a blank line, the content's own
/// headers, a blank line, the content.
fn cpim_text(body: &str) -> Option<String> {
    let body = body.replace("\r\n", "\n");
    let (_, rest) = body.split_once("\n\n")?;
    let (headers, content) = rest.split_once("\n\n").unwrap_or((rest, ""));
    let plain = headers.lines().any(|h| {
        let h = h.to_ascii_lowercase();
        h.starts_with("content-type:") && h.contains("text/plain")
    });
    plain.then(|| content.trim_end_matches('\n').to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn received(extra: &str, content_type: &str, body: &str) -> Vec<u8> {
        format!(
            "MESSAGE sip:alice@127.0.0.1:5099 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:bob@club-b.test>;tag=9\r\nTo: <sip:alice@club-a.test>\r\nCall-ID: m1\r\nCSeq: 1 MESSAGE\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn what_we_send_reads_back_as_what_was_written() {
        let out = Outgoing {
            from: "sip:alice@club-a.test",
            from_tag: "t1",
            to: "sip:bob@club-b.test",
            call_id: "c1",
            via: "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKm1;rport",
            text: "héllo, Bob",
        }
        .request();
        let m = Message::parse(&out).unwrap();
        assert_eq!(m.request_uri().unwrap().as_str(), "sip:bob@club-b.test");
        let read = incoming(&m).unwrap();
        assert_eq!(
            (read.from.as_str(), read.to.as_str()),
            ("sip:alice@club-a.test", "sip:bob@club-b.test")
        );
        assert_eq!(read.text, "héllo, Bob");
        assert!(!read.sent_by_me);
    }

    #[test]
    fn stored_messages_copies_and_cpim_are_read() {
        let stored = received(
            "Date: Thu, 26 Nov 2026 15:00:00 GMT\r\n",
            "text/plain",
            "later",
        );
        let m = incoming(&Message::parse(&stored).unwrap()).unwrap();
        assert_eq!(m.date.as_deref(), Some("Thu, 26 Nov 2026 15:00:00 GMT"));
        let copy = received("Openline-Copy: sent\r\n", "text/plain", "from my laptop");
        assert!(
            incoming(&Message::parse(&copy).unwrap())
                .unwrap()
                .sent_by_me
        );
        let cpim = "From: <sip:bob@club-b.test>\r\nDateTime: 2026-11-26T15:00:00Z\r\n\r\nContent-Type: text/plain\r\n\r\nwrapped";
        let m = incoming(&Message::parse(&received("", "message/cpim", cpim)).unwrap()).unwrap();
        assert_eq!(m.text, "wrapped");
    }

    #[test]
    fn other_bodies_are_refused_with_415() {
        let png = received("", "image/png", "PNG");
        assert_eq!(incoming(&Message::parse(&png).unwrap()).unwrap_err().0, 415);
        let cpim_html = "From: x\r\n\r\nContent-Type: text/html\r\n\r\n<b>x</b>";
        let html = received("", "message/cpim", cpim_html);
        assert_eq!(
            incoming(&Message::parse(&html).unwrap()).unwrap_err().0,
            415
        );
    }
}

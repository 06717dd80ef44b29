//! The MESSAGE requests the server sends itself: a stored message delivered to a device, or a
//! copy of what its user sent from another device.

use openline_registrar::store::NewMessage;
use openline_sip::Message;
use std::time::{Duration, SystemTime};

/// The parts of an outgoing MESSAGE that are not the stored message.
#[derive(Debug)]
pub struct Addressing<'a> {
    /// The device's contact.
    pub request_uri: &'a str,
    /// Our Via value, branch included.
    pub via: &'a str,
    /// A fresh From tag.
    pub from_tag: &'a str,
    /// A fresh Call-ID.
    pub call_id: &'a str,
}

/// The request delivering `message`: From the original sender, To its recipient (or, for a
/// copy, to whom its user sent it, marked with [`super::COPY_HEADER`]), Date the time it was
/// accepted (RFC 3428 section 9 asks for it on stored messages).
pub fn message_request(message: &NewMessage, to: &Addressing<'_>) -> Vec<u8> {
    let date =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(message.accepted_at));
    let recipient = match &message.sent_to {
        Some(sent_to) => sent_to.clone(),
        None => format!("<sip:{}>", message.recipient),
    };
    let mut out = format!(
        "MESSAGE {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {};tag={}\r\nTo: {recipient}\r\n\
         Call-ID: {}\r\nCSeq: 1 MESSAGE\r\nDate: {date}\r\nContent-Type: {}\r\n",
        to.request_uri, to.via, message.sender, to.from_tag, to.call_id, message.content_type
    );
    if message.sent_to.is_some() {
        out.push_str(super::COPY_HEADER);
        out.push_str(": sent\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", message.body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&message.body);
    bytes
}

/// A From or To header as it is kept: display name and URI in angle brackets, no parameters
/// (the tag is the dialog's, not the user's). None when the header is missing or malformed.
pub fn name_addr(value: Option<openline_sip::header::NameAddr<'_>>) -> Option<String> {
    let v = value?;
    Some(match v.display {
        Some(display) => format!("{display} <{}>", v.uri.as_str()),
        None => format!("<{}>", v.uri.as_str()),
    })
}

/// The message a MESSAGE request carries, to store for `recipient` at `now`.
pub fn new_message(
    request: &Message<'_>,
    recipient: &str,
    now: u64,
    expiry: Duration,
) -> NewMessage {
    NewMessage {
        recipient: recipient.to_string(),
        sender: name_addr(request.from())
            .unwrap_or_else(|| "<sip:anonymous@anonymous.invalid>".into()),
        content_type: request
            .header(openline_sip::header::HeaderName::ContentType)
            .unwrap_or("text/plain")
            .to_string(),
        body: request.body.to_vec(),
        accepted_at: now,
        expires_at: now.saturating_add(expiry.as_secs()),
        sent_to: None,
        request_key: Some(format!(
            "{} {} {}",
            request.call_id,
            request.cseq.seq,
            request.from_tag.unwrap_or("")
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_stored_message_keeps_its_sender_time_and_body_and_a_copy_is_marked() {
        let raw = b"MESSAGE sip:bob@club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKm\r\n\
Max-Forwards: 70\r\nFrom: \"Alice A.\" <sip:alice@club-a.test>;tag=99\r\nTo: <sip:bob@club-a.test>\r\n\
Call-ID: m1\r\nCSeq: 7 MESSAGE\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\nhello";
        let request = Message::parse(raw).unwrap();
        let mut m = new_message(
            &request,
            "bob@club-a.test",
            1_800_000_000,
            Duration::from_secs(60),
        );
        assert_eq!(m.sender, "\"Alice A.\" <sip:alice@club-a.test>");
        assert_eq!(m.expires_at, 1_800_000_060);
        let to = Addressing {
            request_uri: "sip:bob@127.0.0.1:5070",
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx",
            from_tag: "t1",
            call_id: "c1",
        };
        let out = message_request(&m, &to);
        let parsed = Message::parse(&out).unwrap();
        assert_eq!(
            parsed.request_uri().unwrap().as_str(),
            "sip:bob@127.0.0.1:5070"
        );
        assert_eq!(parsed.from_tag, Some("t1"));
        assert_eq!(name_addr(parsed.from()).unwrap(), m.sender);
        assert_eq!(
            parsed.header(openline_sip::header::HeaderName::Date),
            Some("Fri, 15 Jan 2027 08:00:00 GMT")
        );
        assert_eq!(parsed.body, b"hello");
        assert!(!String::from_utf8_lossy(&out).contains(crate::text::COPY_HEADER));
        m.recipient = "alice@club-a.test".into();
        m.sent_to = Some("<sip:bob@club-a.test>".into());
        let copy = message_request(&m, &to);
        let parsed = Message::parse(&copy).unwrap();
        assert_eq!(name_addr(parsed.to()).unwrap(), "<sip:bob@club-a.test>");
        assert!(String::from_utf8_lossy(&copy).contains("\r\nOpenline-Copy: sent\r\n"));
    }
}

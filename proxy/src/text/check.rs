//! What a MESSAGE must be to be accepted for delivery, decided from the request alone.

use openline_sip::Message;
use openline_sip::message::Refusal;

/// The body types accepted: plain text (any charset) and CPIM (RFC 3862), which carries the
/// sender and time a device shows.
pub const ACCEPTED_TYPES: &str = "text/plain, message/cpim";

/// The largest MESSAGE sent over UDP (RFC 3428 section 4: larger ones need a congestion
/// controlled transport).
pub const UDP_MESSAGE_LIMIT: usize = 1300;

/// Checks a MESSAGE for delivery: a body of an accepted type no larger than `max_body` bytes.
/// 415 with Accept for another type, 413 for a body over the limit, 400 for none.
pub fn check(request: &Message<'_>, max_body: usize) -> Result<(), Refusal> {
    if request.body.is_empty() {
        return Err(Refusal::new(400, "Bad Request (MESSAGE without a body)"));
    }
    let accepted = match request.content_type() {
        Some(Some(t)) => t.is("text", "plain") || t.is("message", "cpim"),
        // RFC 3261 20.15: a body needs its Content-Type.
        Some(None) | None => false,
    };
    if !accepted {
        let mut refusal = Refusal::new(415, "Unsupported Media Type (text/plain or message/cpim)");
        refusal.headers.push(("Accept", ACCEPTED_TYPES.to_string()));
        return Err(refusal);
    }
    if request.body.len() > max_body {
        return Err(Refusal::new(
            413,
            format!("Request Entity Too Large (MESSAGE bodies are limited to {max_body} bytes)"),
        ));
    }
    Ok(())
}

/// The refusal for a MESSAGE of `size` bytes that could only go on over UDP (RFC 3428 section
/// 4), if it is too large for it.
pub fn udp_refusal(size: usize) -> Option<Refusal> {
    (size > UDP_MESSAGE_LIMIT).then(|| {
        Refusal::new(
            513,
            format!(
                "Message Too Large ({size} bytes; over UDP at most {UDP_MESSAGE_LIMIT}: use TCP or TLS)"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn message(content_type: Option<&str>, body: &str) -> Vec<u8> {
        let ct = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
        format!(
            "MESSAGE sip:bob@club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKm\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@club-a.test>;tag=1\r\nTo: <sip:bob@club-a.test>\r\n\
             Call-ID: m1\r\nCSeq: 1 MESSAGE\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn checked(content_type: Option<&str>, body: &str, max: usize) -> Result<(), Refusal> {
        let raw = message(content_type, body);
        check(&Message::parse(&raw).unwrap(), max)
    }

    #[test]
    fn plain_text_and_cpim_are_accepted_and_nothing_else() {
        assert_eq!(checked(Some("text/plain;charset=UTF-8"), "hi", 100), Ok(()));
        assert_eq!(checked(Some("Text/Plain"), "hi", 100), Ok(()));
        assert_eq!(
            checked(Some("message/cpim"), "From: x\r\n\r\nhi", 100),
            Ok(())
        );
        let refused = checked(Some("application/im-iscomposing+xml"), "<x/>", 100).unwrap_err();
        assert_eq!(refused.code, 415);
        assert_eq!(refused.headers, [("Accept", ACCEPTED_TYPES.to_string())]);
        assert_eq!(checked(None, "hi", 100).unwrap_err().code, 415);
        assert_eq!(checked(Some("text/plain"), "", 100).unwrap_err().code, 400);
    }

    #[test]
    fn size_limits_are_said_with_the_numbers() {
        let refused = checked(Some("text/plain"), &"x".repeat(101), 100).unwrap_err();
        assert_eq!(refused.code, 413);
        assert!(refused.reason.contains("100 bytes"), "{}", refused.reason);
        assert_eq!(udp_refusal(1300), None);
        let refused = udp_refusal(1301).unwrap();
        assert_eq!(refused.code, 513);
        assert!(refused.reason.contains("1301 bytes"), "{}", refused.reason);
    }
}

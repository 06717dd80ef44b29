//! Matching messages to transactions (RFC 3261 sections 17.1.3 and 17.2.3).
//!
//! Keys are written into a reusable string so that a lookup allocates nothing.

use crate::message::Message;
use crate::method::Method;
use std::fmt::Write as _;

/// Writes the server-transaction key of a request into `buf`: the branch, the sent-by and the
/// method, with ACK matching INVITE. Requests without the magic cookie fall back to the
/// RFC 2543 fields: Call-ID, CSeq number, From tag, top Via and Request-URI.
pub(crate) fn server_key(buf: &mut String, request: &Message<'_>) {
    buf.clear();
    let via = &request.top_via;
    let method = match request.method() {
        Method::Ack => Method::Invite,
        m => m,
    };
    if via.is_rfc3261_branch() {
        let _ = write!(buf, "{}\u{1}", via.branch.unwrap_or(""));
    } else {
        let _ = write!(
            buf,
            "2543\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}",
            request.call_id,
            request.cseq.seq,
            request.from_tag.unwrap_or(""),
            via.branch.unwrap_or(""),
            request.request_uri().map_or("", |u| u.as_str()),
        );
    }
    push_lower(buf, &via.host.to_string());
    let _ = write!(buf, ":{}\u{1}{}", via.sent_by_port(), method.as_str());
}

/// Writes the client-transaction key of a response: its top branch and CSeq method.
pub(crate) fn client_key_of_response(buf: &mut String, response: &Message<'_>) {
    client_key(
        buf,
        response.top_via.branch.unwrap_or(""),
        response.cseq.method,
    );
}

/// Writes a client-transaction key from the branch we chose and the method.
pub(crate) fn client_key(buf: &mut String, branch: &str, method: Method<'_>) {
    buf.clear();
    let _ = write!(buf, "{branch}\u{1}{}", method.as_str());
}

fn push_lower(buf: &mut String, s: &str) {
    buf.extend(s.chars().map(|c| c.to_ascii_lowercase()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, branch: &str, host: &str) -> Vec<u8> {
        format!(
            "{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch={branch}\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: k\r\nCSeq: 1 {method}\r\n\r\n"
        )
        .into_bytes()
    }

    fn key(raw: &[u8]) -> String {
        let mut s = String::new();
        server_key(&mut s, &Message::parse(raw).unwrap());
        s
    }

    #[test]
    fn ack_matches_invite_cancel_does_not() {
        let invite = key(&msg("INVITE", "z9hG4bK1", "h:5060"));
        assert_eq!(
            key(&msg("ACK", "z9hG4bK1", "H")),
            invite,
            "default port and host case"
        );
        assert_ne!(key(&msg("CANCEL", "z9hG4bK1", "h")), invite);
        assert_ne!(key(&msg("INVITE", "z9hG4bK1", "other")), invite);
        assert_ne!(key(&msg("INVITE", "z9hG4bK2", "h")), invite);
    }

    #[test]
    fn rfc2543_fallback() {
        assert!(key(&msg("OPTIONS", "old", "h")).starts_with("2543"));
        assert_eq!(
            key(&msg("INVITE", "old", "h")),
            key(&msg("ACK", "old", "h"))
        );
    }
}

//! What this server answers itself, before any routing: the checks of RFC 3261 section 8.2 in
//! its order (method, then URI scheme, then Require, then content), and OPTIONS.

use openline_sip::header::{HeaderName, MediaType};
use openline_sip::{Message, Method, Uri};

/// Methods this server handles today; the Allow header lists exactly these.
pub const ALLOW: &str = "ACK, CANCEL, OPTIONS, REGISTER";
/// Bodies we accept.
pub const ACCEPT: &str = "application/sdp, text/plain";
/// Extensions we support: none yet, said with an empty list (RFC 3261 section 20.37 allows it);
/// a `Require` naming any option-tag gets a 420.
pub const SUPPORTED: &str = "";

/// Seconds a 503 of ours asks the client to wait (the database coming back, a restart): short,
/// because devices with another server fail over at once and the rest retry soon.
pub const RETRY_AFTER: &str = "5";

/// The answer to a request addressed to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    /// Status code.
    pub code: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl LocalAnswer {
    fn new(code: u16) -> Self {
        LocalAnswer {
            code,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Decides the answer to a request (not ACK, not CANCEL) that this server answers as a UAS.
pub fn answer(request: &Message<'_>) -> LocalAnswer {
    let method = request.method();
    // 8.2.1: a method we know of but do not allow here is 405; one we do not know is 501.
    if method != Method::Options {
        let code = if method.is_standard() { 405 } else { 501 };
        return LocalAnswer::new(code).with("Allow", ALLOW);
    }
    // 8.2.2.1: a Request-URI scheme we cannot read.
    if !matches!(request.request_uri(), Some(Uri::Sip(..))) {
        return LocalAnswer::new(416);
    }
    // 8.2.2.3: every Require option-tag is unsupported for now.
    let required: Vec<&str> = request
        .list(HeaderName::Require)
        .filter(|t| !t.is_empty())
        .collect();
    if !required.is_empty() {
        return LocalAnswer::new(420).with("Unsupported", required.join(", "));
    }
    // 8.2.3: a body we do not understand.
    if !request.body.is_empty() {
        let understood = request
            .content_type()
            .flatten()
            .is_some_and(|t: MediaType<'_>| t.is("application", "sdp") || t.is("text", "plain"));
        if !understood {
            return LocalAnswer::new(415).with("Accept", ACCEPT);
        }
    }
    LocalAnswer::new(200)
        .with("Allow", ALLOW)
        .with("Accept", ACCEPT)
        .with("Supported", SUPPORTED)
        .with("Accept-Encoding", "identity")
        .with("Accept-Language", "en")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, extra: &str) -> Vec<u8> {
        format!("{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}\r\n").into_bytes()
    }

    fn code(method: &str, uri: &str, extra: &str) -> u16 {
        answer(&Message::parse(&request(method, uri, extra)).unwrap()).code
    }

    #[test]
    fn rfc3261_8_2_order() {
        assert_eq!(code("OPTIONS", "sip:c@d", ""), 200);
        assert_eq!(code("INVITE", "sip:c@d", ""), 405);
        assert_eq!(code("NEWMETHOD", "sip:c@d", ""), 501);
        assert_eq!(code("OPTIONS", "tel:+15551234", ""), 416);
        assert_eq!(code("OPTIONS", "sip:c@d", "Require: foo, bar\r\n"), 420);
        assert_eq!(
            code(
                "OPTIONS",
                "sip:c@d",
                "Content-Type: image/png\r\nContent-Length: 1\r\n\r\nx"
            ),
            415
        );
    }

    #[test]
    fn options_200_says_what_we_allow_accept_and_support() {
        let a = answer(&Message::parse(&request("OPTIONS", "sip:c@d", "")).unwrap());
        let names: Vec<&str> = a.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Allow",
                "Accept",
                "Supported",
                "Accept-Encoding",
                "Accept-Language"
            ]
        );
    }

    #[test]
    fn unsupported_lists_every_required_tag() {
        let raw = request(
            "OPTIONS",
            "sip:c@d",
            "Require: nothingSupportsThis, nothingSupportsThisEither\r\n",
        );
        let a = answer(&Message::parse(&raw).unwrap());
        assert_eq!(
            a.headers,
            vec![(
                "Unsupported",
                "nothingSupportsThis, nothingSupportsThisEither".to_string()
            )]
        );
    }
}

//! The edits a proxy makes to what it forwards (RFC 3261 16.6 for requests, 16.7 step 3 for
//! responses), written straight from the parsed message into a new buffer: headers we do not
//! touch are copied as they arrived.

use super::{Message, StartLine};
use crate::header::HeaderName;
use crate::lex::split_list;
use std::io::Write as _;

/// How a request is changed on its way through.
#[derive(Debug, Clone, Copy)]
pub struct RequestEdits<'e> {
    /// The new Request-URI (16.6 step 2), or None to keep it.
    pub request_uri: Option<&'e str>,
    /// The Via value this proxy adds on top (16.6 step 8), e.g. `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK..`.
    pub via: &'e str,
    /// A Record-Route value to add on top (16.6 step 4), e.g. `<sip:192.0.2.1:5060;lr>`.
    pub record_route: Option<&'e str>,
    /// What happens to the Route header field.
    pub route: RouteEdit,
    /// A Route value to put first (after `route` is applied): the next hop a proxy chose
    /// that is not the Request-URI's (a cluster's node holding the device's flow).
    pub push_route: Option<&'e str>,
    /// Where the request came from: the sender's Via gets `received` and `rport` (RFC 3261
    /// 18.2.1, RFC 3581 4), so a response passed on by Via alone (a retransmitted 2xx) finds
    /// it behind NAT. None leaves it as it is (an ACK forwarded statelessly, tests).
    pub received_from: Option<std::net::SocketAddr>,
    /// Realms this proxy authenticates in: Proxy-Authorization credentials for them were
    /// meant for it and go no further (RFC 3261 22.3), lest the next hop (another user's
    /// phone) get a digest response to attack the sender's password with offline.
    pub own_realms: &'e [String],
}

/// The change a proxy makes to Route (RFC 3261 16.4, 16.6 step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEdit {
    /// Left as it is.
    Keep,
    /// The topmost values named this proxy (loose routing; two when it record-routed twice,
    /// RFC 5658): they go.
    DropLeading(usize),
    /// A strict router before us put our URI in the Request-URI; the last Route value became the
    /// new Request-URI and goes.
    DropLast,
}

/// Whether credentials are for one of `realms`.
fn for_realms(credentials: &str, realms: &[String]) -> bool {
    !realms.is_empty()
        && crate::header::auth::AuthParams::parse(credentials)
            .and_then(|c| c.get("realm"))
            .is_some_and(|r| realms.iter().any(|ours| ours.eq_ignore_ascii_case(&r)))
}

/// Writes one header line, folds made single spaces.
fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    super::print::write_collapsed(out, value);
    out.extend_from_slice(b"\r\n");
}

/// The values after the first in a header line, if there are any.
fn without_first_value(value: &str) -> Option<&str> {
    let mut values = split_list(value);
    values.next()?;
    let rest = values.rest_of_line();
    (!rest.trim().is_empty()).then_some(rest)
}

impl Message<'_> {
    /// The request as forwarded: Max-Forwards decremented (or set to 70 when absent), the edits
    /// applied, everything else kept. The caller has checked Max-Forwards > 0.
    pub fn forwarded_request(&self, edits: &RequestEdits<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 768);
        let StartLine::Request { method, uri } = self.start else {
            return out;
        };
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(edits.request_uri.unwrap_or(uri.as_str()).as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_header(&mut out, "Via", edits.via);
        if let Some(rr) = edits.record_route {
            write_header(&mut out, "Record-Route", rr);
        }
        if let Some(route) = edits.push_route {
            write_header(&mut out, "Route", route);
        }
        let mut to_drop = match edits.route {
            RouteEdit::DropLeading(n) => n,
            RouteEdit::Keep | RouteEdit::DropLast => 0,
        };
        let last_route = (edits.route == RouteEdit::DropLast)
            .then(|| {
                self.headers
                    .iter()
                    .rposition(|h| h.name == HeaderName::Route)
            })
            .flatten();
        let mut saw_max_forwards = false;
        let mut stamp_via = edits.received_from;
        for (at, h) in self.headers.iter().enumerate() {
            if Some(at) == last_route {
                let values: Vec<&str> = split_list(h.value).collect();
                if values.len() > 1 {
                    write_header(&mut out, "Route", &values[..values.len() - 1].join(", "));
                }
                continue;
            }
            if h.name == HeaderName::Via {
                if let Some(source) = stamp_via.take() {
                    // The first Via value is the sender's, parsed already as top_via.
                    let mut first = String::with_capacity(h.value.len() + 32);
                    self.top_via.write_received(&mut first, source);
                    if let Some(rest) = without_first_value(h.value) {
                        first.push_str(", ");
                        first.push_str(rest.trim_start());
                    }
                    write_header(&mut out, "Via", &first);
                    continue;
                }
            }
            if h.name == HeaderName::ProxyAuthorization && for_realms(h.value, edits.own_realms) {
                continue;
            }
            let value = match h.name {
                HeaderName::MaxForwards => {
                    saw_max_forwards = true;
                    let n = self.max_forwards.unwrap_or(70).saturating_sub(1);
                    let _ = write!(out, "Max-Forwards: {n}\r\n");
                    continue;
                }
                HeaderName::Route if to_drop > 0 => {
                    let mut rest = Some(h.value);
                    while to_drop > 0 {
                        let Some(r) = rest else { break };
                        rest = without_first_value(r);
                        to_drop -= 1;
                    }
                    match rest {
                        Some(rest) => rest.trim_start(),
                        None => continue,
                    }
                }
                HeaderName::ContentLength => {
                    let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
                    continue;
                }
                _ => h.value,
            };
            write_header(&mut out, h.name.as_str(), value);
        }
        if !saw_max_forwards {
            out.extend_from_slice(b"Max-Forwards: 70\r\n");
        }
        let wrote_length = self
            .headers
            .iter()
            .any(|h| h.name == HeaderName::ContentLength);
        self.end_with_body(&mut out, wrote_length);
        out
    }

    /// The response as passed upstream: the topmost Via value (ours) removed, all else kept.
    pub fn forwarded_response(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 768);
        let StartLine::Response { code, reason } = self.start else {
            return out;
        };
        let _ = write!(out, "SIP/2.0 {code} ");
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut via_popped = false;
        let mut wrote_length = false;
        for h in &self.headers {
            let value = match h.name {
                HeaderName::Via if !via_popped => {
                    via_popped = true;
                    match without_first_value(h.value) {
                        Some(rest) => rest,
                        None => continue,
                    }
                }
                HeaderName::ContentLength => {
                    wrote_length = true;
                    let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
                    continue;
                }
                _ => h.value,
            };
            write_header(&mut out, h.name.as_str(), value);
        }
        self.end_with_body(&mut out, wrote_length);
        out
    }

    /// The end of the head (a Content-Length unless one was written) and the body.
    fn end_with_body(&self, out: &mut Vec<u8>, wrote_length: bool) {
        if !wrote_length {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const INVITE: &str = "INVITE sip:bob@club-a.test SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa\r\n\
        Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.9;lr>\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:bob@club-a.test>\r\n\
        From: <sip:alice@club-a.test>;tag=1\r\n\
        Call-ID: c1\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn credentials_for_our_realm_stop_here_and_others_go_on() {
        let with_credentials = INVITE.replace(
            "Call-ID: c1\r\n",
            "Proxy-Authorization: Digest username=\"alice\", realm=\"club-a.test\", nonce=\"n\", uri=\"sip:bob@club-a.test\", response=\"r\"\r\n\
             Proxy-Authorization: Digest username=\"alice\", realm=\"far.test\", nonce=\"m\", uri=\"sip:bob@club-a.test\", response=\"s\"\r\n\
             Call-ID: c1\r\n",
        );
        let m = Message::parse(with_credentials.as_bytes()).unwrap();
        let ours = ["Club-A.test".to_string()];
        let out = m.forwarded_request(&RequestEdits {
            request_uri: None,
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: None,
            route: RouteEdit::Keep,
            push_route: None,
            received_from: None,
            own_realms: &ours,
        });
        let again = Message::parse(&out).unwrap();
        let left: Vec<_> = again
            .headers_named(HeaderName::ProxyAuthorization)
            .collect();
        assert_eq!(left.len(), 1);
        assert!(left[0].contains("realm=\"far.test\""), "{left:?}");
    }

    #[test]
    fn both_of_our_routes_go_across_header_lines() {
        // We record-routed twice (RFC 5658): the next request names us twice, maybe split
        // over two Route lines.
        let invite = INVITE.replace(
            "Route: ",
            "Route: <sip:198.18.0.1;lr>\r\nRoute: <sip:[2001:2::1];lr>, ",
        );
        let m = Message::parse(invite.as_bytes()).unwrap();
        let out = m.forwarded_request(&RequestEdits {
            request_uri: None,
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: None,
            route: RouteEdit::DropLeading(3),
            push_route: None,
            received_from: None,
            own_realms: &[],
        });
        let again = Message::parse(&out).unwrap();
        assert_eq!(
            again.list(HeaderName::Route).collect::<Vec<_>>(),
            ["<sip:127.0.0.9;lr>"],
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn request_gets_via_record_route_and_one_fewer_hop() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        let out = m.forwarded_request(&RequestEdits {
            request_uri: Some("sip:bob@127.0.0.1:5070"),
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: Some("<sip:127.0.0.1:5060;lr>"),
            route: RouteEdit::DropLeading(1),
            push_route: None,
            received_from: None,
            own_realms: &[],
        });
        let again = Message::parse(&out).unwrap();
        assert_eq!(
            again.request_uri().unwrap().as_str(),
            "sip:bob@127.0.0.1:5070"
        );
        let vias: Vec<_> = again.headers_named(HeaderName::Via).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
                "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa"
            ]
        );
        assert_eq!(again.max_forwards, Some(69));
        assert_eq!(
            again.headers_named(HeaderName::Route).collect::<Vec<_>>(),
            ["<sip:127.0.0.9;lr>"]
        );
        assert_eq!(
            again.header(HeaderName::RecordRoute),
            Some("<sip:127.0.0.1:5060;lr>")
        );
        assert_eq!(again.body, b"v=0\n");
    }

    #[test]
    fn the_senders_via_learns_where_the_request_came_from() {
        // Behind NAT: the Via says 127.0.0.1:5061 with rport, the datagram came from 10.1.1.1:40000;
        // a second Via value on the same line stays as it was.
        let raw = INVITE.replace(
            "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa\r\n",
            "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa;rport, SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKb\r\n",
        );
        let m = Message::parse(raw.as_bytes()).unwrap();
        let out = m.forwarded_request(&RequestEdits {
            request_uri: None,
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: None,
            route: RouteEdit::DropLeading(1),
            push_route: None,
            received_from: Some("10.1.1.1:40000".parse().unwrap()),
            own_realms: &[],
        });
        let again = Message::parse(&out).unwrap();
        let vias: Vec<_> = again.list(HeaderName::Via).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
                "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa;received=10.1.1.1;rport=40000",
                "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKb"
            ]
        );
    }

    #[test]
    fn a_lone_route_goes_and_a_missing_max_forwards_is_added() {
        let raw = INVITE
            .replace(
                "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.9;lr>\r\n",
                "Route: <sip:127.0.0.1:5060;lr>\r\n",
            )
            .replace("Max-Forwards: 70\r\n", "");
        let m = Message::parse(raw.as_bytes()).unwrap();
        let out = m.forwarded_request(&RequestEdits {
            request_uri: None,
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: None,
            route: RouteEdit::DropLeading(1),
            push_route: None,
            received_from: None,
            own_realms: &[],
        });
        let again = Message::parse(&out).unwrap();
        assert_eq!(again.headers_named(HeaderName::Route).count(), 0);
        assert_eq!(again.max_forwards, Some(70));
        assert_eq!(again.request_uri().unwrap().as_str(), "sip:bob@club-a.test");
    }

    #[test]
    fn response_loses_only_the_top_via_value() {
        let raw = "SIP/2.0 180 Ringing\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp, SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa\r\n\
            Via: SIP/2.0/UDP 127.0.0.7;branch=z9hG4bKz\r\n\
            To: <sip:bob@club-a.test>;tag=2\r\nFrom: <sip:alice@club-a.test>;tag=1\r\n\
            Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw.as_bytes()).unwrap();
        let again_bytes = m.forwarded_response();
        let again = Message::parse(&again_bytes).unwrap();
        assert_eq!(again.status(), Some(180));
        let vias: Vec<_> = again.list(HeaderName::Via).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa",
                "SIP/2.0/UDP 127.0.0.7;branch=z9hG4bKz"
            ]
        );
    }

    #[test]
    fn strict_routing_drops_the_last_route_value() {
        let raw = INVITE.replace(
            "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.9;lr>\r\n",
            "Route: <sip:127.0.0.8>\r\nRoute: <sip:127.0.0.7>, <sip:bob@127.0.0.1:6000>\r\n",
        );
        let m = Message::parse(raw.as_bytes()).unwrap();
        let out = m.forwarded_request(&RequestEdits {
            request_uri: Some("sip:bob@127.0.0.1:6000"),
            via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp",
            record_route: None,
            route: RouteEdit::DropLast,
            push_route: None,
            received_from: None,
            own_realms: &[],
        });
        let again = Message::parse(&out).unwrap();
        assert_eq!(
            again.list(HeaderName::Route).collect::<Vec<_>>(),
            ["<sip:127.0.0.8>", "<sip:127.0.0.7>"]
        );
        assert_eq!(
            again.request_uri().unwrap().as_str(),
            "sip:bob@127.0.0.1:6000"
        );
    }
}

//! Where a request goes (RFC 3261 16.3 to 16.5), decided from the request alone plus who we
//! are and the location table: answered here, sent to a local user's devices, sent on to a
//! next hop, or refused. Nothing is relayed for strangers: a request that is not for a local
//! user and not inside a dialog we record-routed is refused with 403.

use openline_registrar::{Binding, Location};
use openline_sip::header::HeaderName;
use openline_sip::message::RouteEdit;
use openline_sip::transaction::Destination;
use openline_sip::uri::{Host, SipUri};
use openline_sip::{Message, Transport};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// Who this server is: the domains it serves and the addresses it listens on.
#[derive(Debug, Clone, Default)]
pub struct Us {
    /// Domains served, lowercase.
    pub domains: Vec<String>,
    /// Bound sockets.
    pub local: Vec<(Transport, SocketAddr)>,
    /// Other domains' servers, configured (`--peer DOMAIN=udp:IP:PORT`); DNS comes later.
    pub peers: Vec<(String, Destination)>,
}

impl Us {
    /// Whether `uri` names this server: one of our domains, or one of our addresses (port 5060
    /// when none is written).
    pub fn is_us(&self, uri: &SipUri<'_>) -> bool {
        match uri.host {
            Host::Name(name) => self.domains.iter().any(|d| d.eq_ignore_ascii_case(name)),
            host => {
                let port = uri.port.unwrap_or(5060);
                self.local
                    .iter()
                    .any(|(_, a)| Some(a.ip()) == host.ip() && a.port() == port)
                    || self
                        .domains
                        .iter()
                        .any(|d| host.ip().is_some_and(|ip| ip.to_string() == *d))
            }
        }
    }

    /// The address to put in Via and Record-Route for `transport`.
    pub fn address(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// The domain a URI addressed to one of our IP addresses belongs to: the first served.
    fn home(&self, uri: &SipUri<'_>) -> Option<String> {
        match uri.host {
            Host::Name(name) => Some(name.to_ascii_lowercase()),
            // An IP we serve as a domain of its own (a bench setup), else our first domain.
            host => {
                let ip = host.ip().map(|ip| ip.to_string());
                self.domains
                    .iter()
                    .find(|d| Some(d.as_str()) == ip.as_deref())
                    .or(self.domains.first())
                    .cloned()
            }
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It is for this server itself (OPTIONS to our address, ...): answer it.
    Answer,
    /// To these devices of a local user, in parallel.
    Fork {
        /// The address of record.
        aor: String,
        /// Request-URI and where to send, per device.
        targets: Vec<Target>,
        /// What happens to Route.
        route: RouteEdit,
    },
    /// To the next hop of a dialog we record-routed.
    Relay {
        /// Where to send.
        target: Target,
        /// What happens to Route.
        route: RouteEdit,
    },
    /// Refused with this status and reason.
    Refuse(u16, &'static str),
}

/// One place a request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI it carries, when it changes.
    pub request_uri: Option<String>,
    /// Where it goes.
    pub destination: Destination,
    /// The binding's preference (q in thousandths; 1000 when not a binding).
    pub q: u16,
}

/// Where the device of `binding` is reached: over a stream, the connection its REGISTER came
/// on; over UDP, the address the REGISTER came from (NAT: rport/received) unless the Contact
/// names that same IP, in which case no NAT sits between and the Contact's port is meant (a
/// contact registered on another process's behalf, as SIPp's bench does).
pub fn binding_destination(binding: &Binding) -> Option<Destination> {
    let (transport, addr) = binding.source.split_once(':')?;
    let transport = match transport {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        _ => return None,
    };
    let source: SocketAddr = addr.parse().ok()?;
    if transport == Transport::Udp {
        let contact = openline_sip::Uri::parse(&binding.contact).ok();
        if let Some(c) = contact.as_ref().and_then(|u| u.sip()) {
            if c.host.ip() == Some(source.ip())
                && c.transport().is_none_or(|t| t.eq_ignore_ascii_case("udp"))
            {
                return Some(Destination {
                    transport,
                    addr: SocketAddr::new(source.ip(), c.port.unwrap_or(5060)),
                });
            }
        }
    }
    Some(Destination {
        transport,
        addr: source,
    })
}

/// Where a URI with an IP host points (no DNS here: federation is another step).
fn uri_destination(uri: &SipUri<'_>) -> Option<Destination> {
    let transport = match uri.transport() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(t) if !t.eq_ignore_ascii_case("udp") => return None,
        _ => Transport::Udp,
    };
    Some(Destination {
        transport,
        addr: SocketAddr::new(uri.host.ip()?, uri.port.unwrap_or(5060)),
    })
}

/// A hash of what makes a request the same request on a second pass (RFC 3261 16.6 step 8):
/// seen again in one of our own Via branches, the request has looped.
pub fn loop_hash(request: &Message<'_>) -> u64 {
    // Fixed keys: the value must be the same on every pass, even across a restart.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    request
        .request_uri()
        .map(|u| u.as_str())
        .unwrap_or("")
        .hash(&mut h);
    request.call_id.hash(&mut h);
    request.from_tag.hash(&mut h);
    request.to_tag.hash(&mut h);
    request.cseq.seq.hash(&mut h);
    request.header(HeaderName::Route).hash(&mut h);
    h.finish()
}

/// The branch prefix our Via carries for a request with `hash`.
pub fn branch_prefix(hash: u64) -> String {
    format!("z9hG4bK{hash:016x}")
}

/// Decides where `request` goes, at wall-clock `now`; `local_sender` when it comes from a local
/// user who authenticated (who alone may reach other domains).
pub fn decide(
    request: &Message<'_>,
    us: &Us,
    location: &Location,
    known_user: impl Fn(&str) -> bool,
    now: u64,
    local_sender: bool,
) -> Decision {
    if request.max_forwards == Some(0) {
        return Decision::Refuse(483, "Too Many Hops");
    }
    // A Via of ours with this request's loop hash: it came back unchanged (16.3 item 4).
    let prefix = branch_prefix(loop_hash(request));
    let ours = |v: &openline_sip::header::Via<'_>| {
        us.local
            .iter()
            .any(|(_, a)| v.host.ip() == Some(a.ip()) && v.port.unwrap_or(5060) == a.port())
    };
    if request
        .vias()
        .flatten()
        .any(|v| ours(&v) && v.branch.is_some_and(|b| b.starts_with(&prefix)))
    {
        return Decision::Refuse(482, "Loop Detected");
    }
    let Some(uri) = request.request_uri() else {
        return Decision::Refuse(416, "Unsupported URI Scheme");
    };
    let in_dialog = request.to_tag.is_some();
    // A strict router before us (RFC 2543 style) put our Record-Route URI, which has no user
    // part, in the Request-URI and the rest of the route in Route: the last Route value is the
    // real Request-URI (16.4).
    if let Some(ours) = uri.sip().filter(|u| u.user.is_none() && us.is_us(u)) {
        let last = request.list(HeaderName::Route).last();
        if let (Some(last), true) = (last, ours.param("lr").is_some()) {
            if !in_dialog {
                return Decision::Refuse(403, "Forbidden (relaying not allowed)");
            }
            let Some(target) = openline_sip::header::NameAddr::parse(last) else {
                return Decision::Refuse(400, "Bad Request (malformed Route header)");
            };
            return match target.uri.sip().and_then(uri_destination) {
                Some(destination) => Decision::Relay {
                    target: Target {
                        request_uri: Some(target.uri.as_str().to_string()),
                        destination,
                        q: 1000,
                    },
                    route: RouteEdit::DropLast,
                },
                None => Decision::Refuse(404, "Not Found (next hop is not an address)"),
            };
        }
    }
    // Loose routing (16.4): our own Route entry goes; the next one, if any, is where it goes.
    let pop_route = request
        .top_route
        .as_ref()
        .and_then(|r| r.uri.sip().map(|u| us.is_us(u)))
        .unwrap_or(false);
    let edit = if pop_route {
        RouteEdit::DropFirst
    } else {
        RouteEdit::Keep
    };
    if pop_route {
        let next = request
            .list(HeaderName::Route)
            .nth(1)
            .and_then(openline_sip::header::NameAddr::parse);
        if let Some(next) = next {
            // A route set beyond us only exists inside a dialog: never for strangers' new requests.
            if !in_dialog {
                return Decision::Refuse(403, "Forbidden (relaying not allowed)");
            }
            return match next.uri.sip().and_then(uri_destination) {
                Some(destination) => Decision::Relay {
                    target: Target {
                        request_uri: None,
                        destination,
                        q: 1000,
                    },
                    route: edit,
                },
                None => Decision::Refuse(404, "Not Found (next hop is not an address)"),
            };
        }
    }
    let Some(sip) = uri.sip() else {
        return Decision::Refuse(416, "Unsupported URI Scheme");
    };
    if us.is_us(sip) {
        let Some(user) = sip.user else {
            return Decision::Answer;
        };
        let Some(domain) = us.home(sip) else {
            return Decision::Refuse(404, "Not Found");
        };
        let aor = format!("{user}@{domain}");
        let live = location.live(&aor, now);
        if live.is_empty() {
            return if known_user(&aor) {
                Decision::Refuse(480, "Temporarily Unavailable (no device registered)")
            } else {
                Decision::Refuse(404, "Not Found")
            };
        }
        // Inside a dialog (a UA that ignored Record-Route sends ACK and BYE to the AOR) only
        // the preferred device is the peer; a new request rings every device.
        let take = if in_dialog { 1 } else { live.len() };
        let targets: Vec<Target> = live
            .iter()
            .take(take)
            .filter_map(|b| {
                Some(Target {
                    request_uri: Some(b.contact.clone()),
                    destination: binding_destination(b)?,
                    q: b.q,
                })
            })
            .collect();
        if targets.is_empty() {
            return Decision::Refuse(480, "Temporarily Unavailable (no reachable device)");
        }
        return Decision::Fork {
            aor,
            targets,
            route: edit,
        };
    }
    // Not for us: only the continuation of a dialog we record-routed goes on.
    if in_dialog && pop_route {
        return match uri_destination(sip) {
            Some(destination) => Decision::Relay {
                target: Target {
                    request_uri: None,
                    destination,
                    q: 1000,
                },
                route: edit,
            },
            None => Decision::Refuse(404, "Not Found (no address in the Request-URI)"),
        };
    }
    // A local user calling another domain: to that domain's server.
    if local_sender {
        if let Host::Name(domain) = sip.host {
            let peer = us
                .peers
                .iter()
                .find(|(d, _)| d.eq_ignore_ascii_case(domain));
            return match peer {
                Some((_, destination)) => Decision::Relay {
                    target: Target {
                        request_uri: None,
                        destination: *destination,
                        q: 1000,
                    },
                    route: edit,
                },
                None => Decision::Refuse(404, "Not Found (no server known for that domain)"),
            };
        }
    }
    Decision::Refuse(403, "Forbidden (relaying not allowed)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn us() -> Us {
        Us {
            domains: vec!["club-a.test".into()],
            local: vec![(Transport::Udp, "127.0.0.1:5070".parse().unwrap())],
            peers: vec![],
        }
    }

    fn binding(contact: &str, source: &str, q: u16) -> Binding {
        Binding {
            aor: "bob@club-a.test".into(),
            contact: contact.into(),
            instance: None,
            reg_id: None,
            expires_at: NOW + 60,
            q,
            call_id: "r".into(),
            cseq: 1,
            source: source.into(),
        }
    }

    fn location() -> Location {
        Location::load([
            binding("sip:bob@127.0.0.1:6001", "udp:127.0.0.1:6001", 500),
            // Behind NAT: the contact names a private address; the flow is what reaches it.
            binding("sip:bob@10.0.0.7:5060", "udp:127.0.0.2:40000", 1000),
        ])
    }

    fn request(first_line: &str, extra: &str) -> Vec<u8> {
        let method = first_line.split(' ').next().unwrap();
        format!(
            "{first_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa\r\nFrom: <sip:alice@b.test>;tag=1\r\n\
             To: <sip:bob@club-a.test>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn decide_on(raw: &[u8]) -> Decision {
        decide_as(raw, false)
    }

    /// `local_sender`: the request comes from a local user who authenticated.
    fn decide_as(raw: &[u8], local_sender: bool) -> Decision {
        let m = Message::parse(raw).unwrap();
        let mut us = us();
        us.peers = vec![(
            "club-b.test".into(),
            Destination {
                transport: Transport::Udp,
                addr: "127.0.0.1:5080".parse().unwrap(),
            },
        )];
        decide(
            &m,
            &us,
            &location(),
            |a| a == "carol@club-a.test" || a == "bob@club-a.test",
            NOW,
            local_sender,
        )
    }

    #[test]
    fn a_local_user_rings_every_device_best_first_by_their_flows() {
        let Decision::Fork {
            aor,
            targets,
            route,
        } = decide_on(&request("INVITE sip:bob@club-a.test SIP/2.0", ""))
        else {
            panic!()
        };
        assert_eq!(aor, "bob@club-a.test");
        assert_eq!(route, RouteEdit::Keep);
        let got: Vec<_> = targets
            .iter()
            .map(|t| {
                (
                    t.request_uri.clone().unwrap(),
                    t.destination.addr.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "sip:bob@10.0.0.7:5060".to_string(),
                    "127.0.0.2:40000".to_string()
                ),
                (
                    "sip:bob@127.0.0.1:6001".to_string(),
                    "127.0.0.1:6001".to_string()
                ),
            ]
        );
    }

    #[test]
    fn unknown_offline_looping_and_exhausted_requests_are_refused() {
        assert_eq!(
            decide_on(&request("INVITE sip:nobody@club-a.test SIP/2.0", "")),
            Decision::Refuse(404, "Not Found")
        );
        assert!(matches!(
            decide_on(&request("INVITE sip:carol@club-a.test SIP/2.0", "")),
            Decision::Refuse(480, _)
        ));
        assert_eq!(
            decide_on(&request(
                "INVITE sip:bob@club-a.test SIP/2.0",
                "Max-Forwards: 0\r\n"
            )),
            Decision::Refuse(483, "Too Many Hops")
        );
        // Our own Via with this request's hash: it came back unchanged.
        let first = request("INVITE sip:bob@club-a.test SIP/2.0", "");
        let hash = loop_hash(&Message::parse(&first).unwrap());
        let looped = String::from_utf8(first).unwrap().replacen(
            "Via:",
            &format!(
                "Via: SIP/2.0/UDP 127.0.0.1:5070;branch={}.x\r\nVia:",
                branch_prefix(hash)
            ),
            1,
        );
        assert_eq!(
            decide_on(looped.as_bytes()),
            Decision::Refuse(482, "Loop Detected")
        );
    }

    #[test]
    fn never_a_relay_for_strangers_but_dialogs_we_record_routed_go_on() {
        assert_eq!(
            decide_on(&request("INVITE sip:bob@b.test SIP/2.0", "")),
            Decision::Refuse(403, "Forbidden (relaying not allowed)")
        );
        // A preloaded route through us to elsewhere, outside a dialog: refused too.
        assert_eq!(
            decide_on(&request(
                "INVITE sip:bob@b.test SIP/2.0",
                "Route: <sip:127.0.0.1:5070;lr>, <sip:127.0.0.9;lr>\r\n"
            )),
            Decision::Refuse(403, "Forbidden (relaying not allowed)")
        );
        let bye = request(
            "BYE sip:alice@127.0.0.1:5061 SIP/2.0",
            "Route: <sip:127.0.0.1:5070;lr>\r\n",
        )
        .into_iter()
        .collect::<Vec<u8>>();
        let bye = String::from_utf8(bye).unwrap().replace(
            "To: <sip:bob@club-a.test>",
            "To: <sip:bob@club-a.test>;tag=9",
        );
        assert_eq!(
            decide_on(bye.as_bytes()),
            Decision::Relay {
                target: Target {
                    request_uri: None,
                    destination: Destination {
                        transport: Transport::Udp,
                        addr: "127.0.0.1:5061".parse().unwrap()
                    },
                    q: 1000
                },
                route: RouteEdit::DropFirst
            }
        );
        assert_eq!(
            decide_on(&request("OPTIONS sip:127.0.0.1:5070 SIP/2.0", "")),
            Decision::Answer
        );
    }

    #[test]
    fn a_strict_router_before_us_is_understood() {
        let bye = String::from_utf8(request(
            "BYE sip:127.0.0.1:5070;lr SIP/2.0",
            "Route: <sip:bob@127.0.0.1:6001>\r\n",
        ))
        .unwrap()
        .replace(
            "To: <sip:bob@club-a.test>",
            "To: <sip:bob@club-a.test>;tag=9",
        );
        assert_eq!(
            decide_on(bye.as_bytes()),
            Decision::Relay {
                target: Target {
                    request_uri: Some("sip:bob@127.0.0.1:6001".into()),
                    destination: Destination {
                        transport: Transport::Udp,
                        addr: "127.0.0.1:6001".parse().unwrap()
                    },
                    q: 1000
                },
                route: RouteEdit::DropLast
            }
        );
    }

    #[test]
    fn only_an_authenticated_local_user_reaches_another_domain() {
        let invite = request("INVITE sip:dan@club-b.test SIP/2.0", "");
        assert_eq!(
            decide_as(&invite, false),
            Decision::Refuse(403, "Forbidden (relaying not allowed)")
        );
        let Decision::Relay { target, route } = decide_as(&invite, true) else {
            panic!()
        };
        assert_eq!(target.destination.addr, "127.0.0.1:5080".parse().unwrap());
        assert_eq!((target.request_uri, route), (None, RouteEdit::Keep));
        assert!(matches!(
            decide_as(&request("INVITE sip:dan@club-c.test SIP/2.0", ""), true),
            Decision::Refuse(404, _)
        ));
    }
}

//! RFC 3263 server location as pure functions: which look-ups a URI calls for, and in what order
//! to try what they return. The DNS queries themselves are made by `sip-net`; nothing here does
//! I/O, so the selection rules are tested without a resolver.

use crate::entropy::Entropy;
use crate::transport::Transport;
use crate::uri::{Host, SipUri};
use std::net::IpAddr;

/// The transports we can reach other servers over, best first: TLS between domains (RFC 5922)
/// when the other side offers it.
pub const PREFERENCE: [Transport; 3] = [Transport::Tls, Transport::Tcp, Transport::Udp];

/// The first look-up for a URI (RFC 3263 section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The host is an address: no DNS at all (4.1, 4.2).
    Address(Transport, IpAddr, u16),
    /// A name with a port: A/AAAA for it, with this transport (4.2).
    Host(Transport, String, u16),
    /// SRV for these names in order, each with its transport: the transport was fixed by the
    /// URI, or NAPTR gave nothing (4.1).
    Srv(Vec<(Transport, String)>),
    /// NAPTR for this domain first.
    Naptr(String),
}

/// One NAPTR record, as much of it as RFC 3263 uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first among equal `order`.
    pub preference: u16,
    /// `s` means the replacement is an SRV name.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, ...
    pub service: String,
    /// The SRV name to look up.
    pub replacement: String,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Share of the load among equal priorities.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The host to look up next (`.` means "no service here").
    pub target: String,
}

/// The port a transport uses when none is written (RFC 3261 19.1.2).
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls | Transport::Wss => 5061,
        _ => 5060,
    }
}

/// The transport a URI's `transport` parameter names; None for one we do not speak.
fn named_transport(uri: &SipUri<'_>) -> Option<Option<Transport>> {
    match uri.transport() {
        None => Some(None),
        Some(t) if t.eq_ignore_ascii_case("udp") => Some(Some(Transport::Udp)),
        // A sips URI over TCP means TLS (RFC 3261 26.2.2).
        Some(t) if t.eq_ignore_ascii_case("tcp") => Some(Some(if uri.secure {
            Transport::Tls
        } else {
            Transport::Tcp
        })),
        Some(t) if t.eq_ignore_ascii_case("tls") => Some(Some(Transport::Tls)),
        Some(_) => None,
    }
}

/// The SRV name for a transport at `domain` (4.1, the no-NAPTR case).
fn srv_name(transport: Transport, domain: &str) -> String {
    match transport {
        Transport::Tls => format!("_sips._tcp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        _ => format!("_sip._udp.{domain}"),
    }
}

/// Where to start locating the server for `uri`, reachable over `supported` (best first); None
/// when the URI asks for a transport we cannot use.
pub fn start(uri: &SipUri<'_>, supported: &[Transport]) -> Option<Start> {
    let named = named_transport(uri)?;
    if named.is_some_and(|t| !supported.contains(&t)) {
        return None;
    }
    let name = match uri.host {
        Host::Name(n) => n.trim_end_matches('.').to_ascii_lowercase(),
        host => {
            let ip = host.ip()?;
            // An address: UDP for sip, TLS for sips, unless the URI says otherwise (4.1).
            let transport = named.unwrap_or(if uri.secure {
                Transport::Tls
            } else {
                Transport::Udp
            });
            let port = uri.port.unwrap_or(default_port(transport));
            return Some(Start::Address(transport, ip, port));
        }
    };
    if let Some(port) = uri.port {
        let transport = named.unwrap_or(if uri.secure {
            Transport::Tls
        } else {
            Transport::Udp
        });
        return Some(Start::Host(transport, name, port));
    }
    Some(match named {
        Some(t) => Start::Srv(vec![(t, srv_name(t, &name))]),
        None => Start::Naptr(name),
    })
}

/// What NAPTR gave, as SRV names to try in order (4.1): records whose service we support, by
/// order then preference; a sips URI takes only SIPS services. Empty means "do as without
/// NAPTR" ([`srv_without_naptr`]).
pub fn srv_from_naptr(
    records: &[Naptr],
    secure: bool,
    supported: &[Transport],
) -> Vec<(Transport, String)> {
    let mut usable: Vec<(u16, u16, Transport, String)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let transport = match r.service.to_ascii_uppercase().as_str() {
                "SIPS+D2T" => Transport::Tls,
                "SIP+D2T" if !secure => Transport::Tcp,
                "SIP+D2U" if !secure => Transport::Udp,
                _ => return None,
            };
            supported.contains(&transport).then(|| {
                let name = r.replacement.trim_end_matches('.').to_ascii_lowercase();
                (r.order, r.preference, transport, name)
            })
        })
        .collect();
    usable.sort_by_key(|(order, preference, ..)| (*order, *preference));
    usable.into_iter().map(|(_, _, t, n)| (t, n)).collect()
}

/// The SRV names to try when NAPTR gave nothing usable: one per supported transport, in our
/// order of preference (only TLS for a sips URI).
pub fn srv_without_naptr(
    domain: &str,
    secure: bool,
    supported: &[Transport],
) -> Vec<(Transport, String)> {
    supported
        .iter()
        .filter(|t| !secure || **t == Transport::Tls)
        .map(|t| (*t, srv_name(*t, domain)))
        .collect()
}

/// When no SRV record exists either: the domain's own A/AAAA records at the default port, over
/// UDP for sip and TLS for sips (4.2), or the best supported transport when UDP is not.
pub fn without_srv(
    domain: &str,
    secure: bool,
    supported: &[Transport],
) -> Option<(Transport, String, u16)> {
    let transport = if secure {
        Transport::Tls
    } else if supported.contains(&Transport::Udp) {
        Transport::Udp
    } else {
        *supported.first()?
    };
    supported
        .contains(&transport)
        .then(|| (transport, domain.to_string(), default_port(transport)))
}

/// SRV records in the order to try them (RFC 2782): lowest priority first; within a priority,
/// drawn at random in proportion to weight, zero weights kept possible. A lone `.` target means
/// the service is not offered: nothing to try.
pub fn order_srv(mut records: Vec<Srv>, entropy: &mut dyn Entropy) -> Vec<Srv> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .take_while(|r| r.priority == priority)
            .count();
        let mut group: Vec<Srv> = records.drain(..end).collect();
        // Zero weights first, so that they have a small chance when others are present.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let pick = if total == 0 {
                0
            } else {
                let draw = entropy.next_u64() % (total + 1);
                let mut running = 0;
                group
                    .iter()
                    .position(|r| {
                        running += u64::from(r.weight);
                        running >= draw
                    })
                    .unwrap_or(0)
            };
            ordered.push(group.remove(pick));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::SeededEntropy;
    use crate::uri::Uri;

    fn start_for(uri: &str) -> Option<Start> {
        let u = Uri::parse(uri).unwrap();
        start(u.sip().unwrap(), &PREFERENCE)
    }

    #[test]
    fn where_each_uri_starts() {
        assert_eq!(
            start_for("sip:bob@192.0.2.1"),
            Some(Start::Address(
                Transport::Udp,
                "192.0.2.1".parse().unwrap(),
                5060
            ))
        );
        assert_eq!(
            start_for("sips:bob@192.0.2.1"),
            Some(Start::Address(
                Transport::Tls,
                "192.0.2.1".parse().unwrap(),
                5061
            ))
        );
        assert_eq!(
            start_for("sip:bob@Club-B.test:5080;transport=tcp"),
            Some(Start::Host(Transport::Tcp, "club-b.test".into(), 5080))
        );
        assert_eq!(
            start_for("sip:bob@club-b.test;transport=tls"),
            Some(Start::Srv(vec![(
                Transport::Tls,
                "_sips._tcp.club-b.test".into()
            )]))
        );
        assert_eq!(
            start_for("sip:bob@club-b.test."),
            Some(Start::Naptr("club-b.test".into()))
        );
        assert_eq!(start_for("sip:bob@club-b.test;transport=sctp"), None);
        let u = Uri::parse("sip:bob@club-b.test;transport=udp").unwrap();
        assert_eq!(start(u.sip().unwrap(), &[Transport::Tls]), None);
    }

    fn naptr(order: u16, preference: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    #[test]
    fn naptr_records_become_srv_names_by_order_then_preference() {
        let records = vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.club-b.test."),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.club-b.test."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.club-b.test."),
            naptr(5, 10, "SIP+D2S", "_sip._sctp.club-b.test."), // not ours
        ];
        assert_eq!(
            srv_from_naptr(&records, false, &PREFERENCE),
            vec![
                (Transport::Tls, "_sips._tcp.club-b.test".into()),
                (Transport::Tcp, "_sip._tcp.club-b.test".into()),
                (Transport::Udp, "_sip._udp.club-b.test".into()),
            ]
        );
        assert_eq!(
            srv_from_naptr(&records, true, &PREFERENCE),
            vec![(Transport::Tls, "_sips._tcp.club-b.test".into())]
        );
        let mut not_s = naptr(1, 1, "SIP+D2U", "x.club-b.test");
        not_s.flags = "A".into();
        assert!(srv_from_naptr(&[not_s], false, &PREFERENCE).is_empty());
    }

    #[test]
    fn without_naptr_every_supported_transport_is_tried_best_first() {
        assert_eq!(
            srv_without_naptr("club-b.test", false, &PREFERENCE),
            vec![
                (Transport::Tls, "_sips._tcp.club-b.test".into()),
                (Transport::Tcp, "_sip._tcp.club-b.test".into()),
                (Transport::Udp, "_sip._udp.club-b.test".into()),
            ]
        );
        assert_eq!(srv_without_naptr("d", true, &PREFERENCE).len(), 1);
        assert_eq!(
            without_srv("club-b.test", false, &PREFERENCE),
            Some((Transport::Udp, "club-b.test".into(), 5060))
        );
        assert_eq!(
            without_srv("club-b.test", true, &PREFERENCE),
            Some((Transport::Tls, "club-b.test".into(), 5061))
        );
        assert_eq!(
            without_srv("club-b.test", false, &[Transport::Tls]),
            Some((Transport::Tls, "club-b.test".into(), 5061))
        );
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5061,
            target: target.into(),
        }
    }

    #[test]
    fn srv_priority_comes_first_and_weight_shares_the_load() {
        let records = vec![srv(20, 0, "c"), srv(10, 90, "a"), srv(10, 10, "b")];
        let mut entropy = SeededEntropy::new(7);
        let mut a_first = 0;
        for _ in 0..1000 {
            let o = order_srv(records.clone(), &mut entropy);
            let targets: Vec<&str> = o.iter().map(|r| r.target.as_str()).collect();
            assert_eq!(targets.len(), 3);
            assert_eq!(targets[2], "c", "priority 20 is always last");
            if targets[0] == "a" {
                a_first += 1;
            }
        }
        // 90 of 100 weight: a leads about 900 times in 1,000.
        assert!((850..=950).contains(&a_first), "a first {a_first} times");
        // "." alone: the service is decidedly not offered.
        assert!(order_srv(vec![srv(0, 0, ".")], &mut entropy).is_empty());
        // All zero weights: every record still comes out once.
        let zeros = order_srv(vec![srv(1, 0, "x"), srv(1, 0, "y")], &mut entropy);
        assert_eq!(zeros.len(), 2);
    }
}

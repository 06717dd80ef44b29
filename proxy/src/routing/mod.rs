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
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

mod cluster;
pub use cluster::{Cluster, node_hop};

/// Who this server is: the domains it serves and the addresses it listens on.
#[derive(Debug, Clone, Default)]
pub struct Us {
    /// Domains served, lowercase.
    pub domains: Vec<String>,
    /// Bound sockets, and what each advertises.
    pub local: Vec<Listener>,
    /// This machine's addresses: a wildcard listener is reached on any of them.
    pub addresses: Option<Arc<dyn Addresses>>,
    /// Other domains' servers, configured (`--peer DOMAIN=tls:IP:PORT`): they override DNS.
    pub peers: Vec<(String, Destination)>,
    /// The nodes serving the same domains with us, if any.
    pub cluster: Cluster,
}

/// One bound socket as the core knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Its transport.
    pub transport: Transport,
    /// The address bound (a wildcard, or one address).
    pub bound: SocketAddr,
    /// What it writes instead of its own address (`advertise`: 1:1 NAT, a cloud VM).
    pub advertised: Option<SocketAddr>,
}

/// Which of this machine's addresses a packet leaves from, and which addresses are ours: the
/// kernel's knowledge, behind a trait so the core stays free of IO (simulations give none).
pub trait Addresses: Send + Sync + std::fmt::Debug {
    /// The local address a packet to `remote` leaves from (where its packets came to, else the
    /// routing table's choice).
    fn source_for(&self, remote: SocketAddr) -> Option<IpAddr>;
    /// Whether `ip` is one of this machine's addresses.
    fn is_local(&self, ip: IpAddr) -> bool;
}

impl Addresses for openline_sip_net::LocalAddresses {
    fn source_for(&self, remote: SocketAddr) -> Option<IpAddr> {
        openline_sip_net::LocalAddresses::source_for(self, remote)
    }
    fn is_local(&self, ip: IpAddr) -> bool {
        openline_sip_net::LocalAddresses::is_local(self, ip)
    }
}

impl Us {
    /// Whether `uri` names this server: one of our domains, or one of our addresses (port 5060
    /// when none is written).
    pub fn is_us(&self, uri: &SipUri<'_>) -> bool {
        match uri.host {
            Host::Name(name) => self.domains.iter().any(|d| d.eq_ignore_ascii_case(name)),
            host => {
                let port = uri.port.unwrap_or(5060);
                host.ip().is_some_and(|ip| self.is_our_address(ip, port))
                    || self
                        .domains
                        .iter()
                        .any(|d| host.ip().is_some_and(|ip| ip.to_string() == *d))
            }
        }
    }

    /// Whether `ip:port` reaches one of our listeners: its own address, what it advertises,
    /// or for a wildcard listener any address of this machine on its port.
    pub fn is_our_address(&self, ip: IpAddr, port: u16) -> bool {
        let ip = openline_sip_net::canonical(ip);
        let mut advertised = self.local.iter().filter_map(|l| l.advertised);
        if advertised.any(|a| a.ip() == ip && a.port() == port) {
            return true;
        }
        self.local.iter().map(|l| l.bound).any(|a| {
            a.port() == port
                && (a.ip() == ip
                    || (a.ip().is_unspecified()
                        && a.is_ipv4() == ip.is_ipv4()
                        && self.addresses.as_ref().is_some_and(|o| o.is_local(ip))))
        })
    }

    /// The address to put in Via and Record-Route for `transport`.
    pub fn address(&self, transport: Transport) -> Option<SocketAddr> {
        self.local
            .iter()
            .find(|l| l.transport == transport)
            .map(|l| l.bound)
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
    /// To another domain's servers, to be located by DNS (RFC 3263) first.
    Locate {
        /// The domain: what the servers' certificates must name (RFC 5922).
        domain: String,
        /// The URI to locate (the Request-URI).
        uri: String,
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
    /// Over TLS: the domain the server's certificate must be valid for (RFC 5922).
    pub tls_name: Option<std::sync::Arc<str>>,
    /// Servers of the same domain to try in turn should this one fail (RFC 3263 4.3).
    pub fallbacks: Vec<Destination>,
    /// Whether the destination is a connection the device opened, never to be opened by us.
    pub flow: Flow,
    /// A Route value to put first: the cluster's node that holds the device's flow.
    pub route: Option<String>,
}

/// Whether a destination is a device's own connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flow {
    /// An address we may send to or connect to.
    #[default]
    No,
    /// The connection a device registered over: its port is the device's ephemeral one, so
    /// when it is gone there is nothing to connect to.
    Connection,
    /// The same, for a device that asked for outbound (RFC 5626): its loss answers 430.
    Outbound,
}

impl Target {
    /// A single next hop with no fallback.
    pub fn hop(
        request_uri: Option<String>,
        destination: Destination,
        tls_name: Option<&str>,
    ) -> Self {
        Target {
            request_uri,
            destination,
            q: 1000,
            tls_name: tls_name.map(Into::into),
            fallbacks: Vec::new(),
            flow: Flow::No,
            route: None,
        }
    }
}

/// Where the device of `binding` is reached: over a stream, the connection its REGISTER came
/// on; over UDP, the address the REGISTER came from (NAT: rport/received) unless the Contact
/// names that same IP, in which case no NAT sits between and the Contact's port is meant (a
/// contact registered on another process's behalf, as SIPp's bench does). A device that asked
/// for outbound (RFC 5626: instance and reg-id) is always reached over its flow.
pub fn binding_destination(binding: &Binding) -> Option<Destination> {
    let (transport, addr) = binding.source.split_once(':')?;
    let transport = match transport {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        "ws" => Transport::Ws,
        "wss" => Transport::Wss,
        _ => return None,
    };
    let source: SocketAddr = addr.parse().ok()?;
    // A device that asked for outbound (RFC 5626) is reached over its flow, always.
    let outbound = binding.instance.is_some() && binding.reg_id.is_some();
    if transport == Transport::Udp && !outbound {
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

/// The target that reaches the device of `binding`: its contact, at its flow or address.
pub fn binding_target(binding: &Binding) -> Option<Target> {
    let destination = binding_destination(binding)?;
    let flow = match destination.transport {
        Transport::Udp => Flow::No,
        _ if binding.instance.is_some() && binding.reg_id.is_some() => Flow::Outbound,
        _ => Flow::Connection,
    };
    Some(Target {
        request_uri: Some(binding.contact.clone()),
        destination,
        q: binding.q,
        tls_name: None,
        fallbacks: Vec::new(),
        flow,
        route: None,
    })
}

/// The local user a request's Request-URI names (`user@domain`), whether known or not.
pub fn local_user(request: &Message<'_>, us: &Us) -> Option<String> {
    let uri = request.request_uri()?;
    let sip = uri.sip()?;
    if !us.is_us(sip) {
        return None;
    }
    Some(format!("{}@{}", sip.user?, us.home(sip)?))
}

/// Where a URI with an IP host points (a Record-Route entry): no DNS inside a dialog.
fn uri_destination(uri: &SipUri<'_>) -> Option<Destination> {
    match openline_sip::locate::start(uri, &openline_sip::locate::PREFERENCE)? {
        openline_sip::locate::Start::Address(transport, ip, port) => Some(Destination {
            transport,
            addr: SocketAddr::new(ip, port),
        }),
        _ => None,
    }
}

/// A hop along a dialog's route: over TLS its certificate must name the other party's domain,
/// the one of From and To that is not ours (a Record-Route entry names an address, and the
/// dialog is between our domain and theirs).
fn dialog_hop(
    request: &Message<'_>,
    us: &Us,
    request_uri: Option<String>,
    destination: Destination,
) -> Target {
    let name = (destination.transport == Transport::Tls)
        .then(|| {
            [request.to(), request.from()]
                .into_iter()
                .flatten()
                .filter_map(|na| na.uri.sip().map(|u| u.host))
                .find_map(|h| match h {
                    Host::Name(n) if !us.domains.iter().any(|d| d.eq_ignore_ascii_case(n)) => {
                        Some(n.to_ascii_lowercase())
                    }
                    _ => None,
                })
        })
        .flatten();
    Target::hop(request_uri, destination, name.as_deref())
}

/// Inside a dialog, a request for the Contact of a device whose flow we hold (the To names
/// one of our users, the Request-URI one of its bindings' contacts): down that flow, as
/// the dialog's first request went. A device behind NAT wrote a Contact nobody outside
/// reaches.
fn dialog_flow(request: &Message<'_>, us: &Us, location: &Location, now: u64) -> Option<Target> {
    let to = request.to()?;
    let user = to.uri.sip().filter(|u| us.is_us(u))?;
    let aor = format!("{}@{}", user.user?, us.home(user)?);
    let uri = request.request_uri()?.as_str();
    us.held_at(location, (&aor, uri), now)
        .first()
        .and_then(|b| binding_target(b))
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
        v.host
            .ip()
            .is_some_and(|ip| us.is_our_address(ip, v.port.unwrap_or(5060)))
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
                    target: dialog_hop(
                        request,
                        us,
                        Some(target.uri.as_str().to_string()),
                        destination,
                    ),
                    route: RouteEdit::DropLast,
                },
                None => Decision::Refuse(404, "Not Found (next hop is not an address)"),
            };
        }
    }
    // Loose routing (16.4): our own Route entries go (two when we record-routed twice, RFC
    // 5658: one per side); the next one, if any, is where it goes.
    let own_routes = request
        .list(HeaderName::Route)
        .take(4)
        .take_while(|v| {
            openline_sip::header::NameAddr::parse(v)
                .is_some_and(|r| r.uri.sip().is_some_and(|u| us.is_us(u)))
        })
        .count();
    let pop_route = own_routes > 0;
    let edit = match own_routes {
        0 => RouteEdit::Keep,
        n => RouteEdit::DropLeading(n),
    };
    if pop_route {
        let next = request
            .list(HeaderName::Route)
            .nth(own_routes)
            .and_then(openline_sip::header::NameAddr::parse);
        if let Some(next) = next {
            // A route set beyond us only exists inside a dialog: never for strangers' new requests.
            if !in_dialog {
                return Decision::Refuse(403, "Forbidden (relaying not allowed)");
            }
            return match next.uri.sip().and_then(uri_destination) {
                Some(destination) => Decision::Relay {
                    target: dialog_hop(request, us, None, destination),
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
        let targets: Vec<Target> = live.iter().take(take).filter_map(|b| us.reach(b)).collect();
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
        if let Some(target) = dialog_flow(request, us, location, now) {
            return Decision::Relay {
                target,
                route: edit,
            };
        }
        return match uri_destination(sip) {
            Some(destination) => Decision::Relay {
                target: dialog_hop(request, us, None, destination),
                route: edit,
            },
            None => Decision::Refuse(404, "Not Found (no address in the Request-URI)"),
        };
    }
    // A local user calling another domain: to that domain's servers, configured or located.
    if local_sender {
        if let Host::Name(domain) = sip.host {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            let peer = us.peers.iter().find(|(d, _)| *d == domain);
            return match peer {
                Some((_, destination)) => Decision::Relay {
                    target: Target::hop(None, *destination, Some(&domain)),
                    route: edit,
                },
                None => Decision::Locate {
                    domain,
                    uri: uri.as_str().to_string(),
                    route: edit,
                },
            };
        }
    }
    Decision::Refuse(403, "Forbidden (relaying not allowed)")
}

#[cfg(test)]
mod tests;

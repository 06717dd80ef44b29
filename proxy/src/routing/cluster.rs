//! Several nodes serving one domain on one database (issue #9): a binding names the node that
//! holds the device's flow; a request for that device reaching another node goes to the
//! holding node first, with a Route entry of ours naming the address of record, and that node
//! sends it down the flow.

use super::{Target, Us, binding_target};
use openline_registrar::{Binding, Location};
use openline_sip::Message;
use openline_sip::Transport;
use openline_sip::transaction::Destination;
use std::net::SocketAddr;

/// The Route parameter that marks a hop between nodes: the address of record, in hex (an AOR
/// may hold characters a URI parameter may not).
const AOR_PARAM: &str = "ol-aor";

/// Who this node is in its cluster, and where the others take requests.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// This node's name; empty when the server runs alone.
    pub node: String,
    /// The other nodes alive now, by name.
    pub nodes: Vec<(String, Destination)>,
}

impl Cluster {
    /// Whether the flow of `binding` is ours to use (a binding made alone counts as ours).
    pub fn holds(&self, binding: &Binding) -> bool {
        binding.node.is_empty() || binding.node == self.node
    }

    /// Whether `source` is another node of the cluster (over UDP, its very socket).
    pub fn is_node(&self, transport: Transport, source: SocketAddr) -> bool {
        self.nodes.iter().any(|(_, d)| {
            d.transport == transport
                && d.addr.ip() == source.ip()
                && (transport != Transport::Udp || d.addr.port() == source.port())
        })
    }

    /// Where the node called `name` takes requests, if it is alive.
    fn node(&self, name: &str) -> Option<Destination> {
        self.nodes.iter().find(|(n, _)| n == name).map(|(_, d)| *d)
    }
}

impl Us {
    /// The live bindings of `aor` whose contact is `contact` and whose flows we hold: what a
    /// request addressed to that contact (by another node, or inside a dialog) goes down.
    pub fn held_at<'l>(
        &self,
        location: &'l Location,
        (aor, contact): (&str, &str),
        now: u64,
    ) -> Vec<&'l Binding> {
        let mut live = location.live(aor, now);
        let wanted = openline_sip::uri::Uri::parse(contact).ok();
        let wanted = wanted.as_ref().and_then(|u| u.sip());
        live.retain(|b| {
            let same = b.contact == contact
                || wanted.is_some_and(|w| {
                    openline_sip::uri::Uri::parse(&b.contact)
                        .ok()
                        .and_then(|u| u.sip().map(|s| s.same_target(w)))
                        .unwrap_or(false)
                });
            same && self.cluster.holds(b)
        });
        live
    }

    /// The target that reaches the device of `binding`: down its flow when we hold it, else
    /// through the node that does; None when that node is not alive (its devices register
    /// again through another).
    pub fn reach(&self, binding: &Binding) -> Option<Target> {
        if self.cluster.holds(binding) {
            return binding_target(binding);
        }
        let destination = self.cluster.node(&binding.node)?;
        let transport = match destination.transport {
            Transport::Udp => String::new(),
            t => format!(";transport={}", t.as_via().to_ascii_lowercase()),
        };
        let route = format!(
            "<sip:{}{transport};lr;{AOR_PARAM}={}>",
            destination.addr,
            hex(&binding.aor)
        );
        let mut target = Target::hop(Some(binding.contact.clone()), destination, None);
        target.q = binding.q;
        target.route = Some(route);
        Some(target)
    }
}

/// The address of record a request from another node is for: the top Route is ours and
/// carries it. None for any other request.
pub fn node_hop(request: &Message<'_>, us: &Us) -> Option<String> {
    let route = request.top_route.as_ref()?;
    let sip = route.uri.sip()?;
    if !us.is_us(sip) {
        return None;
    }
    unhex(sip.param(AOR_PARAM)??)
}

fn hex(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes()
        .fold(String::with_capacity(s.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn bob(node: &str) -> Binding {
        Binding {
            aor: "bob@club-a.test".into(),
            contact: "sip:bob@127.0.0.1:5062".into(),
            instance: None,
            reg_id: None,
            expires_at: 100,
            q: 1000,
            call_id: "c".into(),
            cseq: 1,
            source: "udp:127.0.0.1:5062".into(),
            node: node.into(),
        }
    }

    fn us(node: &str, port: u16, others: &[(&str, u16)]) -> Us {
        Us {
            domains: vec!["club-a.test".into()],
            local: vec![crate::routing::Listener {
                transport: Transport::Udp,
                bound: ([127, 0, 0, 1], port).into(),
                advertised: None,
            }],
            peers: Vec::new(),
            addresses: None,
            cluster: Cluster {
                node: node.into(),
                nodes: others
                    .iter()
                    .map(|(n, p)| {
                        let addr = ([127, 0, 0, 1], *p).into();
                        (
                            n.to_string(),
                            Destination {
                                transport: Transport::Udp,
                                addr,
                            },
                        )
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn a_device_held_by_another_node_is_reached_through_it_and_that_node_knows_the_hop() {
        let one = us("n1", 5071, &[("n2", 5072)]);
        let target = one.reach(&bob("n2")).unwrap();
        assert_eq!(target.destination.addr, ([127, 0, 0, 1], 5072).into());
        assert_eq!(
            target.request_uri.as_deref(),
            Some("sip:bob@127.0.0.1:5062")
        );
        let route = target.route.clone().unwrap();
        // Our own, and one made alone, go down the flow; a dead node's are not reached.
        assert_eq!(one.reach(&bob("n1")).unwrap().destination.addr.port(), 5062);
        assert_eq!(one.reach(&bob("")).unwrap().route, None);
        assert_eq!(one.reach(&bob("n3")), None);

        let two = us("n2", 5072, &[("n1", 5071)]);
        let raw = format!(
            "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKx\r\n\
             Route: {route}\r\nFrom: <sip:alice@club-a.test>;tag=1\r\nTo: <sip:bob@club-a.test>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let request = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(node_hop(&request, &two).as_deref(), Some("bob@club-a.test"));
        assert!(
            two.cluster
                .is_node(Transport::Udp, ([127, 0, 0, 1], 5071).into())
        );
        assert!(
            !two.cluster
                .is_node(Transport::Udp, ([127, 0, 0, 1], 5061).into())
        );
        // Not our Route (another node's), or no parameter: not a hop.
        assert_eq!(node_hop(&request, &one), None);
        assert_eq!(unhex("zz"), None);
    }
}

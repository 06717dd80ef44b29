//! A simulated network in virtual time (STYLE.md principle 8): endpoints exchange datagrams
//! through a seeded, lossy link, and time jumps straight to the next delivery or timer, so
//! Timer B's 32 s pass in microseconds. Every run is bounded in steps and in virtual time.

use openline_sip::endpoint::{Output, Verdict};
use openline_sip::entropy::{Entropy, SeededEntropy};
use openline_sip::message::RequestBuilder;
use openline_sip::transaction::{Destination, TransactionEvent, TransactionId};
use openline_sip::{Endpoint, EndpointConfig, Inbound, Method, Transport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a node's transaction user saw.
#[allow(missing_docs)] // the fields say what they hold: when, and what
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A new request reached the user.
    Request {
        at: Duration,
        method: String,
        transaction: Option<TransactionId>,
    },
    /// A response a client transaction passed up.
    Response {
        at: Duration,
        code: u16,
        transaction: TransactionId,
    },
    /// A transaction event.
    Event {
        at: Duration,
        event: TransactionEvent,
    },
    /// A response that matched nothing.
    Stray { at: Duration, code: u16 },
}

/// How a node's transaction user answers requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Answer every request that has a transaction with this status; `None` stays silent.
    pub reply: Option<u16>,
}

/// One packet on the wire, as sent (before loss).
#[derive(Debug, Clone)]
pub struct WireRecord {
    /// When it was sent, since the start.
    pub at: Duration,
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// The start line, for assertions.
    pub first_line: String,
    /// Whether the link lost it.
    pub dropped: bool,
}

/// A SIP endpoint on the simulated network.
pub struct Node {
    /// Its address.
    pub addr: SocketAddr,
    /// Its transaction layer.
    pub endpoint: Endpoint,
    /// How it answers.
    pub policy: Policy,
    /// What its user saw, in order.
    pub seen: Vec<Seen>,
}

type DropRule = Box<dyn FnMut(&WireRecord) -> bool>;

/// A packet on its way: the receiving node, how it arrives, and its bytes.
type InFlight = (usize, Inbound<'static>, Arc<[u8]>);

/// The network, the clock and the nodes.
pub struct Sim {
    start: Instant,
    now: Instant,
    /// The nodes, by index.
    pub nodes: Vec<Node>,
    in_flight: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    delay: Duration,
    loss_per_mille: u64,
    rng: SeededEntropy,
    drop_rule: Option<DropRule>,
    /// Every packet sent, in order.
    pub wire: Vec<WireRecord>,
}

impl Sim {
    /// A network with a one-way delay and a loss rate (per mille, UDP only), seeded.
    #[allow(clippy::disallowed_methods)] // the origin of virtual time; nothing else reads the clock
    pub fn new(seed: u64, delay: Duration, loss_per_mille: u64) -> Self {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            delay,
            loss_per_mille,
            rng: SeededEntropy::new(seed),
            drop_rule: None,
            wire: Vec::new(),
        }
    }

    /// Adds a node at `addr`; returns its index.
    pub fn add_node(&mut self, addr: &str, config: EndpointConfig, policy: Policy) -> usize {
        let seed = self.rng.next_u64();
        let addr = addr.parse().expect("node address");
        self.nodes.push(Node {
            addr,
            endpoint: Endpoint::new(config, Box::new(SeededEntropy::new(seed))),
            policy,
            seen: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Drops every packet for which `rule` returns true (in addition to random loss).
    pub fn drop_when(&mut self, rule: impl FnMut(&WireRecord) -> bool + 'static) {
        self.drop_rule = Some(Box::new(rule));
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Sends a new request of `method` from node `from` to node `to` as a client transaction.
    pub fn send_request(
        &mut self,
        from: usize,
        to: usize,
        method: Method<'_>,
        transport: Transport,
    ) -> TransactionId {
        let (local, remote) = (self.nodes[from].addr, self.nodes[to].addr);
        let ep = &mut self.nodes[from].endpoint;
        let branch = ep.new_branch();
        let tag = ep.new_tag();
        let call_id = format!("{}@sim", ep.new_tag());
        let request = RequestBuilder::new(method, &format!("sip:user@{remote}"))
            .header(
                "Via",
                format!("SIP/2.0/{} {local};branch={branch}", transport.as_via()),
            )
            .header("Max-Forwards", 70)
            .header("From", format!("<sip:caller@{local}>;tag={tag}"))
            .header("To", format!("<sip:user@{remote}>"))
            .header("Call-ID", call_id)
            .header("CSeq", format!("1 {method}"))
            .finish();
        let id = ep
            .send_request(
                self.now,
                request,
                Destination {
                    transport,
                    addr: remote,
                },
            )
            .expect("a valid request");
        self.flush(from);
        id
    }

    fn flush(&mut self, index: usize) {
        let from = self.nodes[index].addr;
        while let Some(output) = self.nodes[index].endpoint.poll_output() {
            match output {
                Output::Transmit(t) => self.put_on_wire(from, t.destination, t.payload),
                Output::Event(event) => {
                    let at = self.elapsed();
                    self.nodes[index].seen.push(Seen::Event { at, event });
                }
            }
        }
    }

    fn put_on_wire(&mut self, from: SocketAddr, destination: Destination, payload: Arc<[u8]>) {
        let first_line =
            String::from_utf8_lossy(payload.split(|&b| b == b'\r').next().unwrap_or(&[]))
                .into_owned();
        let mut record = WireRecord {
            at: self.elapsed(),
            from,
            to: destination.addr,
            transport: destination.transport,
            first_line,
            dropped: false,
        };
        let random_loss = !destination.transport.is_reliable()
            && self.rng.next_u64() % 1000 < self.loss_per_mille;
        let ruled = self.drop_rule.as_mut().is_some_and(|rule| rule(&record));
        record.dropped = random_loss || ruled;
        let target = self.nodes.iter().position(|n| n.addr == destination.addr);
        if let (false, Some(target)) = (record.dropped, target) {
            self.seq += 1;
            let inbound = Inbound {
                transport: destination.transport,
                source: from,
                data: &[],
            };
            self.in_flight.insert(
                (self.now + self.delay, self.seq),
                (target, inbound, payload),
            );
        }
        self.wire.push(record);
    }

    /// Runs until nothing is left to happen or `limit` of virtual time has passed; panics after
    /// `max_steps` steps, so a livelock fails the test instead of hanging it.
    pub fn run_for(&mut self, limit: Duration, max_steps: usize) {
        let end = self.start + limit;
        for _ in 0..max_steps {
            let next_packet = self.in_flight.keys().next().map(|(at, _)| *at);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.endpoint.poll_timeout())
                .min();
            let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if next_packet == Some(next) {
                let key = *self.in_flight.keys().next().expect("a packet is due");
                let (target, inbound, payload) = self.in_flight.remove(&key).expect("present");
                self.deliver(target, inbound, &payload);
            } else {
                for i in 0..self.nodes.len() {
                    self.nodes[i].endpoint.handle_timeout(self.now);
                    self.flush(i);
                }
            }
        }
        panic!("simulation did not settle within {max_steps} steps");
    }

    fn deliver(&mut self, index: usize, inbound: Inbound<'static>, payload: &[u8]) {
        let at = self.elapsed();
        let now = self.now;
        let node = &mut self.nodes[index];
        let inbound = Inbound {
            data: payload,
            ..inbound
        };
        match node.endpoint.handle(now, inbound) {
            Verdict::Request {
                request,
                transaction,
            } => {
                node.seen.push(Seen::Request {
                    at,
                    method: request.method().to_string(),
                    transaction,
                });
                if let (Some(id), Some(code)) = (transaction, node.policy.reply) {
                    let echo = request.echo();
                    node.endpoint
                        .reply(now, id, &echo, inbound.source, code, &[])
                        .expect("reply accepted");
                }
            }
            Verdict::Response {
                response,
                transaction,
            } => {
                node.seen.push(Seen::Response {
                    at,
                    code: response.status().unwrap_or(0),
                    transaction,
                });
            }
            Verdict::StrayResponse(r) => node.seen.push(Seen::Stray {
                at,
                code: r.status().unwrap_or(0),
            }),
            Verdict::Absorbed(_) | Verdict::StatelessReply { .. } | Verdict::Discarded(_) => {}
        }
        self.flush(index);
    }

    /// Send times (since the start) of packets whose first line starts with `prefix`.
    pub fn sent_times(&self, prefix: &str) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|w| w.first_line.starts_with(prefix))
            .map(|w| w.at)
            .collect()
    }
}

/// Gaps between consecutive times.
pub fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A server core's settings for tests in virtual time: club-a.test, default timers and
/// registrar, 10 requests at most per other domain, media anchored as `media` says.
pub fn core_config(media: openline_proxy::core::MediaMode) -> openline_proxy::core::CoreConfig {
    openline_proxy::core::CoreConfig {
        push: Default::default(),
        domains: vec!["club-a.test".into()],
        endpoint: EndpointConfig::default(),
        registrar: openline_registrar::RegistrarConfig::default(),
        auth: openline_registrar::auth::AuthConfig::default(),
        ring_timeout: Duration::from_secs(60),
        max_per_domain: 10,
        peers: Vec::new(),
        text: Default::default(),
        media,
        presence: Default::default(),
        guard: Default::default(),
    }
}

/// A binding of `aor` for a device at `at` (UDP, no instance), registered until `expires_at`:
/// what a core is given at start in the virtual-time tests.
pub fn udp_binding(aor: &str, at: &str, expires_at: u64) -> openline_registrar::Binding {
    let user = aor.split('@').next().unwrap_or(aor);
    openline_registrar::Binding {
        aor: aor.into(),
        contact: format!("sip:{user}@{at}"),
        instance: None,
        reg_id: None,
        expires_at,
        q: 1000,
        call_id: "reg".into(),
        cseq: 1,
        source: format!("udp:{at}"),
        node: String::new(),
    }
}

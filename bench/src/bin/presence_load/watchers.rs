//! The watchers: subscriptions to presentities over a few sockets, every NOTIFY answered and
//! its state kept, so the end of a run can say whether each watcher saw the last change.

use crate::wire::{self, credentials};
use openline_sip::Method;
use openline_sip::header::Contact;
use openline_sip::message::{Message, RequestBuilder, ResponseBuilder};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sending the first SUBSCRIBE of every subscription.
pub(crate) const SUBSCRIBE: u8 = 1;
/// Ending every subscription (Expires: 0).
pub(crate) const UNSUBSCRIBE: u8 = 2;
/// Returning what they saw.
pub(crate) const STOP: u8 = 3;

/// Requests one thread keeps outstanding at once.
const WINDOW: usize = 32;

/// What every watcher thread counts, read by the main thread at phase boundaries.
#[derive(Default)]
pub(crate) struct Counters {
    /// The phase the threads follow (0 until told to subscribe: waiting).
    pub(crate) phase: AtomicU8,
    /// NOTIFY requests received (retransmissions included: each one cost the server a send).
    pub(crate) notifies: AtomicU64,
    /// SUBSCRIBEs answered 2xx.
    pub(crate) accepted: AtomicU64,
    /// SUBSCRIBEs answered otherwise, or never answered.
    pub(crate) failed: AtomicU64,
    /// Unsubscribes answered.
    pub(crate) ended: AtomicU64,
    /// NOTIFYs saying terminated.
    pub(crate) terminated: AtomicU64,
}

/// Where a thread's subscriptions go.
#[derive(Clone)]
pub(crate) struct Plan {
    /// The server under test.
    pub(crate) server: SocketAddr,
    /// Its domain.
    pub(crate) domain: String,
    /// Expires asked for (long enough that no refresh falls inside a run).
    pub(crate) expires: u32,
}

/// One subscription, as the watcher sees it.
pub(crate) struct Subscription {
    watcher: usize,
    /// The presentity's index.
    pub(crate) presentity: usize,
    call_id: String,
    to_tag: Option<String>,
    target: Option<String>,
    cseq: u32,
    pending: Option<Pending>,
    last_notify: u32,
    /// The last state NOTIFY carried: Some(true) open, Some(false) closed or no body.
    pub(crate) open: Option<bool>,
}

struct Pending {
    bytes: Vec<u8>,
    sent: Instant,
    tries: u32,
    authorized: bool,
    ending: bool,
}

/// Runs one watcher socket until the phase says stop; returns its subscriptions.
pub(crate) fn run(
    plan: Plan,
    pairs: Vec<(usize, usize)>,
    counters: Arc<Counters>,
) -> Vec<Subscription> {
    let Ok(socket) = wire::socket() else {
        counters
            .failed
            .fetch_add(pairs.len() as u64, Ordering::Relaxed);
        return Vec::new();
    };
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut subs: Vec<Subscription> = pairs
        .into_iter()
        .map(|(watcher, presentity)| Subscription {
            watcher,
            presentity,
            call_id: format!("sub-{watcher}-{presentity}-{port}"),
            to_tag: None,
            target: None,
            cseq: 0,
            pending: None,
            last_notify: 0,
            open: None,
        })
        .collect();
    let by_call: HashMap<String, usize> = subs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.call_id.clone(), i))
        .collect();
    let mut w = Watcher {
        socket,
        port,
        plan,
        counters,
        in_flight: Vec::new(),
        next: [0, 0],
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let phase = w.counters.phase.load(Ordering::Relaxed);
        if phase == STOP {
            break;
        }
        if phase == SUBSCRIBE || phase == UNSUBSCRIBE {
            w.start_more(&mut subs, phase == UNSUBSCRIBE);
        }
        w.retransmit(&mut subs);
        while let Some((n, from)) = wire::receive(&w.socket, &mut buf) {
            if let Ok(m) = Message::parse(&buf[..n]) {
                w.handle(&mut subs, &by_call, &m, from);
            }
        }
    }
    subs
}

struct Watcher {
    socket: UdpSocket,
    port: u16,
    plan: Plan,
    counters: Arc<Counters>,
    in_flight: Vec<usize>,
    /// The next subscription to start, for subscribing and for ending.
    next: [usize; 2],
}

impl Watcher {
    fn start_more(&mut self, subs: &mut [Subscription], ending: bool) {
        let slot = usize::from(ending);
        while self.in_flight.len() < WINDOW && self.next[slot] < subs.len() {
            let i = self.next[slot];
            self.next[slot] += 1;
            if ending && subs[i].to_tag.is_none() {
                continue;
            }
            let bytes = request(&self.plan, self.port, &mut subs[i], ending, None);
            self.send(&bytes);
            subs[i].pending = Some(Pending {
                bytes,
                #[allow(clippy::disallowed_methods)] // the load runs in real time
                sent: Instant::now(),
                tries: 1,
                authorized: false,
                ending,
            });
            self.in_flight.push(i);
        }
    }

    /// Resends what got no final answer within a second (UDP on loopback still drops under
    /// bursts); gives up after seven tries.
    fn retransmit(&mut self, subs: &mut [Subscription]) {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut given_up = Vec::new();
        for &i in &self.in_flight {
            let Some(p) = subs[i].pending.as_mut() else {
                continue;
            };
            if now.duration_since(p.sent) < Duration::from_secs(1) {
                continue;
            }
            if p.tries >= 7 {
                given_up.push(i);
                continue;
            }
            p.tries += 1;
            p.sent = now;
            let _ = self.socket.send_to(&p.bytes, self.plan.server);
        }
        for i in given_up {
            subs[i].pending = None;
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight.retain(|&i| subs[i].pending.is_some());
    }

    fn send(&self, bytes: &[u8]) {
        let _ = self.socket.send_to(bytes, self.plan.server);
    }

    fn handle(
        &mut self,
        subs: &mut [Subscription],
        by_call: &HashMap<String, usize>,
        m: &Message<'_>,
        from: SocketAddr,
    ) {
        let Some(&i) = by_call.get(m.call_id) else {
            if m.is_request() && m.method() != Method::Ack {
                let r =
                    ResponseBuilder::new(481, "Subscription Does Not Exist", &m.echo(), from, None);
                let _ = self.socket.send_to(&r.finish(), from);
            }
            return;
        };
        if m.is_request() {
            self.notified(&mut subs[i], m, from);
        } else {
            self.answered(&mut subs[i], m);
        }
    }

    fn notified(&mut self, sub: &mut Subscription, m: &Message<'_>, from: SocketAddr) {
        let ok = ResponseBuilder::new(200, "OK", &m.echo(), from, None).finish();
        let _ = self.socket.send_to(&ok, from);
        if m.method() != Method::Notify {
            return;
        }
        self.counters.notifies.fetch_add(1, Ordering::Relaxed);
        if sub.to_tag.is_none() {
            sub.to_tag = m.from_tag.map(str::to_string);
        }
        if m.cseq.seq <= sub.last_notify {
            return; // a retransmission, or overtaken by a later NOTIFY
        }
        sub.last_notify = m.cseq.seq;
        let state = m
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case("Subscription-State"))
            .map(|h| h.value.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if state.starts_with("terminated") {
            // Not every server repeats the state when a subscription ends: keep the last one.
            self.counters.terminated.fetch_add(1, Ordering::Relaxed);
            return;
        }
        sub.open = Some(
            !m.body.is_empty() && openline_sip::pidf::parse(m.body).is_ok_and(|status| status.open),
        );
    }

    fn answered(&mut self, sub: &mut Subscription, m: &Message<'_>) {
        let Some(code) = m.status() else { return };
        if code < 200 || m.cseq.seq != sub.cseq {
            return;
        }
        let Some(p) = sub.pending.take() else { return };
        if (code == 401 || code == 407) && !p.authorized {
            let uri = request_uri(&self.plan, sub);
            let user = format!("w{}", sub.watcher);
            if let Some(auth) = credentials(m, &user, ("SUBSCRIBE", &uri), 1) {
                let bytes = request(&self.plan, self.port, sub, p.ending, Some(auth));
                self.send(&bytes);
                sub.pending = Some(Pending {
                    bytes,
                    authorized: true,
                    tries: 1,
                    #[allow(clippy::disallowed_methods)]
                    sent: Instant::now(),
                    ..p
                });
                return;
            }
        }
        let counter = match (p.ending, (200..300).contains(&code)) {
            (true, _) => &self.counters.ended,
            (false, true) => &self.counters.accepted,
            (false, false) => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if (200..300).contains(&code) && !p.ending {
            if let Some(tag) = m.to_tag {
                sub.to_tag = Some(tag.to_string());
            }
            sub.target = m.contacts().and_then(|c| match c.first() {
                Some(Contact::Address(a)) => Some(a.uri.to_string()),
                _ => None,
            });
        }
    }
}

fn request_uri(plan: &Plan, sub: &Subscription) -> String {
    sub.target
        .clone()
        .unwrap_or_else(|| format!("sip:p{}@{}", sub.presentity, plan.domain))
}

/// A SUBSCRIBE for `sub` (Expires: 0 when `ending`), with credentials when given.
fn request(
    plan: &Plan,
    port: u16,
    sub: &mut Subscription,
    ending: bool,
    auth: Option<(&str, String)>,
) -> Vec<u8> {
    sub.cseq += 1;
    let uri = request_uri(plan, sub);
    let d = &plan.domain;
    let to = match &sub.to_tag {
        Some(tag) if ending => format!("<sip:p{}@{d}>;tag={tag}", sub.presentity),
        _ => format!("<sip:p{}@{d}>", sub.presentity),
    };
    let mut b = RequestBuilder::new(Method::Subscribe, &uri)
        .header(
            "Via",
            format_args!(
                "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{}x{};rport",
                sub.call_id, sub.cseq
            ),
        )
        .header("Max-Forwards", 70)
        .header(
            "From",
            format_args!("<sip:w{}@{d}>;tag=w{}", sub.watcher, sub.watcher),
        )
        .header("To", to)
        .header("Call-ID", &sub.call_id)
        .header("CSeq", format_args!("{} SUBSCRIBE", sub.cseq))
        .header(
            "Contact",
            format_args!("<sip:w{}@127.0.0.1:{port}>", sub.watcher),
        )
        .header("Event", "presence")
        .header("Accept", "application/pidf+xml")
        .header("Expires", if ending { 0 } else { plan.expires });
    if let Some((name, value)) = auth {
        b = b.header(name, value);
    }
    b.finish()
}

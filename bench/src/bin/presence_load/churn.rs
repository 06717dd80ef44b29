//! The presentities' devices: REGISTERs at a steady rate that bring each presentity online
//! and offline in turn, so every change is one NOTIFY to each of its watchers.

use crate::wire::{self, credentials};
use openline_sip::Method;
use openline_sip::message::{Message, RequestBuilder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sending nothing new; answers still counted.
pub(crate) const IDLE: u8 = 0;
/// Registering and unregistering at the rate asked.
pub(crate) const CHURN: u8 = 1;
/// Returning the final states.
pub(crate) const STOP: u8 = 2;

/// What the churn thread counts.
#[derive(Default)]
pub(crate) struct Counters {
    /// The phase it follows.
    pub(crate) phase: AtomicU8,
    /// Changes the registrar accepted.
    pub(crate) done: AtomicU64,
    /// Changes refused or never answered.
    pub(crate) failed: AtomicU64,
}

struct Device {
    call_id: String,
    cseq: u32,
    registered: bool,
    pending: Option<Pending>,
}

struct Pending {
    want: bool,
    bytes: Vec<u8>,
    sent: Instant,
    tries: u32,
    authorized: bool,
}

/// Runs the churn until told to stop: `rate` changes a second, round robin over
/// `presentities`. Returns which presentities ended registered.
pub(crate) fn run(
    server: SocketAddr,
    domain: String,
    (presentities, rate): (usize, f64),
    counters: Arc<Counters>,
) -> Vec<bool> {
    let Ok(socket) = wire::socket() else {
        return vec![false; presentities];
    };
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut devices: Vec<Device> = (0..presentities)
        .map(|i| Device {
            call_id: format!("reg-{i}-{port}"),
            cseq: 0,
            registered: false,
            pending: None,
        })
        .collect();
    let by_call: std::collections::HashMap<String, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.call_id.clone(), i))
        .collect();
    let register = |d: &mut Device, i: usize, want: bool, auth: Option<(&str, String)>| {
        d.cseq += 1;
        let mut b = RequestBuilder::new(Method::Register, &format!("sip:{domain}"))
            .header(
                "Via",
                format_args!(
                    "SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{}x{};rport",
                    d.call_id, d.cseq
                ),
            )
            .header("Max-Forwards", 70)
            .header("From", format_args!("<sip:p{i}@{domain}>;tag=p{i}"))
            .header("To", format_args!("<sip:p{i}@{domain}>"))
            .header("Call-ID", &d.call_id)
            .header("CSeq", format_args!("{} REGISTER", d.cseq))
            .header(
                "Contact",
                format_args!(
                    "<sip:p{i}@127.0.0.1:{port}>;expires={}",
                    if want { 3600 } else { 0 }
                ),
            );
        if let Some((name, value)) = auth {
            b = b.header(name, value);
        }
        b.finish()
    };
    let mut buf = vec![0u8; 65_536];
    let mut started: Option<(Instant, u64)> = None;
    let mut next = 0usize;
    loop {
        #[allow(clippy::disallowed_methods)] // the load runs in real time
        let now = Instant::now();
        match counters.phase.load(Ordering::Relaxed) {
            STOP => break,
            CHURN => {
                let (t0, sent) = started.get_or_insert((now, 0));
                let due = (now.duration_since(*t0).as_secs_f64() * rate) as u64;
                let mut looked = 0;
                while *sent < due && looked < presentities {
                    let i = next;
                    next = (next + 1) % presentities;
                    looked += 1;
                    let d = &mut devices[i];
                    if d.pending.is_some() {
                        continue;
                    }
                    let want = !d.registered;
                    let bytes = register(d, i, want, None);
                    let _ = socket.send_to(&bytes, server);
                    d.pending = Some(Pending {
                        want,
                        bytes,
                        sent: now,
                        tries: 1,
                        authorized: false,
                    });
                    *sent += 1;
                }
            }
            _ => started = None,
        }
        for d in devices.iter_mut() {
            let Some(p) = d.pending.as_mut() else {
                continue;
            };
            if now.duration_since(p.sent) < Duration::from_secs(1) {
                continue;
            }
            if p.tries >= 7 {
                d.pending = None;
                counters.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            p.tries += 1;
            p.sent = now;
            let _ = socket.send_to(&p.bytes, server);
        }
        while let Some((n, _)) = wire::receive(&socket, &mut buf) {
            let Ok(m) = Message::parse(&buf[..n]) else {
                continue;
            };
            let (Some(code), Some(&i)) = (m.status(), by_call.get(m.call_id)) else {
                continue;
            };
            let d = &mut devices[i];
            if code < 200 || m.cseq.seq != d.cseq {
                continue;
            }
            let Some(p) = d.pending.take() else { continue };
            if code == 401 && !p.authorized {
                let user = format!("p{i}");
                let uri = format!("sip:{domain}");
                if let Some(auth) = credentials(&m, &user, ("REGISTER", &uri), 1) {
                    let bytes = register(d, i, p.want, Some(auth));
                    let _ = socket.send_to(&bytes, server);
                    d.pending = Some(Pending {
                        bytes,
                        authorized: true,
                        tries: 1,
                        sent: now,
                        ..p
                    });
                    continue;
                }
            }
            if (200..300).contains(&code) {
                d.registered = p.want;
                counters.done.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    devices.iter().map(|d| d.registered).collect()
}

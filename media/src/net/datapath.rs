//! The relay's data path: one thread and one epoll (mio) over every relay port's socket. Each
//! readiness event is handled where it is reported: the port's queue is drained, each datagram
//! decided by the sans-IO relay under the state's lock and sent on at once. A task per port on
//! tokio did the same with a wake-up, a task poll and a readiness round per packet: 7 % of the
//! relay's CPU at 1,000 streams (perf), for nothing the relay needs.

use super::relay::{RelayCounts, State, lock};
use crate::relay::Forward;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// The token that wakes a data path's thread to stop (ports use their own numbers as tokens).
pub(super) const STOP: Token = Token(usize::MAX);
/// Datagrams read from one socket before the others get their turn: a flooded one must not
/// starve the rest (what is left is read on the next round, before waiting again).
pub(super) const FAIR_SHARE: usize = 256;
/// The longest the thread sleeps while browser legs exist: a leg set up by a command (which
/// the thread does not hear of) gets its first timer run within this.
const GATEWAY_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// The data path's thread, and what registers ports with it.
pub(super) struct DataPath {
    registry: Registry,
    waker: Waker,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Sockets bound when their pair was checked, waiting for their session to open them.
    reserved: Reserved,
}

impl DataPath {
    /// Starts the thread, deciding with `state` and counting in `counts`.
    pub(super) fn start(
        state: Arc<Mutex<State>>,
        counts: Arc<RelayCounts>,
        reserved: Reserved,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        #[allow(clippy::disallowed_methods)] // the data path is a thread of its own, on purpose
        let thread = std::thread::Builder::new()
            .name("media-data".into())
            .spawn(move || run(poll, &state, &counts, &flag))?;
        Ok(DataPath {
            registry,
            waker,
            stop,
            thread: Some(thread),
            reserved,
        })
    }

    /// Has the thread read the port at `at`: the socket reserved for it when its pair was
    /// checked, or one bound now.
    pub(super) fn open(&self, state: &mut State, at: SocketAddr) -> io::Result<()> {
        let reserved = lock_reserved(&self.reserved).remove(&at.port());
        let socket = match reserved {
            Some(socket) => socket,
            None => bind_port(at)?,
        };
        socket.set_nonblocking(true)?;
        if state.bound.is_none() {
            state.bound = socket.local_addr().ok();
        }
        let mut socket = UdpSocket::from_std(socket);
        self.registry.register(
            &mut socket,
            Token(usize::from(at.port())),
            Interest::READABLE,
        )?;
        state.sockets.insert(at.port(), socket);
        Ok(())
    }

    /// Closes a port's socket.
    pub(super) fn close(&self, state: &mut State, port: u16) {
        if let Some(mut socket) = state.sockets.remove(&port) {
            let _ = self.registry.deregister(&mut socket);
        }
    }
}

/// Binds a relay port at `at`. On the IPv4 wildcard, where IPv6 works, the port is bound
/// dual-stack on [::] instead, so one port serves an IPv4 party and an IPv6 one (the relay
/// bridges an IPv6-only mobile and an IPv4-only desk phone); IPv4 peers then appear as
/// ::ffff:a.b.c.d and are written back to as such (see [`canonical`], [`outbound`]).
pub(super) fn bind_port(at: SocketAddr) -> io::Result<std::net::UdpSocket> {
    if at.ip() == std::net::IpAddr::from([0, 0, 0, 0]) {
        let dual = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)
            .and_then(|s| {
                s.set_only_v6(false)?;
                let any = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, at.port()));
                s.bind(&any.into())?;
                Ok(s)
            });
        if let Ok(s) = dual {
            return Ok(s.into());
        }
    }
    std::net::UdpSocket::bind(at)
}

/// A source as the relay's sessions know it: an IPv4 peer on a dual-stack port as IPv4.
pub(super) fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// Where to send `to` from a socket bound at `local`: IPv4 through a dual-stack IPv6 socket
/// as ::ffff:a.b.c.d; None when the socket cannot reach that family.
pub(super) fn outbound(local: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
    match (local, to) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => Some(to),
        (SocketAddr::V6(l), SocketAddr::V4(t)) if l.ip().is_unspecified() => {
            Some(SocketAddr::new(t.ip().to_ipv6_mapped().into(), t.port()))
        }
        _ => None,
    }
}

/// Sockets bound ahead of their session, by port.
pub(super) type Reserved = Arc<Mutex<std::collections::HashMap<u16, std::net::UdpSocket>>>;

fn lock_reserved(
    reserved: &Reserved,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<u16, std::net::UdpSocket>> {
    reserved
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The relay's port check: binds a pair's RTP and RTCP ports on `listen` and keeps the
/// sockets for [`DataPath::open`]; false when another program holds either.
pub(super) fn port_check(reserved: Reserved, listen: std::net::IpAddr) -> crate::relay::PortCheck {
    Box::new(move |rtp: u16| {
        let mut held = lock_reserved(&reserved);
        for port in [rtp, rtp.saturating_add(1)] {
            if held.contains_key(&port) {
                continue;
            }
            match bind_port(SocketAddr::new(listen, port)) {
                Ok(socket) => {
                    held.insert(port, socket);
                }
                Err(_) => {
                    // Let go of the half we may have bound: the pair is someone else's.
                    held.remove(&rtp);
                    return false;
                }
            }
        }
        true
    })
}

impl Drop for DataPath {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.waker.wake().is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// The thread: wait for ready ports, drain each (fairly), until told to stop.
fn run(mut poll: Poll, state: &Mutex<State>, counts: &RelayCounts, stop: &AtomicBool) {
    let mut events = Events::with_capacity(1024);
    let mut unfinished: VecDeque<Token> = VecDeque::new();
    loop {
        // Browser legs' timers (ICE consent, DTLS retransmissions) are run here too; a leg made
        // by a command is first run within GATEWAY_TICK.
        let timer = gateway_timers(state, counts)
            .map(|at| at.saturating_duration_since(now()).min(GATEWAY_TICK));
        // With sockets left unfinished, only look for new events, without waiting.
        let wait = if unfinished.is_empty() {
            timer
        } else {
            Some(std::time::Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, wait) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(error = %e, "the media data path stopped");
            return;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        for token in this_round(&events, &mut unfinished) {
            let Ok(port) = u16::try_from(token.0) else {
                continue;
            };
            if !drain(state, counts, port) {
                unfinished.push_back(token);
            }
        }
    }
}

/// The sockets to drain this round: those left unfinished last round first, then the ones
/// just reported ready (the stop token aside).
pub(super) fn this_round(events: &Events, unfinished: &mut VecDeque<Token>) -> Vec<Token> {
    let ready = events
        .iter()
        .map(mio::event::Event::token)
        .filter(|&t| t != STOP);
    unfinished.drain(..).chain(ready).collect()
}

/// Reads and forwards what `port` has queued, up to [`FAIR_SHARE`]; whether it is empty now.
fn drain(state: &Mutex<State>, counts: &RelayCounts, port: u16) -> bool {
    let mut guard = lock(state);
    let State {
        calls,
        sockets,
        buffer,
        bound,
    } = &mut *guard;
    let local = bound.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let now = now();
    for _ in 0..FAIR_SHARE {
        let Some(socket) = sockets.get(&port) else {
            return true;
        };
        let (n, source) = match socket.recv_from(buffer) {
            Ok((n, source)) => (n, canonical(source)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            // Another error (an ICMP report surfacing): the queue may still hold datagrams.
            Err(_) => continue,
        };
        let packet = &buffer[..n];
        match calls.relay().handle(now, port, source, packet) {
            Forward::To { from, to } => {
                if let Some(out) = sockets.get(&from) {
                    let Some(to) = outbound(local, to) else {
                        counts.dropped(crate::relay::Dropped::WrongFamily);
                        continue;
                    };
                    // A full socket buffer drops the packet, as the network would.
                    let _ = out.send_to(packet, to);
                    counts.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
            Forward::Drop(why) => counts.dropped(why),
            Forward::Gateway => send_gateway(calls.relay(), sockets, local, counts),
        }
    }
    false
}

/// Sends what browser legs made (DTLS, STUN, SRTP to browsers; RTP to phones).
fn send_gateway(
    relay: &mut crate::relay::Relay,
    sockets: &std::collections::HashMap<u16, UdpSocket>,
    local: SocketAddr,
    counts: &RelayCounts,
) {
    while let Some(d) = relay.poll_datagram() {
        let (Some(out), Some(to)) = (sockets.get(&d.from), outbound(local, d.to)) else {
            counts.dropped(crate::relay::Dropped::WrongFamily);
            continue;
        };
        let _ = out.send_to(&d.data, to);
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the browser legs' timers that are due; when the next one is.
fn gateway_timers(state: &Mutex<State>, counts: &RelayCounts) -> Option<Instant> {
    let mut guard = lock(state);
    let State {
        calls,
        sockets,
        bound,
        ..
    } = &mut *guard;
    let relay = calls.relay();
    let next = relay.poll_gateway_timeout();
    let now = now();
    if next.is_some_and(|at| at <= now) {
        relay.handle_gateway_timeout(now);
        let local = bound.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        send_gateway(relay, sockets, local, counts);
        return relay.poll_gateway_timeout();
    }
    next
}

//! The relay's control: the ng control socket and in-process commands, and the ports' sockets,
//! bound when a session takes a port and closed when it gives it back. Every decision is the
//! sans-IO [`Calls`]/[`crate::relay::Relay`]'s, behind a mutex no one holds across an await;
//! the datagrams themselves are read and sent on by the data path's thread (`datapath.rs`).

use super::datapath::{self, DataPath};
use crate::control::{CallReport, Calls, Command, CommandResult, ng};
use crate::relay::Dropped;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Packets the relay forwarded and dropped (for metrics, issue #11).
#[derive(Debug, Default)]
pub struct RelayCounts {
    /// Forwarded.
    pub forwarded: AtomicU64,
    /// Dropped: from another source than latched (RTP bleed attempts).
    pub wrong_source: AtomicU64,
    /// Dropped: not RTP, RTCP, STUN or DTLS.
    pub malformed: AtomicU64,
    /// Dropped: no session, or nowhere to send yet.
    pub undeliverable: AtomicU64,
    /// Dropped: to an address family the relay's sockets do not carry.
    pub wrong_family: AtomicU64,
    /// Calls with media through the relay now.
    pub calls: AtomicU64,
    /// Each call's quality so far, refreshed every second (`openline status --calls`).
    pub live: Mutex<Vec<CallReport>>,
    /// Reports of calls that ended, until the embedder takes them (metrics); the oldest go
    /// beyond [`MAX_ENDED_REPORTS`].
    pub ended: Mutex<std::collections::VecDeque<CallReport>>,
}

/// Ended calls' reports [`RelayCounts::ended`] keeps for a reader.
const MAX_ENDED_REPORTS: usize = 4096;

impl RelayCounts {
    /// The reports of calls that ended since the last call.
    pub fn take_ended(&self) -> Vec<CallReport> {
        let mut ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ended.drain(..).collect()
    }

    /// Each call's quality as of the last refresh.
    pub fn live(&self) -> Vec<CallReport> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Logs each ended call's report and keeps it for [`RelayCounts::take_ended`].
    fn ended_calls(&self, calls: &mut Calls) {
        let mut ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(report) = calls.poll_ended() {
            if report.problems().is_empty() {
                tracing::info!("{}", report.line());
            } else {
                tracing::warn!("{}", report.line());
            }
            if ended.len() >= MAX_ENDED_REPORTS {
                ended.pop_front();
            }
            ended.push_back(report);
        }
    }
}

impl RelayCounts {
    pub(super) fn dropped(&self, why: Dropped) {
        let counter = match why {
            Dropped::WrongSource => &self.wrong_source,
            Dropped::Malformed => &self.malformed,
            Dropped::UnknownPort | Dropped::NoDestination => &self.undeliverable,
            Dropped::WrongFamily => &self.wrong_family,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Commands from inside the process, each answered on `replies` with its id.
pub struct InProcess {
    /// Commands with the id their reply carries.
    pub commands: mpsc::Receiver<(u64, Command)>,
    /// Replies.
    pub replies: mpsc::Sender<(u64, CommandResult)>,
    /// Calls whose browser went away (its WebRTC leg lost ICE consent), for the signalling
    /// side to hang up; None where no one listens.
    pub browsers_gone: Option<mpsc::Sender<String>>,
}

/// The sessions and the sockets of their ports: what the data path decides with.
pub(super) struct State {
    pub(super) calls: Calls,
    pub(super) sockets: HashMap<u16, mio::net::UdpSocket>,
    /// Where ports' datagrams are received: one for all, used under the lock (a 64 KiB
    /// buffer per port would be 128 MB at 1,000 streams).
    pub(super) buffer: Vec<u8>,
    /// How the ports are bound (the first one's address): IPv4, IPv6, or dual-stack [::].
    pub(super) bound: Option<SocketAddr>,
}

/// Locked for one decision (a task that panicked leaves it usable: each decision leaves it
/// consistent).
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Relays media on ports of `listen` for calls controlled by the ng protocol on `control`
/// and/or by `in_process` commands, until a socket fails (or both controls are gone).
pub async fn serve_relay(
    control: Option<UdpSocket>,
    mut in_process: Option<InProcess>,
    calls: Calls,
    listen: IpAddr,
    counts: Arc<RelayCounts>,
) -> std::io::Result<()> {
    let reserved = datapath::Reserved::default();
    let mut calls = calls;
    calls
        .relay()
        .set_port_check(datapath::port_check(Arc::clone(&reserved), listen));
    let state = Arc::new(Mutex::new(State {
        calls,
        sockets: HashMap::new(),
        buffer: vec![0u8; 65_536],
        bound: None,
    }));
    let data = DataPath::start(Arc::clone(&state), Arc::clone(&counts), reserved)?;
    let mut buf = vec![0u8; ng::MAX_REQUEST];
    // One timer, moved only when the relay's next deadline moves: resetting it on every
    // command would cost a timer-wheel removal and insertion each.
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = lock(&state).calls.relay().poll_timeout();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at.into());
            }
            armed = wake;
        }
        tokio::select! {
            received = recv_control(control.as_ref(), &mut buf) => {
                let (n, from) = received?;
                let reply = ng::handle(&mut lock(&state).calls, now(), &buf[..n]);
                if let (Some(control), Some(reply)) = (&control, reply) {
                    if let Err(e) = control.send_to(&reply, from).await {
                        tracing::debug!(error = %e, %from, "could not answer a control request");
                    }
                }
            }
            command = recv_command(in_process.as_mut()) => {
                let Some((id, command)) = command else {
                    // The process that commanded us is gone: so is our reason to run.
                    if control.is_none() {
                        return Ok(());
                    }
                    in_process = None;
                    continue;
                };
                let result = lock(&state).calls.command(now(), &command);
                if let Some(p) = &in_process {
                    let _ = p.replies.send((id, result)).await;
                }
            }
            () = &mut timer, if armed.is_some() => {
                let mut s = lock(&state);
                let ended = s.calls.relay().handle_timeout(now());
                if !ended.is_empty() {
                    tracing::info!(sessions = ended.len(), "media sessions ended idle");
                    s.calls.forget_sessions(&ended);
                }
                // Fired: re-armed even if the next deadline is the same instant.
                armed = None;
            }
            _ = refresh.tick() => {
                let live = lock(&state).calls.reports(now());
                *counts.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = live;
            }
        }
        // Browsers gone are seen by the data path; told here, within the refresh's second.
        let gone: Vec<String> =
            std::iter::from_fn(|| lock(&state).calls.poll_browser_gone()).collect();
        if let Some(tell) = in_process.as_ref().and_then(|p| p.browsers_gone.as_ref()) {
            for call_id in gone {
                tracing::info!(%call_id, "a browser's media went away: the call is hung up");
                let _ = tell.send(call_id).await;
            }
        }
        sync_ports(&state, &data, listen);
        // One lock for the ended calls' reports and the count: the data path waits on it.
        let mut s = lock(&state);
        counts.ended_calls(&mut s.calls);
        counts.calls.store(s.calls.len() as u64, Ordering::Relaxed);
    }
}

/// The next control datagram; never, without a control socket.
async fn recv_control(
    control: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match control {
        Some(c) => c.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The next in-process command; never, without them.
async fn recv_command(in_process: Option<&mut InProcess>) -> Option<(u64, Command)> {
    match in_process {
        Some(p) => p.commands.recv().await,
        None => std::future::pending().await,
    }
}

/// Binds the ports sessions took and closes the ones they gave back.
fn sync_ports(state: &Mutex<State>, data: &DataPath, listen: IpAddr) {
    let mut s = lock(state);
    while let Some((port, open)) = s.calls.relay().poll_port_event() {
        if !open {
            data.close(&mut s, port);
            continue;
        }
        if let Err(e) = data.open(&mut s, SocketAddr::new(listen, port)) {
            // Someone else holds it: that leg gets no media, and the log says why.
            tracing::warn!(error = %e, port, "could not bind a relay port");
        }
    }
}

//! The relay's sockets: the ng control socket, and one UDP socket per relay port, bound when a
//! session takes the port and closed when it gives it back. Every datagram goes through the
//! sans-IO [`Calls`]/[`crate::relay::Relay`]; this loop only moves bytes and time.

use crate::control::{Calls, Command, CommandResult, ng};
use crate::relay::{Dropped, Forward};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// One bound relay port: its socket and the task reading it.
struct Port {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

/// Commands from inside the process, each answered on `replies` with its id.
pub struct InProcess {
    /// Commands with the id their reply carries.
    pub commands: mpsc::Receiver<(u64, Command)>,
    /// Replies.
    pub replies: mpsc::Sender<(u64, CommandResult)>,
}

/// Relays media on ports of `listen` for calls controlled by the ng protocol on `control`
/// and/or by `in_process` commands, until a socket fails (or both controls are gone).
pub async fn serve_relay(
    control: Option<UdpSocket>,
    mut in_process: Option<InProcess>,
    mut calls: Calls,
    listen: IpAddr,
    counts: &RelayCounts,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(u16, SocketAddr, Vec<u8>)>(8192);
    let mut ports: HashMap<u16, Port> = HashMap::new();
    let mut buf = vec![0u8; ng::MAX_REQUEST];
    // One timer, moved only when the relay's next deadline moves: resetting it on every
    // packet would cost a timer-wheel removal and insertion per packet relayed.
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let wake = calls.relay().poll_timeout();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at.into());
            }
            armed = wake;
        }
        tokio::select! {
            received = recv_control(control.as_ref(), &mut buf) => {
                let (n, from) = received?;
                if let (Some(control), Some(reply)) = (&control, ng::handle(&mut calls, now(), &buf[..n])) {
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
                let result = calls.command(now(), &command);
                if let Some(p) = &in_process {
                    let _ = p.replies.send((id, result)).await;
                }
            }
            Some((port, source, packet)) = rx.recv() => {
                match calls.relay().handle(now(), port, source, &packet) {
                    Forward::To { from, to } => {
                        if let Some(p) = ports.get(&from) {
                            // A full socket buffer drops the packet, as the network would.
                            let _ = p.socket.try_send_to(&packet, to);
                            counts.forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Forward::Drop(why) => {
                        let counter = match why {
                            Dropped::WrongSource => &counts.wrong_source,
                            Dropped::Malformed => &counts.malformed,
                            Dropped::UnknownPort | Dropped::NoDestination => &counts.undeliverable,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            () = &mut timer, if armed.is_some() => {
                let ended = calls.relay().handle_timeout(now());
                if !ended.is_empty() {
                    tracing::info!(sessions = ended.len(), "media sessions ended idle");
                    calls.forget_sessions(&ended);
                }
                // Fired: re-armed even if the next deadline is the same instant.
                armed = None;
            }
        }
        sync_ports(&mut calls, &mut ports, listen, &tx).await;
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
async fn sync_ports(
    calls: &mut Calls,
    ports: &mut HashMap<u16, Port>,
    listen: IpAddr,
    tx: &mpsc::Sender<(u16, SocketAddr, Vec<u8>)>,
) {
    while let Some((port, open)) = calls.relay().poll_port_event() {
        if !open {
            if let Some(p) = ports.remove(&port) {
                p.reader.abort();
            }
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(listen, port)).await {
            Ok(socket) => {
                let socket = Arc::new(socket);
                let reader = tokio::spawn(read_port(Arc::clone(&socket), port, tx.clone()));
                ports.insert(port, Port { socket, reader });
            }
            // Someone else holds it: that leg gets no media, and the log says why.
            Err(e) => tracing::warn!(error = %e, port, "could not bind a relay port"),
        }
    }
}

/// Reads one relay port and hands each datagram to the loop.
async fn read_port(
    socket: Arc<UdpSocket>,
    port: u16,
    tx: mpsc::Sender<(u16, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, source)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if tx.send((port, source, buf[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

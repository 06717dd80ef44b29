//! TURN's sockets: the server socket (STUN and TURN from clients) and one socket per relayed
//! port, bound when an allocation takes the port and closed when it ends. The sans-IO
//! [`TurnServer`] sits behind a mutex that no one holds across an await: each socket's task
//! locks it for one decision, then sends without waiting (a full buffer drops the datagram,
//! as the network would). Payloads are not copied on the channel path.

use crate::turn::{CHANNEL_HEADROOM, Dropped, FromClient, ToClient, TurnServer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What the TURN server relayed and dropped (for metrics, issue #11).
#[derive(Debug, Default)]
pub struct TurnCounts {
    /// Datagrams relayed from clients to peers.
    pub to_peers: AtomicU64,
    /// Datagrams relayed from peers to clients.
    pub to_clients: AtomicU64,
    /// Dropped: neither STUN nor ChannelData, or undecodable.
    pub malformed: AtomicU64,
    /// Dropped: no allocation, permission or channel for them.
    pub unpermitted: AtomicU64,
    /// Dropped: responses and indications other than Send.
    pub not_a_request: AtomicU64,
}

impl TurnCounts {
    fn dropped(&self, why: Dropped) {
        let counter = match why {
            Dropped::NotTurn | Dropped::Malformed => &self.malformed,
            Dropped::NoAllocation | Dropped::NoPermission | Dropped::NoChannel => &self.unpermitted,
            Dropped::NotARequest => &self.not_a_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// The server, locked for one decision (a task that panicked leaves it usable: every
/// decision leaves it consistent).
fn lock(shared: &Shared) -> MutexGuard<'_, Locked> {
    shared
        .locked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The server and the buffer peers' datagrams are received in: one for all relayed ports,
/// used under the lock (a 64 KiB buffer per allocation would add up).
struct Locked {
    server: TurnServer,
    buffer: Vec<u8>,
}

/// What every relayed port's task shares.
struct Shared {
    locked: Mutex<Locked>,
    socket: UdpSocket,
    counts: Arc<TurnCounts>,
}

/// Serves STUN and TURN on `socket` until it fails.
pub async fn serve_turn(
    socket: UdpSocket,
    server: TurnServer,
    counts: Arc<TurnCounts>,
) -> std::io::Result<()> {
    let relay_ip = server.relay_ip();
    let shared = Arc::new(Shared {
        locked: Mutex::new(Locked {
            server,
            buffer: vec![0u8; CHANNEL_HEADROOM + 65_536],
        }),
        socket,
        counts,
    });
    let mut ports: HashMap<u16, (Arc<UdpSocket>, JoinHandle<()>)> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let wake = lock(&shared).server.poll_timeout();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at.into());
            }
            armed = wake;
        }
        tokio::select! {
            received = shared.socket.recv_from(&mut buf) => {
                let (n, client) = received?;
                client_datagram(&shared, &mut ports, relay_ip, client, &buf[..n]);
            }
            () = &mut timer, if armed.is_some() => {
                lock(&shared).server.handle_timeout(now());
                armed = None;
            }
        }
        let mut locked = lock(&shared);
        while let Some(port) = locked.server.poll_closed_port() {
            if let Some((_, reader)) = ports.remove(&port) {
                reader.abort();
            }
        }
    }
}

/// One datagram from a client: answered, relayed, or an allocation's port bound.
fn client_datagram(
    shared: &Arc<Shared>,
    ports: &mut HashMap<u16, (Arc<UdpSocket>, JoinHandle<()>)>,
    relay_ip: std::net::IpAddr,
    client: SocketAddr,
    packet: &[u8],
) {
    let mut locked = lock(shared);
    let server = &mut locked.server;
    let counts = &shared.counts;
    // An answer we could not encode is empty: nothing is sent (the bug is logged where found).
    let answer = |bytes: &[u8]| {
        if !bytes.is_empty() {
            let _ = shared.socket.try_send_to(bytes, client);
        }
    };
    match server.handle_client(now(), super::wall_clock(), client, packet) {
        FromClient::Reply(bytes) => answer(&bytes),
        FromClient::Relay {
            port,
            peer,
            payload,
        } => {
            if let Some((socket, _)) = ports.get(&port) {
                let _ = socket.try_send_to(&payload, peer);
                counts.to_peers.fetch_add(1, Ordering::Relaxed);
            }
        }
        FromClient::Bind(mut pending) => loop {
            let port = pending.port;
            match bind(SocketAddr::new(relay_ip, port)) {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    let reader =
                        tokio::spawn(read_peers(Arc::clone(shared), Arc::clone(&socket), port));
                    ports.insert(port, (socket, reader));
                    answer(&server.allocated(now(), pending));
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, port, "could not bind a TURN relayed port");
                    match server.port_unavailable(pending) {
                        Ok(next) => pending = next,
                        Err(refusal) => {
                            answer(&refusal);
                            break;
                        }
                    }
                }
            }
        },
        FromClient::Drop(why) => counts.dropped(why),
    }
}

/// A relayed port's socket, bound now (the answer to the Allocate waits on it).
fn bind(at: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(at)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Reads a relayed port: each peer datagram goes to the client, ChannelData framed in place.
async fn read_peers(shared: Arc<Shared>, socket: Arc<UdpSocket>, port: u16) {
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let mut locked = lock(&shared);
        let Locked { server, buffer } = &mut *locked;
        let (n, peer) = match socket.try_recv_from(&mut buffer[CHANNEL_HEADROOM..]) {
            Ok(received) => received,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        match server.handle_peer(now(), port, peer, &mut buffer[..CHANNEL_HEADROOM + n]) {
            ToClient::Send { client, bytes } => {
                let _ = shared.socket.try_send_to(&bytes, client);
                shared.counts.to_clients.fetch_add(1, Ordering::Relaxed);
            }
            ToClient::Drop(why) => shared.counts.dropped(why),
        }
    }
}

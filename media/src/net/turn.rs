//! TURN's sockets: the server socket (STUN and TURN from clients over UDP), its TCP listeners
//! and their connections (`turn_streams.rs`), and one socket per relayed port, bound when an
//! allocation takes the port and closed when it ends, all on one thread over one epoll (mio),
//! as the relay's data path (`datapath.rs`): the sans-IO [`TurnServer`] is that thread's
//! alone, so nothing is locked, and its timers are the poll's timeout. Payloads are not copied
//! on the UDP channel path; a full socket buffer drops the datagram, as the network would.

use super::datapath::{FAIR_SHARE, STOP, this_round};
use super::turn_streams::{Connection, FIRST_CONNECTION, MAX_CONNECTIONS};
use crate::turn::{
    CHANNEL_HEADROOM, ClientAddr, Dropped, FromClient, PendingAllocation, ToClient, TurnServer,
};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// The token of the server socket (relayed ports use their numbers, TCP listeners the tokens
/// below this one, connections those from [`FIRST_CONNECTION`]).
const SERVER: Token = Token(usize::MAX - 1);

/// The token of the IPv6 server socket, when there is one beside the first.
const SERVER_V6: Token = Token(usize::MAX - 2);

/// The sockets TURN serves clients on.
pub struct TurnSockets {
    /// STUN and TURN over UDP.
    pub udp: std::net::UdpSocket,
    /// A second UDP socket, of the other family (IPv6 clients beside IPv4 ones).
    pub udp_v6: Option<std::net::UdpSocket>,
    /// TCP listeners: each takes plain TURN and, with `tls`, TURN over TLS.
    pub streams: Vec<std::net::TcpListener>,
    /// Our certificate for TLS clients.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a TCP or TLS connection may stay without an allocation before it is closed
    /// (a client that connects and says nothing must not hold a socket for ever).
    pub stream_idle: Duration,
}

/// [`TurnSockets::stream_idle`] unless set otherwise.
pub const STREAM_IDLE: Duration = Duration::from_secs(30);

/// The token of the `i`th TCP listener.
fn listener_token(i: usize) -> Token {
    Token(SERVER_V6.0 - 1 - i)
}

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Serves STUN and TURN on `sockets` until one fails (or this future is dropped).
pub async fn serve_turn(
    sockets: TurnSockets,
    server: TurnServer,
    counts: Arc<TurnCounts>,
) -> io::Result<()> {
    let poll = Poll::new()?;
    let stopper = Stopper {
        waker: Waker::new(poll.registry(), STOP)?,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let stop = Arc::clone(&stopper.stop);
    let (done_tx, done) = tokio::sync::oneshot::channel();
    #[allow(clippy::disallowed_methods)] // TURN's sockets are a thread of their own, on purpose
    std::thread::Builder::new()
        .name("turn".into())
        .spawn(move || {
            let _ = done_tx.send(run(poll, sockets, server, &counts, &stop));
        })?;
    let ended = done.await.unwrap_or(Ok(()));
    drop(stopper);
    ended
}

/// Stops the thread when the future serving TURN is dropped.
struct Stopper {
    waker: Waker,
    stop: Arc<AtomicBool>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

/// The thread's state: the server, its sockets, the one receive buffer.
struct Turn<'a> {
    server: TurnServer,
    listener: UdpSocket,
    listener_v6: Option<UdpSocket>,
    relayed: HashMap<u16, UdpSocket>,
    streams: Vec<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: HashMap<Token, Connection>,
    /// Stream clients' connections by their address.
    by_client: HashMap<SocketAddr, Token>,
    next_connection: usize,
    stream_idle: Duration,
    buffer: Vec<u8>,
    counts: &'a TurnCounts,
}

fn run(
    mut poll: Poll,
    sockets: TurnSockets,
    server: TurnServer,
    counts: &TurnCounts,
    stop: &AtomicBool,
) -> io::Result<()> {
    enlarge_buffers(&sockets.udp);
    sockets.udp.set_nonblocking(true)?;
    let mut listener = UdpSocket::from_std(sockets.udp);
    poll.registry()
        .register(&mut listener, SERVER, Interest::READABLE)?;
    let mut listener_v6 = None;
    if let Some(v6) = sockets.udp_v6 {
        enlarge_buffers(&v6);
        v6.set_nonblocking(true)?;
        let mut v6 = UdpSocket::from_std(v6);
        poll.registry()
            .register(&mut v6, SERVER_V6, Interest::READABLE)?;
        listener_v6 = Some(v6);
    }
    let mut streams = Vec::new();
    for (i, s) in sockets.streams.into_iter().enumerate() {
        s.set_nonblocking(true)?;
        let mut s = TcpListener::from_std(s);
        poll.registry()
            .register(&mut s, listener_token(i), Interest::READABLE)?;
        streams.push(s);
    }
    let mut turn = Turn {
        server,
        listener,
        listener_v6,
        relayed: HashMap::new(),
        streams,
        tls: sockets.tls,
        connections: HashMap::new(),
        by_client: HashMap::new(),
        next_connection: FIRST_CONNECTION,
        stream_idle: sockets.stream_idle,
        buffer: vec![0u8; CHANNEL_HEADROOM + 65_536],
        counts,
    };
    let mut events = Events::with_capacity(1024);
    let mut unfinished: VecDeque<Token> = VecDeque::new();
    loop {
        let due = turn.server.poll_timeout();
        let wait = if unfinished.is_empty() {
            let due = due.map(|at| at.saturating_duration_since(now()));
            // With connections open, look at them at least this often for idle ones.
            let sweep = (!turn.connections.is_empty()).then_some(turn.stream_idle / 4);
            match (due, sweep) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        } else {
            Some(Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, wait) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if due.is_some_and(|at| at <= now()) {
            turn.server.handle_timeout(now());
        }
        for token in this_round(&events, &mut unfinished) {
            let drained = if token == SERVER || token == SERVER_V6 {
                turn.clients(poll.registry(), token == SERVER_V6)
            } else if token.0 >= FIRST_CONNECTION && token.0 < listener_token(turn.streams.len()).0
            {
                turn.connection(poll.registry(), token)
            } else if token.0 > listener_token(turn.streams.len()).0 && token.0 < SERVER_V6.0 {
                turn.accept(poll.registry(), SERVER_V6.0 - 1 - token.0)
            } else {
                u16::try_from(token.0).is_ok_and(|port| turn.peers(poll.registry(), port))
            };
            if !drained {
                unfinished.push_back(token);
            }
        }
        turn.close_idle(poll.registry());
        while let Some(port) = turn.server.poll_closed_port() {
            if let Some(mut socket) = turn.relayed.remove(&port) {
                let _ = poll.registry().deregister(&mut socket);
            }
        }
    }
}

impl Turn<'_> {
    /// Clients' datagrams on the first server socket or the IPv6 one, up to [`FAIR_SHARE`]:
    /// answered, relayed, or an allocation's port bound. Whether the socket is drained.
    fn clients(&mut self, registry: &Registry, v6: bool) -> bool {
        let wall = super::wall_clock();
        let socket = match (v6, &self.listener_v6) {
            (true, Some(s)) => s,
            (true, None) => return true,
            (false, _) => &self.listener,
        };
        for _ in 0..FAIR_SHARE {
            let (n, client) = match socket.recv_from(&mut self.buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => continue,
            };
            match self
                .server
                .handle_client(now(), wall, ClientAddr::udp(client), &self.buffer[..n])
            {
                FromClient::Reply(bytes) => answer(socket, &bytes, client),
                FromClient::Relay {
                    port,
                    peer,
                    payload,
                } => to_peer(&self.relayed, self.counts, (port, peer), &payload),
                FromClient::Bind(mut pending) => {
                    pending.name_relay(local_toward(client));
                    let reply = bind(&mut self.server, &mut self.relayed, registry, pending);
                    answer(socket, &reply, client);
                }
                FromClient::Drop(why) => self.counts.dropped(why),
            }
        }
        false
    }

    /// A relayed port's datagrams from peers, up to [`FAIR_SHARE`], to the client with
    /// ChannelData framed in place. Whether the socket is drained.
    fn peers(&mut self, registry: &Registry, port: u16) -> bool {
        for _ in 0..FAIR_SHARE {
            let Some(socket) = self.relayed.get(&port) else {
                return true;
            };
            let (n, peer) = match socket.recv_from(&mut self.buffer[CHANNEL_HEADROOM..]) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => continue,
            };
            let datagram = &mut self.buffer[..CHANNEL_HEADROOM + n];
            let mut broken = None;
            match self.server.handle_peer(now(), port, peer, datagram) {
                ToClient::Send { client, bytes } if client.is_stream() => {
                    let Some(&token) = self.by_client.get(&client.addr) else {
                        continue;
                    };
                    match queue_on(&mut self.connections, registry, token, &bytes) {
                        Ok(true) => {
                            self.counts.to_clients.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(e) => broken = Some((token, e)),
                    }
                }
                ToClient::Send { client, bytes } => {
                    let socket = match &self.listener_v6 {
                        Some(v6) if client.addr.is_ipv6() => v6,
                        _ => &self.listener,
                    };
                    let _ = socket.send_to(&bytes, client.addr);
                    self.counts.to_clients.fetch_add(1, Ordering::Relaxed);
                }
                ToClient::Drop(why) => self.counts.dropped(why),
            }
            if let Some((token, e)) = broken {
                if let Some(c) = self.connections.remove(&token) {
                    self.close(registry, c, &e);
                }
            }
        }
        false
    }
}

impl Turn<'_> {
    /// New connections on the `i`th TCP listener, up to [`FAIR_SHARE`]. Whether it is drained.
    fn accept(&mut self, registry: &Registry, i: usize) -> bool {
        for _ in 0..FAIR_SHARE {
            let Some(listener) = self.streams.get(i) else {
                return true;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => continue,
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                tracing::warn!(%peer, "TURN connection refused: too many open");
                continue;
            }
            let token = Token(self.next_connection);
            self.next_connection += 1;
            match Connection::accept(registry, stream, peer, token, now()) {
                Ok(c) => {
                    self.by_client.insert(peer, token);
                    self.connections.insert(token, c);
                }
                Err(e) => tracing::debug!(%peer, error = %e, "TURN connection dropped"),
            }
        }
        false
    }

    /// A connection is readable or writable: its frames handled, its queue written; closed
    /// (and its allocation ended) when it is over. Whether it is drained.
    fn connection(&mut self, registry: &Registry, token: Token) -> bool {
        let Some(mut c) = self.connections.remove(&token) else {
            return true;
        };
        let wall = super::wall_clock();
        let read = c.read(self.tls.as_ref(), &mut self.buffer, FAIR_SHARE / 16);
        let (frames, drained) = match read {
            Ok(read) => read,
            Err(e) => {
                self.close(registry, c, &e);
                return true;
            }
        };
        for frame in &frames {
            match self.server.handle_client(now(), wall, c.client, frame) {
                FromClient::Reply(bytes) => {
                    c.queue(&bytes, false);
                }
                FromClient::Relay {
                    port,
                    peer,
                    payload,
                } => to_peer(&self.relayed, self.counts, (port, peer), &payload),
                FromClient::Bind(mut pending) => {
                    pending.name_relay(c.local_ip());
                    let reply = bind(&mut self.server, &mut self.relayed, registry, pending);
                    c.queue(&reply, false);
                }
                FromClient::Drop(why) => self.counts.dropped(why),
            }
        }
        if let Err(e) = c.flush().and_then(|()| c.reregister(registry)) {
            self.close(registry, c, &e);
            return true;
        }
        self.connections.insert(token, c);
        drained
    }

    /// Closes the connections that went [`TurnSockets::stream_idle`] without an allocation.
    fn close_idle(&mut self, registry: &Registry) {
        let at = now();
        let idle: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                at.saturating_duration_since(c.since) >= self.stream_idle
                    && !self.server.has_allocation(c.client)
            })
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            if let Some(c) = self.connections.remove(&token) {
                self.close(registry, c, &io::Error::other("no allocation in time"));
            }
        }
    }

    /// Ends a connection and, with it, its allocation (RFC 8656 3.1).
    fn close(&mut self, registry: &Registry, c: Connection, why: &io::Error) {
        tracing::debug!(client = %c.client.addr, error = %why, "TURN connection closed");
        self.by_client.remove(&c.client.addr);
        self.server.client_gone(c.client);
        c.close(registry);
    }
}

/// Sends a client's payload from relayed port `port` to `peer`, counted.
fn to_peer(
    relayed: &HashMap<u16, UdpSocket>,
    counts: &TurnCounts,
    (port, peer): (u16, SocketAddr),
    payload: &[u8],
) {
    if let Some(socket) = relayed.get(&port) {
        let _ = socket.send_to(payload, peer);
        counts.to_peers.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues a peer's datagram on a stream client's connection and writes what it can: whether
/// it was queued, or Err when the connection broke.
fn queue_on(
    connections: &mut HashMap<Token, Connection>,
    registry: &Registry,
    token: Token,
    bytes: &[u8],
) -> io::Result<bool> {
    let Some(c) = connections.get_mut(&token) else {
        return Ok(false);
    };
    let queued = c.queue(bytes, true);
    c.flush()?;
    c.reregister(registry)?;
    Ok(queued)
}

/// The address this host sends to `peer` from (the routing table's choice): what a relayed
/// port bound to a wildcard is named by, so a client is never told 0.0.0.0.
fn local_toward(peer: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect(peer).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

/// Binds a pending allocation's ports (others when one is held elsewhere): the answer.
fn bind(
    server: &mut TurnServer,
    relayed: &mut HashMap<u16, UdpSocket>,
    registry: &Registry,
    mut pending: PendingAllocation,
) -> Vec<u8> {
    loop {
        let mut bound = Vec::new();
        let mut failed = None;
        for at in pending.binds(server) {
            match open(registry, at) {
                Ok(socket) => bound.push((at.port(), socket)),
                Err(e) => {
                    failed = Some((at, e));
                    break;
                }
            }
        }
        let Some((at, e)) = failed else {
            relayed.extend(bound);
            return server.allocated(now(), pending);
        };
        tracing::warn!(error = %e, %at, "could not bind a TURN relayed port");
        for (_, mut socket) in bound {
            let _ = registry.deregister(&mut socket);
        }
        match server.port_unavailable(pending) {
            Ok(next) => pending = next,
            Err(refusal) => return refusal,
        }
    }
}

/// A relayed port's socket, bound and read by the thread.
fn open(registry: &Registry, at: SocketAddr) -> io::Result<UdpSocket> {
    let mut socket = UdpSocket::bind(at)?;
    registry.register(
        &mut socket,
        Token(usize::from(at.port())),
        Interest::READABLE,
    )?;
    Ok(socket)
}

/// Every client's datagrams share the server socket, and a tick of 200 clients sending at
/// once overflowed the default 208 KiB (uclient saw 0.05 % lost at 10,000 datagrams a second):
/// 4 MiB, as the SIP sockets have, or what the kernel grants.
fn enlarge_buffers(socket: &std::net::UdpSocket) {
    const BYTES: usize = 4 << 20;
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s
        .set_recv_buffer_size(BYTES)
        .and_then(|()| s.set_send_buffer_size(BYTES))
    {
        tracing::warn!(error = %e, "could not enlarge the TURN socket's buffers");
    }
}

/// Sends an answer; one we could not encode is empty and not sent (the bug is logged where
/// found).
fn answer(listener: &UdpSocket, bytes: &[u8], client: SocketAddr) {
    if !bytes.is_empty() {
        let _ = listener.send_to(bytes, client);
    }
}

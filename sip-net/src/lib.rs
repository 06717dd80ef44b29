//! The network around `openline-sip`: sockets in, [`Received`] messages out on one channel, and
//! a [`Sender`] that puts the endpoint's transmits on the right socket or connection.
//! All protocol decisions stay in the sans-IO core; this crate only moves bytes.

mod addresses;
mod admission;
mod bind;
mod dns;
pub mod fuzz;
pub mod hep;
mod listen;
mod stream;
mod tls;
mod tls_check;
mod udp;
mod websocket;

pub use addresses::{LocalAddresses, canonical};
pub use bind::{BindError, ipv6_available};
pub use dns::{LocateError, Locator};
pub use listen::{ListenSpec, ListenSpecError};
pub use tls::{PeerIdentity, Tls, TlsError, TlsFiles};
pub use tls_check::{CertFinding, EXPIRY_WARNING, check_certificate};
pub use websocket::WebSocketPolicy;

use openline_sip::Transport;
use openline_sip::endpoint::Transmit;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// One message from the network: a datagram, or one framed message from a stream.
#[derive(Debug)]
pub struct Received {
    /// How it came.
    pub transport: Transport,
    /// From whom.
    pub source: SocketAddr,
    /// To which of our addresses (a wildcard socket's datagrams say which address they came to).
    pub local: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
    /// Over TLS, the certificate the peer proved (another domain's server), if it gave one.
    pub peer: Option<Arc<PeerIdentity>>,
}

/// Limits that keep one peer from hurting the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most stream connections accepted at once (handshakes included).
    pub max_connections: usize,
    /// Most of them from one source address (the allow-list's excepted).
    pub max_per_source: usize,
    /// Most TLS and WebSocket handshakes in flight.
    pub tls_handshakes: usize,
    /// Sources limits per source never apply to (loopback always).
    pub allow: openline_guard::AllowList,
    /// A refusal repeated by one source is logged once per this window.
    pub log_window: std::time::Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Depth of the channel to the core; UDP datagrams beyond it are dropped.
    pub queue: usize,
    /// Receive and send buffer asked for on UDP sockets (the kernel caps it at rmem_max): a
    /// burst the default ~200 KB cannot hold is dropped before we see it (seen at 8,000
    /// REGISTER/s).
    pub udp_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_per_source: 64,
            tls_handshakes: 128,
            allow: openline_guard::AllowList::default(),
            log_window: std::time::Duration::from_secs(60),
            idle_timeout: std::time::Duration::from_secs(600),
            queue: 8192,
            udp_buffer: 4 << 20,
        }
    }
}

/// A stream connection: the sending half of its writer task, and over TLS who the peer proved
/// to be.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) writer: mpsc::Sender<Arc<[u8]>>,
    pub(crate) identity: Option<Arc<PeerIdentity>>,
    /// An accepted connection's place in the limits, given back when it is forgotten.
    pub(crate) _slot: Option<admission::Slot>,
    /// An outgoing TLS connection still shaking hands, and the name it is verifying: what is
    /// sent for that name meanwhile queues on it rather than opening another.
    pub(crate) verifying: Option<Arc<str>>,
    /// The peer stopped sending (it closed or reset): answers to what it sent may still go
    /// out for a moment, but a new request would most likely be lost on it (a restarted
    /// peer), so requests open a fresh connection instead.
    pub(crate) closing: bool,
}

/// Stream connections by transport and peer address.
pub(crate) type Connections = Arc<Mutex<HashMap<(Transport, SocketAddr), Connection>>>;

/// Sends transmits; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    /// UDP sockets, in the order bound.
    udp: Vec<udp::UdpPort>,
    shared: stream::Shared,
    tls: Option<tls::TlsSlot>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("udp", &self.udp.len())
            .finish_non_exhaustive()
    }
}

/// The bound sockets.
#[derive(Debug)]
pub struct Network {
    /// Every message received, from every socket and connection.
    pub inbound: mpsc::Receiver<Received>,
    /// Sends what the endpoint emits.
    pub sender: Sender,
    /// Stream transmits that could not be sent after all (the connection could not be opened),
    /// for the transaction layer to hear of (RFC 3261 17.1.4).
    pub failed: mpsc::Receiver<Transmit>,
    /// Stream connections that ended (the peer closed or reset it): requests sent over one
    /// that heard nothing back were lost with it (RFC 3261 18.4).
    pub closed: mpsc::Receiver<openline_sip::transaction::Destination>,
    /// The addresses actually bound (port 0 resolved), in the order given.
    pub local: Vec<(Transport, SocketAddr)>,
    /// What each listener advertises instead of its address (`advertise`), in the same order.
    pub advertised: Vec<Option<SocketAddr>>,
    /// This machine's addresses, and which one each peer is reached from.
    pub addresses: LocalAddresses,
}

/// Why a transmit could not go out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No socket of that transport and address family.
    #[error("no {0} socket for {1}")]
    NoSocket(Transport, SocketAddr),
    /// The operating system refused.
    #[error("sending to {0}: {1}")]
    Io(SocketAddr, io::Error),
    /// The connection's queue is full or it just closed.
    #[error("connection to {0} is gone or congested")]
    Connection(SocketAddr),
    /// The device's connection is gone, and it is not ours to open again.
    #[error("the connection from {0} is gone")]
    FlowGone(SocketAddr),
    /// A TLS connection must be opened, and nobody said what name the peer must prove.
    #[error("no domain name to verify the TLS server at {0} against")]
    NoName(SocketAddr),
    /// Certificates were given to a server that started without TLS.
    #[error("the server started without TLS: adding it needs a restart")]
    NoTls,
}

/// Binds every listen address and starts the receive tasks on the current runtime; `tls` is
/// needed for TLS and WSS listeners and for connecting to TLS servers; `websocket` says who
/// may use the WS/WSS ones.
pub async fn bind(
    specs: &[ListenSpec],
    limits: Limits,
    tls: Option<Tls>,
    websocket: WebSocketPolicy,
) -> io::Result<Network> {
    let websocket = Arc::new(websocket);
    let tls = tls.map(tls::TlsSlot::new);
    let (tx, rx) = mpsc::channel(limits.queue);
    let (failed_tx, failed_rx) = mpsc::channel(1024);
    let (closed_tx, closed_rx) = mpsc::channel(1024);
    let addresses = LocalAddresses::read();
    let admission = admission::Admission::new(limits.clone());
    tokio::spawn(Arc::clone(&admission).sweep());
    let udp_buffer = limits.udp_buffer;
    let shared = stream::Shared {
        inbound: tx.clone(),
        connections: Arc::default(),
        failed: failed_tx,
        closed: closed_tx,
        limits,
        addresses: addresses.clone(),
        admission,
    };
    let mut udp_ports = Vec::new();
    let mut local = Vec::new();
    for spec in specs {
        match spec.transport {
            Transport::Udp => {
                let socket = bind::udp(spec, &addresses)?;
                udp::enlarge_buffers(&socket, udp_buffer);
                let port = udp::UdpPort::new(socket, addresses.clone())?;
                local.push((Transport::Udp, port.bound));
                udp_ports.push(port);
            }
            t @ (Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss) => {
                let secure = matches!(t, Transport::Tls | Transport::Wss);
                let tls = if secure {
                    Some(tls.clone().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!(
                                "listening on {}:{} needs a certificate and key",
                                t.as_via().to_ascii_lowercase(),
                                spec.addr
                            ),
                        )
                    })?)
                } else {
                    None
                };
                let listener = bind::tcp(spec, &addresses)?;
                local.push((t, listener.local_addr()?));
                if matches!(t, Transport::Ws | Transport::Wss) {
                    let policy = Arc::clone(&websocket);
                    tokio::spawn(websocket::accept(listener, tls, shared.clone(), policy));
                } else {
                    tokio::spawn(stream::accept(listener, tls, shared.clone()));
                }
            }
        }
    }
    // Where each peer's datagrams arrive matters when there is more than one address to
    // answer from: a wildcard socket, or several sockets of one family.
    for i in 0..udp_ports.len() {
        let bound = udp_ports[i].bound;
        let siblings = udp_ports
            .iter()
            .filter(|p| p.bound.is_ipv4() == bound.is_ipv4())
            .count();
        udp_ports[i].remember = bound.ip().is_unspecified() || siblings > 1;
        tokio::spawn(udp::receive(udp_ports[i].clone(), tx.clone()));
    }
    // Addresses come and go (DHCP, a VPN, a phone's hotspot): read them again now and then.
    let refreshing = addresses.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let a = refreshing.clone();
            if let Ok(true) = tokio::task::spawn_blocking(move || a.refresh()).await {
                tracing::info!(addresses = ?refreshing.interfaces(), "interface addresses changed");
            }
        }
    });
    let sender = Sender {
        udp: udp_ports,
        shared,
        tls,
    };
    Ok(Network {
        inbound: rx,
        sender,
        failed: failed_rx,
        closed: closed_rx,
        local,
        advertised: specs.iter().map(|s| s.advertise).collect(),
        addresses,
    })
}

impl Sender {
    /// Puts new certificates in place for connections made from now on (SIGHUP); an error
    /// when the server started without TLS (adding it needs a restart: no TLS listener).
    pub fn reload_tls(&self, tls: Tls) -> Result<(), SendError> {
        match &self.tls {
            Some(slot) => {
                slot.replace(tls);
                Ok(())
            }
            None => Err(SendError::NoTls),
        }
    }

    /// Sends one transmit: UDP from a socket of the same family, streams over the connection
    /// to that peer (opening one if there is none: over TLS, to a server that proves
    /// `tls_name`), unless `connect` is false (a device's own connection, which cannot be
    /// opened from here). A new connection is opened in the background; if that fails, the
    /// transmit comes back on [`Network::failed`].
    pub async fn send(
        &self,
        transmit: &Transmit,
        tls_name: Option<&str>,
        connect: bool,
    ) -> Result<(), SendError> {
        let to = transmit.destination.addr;
        match transmit.destination.transport {
            Transport::Udp => {
                let port = self
                    .udp_port(to)
                    .ok_or(SendError::NoSocket(Transport::Udp, to))?;
                port.send(&transmit.payload, to)
                    .await
                    .map_err(|e| SendError::Io(to, e))?;
                Ok(())
            }
            t @ (Transport::Tcp | Transport::Tls) => {
                let payload = Arc::clone(&transmit.payload);
                stream::send(self, (t, to), payload, tls_name, connect)
            }
            // Browsers are reached over the socket they opened, never dialled.
            t @ (Transport::Ws | Transport::Wss) => {
                let payload = Arc::clone(&transmit.payload);
                stream::send(self, (t, to), payload, None, false)
            }
        }
    }

    /// The UDP socket to send to `to` from: the one bound to the address its packets came to,
    /// else the first of its family (a wildcard one sends from the right address itself).
    fn udp_port(&self, to: SocketAddr) -> Option<&udp::UdpPort> {
        let family = |p: &&udp::UdpPort| p.bound.is_ipv4() == to.is_ipv4();
        if self.udp.len() > 1 {
            if let Some(arrival) = self.shared.addresses.arrival(to) {
                if let Some(p) = self
                    .udp
                    .iter()
                    .filter(family)
                    .find(|p| p.bound.ip() == arrival)
                {
                    return Some(p);
                }
            }
        }
        self.udp.iter().find(family)
    }

    /// Closes every stream connection's writer, so their tasks end.
    pub fn close_connections(&self) {
        if let Ok(mut c) = self.shared.connections.lock() {
            c.clear();
        }
    }
}

//! The network around `openline-sip`: sockets in, [`Received`] messages out on one channel, and
//! a [`Sender`] that puts the endpoint's transmits on the right socket or connection.
//! All protocol decisions stay in the sans-IO core; this crate only moves bytes.

mod listen;
mod tcp;
mod udp;

pub use listen::{ListenSpec, ListenSpecError};

use openline_sip::Transport;
use openline_sip::endpoint::Transmit;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// One message from the network: a datagram, or one framed message from a stream.
#[derive(Debug)]
pub struct Received {
    /// How it came.
    pub transport: Transport,
    /// From whom.
    pub source: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Limits that keep one peer from hurting the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most simultaneous stream connections.
    pub max_connections: usize,
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
            idle_timeout: std::time::Duration::from_secs(600),
            queue: 8192,
            udp_buffer: 4 << 20,
        }
    }
}

/// Stream connections by peer address: each holds the sending half of its writer task.
pub(crate) type Connections = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Arc<[u8]>>>>>;

/// Sends transmits; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sender {
    /// UDP sockets with whether each is IPv4, learnt once at bind time.
    udp: Vec<(bool, Arc<UdpSocket>)>,
    connections: Connections,
    inbound: mpsc::Sender<Received>,
    limits: Limits,
}

/// The bound sockets.
#[derive(Debug)]
pub struct Network {
    /// Every message received, from every socket and connection.
    pub inbound: mpsc::Receiver<Received>,
    /// Sends what the endpoint emits.
    pub sender: Sender,
    /// The addresses actually bound (port 0 resolved), in the order given.
    pub local: Vec<(Transport, SocketAddr)>,
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
}

/// Binds every listen address and starts the receive tasks on the current runtime.
pub async fn bind(specs: &[ListenSpec], limits: Limits) -> io::Result<Network> {
    let (tx, rx) = mpsc::channel(limits.queue);
    let connections: Connections = Arc::default();
    let mut udp_sockets = Vec::new();
    let mut local = Vec::new();
    for spec in specs {
        match spec.transport {
            Transport::Udp => {
                let socket = UdpSocket::bind(spec.addr).await?;
                udp::enlarge_buffers(&socket, limits.udp_buffer);
                let socket = Arc::new(socket);
                let bound = socket.local_addr()?;
                local.push((Transport::Udp, bound));
                tokio::spawn(udp::receive(Arc::clone(&socket), tx.clone()));
                udp_sockets.push((bound.is_ipv4(), socket));
            }
            Transport::Tcp => {
                let listener = tokio::net::TcpListener::bind(spec.addr).await?;
                local.push((Transport::Tcp, listener.local_addr()?));
                tokio::spawn(tcp::accept(
                    listener,
                    tx.clone(),
                    Arc::clone(&connections),
                    limits,
                ));
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{other} listeners are not built yet"),
                ));
            }
        }
    }
    let sender = Sender {
        udp: udp_sockets,
        connections,
        inbound: tx,
        limits,
    };
    Ok(Network {
        inbound: rx,
        sender,
        local,
    })
}

impl Sender {
    /// Sends one transmit: UDP from a socket of the same family, streams over the connection
    /// to that peer (opening one if there is none).
    pub async fn send(&self, transmit: &Transmit) -> Result<(), SendError> {
        let to = transmit.destination.addr;
        match transmit.destination.transport {
            Transport::Udp => {
                // The family was learnt at bind time: no getsockname per datagram.
                let (_, socket) = self
                    .udp
                    .iter()
                    .find(|(v4, _)| *v4 == to.is_ipv4())
                    .ok_or(SendError::NoSocket(Transport::Udp, to))?;
                socket
                    .send_to(&transmit.payload, to)
                    .await
                    .map_err(|e| SendError::Io(to, e))?;
                Ok(())
            }
            Transport::Tcp => tcp::send(self, to, Arc::clone(&transmit.payload)).await,
            other => Err(SendError::NoSocket(other, to)),
        }
    }

    /// Closes every stream connection's writer, so their tasks end.
    pub fn close_connections(&self) {
        if let Ok(mut c) = self.connections.lock() {
            c.clear();
        }
    }
}

//! TURN's stream clients (RFC 8656 3.1): TCP connections, plain or TLS, so TURN works where
//! only TCP (often only 443) leaves. Each listener takes both: a connection whose first byte
//! opens a TLS handshake is TLS (when a certificate is configured), anything else plain, as
//! coturn does. Bytes are cut into STUN messages and ChannelData by `turn::framing`; what is
//! sent back is queued whole, so a slow reader loses datagrams, never the framing.

use crate::turn::framing::{self, Frame};
use crate::turn::{ClientAddr, ClientTransport};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// Bytes queued for a client beyond which relayed data is dropped (answers are still queued):
/// about half a second of a video call, far more than an audio call ever holds.
const QUEUE_LIMIT: usize = 256 * 1024;
/// Connections open at once; more are closed as they arrive.
pub(super) const MAX_CONNECTIONS: usize = 4096;
/// The first connection token; listeners and relayed ports sit below.
pub(super) const FIRST_CONNECTION: usize = 1 << 20;

/// What a connection speaks, once its first byte is known.
enum Speaks {
    /// Nothing read yet.
    Unknown,
    /// STUN and ChannelData as they are.
    Plain,
    /// Inside TLS.
    Tls(Box<rustls::ServerConnection>),
}

/// One client's connection: its socket, what it speaks, bytes read but not yet whole, bytes
/// to send.
pub(super) struct Connection {
    stream: TcpStream,
    token: Token,
    /// The client as its allocation knows it.
    pub(super) client: ClientAddr,
    /// When it was accepted, or last held an allocation.
    pub(super) since: std::time::Instant,
    speaks: Speaks,
    unread: Vec<u8>,
    /// Plaintext waiting for the socket (or for TLS to take it).
    queued: Vec<u8>,
    /// Whether the socket refused bytes on the last flush.
    blocked: bool,
    /// Whether WRITABLE is registered (something could not be written).
    waiting_to_write: bool,
}

/// A frame read from a connection: handled by the caller, whose answer goes back with
/// [`Connection::queue`].
pub(super) type Frames = Vec<Vec<u8>>;

impl Connection {
    /// A connection accepted from `peer`, registered for reading under `token`.
    pub(super) fn accept(
        registry: &Registry,
        mut stream: TcpStream,
        peer: SocketAddr,
        token: Token,
        now: std::time::Instant,
    ) -> io::Result<Self> {
        // Media is small packets that must not wait for each other.
        stream.set_nodelay(true)?;
        registry.register(&mut stream, token, Interest::READABLE)?;
        Ok(Connection {
            stream,
            token,
            client: ClientAddr {
                transport: ClientTransport::Tcp,
                addr: peer,
            },
            since: now,
            speaks: Speaks::Unknown,
            unread: Vec::new(),
            queued: Vec::new(),
            blocked: false,
            waiting_to_write: false,
        })
    }

    /// Reads what the socket has, up to `reads` reads: the whole frames and whether the socket
    /// is drained, or Err when the connection is over (closed, broken, or not TURN).
    pub(super) fn read(
        &mut self,
        tls: Option<&Arc<rustls::ServerConfig>>,
        buffer: &mut [u8],
        reads: usize,
    ) -> io::Result<(Frames, bool)> {
        let mut drained = false;
        for _ in 0..reads {
            let n = match self.stream.read(buffer) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.received(&buffer[..n], tls)?;
        }
        self.flush()?;
        Ok((self.frames()?, drained))
    }

    /// Bytes off the socket: decrypted when TLS, then kept until whole.
    fn received(
        &mut self,
        mut bytes: &[u8],
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> io::Result<()> {
        if let Speaks::Unknown = self.speaks {
            let first = bytes.first().copied().unwrap_or(0);
            self.speaks = match (framing::opens_tls(first), tls) {
                (true, Some(config)) => {
                    self.client.transport = ClientTransport::Tls;
                    let c = rustls::ServerConnection::new(Arc::clone(config))
                        .map_err(io::Error::other)?;
                    Speaks::Tls(Box::new(c))
                }
                (true, None) => return Err(io::Error::other("TLS without a certificate")),
                (false, _) => Speaks::Plain,
            };
        }
        match &mut self.speaks {
            Speaks::Tls(c) => {
                while !bytes.is_empty() {
                    c.read_tls(&mut bytes)?;
                    let state = c.process_new_packets().map_err(io::Error::other)?;
                    let mut plain = vec![0u8; state.plaintext_bytes_to_read()];
                    c.reader().read_exact(&mut plain)?;
                    self.unread.extend_from_slice(&plain);
                    if state.peer_has_closed() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
            Speaks::Plain | Speaks::Unknown => self.unread.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// The whole frames in what was read; the rest waits.
    fn frames(&mut self) -> io::Result<Frames> {
        let mut frames = Vec::new();
        let mut at = 0;
        loop {
            match framing::frame(&self.unread[at..]) {
                Frame::Whole(n) => {
                    frames.push(self.unread[at..at + n].to_vec());
                    at += n;
                }
                Frame::Partial => break,
                Frame::Garbage => return Err(io::Error::other("neither STUN nor ChannelData")),
            }
        }
        self.unread.drain(..at);
        Ok(frames)
    }

    /// Queues a message for the client (ChannelData padded to four bytes): answers always,
    /// relayed data only while the queue is short. Whether it was queued.
    pub(super) fn queue(&mut self, message: &[u8], is_data: bool) -> bool {
        if is_data && self.queued.len() + message.len() > QUEUE_LIMIT {
            return false;
        }
        self.queued.extend_from_slice(message);
        if framing::is_channel_data(message) {
            self.queued
                .extend_from_slice(framing::channel_padding(message.len()));
        }
        true
    }

    /// Writes what is queued, as far as the socket takes it; Err when the connection broke.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        let blocked = match &mut self.speaks {
            Speaks::Tls(c) => {
                if !self.queued.is_empty() && !c.wants_write() {
                    // rustls takes it all (no buffer limit is set): bounded by QUEUE_LIMIT.
                    c.writer().write_all(&self.queued)?;
                    self.queued.clear();
                }
                let mut blocked = false;
                while c.wants_write() {
                    match c.write_tls(&mut self.stream) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            blocked = true;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                blocked
            }
            Speaks::Plain | Speaks::Unknown => {
                let mut written = 0;
                let mut blocked = false;
                while written < self.queued.len() {
                    match self.stream.write(&self.queued[written..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            blocked = true;
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.queued.drain(..written);
                blocked
            }
        };
        self.blocked = blocked;
        Ok(())
    }

    /// Registers for WRITABLE while something waits, and stops when nothing does.
    pub(super) fn reregister(&mut self, registry: &Registry) -> io::Result<()> {
        let wants = self.blocked || !self.queued.is_empty();
        if wants != self.waiting_to_write {
            let interest = if wants {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.waiting_to_write = wants;
        }
        Ok(())
    }

    /// The address the client reached us on.
    pub(super) fn local_ip(&self) -> Option<std::net::IpAddr> {
        self.stream.local_addr().ok().map(|a| a.ip())
    }

    /// Stops reading it.
    pub(super) fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}

//! Stream transports, TCP and TLS: one reader task and one writer task per connection; the
//! framer cuts the stream. A connection that breaks the framing (garbage, an over-long message)
//! is closed alone. Outgoing connections are opened by their writer task, so a slow or dead
//! peer never holds up the caller: what could not be sent comes back on the failure channel.

use crate::tls::{PeerIdentity, Tls, TlsSlot};
use crate::{Connection, Connections, Limits, Received, SendError, Sender};
use openline_sip::Transport;
use openline_sip::endpoint::Transmit;
use openline_sip::framing::{Frame, StreamFramer};
use openline_sip::transaction::Destination;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How many outgoing messages may wait for one connection before sends fail.
pub(crate) const WRITE_QUEUE: usize = 256;
/// How long a connection whose peer stopped sending stays writable for pending answers.
const LINGER: Duration = Duration::from_secs(2);
/// Longest wait for a TCP connect or a TLS handshake.
pub(crate) const SETUP: Duration = Duration::from_secs(5);

/// What a new connection's tasks share with the rest of the network.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) inbound: mpsc::Sender<Received>,
    pub(crate) connections: Connections,
    pub(crate) failed: mpsc::Sender<Transmit>,
    pub(crate) closed: mpsc::Sender<Destination>,
    pub(crate) limits: Limits,
    pub(crate) addresses: crate::LocalAddresses,
    /// Connection and handshake limits.
    pub(crate) admission: Arc<crate::admission::Admission>,
}

/// Accepts connections on `listener`, with TLS when `tls` is given.
pub(crate) async fn accept(listener: TcpListener, tls: Option<TlsSlot>, shared: Shared) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    loop {
        let (stream, peer, local, slot) = next_connection(&listener, &shared).await;
        let Some(tls) = &tls else {
            let (tx, rx) = mpsc::channel(WRITE_QUEUE);
            register(
                &shared,
                (transport, peer),
                tx.clone(),
                (None, None, Some(slot)),
            );
            run(
                stream,
                (transport, peer, local),
                None,
                rx,
                tx,
                shared.clone(),
            );
            continue;
        };
        // The handshake runs on its own task: a client that never finishes it holds up no one,
        // and only so many run at once.
        let Some(permit) = shared.admission.handshake(peer) else {
            continue;
        };
        let acceptor = tls.current().acceptor;
        let shared = shared.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(SETUP, acceptor.accept(stream)).await;
            drop(permit);
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    if let Some(count) = shared.admission.note("tls_failed", peer.ip()) {
                        tracing::info!(%peer, error = %e, count, "TLS handshake failed");
                    }
                    return;
                }
                Err(_) => {
                    if let Some(count) = shared.admission.note("tls_timed_out", peer.ip()) {
                        tracing::info!(%peer, count, "TLS handshake timed out");
                    }
                    return;
                }
            };
            // Verified against our roots by rustls if presented: another domain's server.
            let identity = PeerIdentity::of(stream.get_ref().1.peer_certificates());
            let (tx, rx) = mpsc::channel(WRITE_QUEUE);
            register(
                &shared,
                (transport, peer),
                tx.clone(),
                (identity.clone(), None, Some(slot)),
            );
            run(stream, (transport, peer, local), identity, rx, tx, shared);
        });
    }
}

/// The next connection `listener` accepts within the connection limits (beyond them, closed
/// at once, counted and logged), with Nagle off: its stream, its peer, where the peer
/// reached us, and its place in the limits.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    shared: &Shared,
) -> (TcpStream, SocketAddr, SocketAddr, crate::admission::Slot) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = shared.admission.admit(peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = local_of(&stream, shared);
        return (stream, peer, local, slot);
    }
}

pub(crate) fn register(
    shared: &Shared,
    key: (Transport, SocketAddr),
    writer: mpsc::Sender<Arc<[u8]>>,
    (identity, verifying, slot): (
        Option<Arc<PeerIdentity>>,
        Option<Arc<str>>,
        Option<crate::admission::Slot>,
    ),
) {
    if let Ok(mut c) = shared.connections.lock() {
        let connection = Connection {
            writer,
            identity,
            _slot: slot,
            verifying,
            closing: false,
        };
        c.insert(key, connection);
    }
}

/// The local address of a connection, remembered as where its peer reaches us (a wildcard
/// listener has no address of its own to write into Via and Record-Route).
fn local_of(stream: &TcpStream, shared: &Shared) -> SocketAddr {
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    if let Ok(peer) = stream.peer_addr() {
        shared.addresses.note_flow(peer, local.ip());
    }
    local
}

/// Starts the reader and writer of an established connection.
fn run<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    (transport, peer, local): (Transport, SocketAddr, SocketAddr),
    identity: Option<Arc<PeerIdentity>>,
    rx: mpsc::Receiver<Arc<[u8]>>,
    tx: mpsc::Sender<Arc<[u8]>>,
    shared: Shared,
) {
    let key = (transport, peer);
    let (reader, writer) = tokio::io::split(stream);
    let own = tx.downgrade();
    tokio::spawn(write_loop(writer, rx, key, own, shared.clone()));
    tokio::spawn(read_loop(
        reader,
        (transport, peer, local),
        identity,
        tx,
        shared,
    ));
}

/// Writes what is queued for the connection. A write that fails ends it: the connection is
/// forgotten (the next send opens a new one) and that message and all queued behind it go
/// back as failed, so their transactions learn of it now rather than at their time-out.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Arc<[u8]>>,
    key: (Transport, SocketAddr),
    own: mpsc::WeakSender<Arc<[u8]>>,
    shared: Shared,
) {
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = writer.write_all(&bytes).await {
            tracing::debug!(peer = %key.1, error = %e, "stream write failed");
            if let Some(tx) = own.upgrade() {
                forget(&shared.connections, key, &tx);
            }
            hand_back(bytes, key, &shared).await;
            drain(rx, key, &shared).await;
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    (transport, peer, local): (Transport, SocketAddr, SocketAddr),
    identity: Option<Arc<PeerIdentity>>,
    writer: mpsc::Sender<Arc<[u8]>>,
    shared: Shared,
) {
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    let pong: Arc<[u8]> = Arc::from(&b"\r\n"[..]);
    let idle = shared.limits.idle_timeout;
    'read: loop {
        let n = match tokio::time::timeout(idle, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "stream read failed");
                break;
            }
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    // RFC 5626 4.4.1: answer a CRLFCRLF ping with a CRLF pong.
                    let _ = writer.try_send(Arc::clone(&pong));
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Message(data))) => {
                    let received = Received {
                        transport,
                        source: peer,
                        local,
                        data,
                        peer: identity.clone(),
                    };
                    if shared.inbound.send(received).await.is_err() {
                        break 'read;
                    }
                }
                Err(e) => {
                    tracing::info!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            }
        }
    }
    ended(&shared, (transport, peer), &writer).await;
}

/// A connection's reader ended: the core hears the flow is gone, and the writer stays a
/// moment for answers to what the peer sent before it is forgotten.
pub(crate) async fn ended(
    shared: &Shared,
    (transport, peer): (Transport, SocketAddr),
    writer: &mpsc::Sender<Arc<[u8]>>,
) {
    // What was sent over it and heard nothing back is lost; a full queue only delays that to
    // the transactions' own time-outs.
    let _ = shared.closed.try_send(Destination {
        transport,
        addr: peer,
    });
    // A peer that half-closed still gets the answers to what it sent: keep the writer
    // registered a moment before forgetting the connection, for answers only.
    if let Ok(mut c) = shared.connections.lock() {
        if let Some(conn) = c.get_mut(&(transport, peer)) {
            if conn.writer.same_channel(writer) {
                conn.closing = true;
            }
        }
    }
    tokio::time::sleep(LINGER).await;
    forget(&shared.connections, (transport, peer), writer);
}

/// Forgets the connection only if the map still holds this one (not a newer one to the peer).
pub(crate) fn forget(
    connections: &Connections,
    key: (Transport, SocketAddr),
    writer: &mpsc::Sender<Arc<[u8]>>,
) {
    if let Ok(mut c) = connections.lock() {
        if c.get(&key).is_some_and(|w| w.writer.same_channel(writer)) {
            c.remove(&key);
        }
    }
}

/// Sends over the connection to `to`, opening one if there is none. Over TLS, a connection
/// must have proved `tls_name` (RFC 5922): one that did not is not used, and a new one is
/// opened to verify it.
pub(crate) fn send(
    sender: &Sender,
    key: (Transport, SocketAddr),
    payload: Arc<[u8]>,
    tls_name: Option<&str>,
    connect: bool,
) -> Result<(), SendError> {
    let to = key.1;
    let request = !payload.starts_with(b"SIP/2.0 ");
    let existing = sender.shared.connections.lock().ok().and_then(|c| {
        c.get(&key)
            .filter(|conn| !(conn.closing && request && connect))
            .filter(|conn| match (tls_name, &conn.identity) {
                (Some(name), Some(id)) => id.covers(name),
                (Some(name), None) => conn.verifying.as_deref() == Some(name),
                (None, _) => true,
            })
            .map(|conn| conn.writer.clone())
    });
    let writer = match existing {
        Some(w) => w,
        None if !connect => return Err(SendError::FlowGone(to)),
        None => open(sender, key, tls_name)?,
    };
    writer
        .try_send(payload)
        .map_err(|_| SendError::Connection(to))
}

/// Registers a connection about to be opened and opens it on its own task: what is queued
/// meanwhile is written once it is up, or handed back as failed.
fn open(
    sender: &Sender,
    key: (Transport, SocketAddr),
    tls_name: Option<&str>,
) -> Result<mpsc::Sender<Arc<[u8]>>, SendError> {
    let (transport, to) = key;
    let tls = match transport {
        Transport::Tcp => None,
        Transport::Tls => {
            let tls = sender
                .tls
                .as_ref()
                .map(TlsSlot::current)
                .ok_or(SendError::NoSocket(transport, to))?;
            let domain = tls_name.ok_or(SendError::NoName(to))?;
            let name = rustls::pki_types::ServerName::try_from(domain.to_string())
                .map_err(|_| SendError::NoName(to))?;
            Some((tls, name, domain.to_string()))
        }
        other => return Err(SendError::NoSocket(other, to)),
    };
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let verifying = tls.as_ref().and(tls_name).map(Arc::from);
    register(&sender.shared, key, tx.clone(), (None, verifying, None));
    tokio::spawn(dial(key, tls, rx, tx.clone(), sender.shared.clone()));
    Ok(tx)
}

/// Opens the connection registered by [`open`] (TCP, then TLS when asked, the server proving
/// `domain`) and runs it; or hands back what was queued, as failed.
async fn dial(
    key: (Transport, SocketAddr),
    tls: Option<(Tls, rustls::pki_types::ServerName<'static>, String)>,
    rx: mpsc::Receiver<Arc<[u8]>>,
    tx: mpsc::Sender<Arc<[u8]>>,
    shared: Shared,
) {
    let to = key.1;
    let stream = match tokio::time::timeout(SETUP, TcpStream::connect(to)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%to, error = %e, "connect failed");
            return fail(rx, key, &tx, &shared).await;
        }
        Err(_) => {
            tracing::debug!(%to, "connect timed out");
            return fail(rx, key, &tx, &shared).await;
        }
    };
    let _ = stream.set_nodelay(true);
    let local = local_of(&stream, &shared);
    let full = (key.0, key.1, local);
    let Some((tls, name, domain)) = tls else {
        return run(stream, full, None, rx, tx, shared);
    };
    let stream = match tokio::time::timeout(SETUP, tls.connector.connect(name, stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(%to, %domain, error = %e, "TLS handshake failed");
            return fail(rx, key, &tx, &shared).await;
        }
        Err(_) => {
            tracing::warn!(%to, %domain, "TLS handshake timed out");
            return fail(rx, key, &tx, &shared).await;
        }
    };
    let identity = PeerIdentity::of(stream.get_ref().1.peer_certificates());
    // rustls accepts wildcards; RFC 5922 7.2 does not.
    if !identity.as_ref().is_some_and(|i| i.covers(&domain)) {
        tracing::warn!(%to, %domain, "certificate names the domain only by a wildcard");
        return fail(rx, key, &tx, &shared).await;
    }
    register(&shared, key, tx.clone(), (identity.clone(), None, None));
    run(stream, full, identity, rx, tx, shared);
}

/// The connection could not be opened: everything queued for it goes back as failed.
async fn fail(
    rx: mpsc::Receiver<Arc<[u8]>>,
    key: (Transport, SocketAddr),
    tx: &mpsc::Sender<Arc<[u8]>>,
    shared: &Shared,
) {
    forget(&shared.connections, key, tx);
    drain(rx, key, shared).await;
}

/// Closes the queue and hands back everything in it as failed.
pub(crate) async fn drain(
    mut rx: mpsc::Receiver<Arc<[u8]>>,
    key: (Transport, SocketAddr),
    shared: &Shared,
) {
    rx.close();
    while let Ok(payload) = rx.try_recv() {
        if !hand_back(payload, key, shared).await {
            return;
        }
    }
}

/// Hands one message back as failed; false once nobody listens.
pub(crate) async fn hand_back(
    payload: Arc<[u8]>,
    key: (Transport, SocketAddr),
    shared: &Shared,
) -> bool {
    let destination = Destination {
        transport: key.0,
        addr: key.1,
    };
    let transmit = Transmit {
        destination,
        payload,
    };
    shared.failed.send(transmit).await.is_ok()
}

//! TCP: one reader task and one writer task per connection; the framer cuts the stream.
//! A connection that breaks the framing (garbage, an over-long message) is closed alone.

use crate::{Connections, Limits, Received, SendError, Sender};
use openline_sip::Transport;
use openline_sip::framing::{Frame, StreamFramer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How many outgoing messages may wait for one connection before sends fail.
const WRITE_QUEUE: usize = 256;
/// How long a connection whose peer stopped sending stays writable for pending answers.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) async fn accept(
    listener: TcpListener,
    inbound: mpsc::Sender<Received>,
    connections: Connections,
    limits: Limits,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let count = connections.lock().map(|c| c.len()).unwrap_or(usize::MAX);
        if count >= limits.max_connections {
            tracing::warn!(%peer, count, "connection limit reached: refusing");
            continue;
        }
        start(
            stream,
            peer,
            inbound.clone(),
            Arc::clone(&connections),
            limits,
        );
    }
}

/// Registers the connection and starts its reader and writer.
fn start(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::Sender<Received>,
    connections: Connections,
    limits: Limits,
) -> mpsc::Sender<Arc<[u8]>> {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    if let Ok(mut c) = connections.lock() {
        c.insert(peer, tx.clone());
    }
    tokio::spawn(write_loop(writer, rx, peer));
    tokio::spawn(read_loop(
        reader,
        peer,
        inbound,
        connections,
        tx.clone(),
        limits,
    ));
    tx
}

async fn write_loop(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Arc<[u8]>>,
    peer: SocketAddr,
) {
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = writer.write_all(&bytes).await {
            tracing::debug!(%peer, error = %e, "tcp write failed");
            break;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    inbound: mpsc::Sender<Received>,
    connections: Connections,
    writer: mpsc::Sender<Arc<[u8]>>,
    limits: Limits,
) {
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    let pong: Arc<[u8]> = Arc::from(&b"\r\n"[..]);
    'read: loop {
        let n = match tokio::time::timeout(limits.idle_timeout, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "tcp read failed");
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
                    if inbound
                        .send(Received {
                            transport: Transport::Tcp,
                            source: peer,
                            data,
                        })
                        .await
                        .is_err()
                    {
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
    // A peer that half-closed still gets the answers to what it sent: keep the writer
    // registered a moment before forgetting the connection.
    tokio::time::sleep(LINGER).await;
    // Forget the connection only if the map still holds this one (not a newer one to the same peer).
    if let Ok(mut c) = connections.lock() {
        if c.get(&peer).is_some_and(|w| w.same_channel(&writer)) {
            c.remove(&peer);
        }
    }
}

/// Sends over the connection to `to`, connecting first if there is none.
pub(crate) async fn send(
    sender: &Sender,
    to: SocketAddr,
    payload: Arc<[u8]>,
) -> Result<(), SendError> {
    let existing = sender
        .connections
        .lock()
        .ok()
        .and_then(|c| c.get(&to).cloned());
    let writer = match existing {
        Some(w) => w,
        None => {
            let connect =
                tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(to));
            let stream = match connect.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(SendError::Io(to, e)),
                Err(_) => return Err(SendError::Connection(to)),
            };
            start(
                stream,
                to,
                sender.inbound.clone(),
                Arc::clone(&sender.connections),
                sender.limits,
            )
        }
    };
    writer
        .try_send(payload)
        .map_err(|_| SendError::Connection(to))
}

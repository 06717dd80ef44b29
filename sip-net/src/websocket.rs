//! SIP over WebSocket (RFC 7118), `ws:` and `wss:` listeners: what browsers speak. The
//! handshake must ask for the `sip` subprotocol (400 otherwise) and, when an allow-list is
//! set, come from an allowed Origin (403 otherwise); each text or binary message is one SIP
//! message. A connection is a flow like TCP's: it is never opened from here, and a request
//! for a device whose socket is gone fails at once (the core answers 430/480). A message over
//! the size limit closes the connection with 1009, as RFC 6455 says; other connections go on.

use crate::Received;
use crate::stream::{self, SETUP, Shared, WRITE_QUEUE};
use crate::tls::TlsSlot;
use futures_util::{SinkExt as _, StreamExt as _};
use openline_sip::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Who may open a SIP WebSocket, and how large a message may be.
#[derive(Debug, Clone)]
pub struct WebSocketPolicy {
    /// Origins allowed (`https://phone.club-a.test`), compared without case; empty: any
    /// (SIP's digest, not a cookie, is what authenticates, so a foreign page gains nothing by
    /// itself from opening one).
    pub origins: Vec<String>,
    /// The largest message, in bytes (a frame as much).
    pub max_message: usize,
}

impl Default for WebSocketPolicy {
    fn default() -> Self {
        WebSocketPolicy {
            origins: Vec::new(),
            max_message: 64 * 1024,
        }
    }
}

/// Accepts WebSocket connections on `listener`, over TLS (`wss:`) when `tls` is given.
pub(crate) async fn accept(
    listener: TcpListener,
    tls: Option<TlsSlot>,
    shared: Shared,
    policy: Arc<WebSocketPolicy>,
) {
    let transport = if tls.is_some() {
        Transport::Wss
    } else {
        Transport::Ws
    };
    loop {
        let (stream, peer, local, slot) = stream::next_connection(&listener, &shared).await;
        // Handshakes run on their own task: a client that never finishes holds up no one,
        // and only so many run at once.
        let Some(permit) = shared.admission.handshake(peer) else {
            continue;
        };
        let (shared, policy) = (shared.clone(), Arc::clone(&policy));
        let acceptor = tls.as_ref().map(|t| t.current().browsers);
        tokio::spawn(async move {
            let at = (transport, peer, local);
            let handshake = (slot, permit);
            match acceptor {
                None => upgrade(stream, at, shared, policy, handshake).await,
                Some(acceptor) => {
                    match tokio::time::timeout(SETUP, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => upgrade(s, at, shared, policy, handshake).await,
                        Ok(Err(e)) => {
                            if let Some(count) = shared.admission.note("tls_failed", peer.ip()) {
                                tracing::info!(%peer, error = %e, count, "TLS handshake failed");
                            }
                        }
                        Err(_) => {
                            if let Some(count) = shared.admission.note("tls_timed_out", peer.ip()) {
                                tracing::info!(%peer, count, "TLS handshake timed out");
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The WebSocket handshake, then the connection's reader and writer.
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    (transport, peer, local): (Transport, SocketAddr, SocketAddr),
    shared: Shared,
    policy: Arc<WebSocketPolicy>,
    (slot, permit): (crate::admission::Slot, tokio::sync::OwnedSemaphorePermit),
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(policy.max_message))
        .max_frame_size(Some(policy.max_message));
    let check = |request: &Request, response: Response| check_handshake(&policy, request, response);
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config));
    let upgraded = tokio::time::timeout(SETUP, handshake).await;
    drop(permit);
    let ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            if let Some(count) = shared.admission.note("websocket_refused", peer.ip()) {
                tracing::info!(%peer, error = %e, count, "WebSocket handshake refused");
            }
            return;
        }
        Err(_) => {
            if let Some(count) = shared.admission.note("websocket_timed_out", peer.ip()) {
                tracing::info!(%peer, count, "WebSocket handshake timed out");
            }
            return;
        }
    };
    tracing::debug!(%peer, %transport, "WebSocket connection");
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let (close_tx, close_rx) = mpsc::channel(1);
    stream::register(
        &shared,
        (transport, peer),
        tx.clone(),
        (None, None, Some(slot)),
    );
    let (sink, source) = ws.split();
    let own = tx.downgrade();
    tokio::spawn(write_loop(
        sink,
        (rx, close_rx),
        (transport, peer),
        own,
        shared.clone(),
    ));
    read_loop(source, (transport, peer, local), tx, close_tx, shared).await;
}

/// RFC 7118 section 4.1: the client must offer `sip`, which the answer names; the Origin
/// must be allowed when a list is set.
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
pub(crate) fn check_handshake(
    policy: &WebSocketPolicy,
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let refuse = |status: u16, why: &str| {
        let mut r = ErrorResponse::new(Some(why.to_string()));
        *r.status_mut() = status.try_into().unwrap_or_default();
        r
    };
    let offers_sip = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !offers_sip {
        return Err(refuse(
            400,
            "the sip subprotocol is required (Sec-WebSocket-Protocol: sip, RFC 7118)",
        ));
    }
    if !policy.origins.is_empty() {
        let origin = request
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !policy
            .origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            tracing::debug!(%origin, "WebSocket from an origin not allowed");
            return Err(refuse(403, "origin not allowed"));
        }
    }
    response.headers_mut().insert(
        "sec-websocket-protocol",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("sip"),
    );
    Ok(response)
}

async fn read_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut source: futures_util::stream::SplitStream<WebSocketStream<S>>,
    (transport, peer, local): (Transport, SocketAddr, SocketAddr),
    writer: mpsc::Sender<Arc<[u8]>>,
    close: mpsc::Sender<CloseFrame>,
    shared: Shared,
) {
    let idle = shared.limits.idle_timeout;
    loop {
        let message = match tokio::time::timeout(idle, source.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(WsError::Capacity(e)))) => {
                tracing::info!(%peer, error = %e, "WebSocket message too large: closing");
                let _ = close.try_send(CloseFrame {
                    code: CloseCode::Size,
                    reason: "message too large".into(),
                });
                break;
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "WebSocket read failed");
                let _ = close.try_send(CloseFrame {
                    code: CloseCode::Protocol,
                    reason: "protocol error".into(),
                });
                break;
            }
        };
        let data = match message {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => break,
            // Pings are answered by the library; nothing else carries SIP.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let received = Received {
            transport,
            source: peer,
            local,
            data,
            peer: None,
        };
        if shared.inbound.send(received).await.is_err() {
            break;
        }
    }
    stream::ended(&shared, (transport, peer), &writer).await;
}

/// Writes what is queued as text messages (SIP is text; a body that is not UTF-8 goes as
/// binary), and the close frame the reader asks for.
async fn write_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    (mut rx, mut close): (mpsc::Receiver<Arc<[u8]>>, mpsc::Receiver<CloseFrame>),
    key: (Transport, SocketAddr),
    own: mpsc::WeakSender<Arc<[u8]>>,
    shared: Shared,
) {
    loop {
        let bytes = tokio::select! {
            b = rx.recv() => match b {
                Some(b) => b,
                None => break,
            },
            Some(frame) = close.recv() => {
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
        };
        let message = match std::str::from_utf8(&bytes) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(bytes.to_vec()),
        };
        if let Err(e) = sink.send(message).await {
            tracing::debug!(peer = %key.1, error = %e, "WebSocket write failed");
            if let Some(tx) = own.upgrade() {
                stream::forget(&shared.connections, key, &tx);
            }
            stream::hand_back(bytes, key, &shared).await;
            stream::drain(rx, key, &shared).await;
            return;
        }
    }
    let _ = sink.close().await;
}

//! Fuzz body for the bytes a browser sends a `ws:`/`wss:` listener (issue #24): the HTTP
//! upgrade checked by our policy, then WebSocket frames read with our size limits, as the
//! listener does. `fuzz/` runs it under libFuzzer; a panic is the finding.

use crate::WebSocketPolicy;
use std::io::{Read, Write};
use tokio_tungstenite::tungstenite;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::WebSocketConfig;

/// The client's bytes to read; what we write is thrown away.
struct Peer<'a> {
    unread: &'a [u8],
}

impl Read for Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.unread.read(buf)
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `data` as everything a client sends: the upgrade request, then frames, read until the
/// bytes end or the connection would be closed (at most a thousand messages).
#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
pub fn websocket(data: &[u8]) {
    let policy = WebSocketPolicy {
        origins: vec!["https://phone.fuzz.test".into()],
        max_message: 4096,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(policy.max_message))
        .max_frame_size(Some(policy.max_message));
    let check = |request: &Request, response: Response| {
        crate::websocket::check_handshake(&policy, request, response)
    };
    let peer = Peer { unread: data };
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(peer, check, Some(config)) else {
        return;
    };
    for _ in 0..1000 {
        match ws.read() {
            Ok(message) => {
                let _ = message.into_data();
            }
            Err(_) => return,
        }
    }
}

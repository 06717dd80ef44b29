//! UDP: every datagram is one message.

use crate::Received;
use openline_sip::Transport;
use openline_sip::message::MAX_MESSAGE_SIZE;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Reads datagrams until the core goes away. When the core is behind, datagrams are dropped
/// rather than queued without bound: the sender's retransmissions will bring them again.
pub(crate) async fn receive(socket: Arc<UdpSocket>, inbound: mpsc::Sender<Received>) {
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep reading.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if len == 0
            || buf[..len]
                .iter()
                .all(|&b| b == b'\r' || b == b'\n' || b == 0)
        {
            continue; // keep-alive or padding
        }
        let message = Received {
            transport: Transport::Udp,
            source,
            data: buf[..len].to_vec(),
            peer: None,
        };
        match inbound.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(%source, "core busy: datagram dropped")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Asks for larger socket buffers; what the kernel grants is logged, a refusal only warned about.
pub(crate) fn enlarge_buffers(socket: &UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s
        .set_recv_buffer_size(bytes)
        .and_then(|()| s.set_send_buffer_size(bytes))
    {
        tracing::warn!(error = %e, "could not enlarge UDP socket buffers");
    }
    tracing::debug!(recv = ?s.recv_buffer_size().ok(), send = ?s.send_buffer_size().ok(), "UDP socket buffers");
}

//! Another relay (rtpengine) driven over ng: the proxy's commands go out on one UDP socket,
//! replies and time-outs come back as results. Every decision is the sans-IO [`NgClient`]'s.

use super::relay::InProcess;
use crate::control::ng_client::NgClient;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Instant {
    Instant::now()
}

/// Drives the relay at `relay` with `in_process` commands until the process drops them.
pub async fn drive_remote(relay: SocketAddr, mut in_process: InProcess) -> std::io::Result<()> {
    let local: IpAddr = if relay.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    let socket = UdpSocket::bind((local, 0)).await?;
    let mut client = NgClient::new();
    let mut buf = vec![0u8; crate::control::ng::MAX_REQUEST];
    let timer = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let wake = client.poll_timeout();
        if wake != armed {
            if let Some(at) = wake {
                timer.as_mut().reset(at.into());
            }
            armed = wake;
        }
        tokio::select! {
            command = in_process.commands.recv() => {
                let Some((id, command)) = command else {
                    return Ok(());
                };
                match client.request(now(), id, &command) {
                    Ok(datagram) => send(&socket, &datagram, relay).await,
                    Err(result) => {
                        let _ = in_process.replies.send((id, result)).await;
                    }
                }
            }
            received = socket.recv_from(&mut buf) => {
                let (n, from) = received?;
                if from != relay {
                    continue;
                }
                if let Some(answer) = client.handle_reply(&buf[..n]) {
                    let _ = in_process.replies.send(answer).await;
                }
            }
            () = &mut timer, if armed.is_some() => {
                armed = None;
                let (again, failed) = client.handle_timeout(now());
                for datagram in again {
                    send(&socket, &datagram, relay).await;
                }
                for answer in failed {
                    tracing::warn!(%relay, "the media relay did not answer");
                    let _ = in_process.replies.send(answer).await;
                }
            }
        }
    }
}

async fn send(socket: &UdpSocket, datagram: &[u8], relay: SocketAddr) {
    if let Err(e) = socket.send_to(datagram, relay).await {
        // Counted as unanswered when its time comes: the proxy hears 503.
        tracing::debug!(error = %e, %relay, "could not reach the media relay");
    }
}

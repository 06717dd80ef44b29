//! UDP: every datagram is one message.

use crate::Received;
use crate::addresses::LocalAddresses;
use openline_sip::Transport;
use openline_sip::message::MAX_MESSAGE_SIZE;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A bound UDP socket, and what it needs to receive and send from the right address.
#[derive(Clone)]
pub(crate) struct UdpPort {
    pub(crate) socket: Arc<UdpSocket>,
    /// The address bound (port 0 resolved).
    pub(crate) bound: SocketAddr,
    pub(crate) addresses: LocalAddresses,
    /// Whether to remember which address each peer's datagrams came to (there is more than one
    /// it could be).
    pub(crate) remember: bool,
}

impl UdpPort {
    /// A port for `socket`; a wildcard one is asked for each datagram's destination address.
    pub(crate) fn new(socket: UdpSocket, addresses: LocalAddresses) -> io::Result<Self> {
        let bound = socket.local_addr()?;
        if bound.ip().is_unspecified() {
            use nix::sys::socket::{setsockopt, sockopt};
            match bound {
                SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4PacketInfo, &true),
                SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true),
            }
            .map_err(io::Error::from)?;
        }
        Ok(UdpPort {
            socket: Arc::new(socket),
            bound,
            addresses,
            remember: false,
        })
    }

    fn wildcard(&self) -> bool {
        self.bound.ip().is_unspecified()
    }

    /// One datagram if one is waiting: its length, source and the local address it came to.
    fn try_recv(
        &self,
        buf: &mut [u8],
        control: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, IpAddr)> {
        if !self.wildcard() {
            let (len, source) = self.socket.try_recv_from(buf)?;
            return Ok((len, source, self.bound.ip()));
        }
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
        let fd = self.socket.as_raw_fd();
        self.socket.try_io(Interest::READABLE, || {
            let mut iov = [io::IoSliceMut::new(buf)];
            let msg =
                recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut *control), MsgFlags::empty())
                    .map_err(io::Error::from)?;
            let source = msg
                .address
                .as_ref()
                .and_then(std_addr)
                .ok_or_else(|| io::Error::other("datagram without a source address"))?;
            let mut local = self.bound.ip();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::Ipv4PacketInfo(i) => {
                            local = IpAddr::V4(u32::from_be(i.ipi_addr.s_addr).into());
                        }
                        ControlMessageOwned::Ipv6PacketInfo(i) => {
                            local = IpAddr::V6(i.ipi6_addr.s6_addr.into());
                        }
                        _ => {}
                    }
                }
            }
            Ok((msg.bytes, source, local))
        })
    }

    /// Sends `data` to `to`; from a wildcard socket, from the address `to`'s packets came to
    /// (a multi-homed server answers from the address it was asked on), else from the
    /// routing table's choice.
    pub(crate) async fn send(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let from = if self.wildcard() {
            self.addresses.arrival(to)
        } else {
            None
        };
        let Some(from) = from else {
            self.socket.send_to(data, to).await?;
            return Ok(());
        };
        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
        let fd = self.socket.as_raw_fd();
        let dest = SockaddrStorage::from(to);
        let iov = [io::IoSlice::new(data)];
        self.socket
            .async_io(Interest::WRITABLE, || {
                let sent = match from {
                    IpAddr::V4(ip) => {
                        let info = nix::libc::in_pktinfo {
                            ipi_ifindex: 0,
                            ipi_spec_dst: nix::libc::in_addr {
                                s_addr: u32::from(ip).to_be(),
                            },
                            ipi_addr: nix::libc::in_addr { s_addr: 0 },
                        };
                        let c = [ControlMessage::Ipv4PacketInfo(&info)];
                        sendmsg(fd, &iov, &c, MsgFlags::empty(), Some(&dest))
                    }
                    IpAddr::V6(ip) => {
                        let info = nix::libc::in6_pktinfo {
                            ipi6_addr: nix::libc::in6_addr {
                                s6_addr: ip.octets(),
                            },
                            ipi6_ifindex: 0,
                        };
                        let c = [ControlMessage::Ipv6PacketInfo(&info)];
                        sendmsg(fd, &iov, &c, MsgFlags::empty(), Some(&dest))
                    }
                };
                sent.map(|_| ()).map_err(io::Error::from)
            })
            .await
    }
}

/// A socket address from the kernel's form.
fn std_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()));
    }
    let v6 = a.as_sockaddr_in6()?;
    Some(SocketAddr::new(IpAddr::V6(v6.ip()), v6.port()))
}

/// Reads datagrams until the core goes away. When the core is behind, datagrams are dropped
/// rather than queued without bound: the sender's retransmissions will bring them again. Under
/// that pressure the heaviest sources are dropped first ([`Fairness`]), so a flood from one
/// source does not starve the others.
pub(crate) async fn receive(port: UdpPort, inbound: mpsc::Sender<Received>) {
    let socket = &port.socket;
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
    let mut control = nix::cmsg_space!(nix::libc::in6_pktinfo);
    let mut fairness = Fairness::default();
    // How many batches in a row left datagrams behind: we are not keeping up with the senders.
    // A burst leaves a few; a flood keeps doing it.
    let mut behind = 0u32;
    loop {
        if let Err(e) = socket.readable().await {
            tracing::warn!(error = %e, "udp socket failed");
            return;
        }
        // Drain what the kernel holds, a bounded batch per wake-up, so the core gets its turn.
        // When we fall behind, the heaviest sources are dropped here, cheaply, before the
        // socket buffer overflows and every sender loses alike.
        let mut drained = false;
        // One clock read per batch: the windows are 100 ms.
        fairness.tick(tokio::time::Instant::now());
        for _ in 0..BATCH {
            let (len, source, local) = match port.try_recv(&mut buf, &mut control) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems; keep reading.
                    tracing::debug!(error = %e, "udp receive error");
                    continue;
                }
            };
            let waiting = inbound.max_capacity() - inbound.capacity();
            let pressure = if waiting > FULL || behind >= SUSTAINED {
                Pressure::Full
            } else if waiting > DEEP {
                Pressure::Deep
            } else if behind > 0 {
                Pressure::Behind
            } else {
                Pressure::None
            };
            if port.remember {
                port.addresses.note_flow(source, local);
            }
            if !handle(
                &port,
                &buf[..len],
                (source, local),
                &inbound,
                (&mut fairness, pressure),
            )
            .await
            {
                return;
            }
        }
        behind = if drained { 0 } else { behind.saturating_add(1) };
        if behind > 0 {
            // More is waiting: let the core work through this batch first.
            tokio::task::yield_now().await;
        }
    }
}

/// Messages waiting for the core beyond which the heaviest sources are dropped (each waiting
/// request delays the next answer: pressure is a matter of latency long before the queue is full).
const DEEP: usize = 1024;

/// Messages waiting beyond which even a lone source is dropped: a load test from one address
/// is only cut this late (at 1,024 it lost datagrams in bursts at 5,000 calls/s, and SIPp's
/// retransmissions then collapsed its rate).
const FULL: usize = 4096;

/// Batches in a row left unread beyond which the overload is a flood, not a burst: then even a
/// lone source is dropped, or the socket buffer overflows and drops everyone's alike (a flood
/// test lost 4 of 40 quiet requests that way with only the queue depth to go by).
const SUSTAINED: u32 = 8;

/// Datagrams read per wake-up before the core gets its turn.
const BATCH: usize = 256;

/// One datagram: keep-alives answered, the rest queued for the core unless dropped for
/// fairness. False once the core is gone.
async fn handle(
    port: &UdpPort,
    data: &[u8],
    (source, local): (SocketAddr, IpAddr),
    inbound: &mpsc::Sender<Received>,
    (fairness, pressure): (&mut Fairness, Pressure),
) -> bool {
    if data.is_empty() || data.iter().all(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return true; // keep-alive or padding
    }
    if let Some(answer) = stun_binding_answer(data, source) {
        // RFC 5626 4.4.2: a STUN keep-alive on the SIP port learns its flow is alive.
        let _ = port.send(&answer, source).await;
        return true;
    }
    if !fairness.admit(source.ip(), pressure) {
        return true;
    }
    let message = Received {
        transport: Transport::Udp,
        source,
        local: SocketAddr::new(local, port.bound.port()),
        data: data.to_vec(),
        peer: None,
    };
    match inbound.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::debug!(%source, "core busy: datagram dropped");
            fairness.busy();
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// How hard pressed the receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pressure {
    /// Keeping up.
    None,
    /// Datagrams wait in the kernel after a whole batch: the socket buffer is filling.
    Behind,
    /// Many messages wait for the core: each one delays every answer behind it.
    Deep,
    /// The queue is half full, or we have been behind for a while: everyone at or above the
    /// average share is dropped, even alone.
    Full,
}

/// Per-source counts over short windows, to drop the heaviest senders first when pressed.
/// Behind, a source above the average share is dropped (a lone heavy sender, a load test, is
/// not); with a deep queue, one at or above it among several; with a half-full queue, even a
/// lone one, so the queue stays short enough that a newcomer, below any share, is answered
/// promptly.
#[derive(Default)]
struct Fairness {
    window: Option<tokio::time::Instant>,
    counts: HashMap<IpAddr, u32>,
    total: u32,
    dropped: u32,
    /// Dropped (for fairness, or with the core's queue full) and not yet logged: a flood is
    /// one line a minute, not one per window.
    unlogged: (u64, u64),
    logged_at: Option<tokio::time::Instant>,
}

impl Fairness {
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(100);
    const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// A datagram dropped because the core's queue is full.
    fn busy(&mut self) {
        metrics::counter!("openline_limited_total", "limit" => "core_queue").increment(1);
        self.unlogged.1 += 1;
    }

    /// Starts a new window when the current one is over (logging what it dropped).
    fn tick(&mut self, now: tokio::time::Instant) {
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= Self::WINDOW)
        {
            if self.dropped > 0 {
                metrics::counter!("openline_limited_total", "limit" => "udp_fairness")
                    .increment(self.dropped.into());
                self.unlogged.0 += u64::from(self.dropped);
            }
            let (dropped, busy) = self.unlogged;
            if (dropped > 0 || busy > 0)
                && self
                    .logged_at
                    .is_none_or(|at| now.duration_since(at) >= Self::LOG_EVERY)
            {
                tracing::warn!(
                    dropped,
                    core_busy = busy,
                    sources = self.counts.len(),
                    "datagrams from the heaviest sources dropped under load (since the last line)"
                );
                self.unlogged = (0, 0);
                self.logged_at = Some(now);
            }
            self.window = Some(now);
            self.counts.clear();
            self.total = 0;
            self.dropped = 0;
        }
    }

    /// Counts a datagram from `ip`; false when `pressure` says it is to be dropped.
    fn admit(&mut self, ip: IpAddr, pressure: Pressure) -> bool {
        let count = {
            let c = self.counts.entry(ip).or_default();
            *c += 1;
            u64::from(*c)
        };
        self.total += 1;
        // count against the average share total / sources, without dividing.
        let sources = self.counts.len() as u64;
        let share = u64::from(self.total);
        let drop = match pressure {
            Pressure::None => false,
            Pressure::Behind => count * sources > share,
            Pressure::Deep => sources > 1 && count * sources >= share,
            Pressure::Full => count * sources >= share,
        };
        if drop {
            self.dropped += 1;
        }
        !drop
    }
}

/// The STUN magic cookie (RFC 8489 section 5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// The Binding success response to a STUN Binding request (RFC 8489), with the source as
/// XOR-MAPPED-ADDRESS; None for anything else. Only this one exchange is needed on a SIP port
/// (RFC 5626 keep-alives): the STUN server proper lives in the media relay.
fn stun_binding_answer(data: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    let is_binding_request = data.len() >= 20
        && data[0] == 0x00
        && data[1] == 0x01
        && data[4..8] == MAGIC_COOKIE
        && usize::from(u16::from_be_bytes([data[2], data[3]])) + 20 == data.len();
    if !is_binding_request {
        return None;
    }
    let transaction = &data[8..20];
    let port = (source.port() ^ 0x2112).to_be_bytes();
    let (family, address): (u8, Vec<u8>) = match source.ip() {
        IpAddr::V4(ip) => (
            0x01,
            ip.octets()
                .iter()
                .zip(MAGIC_COOKIE)
                .map(|(a, k)| a ^ k)
                .collect(),
        ),
        IpAddr::V6(ip) => {
            let key: Vec<u8> = MAGIC_COOKIE.iter().chain(transaction).copied().collect();
            (
                0x02,
                ip.octets().iter().zip(key).map(|(a, k)| a ^ k).collect(),
            )
        }
    };
    let value_len = 4 + address.len();
    let mut out = Vec::with_capacity(20 + 4 + value_len);
    out.extend_from_slice(&[0x01, 0x01]);
    out.extend_from_slice(&((4 + value_len) as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE);
    out.extend_from_slice(transaction);
    out.extend_from_slice(&[0x00, 0x20]);
    out.extend_from_slice(&(value_len as u16).to_be_bytes());
    out.extend_from_slice(&[0x00, family]);
    out.extend_from_slice(&port);
    out.extend_from_slice(&address);
    Some(out)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_stun_binding_request_is_answered_with_the_source_address() {
        // RFC 5769 2.1's request header (no attributes), from 192.0.2.1:32853.
        let mut request = vec![0x00, 0x01, 0x00, 0x00];
        request.extend_from_slice(&MAGIC_COOKIE);
        request.extend_from_slice(&[
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ]);
        let source: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let answer = stun_binding_answer(&request, source).unwrap();
        assert_eq!(&answer[..2], &[0x01, 0x01], "Binding success");
        assert_eq!(&answer[8..20], &request[8..20], "same transaction");
        // RFC 5769 2.2: XOR-MAPPED-ADDRESS of 192.0.2.1:32853 is a1 47 e1 12 a6 43.
        assert_eq!(
            &answer[20..],
            &[
                0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43
            ]
        );
        assert!(stun_binding_answer(b"OPTIONS sip:x SIP/2.0\r\n\r\n", source).is_none());
        assert!(stun_binding_answer(&request[..19], source).is_none());
    }

    #[tokio::test]
    async fn under_pressure_the_heaviest_source_is_dropped() {
        let mut f = Fairness::default();
        let flood: IpAddr = "127.0.0.2".parse().unwrap();
        let quiet: IpAddr = "127.0.0.3".parse().unwrap();
        // A lone heavy sender is not dropped for being behind or a deep queue, only a full one.
        assert!((0..1000).all(|_| f.admit(flood, Pressure::Behind)));
        assert!(f.admit(flood, Pressure::Deep));
        assert!(!f.admit(flood, Pressure::Full));
        // A quiet sender joins: it gets through; the flood does not while pressed.
        assert!(f.admit(quiet, Pressure::Deep));
        assert!(!f.admit(flood, Pressure::Behind));
        assert!(
            f.admit(flood, Pressure::None),
            "nothing is dropped without pressure"
        );
        assert!((0..5).all(|_| f.admit(quiet, Pressure::Behind)));
    }
}

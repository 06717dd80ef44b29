//! HEP v3 (the HOMER encapsulation protocol): a copy of every SIP message sent and received,
//! with its addresses and time, to a capture server (HOMER, heplify-server, sngrep -L,
//! Wireshark's HEP dissector). The encoding is a pure function; the sender never waits: a
//! copy that cannot leave at once is dropped, as a capture must never hold up SIP.

use openline_sip::Transport;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

/// One captured message.
#[derive(Debug, Clone, Copy)]
pub struct Capture<'a> {
    /// Where it came from.
    pub source: SocketAddr,
    /// Where it went.
    pub destination: SocketAddr,
    /// Over what (TLS and TCP are both IP protocol 6).
    pub transport: Transport,
    /// When, since the Unix epoch.
    pub at: Duration,
    /// The capture agent's id (tells several servers apart at the collector).
    pub agent: u32,
    /// The SIP message.
    pub payload: &'a [u8],
}

/// Chunk types of HEP v3's generic vendor (0).
mod chunk {
    pub(super) const FAMILY: u16 = 1;
    pub(super) const PROTOCOL: u16 = 2;
    pub(super) const V4_SOURCE: u16 = 3;
    pub(super) const V4_DESTINATION: u16 = 4;
    pub(super) const V6_SOURCE: u16 = 5;
    pub(super) const V6_DESTINATION: u16 = 6;
    pub(super) const SOURCE_PORT: u16 = 7;
    pub(super) const DESTINATION_PORT: u16 = 8;
    pub(super) const SECONDS: u16 = 9;
    pub(super) const MICROSECONDS: u16 = 10;
    pub(super) const PAYLOAD_TYPE: u16 = 11;
    pub(super) const AGENT: u16 = 12;
    pub(super) const PAYLOAD: u16 = 15;
}

/// The HEP v3 packet for `c`; None when it would not fit HEP's 16-bit length.
pub fn encode(c: &Capture<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(c.payload.len() + 128);
    out.extend_from_slice(b"HEP3\0\0");
    let mut put = |kind: u16, value: &[u8]| {
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        let len = u16::try_from(value.len() + 6).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(value);
    };
    match (c.source.ip(), c.destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(chunk::FAMILY, &[2]);
            put(chunk::V4_SOURCE, &s.octets());
            put(chunk::V4_DESTINATION, &d.octets());
        }
        (s, d) => {
            put(chunk::FAMILY, &[10]);
            put(chunk::V6_SOURCE, &v6(s).octets());
            put(chunk::V6_DESTINATION, &v6(d).octets());
        }
    }
    let protocol = if c.transport == Transport::Udp { 17 } else { 6 };
    put(chunk::PROTOCOL, &[protocol]);
    put(chunk::SOURCE_PORT, &c.source.port().to_be_bytes());
    put(chunk::DESTINATION_PORT, &c.destination.port().to_be_bytes());
    let seconds = u32::try_from(c.at.as_secs()).unwrap_or(u32::MAX);
    put(chunk::SECONDS, &seconds.to_be_bytes());
    put(chunk::MICROSECONDS, &c.at.subsec_micros().to_be_bytes());
    put(chunk::PAYLOAD_TYPE, &[1]); // SIP
    put(chunk::AGENT, &c.agent.to_be_bytes());
    put(chunk::PAYLOAD, c.payload);
    let total = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Some(out)
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Sends copies to a collector over UDP.
#[derive(Debug)]
pub struct HepSender {
    socket: std::net::UdpSocket,
    collector: SocketAddr,
    agent: u32,
}

impl HepSender {
    /// A sender to `collector` (udp), tagging copies with `agent`.
    pub fn new(collector: SocketAddr, agent: u32) -> std::io::Result<Self> {
        let any: SocketAddr = if collector.is_ipv4() {
            "0.0.0.0:0".parse().map_err(std::io::Error::other)?
        } else {
            "[::]:0".parse().map_err(std::io::Error::other)?
        };
        let socket = std::net::UdpSocket::bind(any)?;
        socket.set_nonblocking(true)?;
        Ok(HepSender {
            socket,
            collector,
            agent,
        })
    }

    /// Copies one message (from `source` to `destination` over `transport`); never blocks.
    pub fn copy(
        &self,
        (source, destination): (SocketAddr, SocketAddr),
        transport: Transport,
        payload: &[u8],
    ) {
        #[allow(clippy::disallowed_methods)] // the driver stamps the capture time
        let at = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let capture = Capture {
            source,
            destination,
            transport,
            at,
            agent: self.agent,
            payload,
        };
        if let Some(packet) = encode(&capture) {
            // A full buffer or an unreachable collector costs the copy, never the SIP.
            let _ = self.socket.send_to(&packet, self.collector);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_v4_udp_capture_has_every_chunk_and_its_total_length() {
        let c = Capture {
            source: "127.0.0.1:5060".parse().unwrap(),
            destination: "127.0.0.2:40000".parse().unwrap(),
            transport: Transport::Udp,
            at: Duration::new(1_700_000_000, 123_456_000),
            agent: 7,
            payload: b"OPTIONS sip:a@b SIP/2.0\r\n\r\n",
        };
        let p = encode(&c).unwrap();
        assert_eq!(&p[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        // Walk the chunks: each (vendor 0, type, length) tiles the packet exactly.
        let (mut at, mut kinds) = (6, Vec::new());
        while at < p.len() {
            let kind = u16::from_be_bytes([p[at + 2], p[at + 3]]);
            let len = usize::from(u16::from_be_bytes([p[at + 4], p[at + 5]]));
            assert_eq!(u16::from_be_bytes([p[at], p[at + 1]]), 0);
            kinds.push((kind, p[at + 6..at + len].to_vec()));
            at += len;
        }
        assert_eq!(at, p.len());
        let value = |k: u16| kinds.iter().find(|(t, _)| *t == k).unwrap().1.clone();
        assert_eq!(value(chunk::FAMILY), [2]);
        assert_eq!(value(chunk::PROTOCOL), [17]);
        assert_eq!(value(chunk::V4_DESTINATION), [127, 0, 0, 2]);
        assert_eq!(value(chunk::DESTINATION_PORT), 40000u16.to_be_bytes());
        assert_eq!(value(chunk::MICROSECONDS), 123_456u32.to_be_bytes());
        assert_eq!(value(chunk::PAYLOAD), c.payload);
        // Too large for HEP's 16-bit length: refused, not truncated.
        let big = vec![b'x'; 70_000];
        assert!(encode(&Capture { payload: &big, ..c }).is_none());
    }
}

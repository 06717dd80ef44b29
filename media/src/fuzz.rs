//! Fuzz bodies for every parser the media side feeds bytes from outside (issue #24): SDP,
//! STUN and TURN, RTP and RTCP through the relay, the ng protocol's bencode and its commands.
//! They compile with every build; `fuzz/` runs them under libFuzzer. A panic is the finding.

use crate::control::Calls;
use crate::control::bencode::Bencode;
use crate::relay::{PortPool, Relay};
use crate::sdp::Description;
use crate::stun::{Credentials, StunServer};
use crate::turn::{ClientAddr, TurnConfig, TurnServer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `data` cut into packets: each is a two-byte big-endian length, then that many bytes.
fn packets(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (packet, after) = tail.split_at(len);
        rest = after;
        Some(packet)
    })
}

/// An SDP body: parsed, and if it parses, rewritten for the relay (every stream kept).
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(description) = Description::parse(text) {
        let plan: Vec<_> = description.media().map(|_| None).collect();
        let rewritten = description.rewrite(&plan);
        // What we write must read again.
        if Description::parse(&rewritten).is_err() {
            panic!("a rewritten description does not parse:\n{rewritten}");
        }
    }
}

/// Datagrams to a TURN server (open, so allocations are made and used) and to a STUN server
/// with credentials, from two clients, a second apart.
pub fn stun_turn(data: &[u8], start: Instant) {
    let open = StunServer::new("fuzz", None, [7; 32]);
    let config = TurnConfig::new(std::net::IpAddr::from([127, 0, 0, 1]), (50_000, 50_009));
    let mut turn = TurnServer::new(open, config);
    let credentials = Credentials {
        realm: "fuzz.test".into(),
        users: [("alice".to_string(), "wonder".to_string())].into(),
        secret: Some("north".into()),
    };
    let stun = StunServer::new("fuzz", Some(credentials), [9; 32]);
    let clients = [
        SocketAddr::from(([127, 0, 0, 1], 40_000)),
        SocketAddr::from(([127, 0, 0, 2], 40_002)),
    ];
    for (i, packet) in packets(data).enumerate() {
        let now = start + Duration::from_secs(i as u64);
        let client = clients[i % 2];
        let _ = turn.handle_client(now, 1_000_000 + i as u64, ClientAddr::udp(client), packet);
        let _ = stun.handle(packet, client, 1_000_000);
        turn.handle_timeout(now);
        while turn.poll_closed_port().is_some() {}
    }
}

/// RTP and RTCP through a relay session: packets from both parties to both ports.
pub fn rtp_rtcp(data: &[u8], start: Instant) {
    let mut relay = Relay::new(PortPool::new(30_000, 30_003), Duration::from_secs(60));
    let Ok((id, ports)) = relay.create(start) else {
        return;
    };
    let parties = [
        SocketAddr::from(([127, 0, 0, 1], 4_000)),
        SocketAddr::from(([127, 0, 0, 2], 5_000)),
    ];
    for (i, packet) in packets(data).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        let _ = relay.handle(now, ports[i % 2], parties[(i / 2) % 2], packet);
    }
    let _ = relay.quality(id, start + Duration::from_secs(5));
    let _ = relay.delete(id);
}

/// Bencode: decoded, and what decodes encodes to what decodes the same.
pub fn bencode(data: &[u8]) {
    let Ok((value, used)) = Bencode::decode(data) else {
        return;
    };
    assert!(used <= data.len());
    let mut out = Vec::new();
    value.encode(&mut out);
    match Bencode::decode(&out) {
        Ok((again, n)) if n == out.len() => assert_eq!(again, value),
        other => panic!("an encoded value does not decode: {other:?}"),
    }
}

/// ng datagrams (`cookie bencoded-command`), one after another, to one relay.
pub fn ng(data: &[u8], start: Instant) {
    let relay = Relay::new(PortPool::new(30_000, 30_007), Duration::from_secs(60));
    let mut calls = Calls::new(relay, std::net::IpAddr::from([127, 0, 0, 1]));
    for (i, datagram) in packets(data).enumerate() {
        let now = start + Duration::from_secs(i as u64);
        let _ = crate::control::ng::handle(&mut calls, now, datagram);
    }
}

//! TURN's data path (RFC 8656 10-12): ChannelData and Send indications from clients to peers,
//! and peers' datagrams back as ChannelData (when the peer has a channel) or Data
//! indications. A client's payload is never copied on the channel path: the driver sends a
//! slice of what it received, and receives a peer's datagram behind [`CHANNEL_HEADROOM`]
//! bytes so the ChannelData header is written in front of it in place.

use super::{ClientAddr, Dropped, FromClient, ToClient, TurnServer};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;
use stun_rs::attributes::turn::{Data, XorPeerAddress};
use stun_rs::methods::DATA;
use stun_rs::{
    MessageClass, MessageEncoderBuilder, StunMessage, StunMessageBuilder, TransactionId,
};

/// Bytes a driver leaves free in front of a peer's datagram: the ChannelData header.
pub const CHANNEL_HEADROOM: usize = 4;

impl TurnServer {
    /// ChannelData from a client: its payload to the channel's peer.
    pub(super) fn channel_data<'a>(
        &self,
        now: Instant,
        client: ClientAddr,
        packet: &'a [u8],
    ) -> FromClient<'a> {
        let Some(header) = packet.get(..4) else {
            return FromClient::Drop(Dropped::Malformed);
        };
        let number = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        // Over UDP the message may carry padding to four bytes (pjnath, uclient -D).
        let Some(payload) = packet.get(4..4 + length) else {
            return FromClient::Drop(Dropped::Malformed);
        };
        let Some(allocation) = self.allocations.get(&client) else {
            return FromClient::Drop(Dropped::NoAllocation);
        };
        if allocation.expires <= now {
            return FromClient::Drop(Dropped::NoAllocation);
        }
        let Some(peer) = allocation.channel_peer(number, now) else {
            return FromClient::Drop(Dropped::NoChannel);
        };
        match allocation.port_for(peer.ip()) {
            Some(port) => FromClient::Relay {
                port,
                peer,
                payload: Cow::Borrowed(payload),
            },
            None => FromClient::Drop(Dropped::NoPermission),
        }
    }

    /// A Send indication: its DATA to its XOR-PEER-ADDRESS, when permitted (RFC 8656 10.2).
    pub(super) fn send_indication<'a>(
        &self,
        now: Instant,
        client: ClientAddr,
        message: &StunMessage,
    ) -> FromClient<'a> {
        let Some(allocation) = self.allocations.get(&client) else {
            return FromClient::Drop(Dropped::NoAllocation);
        };
        let peer = message
            .get::<XorPeerAddress>()
            .and_then(|a| a.as_xor_peer_address().ok())
            .map(|p| *p.socket_address());
        let data = message.get::<Data>().and_then(|a| a.as_data().ok());
        let (Some(peer), Some(data)) = (peer, data) else {
            return FromClient::Drop(Dropped::Malformed);
        };
        let port = allocation.port_for(peer.ip());
        let Some(port) =
            port.filter(|_| allocation.expires > now && allocation.permits(peer.ip(), now))
        else {
            return FromClient::Drop(Dropped::NoPermission);
        };
        FromClient::Relay {
            port,
            peer,
            payload: Cow::Owned(data.as_bytes().to_vec()),
        }
    }

    /// A datagram from `peer` to relayed port `port`, received at
    /// `buffer[CHANNEL_HEADROOM..]`: for the client, when the peer has a permission.
    pub fn handle_peer<'a>(
        &self,
        now: Instant,
        port: u16,
        peer: SocketAddr,
        buffer: &'a mut [u8],
    ) -> ToClient<'a> {
        let Some(client) = self.by_port.get(&port).copied() else {
            return ToClient::Drop(Dropped::NoAllocation);
        };
        let Some(allocation) = self.allocations.get(&client) else {
            return ToClient::Drop(Dropped::NoAllocation);
        };
        if allocation.expires <= now || !allocation.permits(peer.ip(), now) {
            return ToClient::Drop(Dropped::NoPermission);
        }
        let Some(payload_len) = buffer
            .len()
            .checked_sub(CHANNEL_HEADROOM)
            .and_then(|n| u16::try_from(n).ok())
        else {
            return ToClient::Drop(Dropped::Malformed);
        };
        if let Some(number) = allocation.channel_to(peer, now) {
            buffer[..2].copy_from_slice(&number.to_be_bytes());
            buffer[2..4].copy_from_slice(&payload_len.to_be_bytes());
            return ToClient::Send {
                client,
                bytes: Cow::Borrowed(buffer),
            };
        }
        match data_indication(peer, &buffer[CHANNEL_HEADROOM..]) {
            Some(bytes) => ToClient::Send {
                client,
                bytes: Cow::Owned(bytes),
            },
            None => ToClient::Drop(Dropped::Malformed),
        }
    }
}

/// A Data indication carrying `payload` from `peer` (RFC 8656 10.3), with a random
/// transaction id.
fn data_indication(peer: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let message = StunMessageBuilder::new(DATA, MessageClass::Indication)
        .with_transaction_id(TransactionId::default())
        .with_attribute(XorPeerAddress::from(peer))
        .with_attribute(Data::new(payload))
        .build();
    let mut out = vec![0u8; payload.len() + 64];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut out, &message)
        .ok()?;
    out.truncate(n);
    Some(out)
}

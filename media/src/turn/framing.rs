//! TURN over TCP and TLS (RFC 8656 3.1, 12.5): a stream carries STUN messages and ChannelData
//! back to back, each found by its own length field; ChannelData is padded to four bytes.

/// STUN's magic cookie (RFC 8489 5), which every message carries after its length.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// What starts a stream's unread bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message of this many bytes (padding included).
    Whole(usize),
    /// Not enough bytes yet.
    Partial,
    /// Neither STUN nor ChannelData: the stream cannot be followed any further.
    Garbage,
}

/// The frame at the start of `unread`.
pub fn frame(unread: &[u8]) -> Frame {
    let Some(&first) = unread.first() else {
        return Frame::Partial;
    };
    let Some(length) = unread.get(2..4) else {
        return Frame::Partial;
    };
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    if first >> 6 == 0 && unread.get(4..8).is_some_and(|c| c != MAGIC_COOKIE) {
        return Frame::Garbage;
    }
    let whole = match first >> 6 {
        // STUN: a 20-byte header, then attributes whose length is a multiple of four.
        0b00 if length % 4 == 0 => 20 + length,
        // ChannelData: 4 bytes, then the payload padded to four.
        0b01 => 4 + length.next_multiple_of(4),
        _ => return Frame::Garbage,
    };
    if unread.len() >= whole {
        Frame::Whole(whole)
    } else {
        Frame::Partial
    }
}

/// Whether a message is ChannelData: its first two bits are 01 (RFC 8656 12.4, RFC 7983).
pub fn is_channel_data(message: &[u8]) -> bool {
    message.first().is_some_and(|b| b & 0xc0 == 0x40)
}

/// Zeros that pad a ChannelData message of `len` bytes to four over a stream.
pub fn channel_padding(len: usize) -> &'static [u8] {
    &[0, 0, 0][..(4 - len % 4) % 4]
}

/// Whether a connection's first byte opens TLS (a handshake record, RFC 8446 5.1) rather
/// than STUN or ChannelData, whose first byte is below 0x80.
pub fn opens_tls(first: u8) -> bool {
    first == 0x16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_channel_data_are_found_by_their_lengths() {
        // A Binding request with no attributes, then ChannelData of 5 bytes padded to 8.
        let mut s = vec![0x00, 0x01, 0x00, 0x00];
        s.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        s.extend_from_slice(&[7; 12]);
        assert_eq!(frame(&s), Frame::Whole(20));
        assert_eq!(frame(&s[..19]), Frame::Partial);
        let channel = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(frame(&channel), Frame::Whole(12));
        assert_eq!(
            frame(&channel[..9]),
            Frame::Partial,
            "the padding is awaited"
        );
        assert_eq!(frame(&[0x40]), Frame::Partial);
        assert_eq!(frame(&[]), Frame::Partial);
        assert_eq!(
            frame(&[0x80, 0x00, 0x00, 0x00]),
            Frame::Garbage,
            "neither 00 nor 01"
        );
        assert_eq!(
            frame(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0xfc, 0x03]),
            Frame::Garbage
        );
        assert_eq!(
            frame(&[0x00, 0x01, 0x00, 0x03]),
            Frame::Garbage,
            "STUN is 4-aligned"
        );
        assert_eq!(channel_padding(5), &[0, 0, 0]);
        assert_eq!(channel_padding(8), &[] as &[u8]);
        assert_eq!(channel_padding(6), &[0, 0]);
        assert!(opens_tls(0x16) && !opens_tls(0x00) && !opens_tls(0x40));
    }
}

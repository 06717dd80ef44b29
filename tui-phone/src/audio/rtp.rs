//! RTP (RFC 3550) headers as the phone writes and reads them, and the RTCP it sends: a sender
//! report with one reception report and a CNAME, every few seconds. RTP and RTCP on one port
//! are told apart by the second byte (RFC 5761 4).

/// The fixed RTP header fields the phone uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit (first packet of a talk spurt, or of a DTMF event).
    pub marker: bool,
    /// The payload type.
    pub pt: u8,
    /// The sequence number.
    pub seq: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The sender's SSRC.
    pub ssrc: u32,
}

/// Writes a packet (12-byte header, no CSRC or extension) into `out`, cleared first.
pub fn write_rtp(h: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push((u8::from(h.marker) << 7) | (h.pt & 0x7F));
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.timestamp.to_be_bytes());
    out.extend_from_slice(&h.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Reads a packet: its header and payload (CSRCs, extension and padding skipped); `None` for
/// what is not RTP version 2 or is cut short.
pub fn read_rtp(data: &[u8]) -> Option<(RtpHeader, &[u8])> {
    let first = *data.first()?;
    if first >> 6 != 2 || data.len() < 12 {
        return None;
    }
    let csrc = usize::from(first & 0x0F) * 4;
    let mut start = 12 + csrc;
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*data.get(start + 2)?, *data.get(start + 3)?]);
        start += 4 + usize::from(words) * 4;
    }
    let mut end = data.len();
    if first & 0x20 != 0 {
        let padding = usize::from(*data.last()?);
        end = end.checked_sub(padding)?;
    }
    let payload = data.get(start..end)?;
    let header = RtpHeader {
        marker: data[1] & 0x80 != 0,
        pt: data[1] & 0x7F,
        seq: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
    };
    Some((header, payload))
}

/// Whether a datagram on a muxed port is RTCP (packet types 192-223, RFC 5761 4).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (192..=223).contains(&data[1])
}

/// What a sender report says about us and what we received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Our SSRC.
    pub ssrc: u32,
    /// NTP time of the report (seconds since 1900, 32.32 fixed point).
    pub ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub rtp_timestamp: u32,
    /// Packets we sent.
    pub packets: u32,
    /// Payload octets we sent.
    pub octets: u32,
    /// The source we report on, when we received any.
    pub source: Option<ReceptionReport>,
}

/// One reception report block.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceptionReport {
    /// Its SSRC.
    pub ssrc: u32,
    /// Lost since the last report, of 256.
    pub fraction_lost: u8,
    /// Lost in all (24 bits).
    pub lost: u32,
    /// The highest sequence number received, extended.
    pub highest: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
}

/// A compound RTCP packet: SR (with one report block when we received) and SDES CNAME.
pub fn write_report(r: &Report, cname: &str, out: &mut Vec<u8>) {
    out.clear();
    let blocks = u8::from(r.source.is_some());
    let words = 6 + 6 * u16::from(blocks);
    out.push(0x80 | blocks);
    out.push(200);
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&r.ssrc.to_be_bytes());
    out.extend_from_slice(&r.ntp.to_be_bytes());
    out.extend_from_slice(&r.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&r.packets.to_be_bytes());
    out.extend_from_slice(&r.octets.to_be_bytes());
    if let Some(s) = r.source {
        out.extend_from_slice(&s.ssrc.to_be_bytes());
        let lost = s.lost.min(0x7F_FFFF).to_be_bytes();
        out.extend_from_slice(&[s.fraction_lost, lost[1], lost[2], lost[3]]);
        out.extend_from_slice(&s.highest.to_be_bytes());
        out.extend_from_slice(&s.jitter.to_be_bytes());
        out.extend_from_slice(&[0; 8]); // no LSR/DLSR: we do not track their reports
    }
    // SDES: one chunk, CNAME item, END, padded to a word.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(202);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&r.ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + padded - chunk + 1, 0);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_written_packet_reads_back() {
        let h = RtpHeader {
            marker: true,
            pt: 111,
            seq: 65_535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 42,
        };
        let mut out = Vec::new();
        write_rtp(&h, b"abc", &mut out);
        assert_eq!(read_rtp(&out), Some((h, &b"abc"[..])));
        assert!(!is_rtcp(&out));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut p = vec![0xB1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension of one word
        p.extend_from_slice(b"xy");
        p.extend_from_slice(&[0, 2]); // two bytes of padding
        let (h, payload) = read_rtp(&p).unwrap();
        assert_eq!((h.seq, h.timestamp, h.ssrc), (1, 2, 3));
        assert_eq!(payload, b"xy");
    }

    #[test]
    fn short_or_wrong_version_packets_are_not_rtp() {
        assert_eq!(read_rtp(&[]), None);
        assert_eq!(read_rtp(&[0x80; 11]), None);
        assert_eq!(read_rtp(&[0x40; 20]), None);
        assert_eq!(
            read_rtp(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]),
            None
        );
        assert_eq!(read_rtp(&[0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn the_report_is_a_well_formed_compound_packet() {
        let mut out = Vec::new();
        let r = Report {
            ssrc: 7,
            source: Some(ReceptionReport {
                ssrc: 9,
                lost: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        write_report(&r, "alice@club-a.test", &mut out);
        assert!(is_rtcp(&out));
        // Walk the compound packet by its length fields: it ends exactly at the end.
        let mut at = 0;
        let mut types = Vec::new();
        while at < out.len() {
            types.push(out[at + 1]);
            at += (usize::from(u16::from_be_bytes([out[at + 2], out[at + 3]])) + 1) * 4;
        }
        assert_eq!(at, out.len());
        assert_eq!(types, vec![200, 202]);
    }
}

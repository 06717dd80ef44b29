//! What a party's RTCP says about the media it receives: the first report block of an SR or
//! RR (RFC 3550 6.4.1-2) and the VoIP metrics block of an XR (RFC 3611 4.7). Anything that
//! does not read is skipped: RTCP is advice, and the packet is relayed regardless.

/// What a party reported about what it receives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reported {
    /// Loss since its previous report, 0 to 1 (the fraction lost field).
    pub fraction_lost: f64,
    /// Packets lost in all (the cumulative field; negative with duplicates).
    pub cumulative_lost: i32,
    /// Its interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// From RFC 3611 VoIP metrics: its R-factor and MOS-LQ, when it sent them.
    pub xr: Option<(u8, f64)>,
}

/// RTCP packet types (RFC 3550 12.1, RFC 3611).
const SR: u8 = 200;
const RR: u8 = 201;
const XR: u8 = 207;
/// XR's VoIP metrics block type.
const VOIP_METRICS: u8 = 7;
/// "Unavailable" in the VoIP metrics' R-factor and MOS fields.
const UNAVAILABLE: u8 = 127;

/// Reads a compound RTCP packet: the newest report, `previous` updated (an XR alone keeps the
/// last report block's numbers), or None when nothing in it reports.
pub(super) fn read(mut packet: &[u8], previous: Option<Reported>) -> Option<Reported> {
    let mut found = None::<Reported>;
    while packet.len() >= 4 {
        let (first, kind) = (packet[0], packet[1]);
        if first >> 6 != 2 {
            break;
        }
        let words = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        let Some(body) = packet.get(4..4 + words * 4) else {
            break;
        };
        let blocks = first & 0x1f;
        let report = match kind {
            // SSRC and 20 bytes of sender info come before the blocks.
            SR if blocks > 0 => body.get(24..48),
            RR if blocks > 0 => body.get(4..28),
            _ => None,
        };
        if let Some(b) = report {
            let cumulative = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
            found = Some(Reported {
                fraction_lost: f64::from(b[4]) / 256.0,
                cumulative_lost: cumulative,
                jitter: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                xr: found.or(previous).and_then(|r| r.xr),
            });
        }
        if kind == XR {
            if let Some(xr) = voip_metrics(body.get(4..).unwrap_or_default()) {
                let base = found.or(previous).unwrap_or(Reported {
                    fraction_lost: 0.0,
                    cumulative_lost: 0,
                    jitter: 0,
                    xr: None,
                });
                found = Some(Reported {
                    xr: Some(xr),
                    ..base
                });
            }
        }
        packet = &packet[4 + words * 4..];
    }
    found
}

/// The R-factor and MOS-LQ of the first VoIP metrics block among XR `blocks`.
fn voip_metrics(mut blocks: &[u8]) -> Option<(u8, f64)> {
    while blocks.len() >= 4 {
        let words = usize::from(u16::from_be_bytes([blocks[2], blocks[3]]));
        let block = blocks.get(4..4 + words * 4)?;
        if blocks[0] == VOIP_METRICS {
            // SSRC 4, then loss, discard, burst and gap densities, durations, delays, levels,
            // RERL, Gmin (20 bytes), then R factor, ext R factor, MOS-LQ, MOS-CQ.
            let (r, mos_lq) = (*block.get(20)?, *block.get(22)?);
            if r == UNAVAILABLE || mos_lq == UNAVAILABLE {
                return None;
            }
            return Some((r, f64::from(mos_lq) / 10.0));
        }
        blocks = &blocks[4 + words * 4..];
    }
    None
}

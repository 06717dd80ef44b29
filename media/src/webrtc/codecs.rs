//! The audio codecs a browser and a SIP phone can share without transcoding (Opus, PCMU,
//! PCMA, and RFC 4733 telephone events for DTMF), read from one side's SDP and written into
//! the SDP the other side gets. Payload type numbers are kept as the offerer chose them, so
//! the same number means the same codec on both sides of the gateway.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// One payload type of an m= line, with its a=rtpmap and a=fmtp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Payload type number.
    pub pt: u8,
    /// Encoding name as written (`opus`, `PCMU`, `telephone-event`).
    pub name: String,
    /// Clock rate.
    pub clock: u32,
    /// Channels, when given (Opus says 2).
    pub channels: Option<u8>,
    /// The a=fmtp parameters, when given.
    pub fmtp: Option<String>,
}

/// Which shared codec a payload type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opus at 48 kHz.
    Opus,
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// RFC 4733 DTMF at 8 kHz or 48 kHz (it follows the audio codec's clock).
    TelephoneEvent,
}

impl Codec {
    /// The shared codec this is; None for anything the gateway does not carry.
    pub fn kind(&self) -> Option<Kind> {
        match (self.name.to_ascii_lowercase().as_str(), self.clock) {
            ("opus", 48_000) => Some(Kind::Opus),
            ("pcmu", 8_000) => Some(Kind::Pcmu),
            ("pcma", 8_000) => Some(Kind::Pcma),
            ("telephone-event", 8_000 | 48_000) => Some(Kind::TelephoneEvent),
            _ => None,
        }
    }

    /// Whether it carries audio (telephone events ride along with one that does).
    pub fn is_audio(&self) -> bool {
        matches!(self.kind(), Some(Kind::Opus | Kind::Pcmu | Kind::Pcma))
    }
}

/// The payload types of the first audio m= section of `sdp`, in the order offered. Static
/// types without an a=rtpmap (0 and 8) are named as RFC 3551 does.
pub fn audio_codecs(sdp: &str) -> Vec<Codec> {
    let mut codecs: Vec<Codec> = Vec::new();
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            if seen_audio {
                break;
            }
            in_audio = m.starts_with("audio ");
            if in_audio {
                seen_audio = true;
                for pt in m.split_ascii_whitespace().skip(3) {
                    let Ok(pt) = pt.parse::<u8>() else { continue };
                    let (name, clock) = match pt {
                        0 => ("PCMU", 8_000),
                        8 => ("PCMA", 8_000),
                        _ => ("", 0),
                    };
                    codecs.push(Codec {
                        pt,
                        name: name.to_string(),
                        clock,
                        channels: None,
                        fmtp: None,
                    });
                }
            }
            continue;
        }
        if !in_audio {
            continue;
        }
        if let Some(map) = line.strip_prefix("a=rtpmap:") {
            let Some((pt, encoding)) = map.split_once(' ') else {
                continue;
            };
            let Some(codec) = pt.parse::<u8>().ok().and_then(|pt| find(&mut codecs, pt)) else {
                continue;
            };
            let mut parts = encoding.split('/');
            codec.name = parts.next().unwrap_or_default().to_string();
            codec.clock = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            codec.channels = parts.next().and_then(|c| c.parse().ok());
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let Some((pt, params)) = fmtp.split_once(' ') else {
                continue;
            };
            if let Some(codec) = pt.parse::<u8>().ok().and_then(|pt| find(&mut codecs, pt)) {
                codec.fmtp = Some(params.to_string());
            }
        }
    }
    codecs
}

fn find(codecs: &mut [Codec], pt: u8) -> Option<&mut Codec> {
    codecs.iter_mut().find(|c| c.pt == pt)
}

/// The codecs of `offered` the gateway can carry, in the offerer's order; telephone events
/// only at the clock of an audio codec kept.
pub fn shared(offered: &[Codec]) -> Vec<Codec> {
    let audio: Vec<&Codec> = offered.iter().filter(|c| c.is_audio()).collect();
    offered
        .iter()
        .filter(|c| match c.kind() {
            Some(Kind::TelephoneEvent) => audio.iter().any(|a| a.clock == c.clock),
            Some(_) => true,
            None => false,
        })
        .cloned()
        .collect()
}

/// What an answer chose: its first audio codec, and its telephone events (those at the
/// audio codec's clock first; a desk phone answering Opus often has DTMF at 8 kHz only).
pub fn chosen(answered: &[Codec]) -> Vec<Codec> {
    let Some(audio) = answered.iter().find(|c| c.is_audio()) else {
        return Vec::new();
    };
    let mut events: Vec<Codec> = answered
        .iter()
        .filter(|c| c.kind() == Some(Kind::TelephoneEvent))
        .cloned()
        .collect();
    events.sort_by_key(|c| c.clock != audio.clock);
    let mut chosen = vec![audio.clone()];
    chosen.extend(events);
    chosen
}

/// The names of codecs, for a 488's reason (`opus, PCMU`).
pub fn names(codecs: &[Codec]) -> String {
    let names: Vec<String> = codecs
        .iter()
        .filter(|c| !c.name.is_empty())
        .map(|c| format!("{}/{}", c.name, c.clock))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The one SRTP suite offered and taken (RFC 4568): every SIP phone speaks it.
pub const SRTP_SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// SDES keys in a phone's SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes {
    /// The a=crypto tag.
    pub tag: u32,
    /// Master key and salt.
    pub key: [u8; 30],
}

/// The first audio section's a=crypto with [`SRTP_SUITE`], if any.
pub fn sdes(sdp: &str) -> Option<Sdes> {
    use base64::Engine as _;
    first_audio_lines(sdp).find_map(|line| {
        let mut parts = line.strip_prefix("a=crypto:")?.split_ascii_whitespace();
        let tag = parts.next()?.parse().ok()?;
        if parts.next()? != SRTP_SUITE {
            return None;
        }
        let b64 = parts.next()?.strip_prefix("inline:")?.split('|').next()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(Sdes {
            tag,
            key: bytes.try_into().ok()?,
        })
    })
}

/// The first audio section's m= transport (`RTP/AVP`, `RTP/SAVP`...).
pub fn transport(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split_ascii_whitespace().nth(1))
}

fn first_audio_lines(sdp: &str) -> impl Iterator<Item = &str> {
    let mut state = 0u8; // 0 before audio, 1 in it, 2 after
    sdp.lines().map(str::trim_end).filter(move |line| {
        if line.starts_with("m=") {
            state = match state {
                0 if line.starts_with("m=audio ") => 1,
                0 => 0,
                _ => 2,
            };
            return false;
        }
        state == 1
    })
}

/// SDP for a SIP phone: one audio stream at `at` with `codecs`, in the direction given
/// (`sendrecv` unless on hold); with `sdes`, our key as a=crypto (RTP/AVP stays, the
/// best-effort form phones take, unless `transport` says RTP/SAVP).
pub fn phone_sdp(
    at: SocketAddr,
    codecs: &[Codec],
    (direction, version): (&str, u64),
    (transport, sdes): (&str, Option<Sdes>),
) -> String {
    let family = if at.is_ipv4() { "IP4" } else { "IP6" };
    let ip = at.ip();
    let mut sdp = format!(
        "v=0\r\no=openline {session} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        session = at.port(),
    );
    let pts: Vec<String> = codecs.iter().map(|c| c.pt.to_string()).collect();
    let _ = write!(
        sdp,
        "m=audio {} {transport} {}\r\n",
        at.port(),
        pts.join(" ")
    );
    for c in codecs {
        let _ = write!(sdp, "a=rtpmap:{} {}/{}", c.pt, c.name, c.clock);
        if let Some(ch) = c.channels {
            let _ = write!(sdp, "/{ch}");
        }
        sdp.push_str("\r\n");
        if let Some(fmtp) = &c.fmtp {
            let _ = write!(sdp, "a=fmtp:{} {fmtp}\r\n", c.pt);
        }
    }
    if let Some(s) = sdes {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(s.key);
        let _ = write!(sdp, "a=crypto:{} {SRTP_SUITE} inline:{key}\r\n", s.tag);
    }
    let _ = write!(sdp, "a=ptime:20\r\na={direction}\r\n");
    sdp
}

/// The direction attribute of the first audio section (`sendrecv` when none is written).
pub fn direction(sdp: &str) -> &'static str {
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            in_audio = m.starts_with("audio ");
            continue;
        }
        if in_audio {
            match line {
                "a=sendonly" => return "sendonly",
                "a=recvonly" => return "recvonly",
                "a=inactive" => return "inactive",
                _ => {}
            }
        }
    }
    "sendrecv"
}

/// What a browser's SDP lacks that the WebRTC leg needs (RFC 8829's must-haves for us:
/// rtcp-mux, a DTLS fingerprint, ICE credentials), if anything; session-level lines count.
pub fn webrtc_problem(sdp: &str) -> Option<&'static str> {
    let has = |prefix: &str| sdp.lines().any(|l| l.trim_end().starts_with(prefix));
    if !has("a=rtcp-mux") {
        Some("the browser's SDP has no a=rtcp-mux")
    } else if !has("a=fingerprint:") {
        Some("the browser's SDP has no a=fingerprint")
    } else if !has("a=ice-ufrag:") || !has("a=ice-pwd:") {
        Some("the browser's SDP has no ICE credentials")
    } else {
        None
    }
}

/// Whether an SDP's first audio stream is WebRTC's (DTLS-SRTP with feedback: a browser).
pub fn is_webrtc(sdp: &str) -> bool {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .is_some_and(|m| m.contains("UDP/TLS/RTP/SAVP"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CHROMIUM: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
        a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n\
        a=rtpmap:126 telephone-event/8000\r\na=sendrecv\r\n";

    #[test]
    fn a_browser_offer_shares_opus_g711_and_its_dtmf() {
        let all = audio_codecs(CHROMIUM);
        assert_eq!(all.len(), 8);
        assert!(is_webrtc(CHROMIUM));
        let kept: Vec<u8> = shared(&all).iter().map(|c| c.pt).collect();
        assert_eq!(kept, [111, 0, 8, 110, 126]);
        assert_eq!(
            shared(&all)[0].fmtp.as_deref(),
            Some("minptime=10;useinbandfec=1")
        );
    }

    #[test]
    fn a_phone_answer_chooses_one_codec_and_its_dtmf() {
        let answer = "v=0\r\nc=IN IP4 198.18.0.9\r\nm=audio 4000 RTP/AVP 0 126\r\n\
            a=rtpmap:126 telephone-event/8000\r\na=sendonly\r\n";
        let chosen = chosen(&audio_codecs(answer));
        assert_eq!(chosen.iter().map(|c| c.pt).collect::<Vec<_>>(), [0, 126]);
        assert_eq!(direction(answer), "sendonly");
        assert!(!is_webrtc(answer));
    }

    #[test]
    fn no_shared_codec_is_named_for_the_488() {
        let g729 = "v=0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
        let all = audio_codecs(g729);
        assert!(shared(&all).is_empty());
        assert_eq!(names(&all), "G729/8000");
    }

    #[test]
    fn the_phone_gets_rtp_avp_with_our_sdes_key() {
        let codecs = shared(&audio_codecs(CHROMIUM));
        let sdes = Sdes {
            tag: 1,
            key: [7; 30],
        };
        let at = "198.18.0.1:30002".parse().unwrap();
        let sdp = phone_sdp(at, &codecs, ("sendrecv", 1), ("RTP/AVP", Some(sdes)));
        assert!(
            sdp.contains("m=audio 30002 RTP/AVP 111 0 8 110 126\r\n"),
            "{sdp}"
        );
        assert_eq!(self::sdes(&sdp), Some(sdes), "our key reads back");
        assert_eq!(transport(&sdp), Some("RTP/AVP"));
        assert!(sdp.contains("c=IN IP4 198.18.0.1\r\n"));
        assert!(sdp.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10"));
        assert_eq!(audio_codecs(&sdp), codecs);
    }
}

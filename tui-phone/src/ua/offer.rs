//! SDP offer/answer for one audio stream (RFC 3264): what the phone offers (Opus preferred,
//! PCMU and PCMA as fallback, RFC 4733 telephone-event, rtcp-mux, SDES-SRTP keys in best-effort
//! form: RTP/AVP with a=crypto, as baresip and Linphone offer it), how it answers an offer, and
//! what an answer settles. Addresses are read by the relay's own SDP reader
//! ([`openline_media::sdp::Description`]), so the phone and the relay agree on what an SDP says.

use base64::Engine as _;
use openline_media::sdp::Description;
use std::net::SocketAddr;

/// The one SRTP suite offered and accepted (RFC 4568), the one every SIP phone speaks.
pub const SRTP_SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Our payload type for Opus (dynamic, as commonly used).
pub const OPUS_PT: u8 = 111;
/// Our payload type for telephone-event.
pub const DTMF_PT: u8 = 101;

/// An audio codec the phone speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus at 48 kHz (RFC 7587: always `opus/48000/2` in SDP).
    Opus,
    /// G.711 mu-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

impl Codec {
    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma => 8_000,
        }
    }

    /// Its name as the user sees it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Which codec an rtpmap encoding (`opus/48000/2`, `PCMU/8000`) names.
    fn from_rtpmap(encoding: &str) -> Option<Codec> {
        let mut parts = encoding.split('/');
        let (name, rate) = (parts.next()?, parts.next()?);
        match (name.to_ascii_lowercase().as_str(), rate) {
            ("opus", "48000") => Some(Codec::Opus),
            ("pcmu", "8000") => Some(Codec::Pcmu),
            ("pcma", "8000") => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// A static payload type's codec (RFC 3551) when no rtpmap says otherwise.
    fn from_static(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// Which way audio flows, from the side that wrote the description (RFC 3264 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// The writer sends only (it holds the other side).
    SendOnly,
    /// The writer receives only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The same flow seen from the other side.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the writer sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The narrower of two wishes: a flow both allow.
    fn and(self, other: Direction) -> Direction {
        match (
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        ) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// SDES keys: 16 bytes of master key and 14 of salt (AES_CM_128_HMAC_SHA1_80).
pub type SrtpKey = [u8; 30];

/// Why an offer or answer cannot be used (the call ends, or the offer gets 488, with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not SDP the relay's reader accepts.
    #[error("garbled SDP: {0}")]
    Garbled(#[from] openline_media::sdp::SdpError),
    /// No m=audio stream, or it is switched off.
    #[error("no audio stream in the SDP")]
    NoAudio,
    /// None of the formats is one we speak (theirs are named).
    #[error("no codec in common (they speak: {0})")]
    NoCodec(String),
    /// RTP/SAVP without a key in a suite we speak.
    #[error("SRTP required but no {SRTP_SUITE} key offered")]
    NoCrypto,
    /// An answer whose a=crypto does not answer ours.
    #[error("the answer's a=crypto is not one we offered")]
    BadCrypto,
}

/// What an offer/answer exchange settled for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both send.
    pub codec: Codec,
    /// Its payload type in this session.
    pub pt: u8,
    /// The telephone-event payload type, when both speak RFC 4733.
    pub dtmf_pt: Option<u8>,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `None` with rtcp-mux (on the RTP port).
    pub remote_rtcp: Option<SocketAddr>,
    /// What we do: sends() and receives() from our side.
    pub direction: Direction,
    /// SRTP keys when both agreed on SDES: (ours, theirs).
    pub srtp: Option<(SrtpKey, SrtpKey)>,
}

/// What we put in an offer or answer.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a> {
    /// The address our RTP is reachable on (the STUN-learned one behind NAT); RTCP is one
    /// above, or the same with rtcp-mux.
    pub rtp: SocketAddr,
    /// The o= line's session id and version (the version grows with each new offer).
    pub session: (u64, u64),
    /// How we want audio to flow.
    pub direction: Direction,
    /// Our SDES key, when offering or accepting SRTP.
    pub key: Option<&'a SrtpKey>,
}

/// An m=audio section's lines of interest.
struct Audio<'t> {
    proto: &'t str,
    formats: Vec<&'t str>,
    rtpmaps: Vec<(u8, &'t str)>,
    direction: Direction,
    cryptos: Vec<(&'t str, &'t str, &'t str)>,
}

/// Reads the first audio section's attributes (session-level direction applies too).
fn audio_section(text: &str) -> Option<Audio<'_>> {
    let mut session_direction = Direction::SendRecv;
    let mut audio: Option<Audio<'_>> = None;
    let mut in_audio = false;
    for line in text.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            if audio.is_some() {
                break; // the first audio stream is ours; later ones are refused (port 0)
            }
            let mut parts = m.split_ascii_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio {
                let (_port, proto) = (parts.next()?, parts.next()?);
                audio = Some(Audio {
                    proto,
                    formats: parts.collect(),
                    rtpmaps: Vec::new(),
                    direction: session_direction,
                    cryptos: Vec::new(),
                });
            }
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let direction = match attribute {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        };
        match (&mut audio, in_audio) {
            (None, _) => {
                if let Some(d) = direction {
                    session_direction = d;
                }
            }
            (Some(_), false) => {}
            (Some(a), true) => {
                if let Some(d) = direction {
                    a.direction = d;
                } else if let Some(map) = attribute.strip_prefix("rtpmap:") {
                    let (pt, encoding) = map.split_once(' ')?;
                    if let Ok(pt) = pt.parse() {
                        a.rtpmaps.push((pt, encoding.trim()));
                    }
                } else if let Some(c) = attribute.strip_prefix("crypto:") {
                    let mut parts = c.split_ascii_whitespace();
                    if let (Some(tag), Some(suite), Some(key)) =
                        (parts.next(), parts.next(), parts.next())
                    {
                        a.cryptos.push((tag, suite, key));
                    }
                }
            }
        }
    }
    audio
}

impl Audio<'_> {
    /// The codec a format names: by rtpmap, else by its static number.
    fn codec_of(&self, format: &str) -> Option<(u8, Codec)> {
        let pt: u8 = format.parse().ok()?;
        let codec = match self.rtpmaps.iter().find(|(p, _)| *p == pt) {
            Some((_, encoding)) => Codec::from_rtpmap(encoding)?,
            None => Codec::from_static(pt)?,
        };
        Some((pt, codec))
    }

    fn dtmf_pt(&self) -> Option<u8> {
        self.rtpmaps
            .iter()
            .find(|(_, e)| e.eq_ignore_ascii_case("telephone-event/8000"))
            .map(|(pt, _)| *pt)
    }
}

/// `inline:KEY[|lifetime][|MKI:len]` -> the 30 key bytes.
fn read_key(inline: &str) -> Option<SrtpKey> {
    let b64 = inline.strip_prefix("inline:")?.split('|').next()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    bytes.try_into().ok()
}

fn write_key(key: &SrtpKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The first audio stream of a description: where its media go (read by the relay's reader;
/// RTCP is `None` with rtcp-mux), its attributes, and the first format we speak.
struct Stream<'t> {
    rtp: SocketAddr,
    rtcp: Option<SocketAddr>,
    audio: Audio<'t>,
    pt: u8,
    codec: Codec,
}

fn read_stream(text: &str) -> Result<Stream<'_>, OfferError> {
    let description = Description::parse(text)?;
    let media = description
        .media()
        .find(|m| m.kind == "audio")
        .ok_or(OfferError::NoAudio)?;
    if media.rtp.port() == 0 {
        return Err(OfferError::NoAudio);
    }
    let audio = audio_section(text).ok_or(OfferError::NoAudio)?;
    let (pt, codec) = audio
        .formats
        .iter()
        .find_map(|f| audio.codec_of(f))
        .ok_or_else(|| OfferError::NoCodec(offered_names(&audio)))?;
    Ok(Stream {
        rtp: media.rtp,
        rtcp: media.rtcp,
        audio,
        pt,
        codec,
    })
}

/// Writes a description with one audio stream of `formats` (payload type, rtpmap).
fn write(local: &Local<'_>, proto: &str, formats: &[(u8, &str)], crypto: Option<&str>) -> String {
    let (ip_kind, ip) = match local.rtp {
        SocketAddr::V4(a) => ("IP4", a.ip().to_string()),
        SocketAddr::V6(a) => ("IP6", a.ip().to_string()),
    };
    let numbers: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=tui-phone {} {} IN {ip_kind} {ip}\r\ns=-\r\nc=IN {ip_kind} {ip}\r\nt=0 0\r\n\
         m=audio {} {proto} {}\r\n",
        local.session.0,
        local.session.1,
        local.rtp.port(),
        numbers.join(" ")
    );
    for (pt, map) in formats {
        sdp.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        if map.starts_with("opus/") {
            sdp.push_str(&format!("a=fmtp:{pt} useinbandfec=1\r\n"));
        } else if map.starts_with("telephone-event/") {
            sdp.push_str(&format!("a=fmtp:{pt} 0-15\r\n"));
        }
    }
    sdp.push_str("a=ptime:20\r\na=rtcp-mux\r\n");
    if let Some(crypto) = crypto {
        sdp.push_str(&format!("a=crypto:{crypto}\r\n"));
    }
    sdp.push_str(&format!("a={}\r\n", local.direction.attribute()));
    sdp
}

/// Our offer: Opus, PCMU, PCMA and telephone-event; SRTP keys when `local.key` is given.
pub fn offer(local: &Local<'_>) -> String {
    let formats = [
        (OPUS_PT, "opus/48000/2"),
        (0, "PCMU/8000"),
        (8, "PCMA/8000"),
        (DTMF_PT, "telephone-event/8000"),
    ];
    let crypto = local
        .key
        .map(|k| format!("1 {SRTP_SUITE} inline:{}", write_key(k)));
    write(local, "RTP/AVP", &formats, crypto.as_deref())
}

/// Our answer to `offer`, and what it settles; the offerer's codec order wins (RFC 3264 6.1).
pub fn answer(offer: &str, local: &Local<'_>) -> Result<(String, Negotiated), OfferError> {
    let Stream {
        rtp,
        rtcp,
        audio,
        pt,
        codec,
    } = read_stream(offer)?;
    let dtmf_pt = audio.dtmf_pt();
    let crypto = audio
        .cryptos
        .iter()
        .find(|(_, suite, _)| *suite == SRTP_SUITE)
        .and_then(|(tag, _, key)| Some((*tag, read_key(key)?)));
    let savp = audio.proto.contains("SAVP");
    let (srtp, crypto_line) = match (crypto, local.key) {
        (Some((tag, theirs)), Some(ours)) => (
            Some((*ours, theirs)),
            Some(format!("{tag} {SRTP_SUITE} inline:{}", write_key(ours))),
        ),
        _ if savp => return Err(OfferError::NoCrypto),
        _ => (None, None),
    };
    let direction = local.direction.and(audio.direction.reversed());
    let mut formats = vec![(pt, rtpmap_of(codec))];
    if let Some(d) = dtmf_pt {
        formats.push((d, "telephone-event/8000"));
    }
    let answer_local = Local {
        direction,
        ..*local
    };
    let sdp = write(&answer_local, audio.proto, &formats, crypto_line.as_deref());
    let negotiated = Negotiated {
        codec,
        pt,
        dtmf_pt,
        remote_rtp: rtp,
        remote_rtcp: rtcp,
        direction,
        srtp,
    };
    Ok((sdp, negotiated))
}

/// What the other side's `answer` to our offer (made with `local`) settles.
pub fn read_answer(answer: &str, local: &Local<'_>) -> Result<Negotiated, OfferError> {
    let Stream {
        rtp,
        rtcp,
        audio,
        pt,
        codec,
    } = read_stream(answer)?;
    let srtp = match (audio.cryptos.first(), local.key) {
        (Some((tag, suite, key)), Some(ours)) => {
            if *tag != "1" || *suite != SRTP_SUITE {
                return Err(OfferError::BadCrypto);
            }
            Some((*ours, read_key(key).ok_or(OfferError::BadCrypto)?))
        }
        (Some(_), None) => return Err(OfferError::BadCrypto),
        (None, _) => None,
    };
    Ok(Negotiated {
        codec,
        pt,
        dtmf_pt: audio.dtmf_pt(),
        remote_rtp: rtp,
        remote_rtcp: rtcp,
        direction: local.direction.and(audio.direction.reversed()),
        srtp,
    })
}

fn rtpmap_of(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "opus/48000/2",
        Codec::Pcmu => "PCMU/8000",
        Codec::Pcma => "PCMA/8000",
    }
}

/// The offered formats by name, for the error the user sees.
fn offered_names(audio: &Audio<'_>) -> String {
    let names: Vec<String> = audio
        .formats
        .iter()
        .map(|f| {
            let pt: Option<u8> = f.parse().ok();
            audio
                .rtpmaps
                .iter()
                .find(|(p, _)| Some(*p) == pt)
                .map_or_else(|| f.to_string(), |(_, e)| e.to_string())
        })
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;

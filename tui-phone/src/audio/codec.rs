//! The codecs behind [`Codec`]: 20 ms frames of 48 kHz mono samples in, RTP payloads out, and
//! back; a lost frame is concealed (Opus's own PLC; G.711 fades the last frame).

use super::g711;
use crate::ua::offer::Codec;

/// The phone's sample rate inside.
pub const RATE: u32 = 48_000;
/// Samples in one 20 ms frame at [`RATE`].
pub const FRAME: usize = 960;

/// Why a codec could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("{codec}: {message}")]
pub struct CodecError {
    codec: &'static str,
    message: String,
}

fn opus_error(e: opus::Error) -> CodecError {
    CodecError {
        codec: "opus",
        message: e.to_string(),
    }
}

/// One direction's encoder.
pub enum Encoder {
    /// Opus.
    Opus(Box<opus::Encoder>),
    /// G.711, A-law when `alaw`.
    G711 {
        /// A-law rather than mu-law.
        alaw: bool,
        /// The 8 kHz samples of the frame under way.
        low: Vec<i16>,
    },
}

impl Encoder {
    /// An encoder for `codec`.
    pub fn new(codec: Codec) -> Result<Self, CodecError> {
        Ok(match codec {
            Codec::Opus => Encoder::Opus(Box::new(
                opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)
                    .map_err(opus_error)?,
            )),
            Codec::Pcmu | Codec::Pcma => Encoder::G711 {
                alaw: codec == Codec::Pcma,
                low: Vec::with_capacity(FRAME / 6),
            },
        })
    }

    /// The RTP timestamp step of one frame.
    pub fn timestamp_step(&self) -> u32 {
        match self {
            Encoder::Opus(_) => FRAME as u32,
            Encoder::G711 { .. } => (FRAME / 6) as u32,
        }
    }

    /// Encodes one frame into `out` (cleared first).
    pub fn encode(&mut self, frame: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.clear();
        match self {
            Encoder::Opus(e) => {
                out.resize(1_500, 0);
                let n = e.encode(frame, out).map_err(opus_error)?;
                out.truncate(n);
            }
            Encoder::G711 { alaw, low } => {
                low.clear();
                g711::down_to_8k(frame, low);
                let encode = if *alaw {
                    g711::alaw_encode
                } else {
                    g711::ulaw_encode
                };
                out.extend(low.iter().map(|&s| encode(s)));
            }
        }
        Ok(())
    }
}

/// One direction's decoder.
pub enum Decoder {
    /// Opus.
    Opus(Box<opus::Decoder>),
    /// G.711, A-law when `alaw`.
    G711 {
        /// A-law rather than mu-law.
        alaw: bool,
        /// The last 8 kHz sample (interpolation starts from it).
        previous: i16,
        /// The last frame played, faded for a lost one.
        last: Box<[i16; FRAME]>,
    },
}

impl Decoder {
    /// A decoder for `codec`.
    pub fn new(codec: Codec) -> Result<Self, CodecError> {
        Ok(match codec {
            Codec::Opus => Decoder::Opus(Box::new(
                opus::Decoder::new(RATE, opus::Channels::Mono).map_err(opus_error)?,
            )),
            Codec::Pcmu | Codec::Pcma => Decoder::G711 {
                alaw: codec == Codec::Pcma,
                previous: 0,
                last: Box::new([0; FRAME]),
            },
        })
    }

    /// Decodes a payload into one frame, or conceals a lost one (`None`). A payload that does
    /// not decode is concealed too: what the network sends never stops the call.
    pub fn decode(&mut self, payload: Option<&[u8]>, out: &mut [i16; FRAME]) {
        match self {
            Decoder::Opus(d) => {
                let input = payload.unwrap_or(&[]);
                let decoded = d.decode(input, out, false).unwrap_or(0);
                if decoded < FRAME {
                    // Shorter frames or an error: conceal the rest.
                    let mut rest = [0i16; FRAME];
                    let n = d.decode(&[], &mut rest, false).unwrap_or(0);
                    let end = (decoded + n).min(FRAME);
                    out[decoded..end].copy_from_slice(&rest[..end - decoded]);
                    out[end..].fill(0);
                }
            }
            Decoder::G711 {
                alaw,
                previous,
                last,
            } => match payload {
                Some(p) => {
                    let decode = if *alaw {
                        g711::alaw_decode
                    } else {
                        g711::ulaw_decode
                    };
                    let low: Vec<i16> = p.iter().take(FRAME / 6).map(|&b| decode(b)).collect();
                    out.fill(0);
                    g711::up_from_8k(&low, previous, out);
                    last.copy_from_slice(out);
                }
                None => {
                    for s in last.iter_mut() {
                        *s /= 2;
                    }
                    out.copy_from_slice(&last[..]);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audio::tone::share_at;

    fn tone(frames: usize) -> Vec<i16> {
        super::super::tone::sine(440.0, 8_000.0, frames * FRAME)
    }

    #[test]
    fn every_codec_carries_a_440_hz_tone() {
        for codec in [Codec::Opus, Codec::Pcmu, Codec::Pcma] {
            let (mut e, mut d) = (Encoder::new(codec).unwrap(), Decoder::new(codec).unwrap());
            let input = tone(25);
            let mut out = Vec::new();
            let mut payload = Vec::new();
            for frame in input.chunks(FRAME) {
                e.encode(frame, &mut payload).unwrap();
                let mut pcm = [0i16; FRAME];
                d.decode(Some(&payload), &mut pcm);
                out.extend_from_slice(&pcm);
            }
            // Skip the codec's start-up; the rest is the tone.
            let share = share_at(440.0, &out[FRAME * 5..]);
            assert!(share > 0.8, "{codec:?}: 440 Hz share {share}");
            assert!(share_at(440.0, &vec![0; FRAME * 20]) < 0.01);
        }
    }

    #[test]
    fn loss_and_garbage_are_concealed_not_fatal() {
        for codec in [Codec::Opus, Codec::Pcmu] {
            let mut d = Decoder::new(codec).unwrap();
            let mut pcm = [0i16; FRAME];
            d.decode(None, &mut pcm);
            d.decode(Some(&[0xff; 3]), &mut pcm);
            d.decode(Some(&[]), &mut pcm);
        }
    }
}

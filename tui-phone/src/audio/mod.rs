//! Audio for calls: codecs (Opus, G.711), RTP and RTCP, the jitter buffer, and the media
//! session that runs them for one call, sans-IO like the rest of the phone; where sound comes
//! from and goes to is an [`device::AudioDevice`] the driver supplies (WAV files, silence, or
//! the sound card through cpal, `sound_card.rs`).

pub mod codec;
pub mod device;
pub mod g711;
pub mod jitter;
pub mod rtp;
pub mod session;
pub mod sound_card;
pub mod tone;

//! The browser side of the WebRTC gateway (issue #23): a leg that speaks what a browser
//! insists on (ICE, here ICE-lite as a server with a public address should; DTLS-SRTP;
//! rtcp-mux; BUNDLE and mid) and hands the relay plain RTP, so audio passes between a browser
//! and a SIP phone without transcoding. Sans-IO, built on str0m in RTP mode: datagrams and
//! the time in, datagrams, RTP and the next wake-up out.
//!
pub mod codecs;
mod leg;

pub use codecs::Codec;
pub use leg::{BrowserLeg, LegError, LegOutput, PlainRtp};

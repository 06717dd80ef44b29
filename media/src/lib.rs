//! The media relay (issue #6). It knows nothing of SIP. Sans-IO: relay sessions with latching
//! and their port pairs (`relay`), SDP reading and rewriting (`sdp`), the STUN and TURN servers
//! (`stun`, `turn`), call quality from RTP and RTCP (`quality`), the call table and the ng protocol both ways (`control`); `net` is its only
//! socket code; `args` the values its settings are written in.

pub mod args;
pub mod control;
pub mod fuzz;
pub mod net;
pub mod quality;
pub mod relay;
pub mod sdp;
pub mod stun;
pub mod turn;
pub mod webrtc;

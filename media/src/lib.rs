//! The media relay (issue #6). It knows nothing of SIP. So far: relay sessions with latching
//! and their port pairs (`relay`, sans-IO), SDP reading and rewriting (`sdp`), the STUN server (`stun`),
//! sans-IO, and `net`, its
//! only socket code; the relay, TURN and the control protocols are still to come.

pub mod control;
pub mod net;
pub mod relay;
pub mod sdp;
pub mod stun;
pub mod turn;

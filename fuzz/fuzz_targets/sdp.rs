//! SDP offers and answers: `openline_media::fuzz::sdp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_media::fuzz::sdp(data));

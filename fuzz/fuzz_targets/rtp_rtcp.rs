//! RTP and RTCP through a relay session: `openline_media::fuzz::rtp_rtcp`.
#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let start = *START.get_or_init(Instant::now);
    openline_media::fuzz::rtp_rtcp(data, start);
});

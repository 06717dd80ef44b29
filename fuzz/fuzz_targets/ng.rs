//! ng commands to the relay: `openline_media::fuzz::ng`.
#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let start = *START.get_or_init(Instant::now);
    openline_media::fuzz::ng(data, start);
});

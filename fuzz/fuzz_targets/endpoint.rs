//! The endpoint as a state machine: the body is `openline_sip::fuzz::endpoint_operations`.
#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let start = *START.get_or_init(Instant::now);
    openline_sip::fuzz::endpoint_operations(data, start);
});

//! PIDF presence documents: `openline_sip::fuzz::pidf`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_sip::fuzz::pidf(data));

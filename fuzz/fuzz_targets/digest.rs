//! Digest credentials and challenges: `openline_sip::fuzz::digest`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_sip::fuzz::digest(data));

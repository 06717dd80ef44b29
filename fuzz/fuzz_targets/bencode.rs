//! The ng protocol's bencode: `openline_media::fuzz::bencode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_media::fuzz::bencode(data));

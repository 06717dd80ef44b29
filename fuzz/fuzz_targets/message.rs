//! Parse, print, reparse: the body is `openline_sip::fuzz::message_round_trip`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_sip::fuzz::message_round_trip(data));

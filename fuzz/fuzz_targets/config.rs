//! The TOML config file: `openline_proxy::fuzz::config`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_proxy::fuzz::config(data));

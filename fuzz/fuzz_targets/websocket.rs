//! A WebSocket upgrade and its frames: `openline_sip_net::fuzz::websocket`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| openline_sip_net::fuzz::websocket(data));

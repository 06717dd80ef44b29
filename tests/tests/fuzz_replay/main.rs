//! Replays every fuzz target's seeds (regressions included) through its body on stable, so
//! the suite keeps what a fuzz run once found fixed: PIDF and digest (openline-sip), SDP,
//! STUN/TURN, RTP/RTCP, bencode and ng (openline-media), WebSocket (openline-sip-net), the
//! config (openline-proxy). SIP messages and the endpoint are replayed in openline-sip's own
//! `tests/fuzz_replay.rs`, with the RFC 4475 corpus.
#![allow(clippy::unwrap_used)]

use openline_media::fuzz as media;
use openline_proxy::fuzz as proxy;
use openline_sip::fuzz as sip;
use openline_sip_net::fuzz as sip_net;
use std::path::PathBuf;

/// The seeds of a fuzz target, as `fuzz/seeds/<target>` holds them.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!files.is_empty(), "no seeds for {target}");
    files
}

#[test]
fn pidf_and_digest_seeds_and_their_regressions_survive() {
    for seed in seeds("pidf") {
        sip::pidf(&seed);
    }
    for seed in seeds("digest") {
        sip::digest(&seed);
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // an origin for virtual time
fn media_seeds_survive() {
    let start = std::time::Instant::now();
    for seed in seeds("sdp") {
        media::sdp(&seed);
    }
    for seed in seeds("stun_turn") {
        media::stun_turn(&seed, start);
    }
    for seed in seeds("rtp_rtcp") {
        media::rtp_rtcp(&seed, start);
    }
    for seed in seeds("bencode") {
        media::bencode(&seed);
    }
    for seed in seeds("ng") {
        media::ng(&seed, start);
    }
}

#[test]
fn websocket_seeds_survive() {
    for seed in seeds("websocket") {
        sip_net::websocket(&seed);
    }
}

#[test]
fn config_seeds_survive() {
    for seed in seeds("config") {
        proxy::config(&seed);
    }
}

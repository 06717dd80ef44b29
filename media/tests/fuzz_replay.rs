//! Replays the media fuzz targets' seeds (regressions included) through their bodies on
//! stable, so the suite keeps what a fuzz run once found fixed.
#![allow(clippy::unwrap_used)]

use openline_media::fuzz;
use std::path::PathBuf;

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
#[allow(clippy::disallowed_methods)] // an origin for virtual time
fn media_seeds_survive() {
    let start = std::time::Instant::now();
    for seed in seeds("sdp") {
        fuzz::sdp(&seed);
    }
    for seed in seeds("stun_turn") {
        fuzz::stun_turn(&seed, start);
    }
    for seed in seeds("rtp_rtcp") {
        fuzz::rtp_rtcp(&seed, start);
    }
    for seed in seeds("bencode") {
        fuzz::bencode(&seed);
    }
    for seed in seeds("ng") {
        fuzz::ng(&seed, start);
    }
}

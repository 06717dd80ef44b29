//! Replays the WebSocket fuzz target' seeds (regressions included) through their bodies on
//! stable, so the suite keeps what a fuzz run once found fixed.
#![allow(clippy::unwrap_used)]

use openline_sip_net::fuzz;
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
fn websocket_seeds_survive() {
    for seed in seeds("websocket") {
        fuzz::websocket(&seed);
    }
}

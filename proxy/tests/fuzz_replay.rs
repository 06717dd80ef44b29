//! Replays the config fuzz target' seeds (regressions included) through their bodies on
//! stable, so the suite keeps what a fuzz run once found fixed.
#![allow(clippy::unwrap_used)]

use openline_proxy::fuzz;
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
fn config_seeds_survive() {
    for seed in seeds("config") {
        fuzz::config(&seed);
    }
}

//! Replays the fuzz bodies on stable: every RFC 4475 message, every prefix of each, and seeded
//! byte mutations of each, through the parser round trip and the endpoint state machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_sip::entropy::{Entropy, SeededEntropy};
use openline_sip::fuzz;
use std::path::PathBuf;

fn corpus() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/rfc4475");
    let mut files = Vec::new();
    for section in [
        "valid",
        "invalid",
        "transaction",
        "application",
        "compatibility",
    ] {
        for entry in std::fs::read_dir(root.join(section)).unwrap() {
            files.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    // The fuzz/ seeds, which hold what the corpus does not: IPv6, auth headers, folding.
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sip");
    for entry in std::fs::read_dir(seeds).unwrap() {
        files.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(files.len() >= 49);
    files
}

#[test]
#[allow(clippy::disallowed_methods)] // an origin for the endpoint's virtual time
fn corpus_prefixes_and_mutations_survive() {
    let start = std::time::Instant::now();
    let mut rng = SeededEntropy::new(4475);
    let mut runs = 0;
    for msg in corpus() {
        fuzz::message_round_trip(&msg);
        for cut in (0..msg.len()).step_by(7) {
            fuzz::message_round_trip(&msg[..cut]);
        }
        for _ in 0..200 {
            let mut m = msg.clone();
            for _ in 0..1 + rng.next_u64() % 4 {
                let i = (rng.next_u64() as usize) % m.len().max(1);
                let pick = rng.next_u64();
                match pick % 4 {
                    0 if !m.is_empty() => m[i] = (pick >> 8) as u8,
                    1 if !m.is_empty() => {
                        m.remove(i);
                    }
                    2 => m.insert(i.min(m.len()), b"\r\n ;,:<>\"@%"[(pick >> 8) as usize % 11]),
                    _ => m.truncate(i),
                }
            }
            fuzz::message_round_trip(&m);
            runs += 1;
        }
        // The same message over both transports from both peers, with time passing and answers
        // of every class, as the endpoint fuzz target reads it.
        let mut ops = Vec::new();
        for code in [1u8, 2, 5, 6, 9, 33, 65, 129, 250] {
            ops.push(code);
            ops.extend_from_slice(&msg);
            ops.extend_from_slice(&[0xff, 0, 20, 0xff]);
        }
        fuzz::endpoint_operations(&ops, start);
    }
    assert!(runs > 10_000);
}

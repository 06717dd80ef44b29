//! The buffer in virtual time: a sender on its own clock (drifting against ours), a network
//! with delay variation, reordering and loss, and our playing clock ticking every 20 ms.

use super::*;

/// A tiny deterministic generator (xorshift), so every run sees the same network.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Outcome {
    played: Vec<u16>,
    stats: JitterStats,
    max_depth: usize,
    sent: u64,
    lost_on_network: u64,
}

/// Sends `packets` frames at 20 ms * `drift` apart, each delayed 20-20+`jitter_ms`
/// milliseconds, `loss_pct`% never arriving; plays every 20 ms of our clock until 2 s after
/// the last arrival. Sequence numbers start near the wrap.
fn run(packets: u64, drift: f64, jitter_ms: u64, loss_pct: u64, seed: u64) -> Outcome {
    let mut rng = Rng(seed);
    let mut arrivals: Vec<(u64, u16)> = Vec::new(); // (arrival in microseconds, seq)
    let mut lost_on_network = 0;
    for i in 0..packets {
        if rng.below(100) < loss_pct {
            lost_on_network += 1;
            continue;
        }
        let sent = (i as f64 * 20_000.0 * drift) as u64;
        let delay = 20_000 + rng.below(jitter_ms * 1_000 + 1);
        arrivals.push((sent + delay, (65_000u64 + i) as u16));
    }
    arrivals.sort();
    let end = arrivals.last().map_or(0, |a| a.0) + 2_000_000;
    let mut jb = JitterBuffer::new(3, 10);
    let mut played = Vec::new();
    let mut next_arrival = 0;
    let mut max_depth = 0;
    let mut frame_payloads = 0u16;
    let mut now = 0;
    while now <= end {
        while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= now {
            let seq = arrivals[next_arrival].1;
            jb.push(seq, &seq.to_be_bytes());
            max_depth = max_depth.max(jb.depth());
            next_arrival += 1;
        }
        if let Playout::Frame(p) = jb.pop() {
            played.push(u16::from_be_bytes([p[0], p[1]]));
            frame_payloads += 1;
        }
        now += 20_000;
    }
    let _ = frame_payloads;
    Outcome {
        played,
        stats: jb.stats(),
        max_depth,
        sent: packets,
        lost_on_network,
    }
}

/// Played frames are in sending order (across the sequence wrap), none twice.
fn assert_in_order(played: &[u16]) {
    for pair in played.windows(2) {
        let step = pair[1].wrapping_sub(pair[0]);
        assert!((1..1_000).contains(&step), "{} then {}", pair[0], pair[1]);
    }
}

#[test]
fn a_clean_network_plays_every_frame_in_order() {
    let o = run(500, 1.0, 0, 0, 1);
    assert_eq!(o.played.len(), 500);
    assert_in_order(&o.played);
    assert_eq!((o.stats.lost, o.stats.late, o.stats.dropped), (0, 0, 0));
}

#[test]
fn reordering_within_the_buffer_is_undone() {
    // 0-50 ms of delay variation: packets overtake each other; 3 frames of buffer absorb most.
    let o = run(2_000, 1.0, 50, 0, 7);
    assert_in_order(&o.played);
    let accounted = o.stats.played + o.stats.late + o.stats.dropped;
    assert_eq!(accounted, o.sent, "every packet is played, late or dropped");
    assert!(o.stats.played >= o.sent * 95 / 100, "{:?}", o.stats);
    assert!(o.max_depth <= 10);
}

#[test]
fn loss_is_concealed_frame_for_frame() {
    let o = run(3_000, 1.0, 10, 5, 3);
    assert_in_order(&o.played);
    assert_eq!(
        o.stats.played + o.stats.late + o.stats.dropped,
        o.sent - o.lost_on_network
    );
    // Each missing packet inside the stream is one concealed frame (the tail has none).
    assert!(
        o.stats.lost.abs_diff(o.lost_on_network) <= 2,
        "lost {} vs {} on the network",
        o.stats.lost,
        o.lost_on_network
    );
}

#[test]
fn a_sender_one_percent_fast_is_kept_within_bounds_by_dropping() {
    // 3,000 frames (60 s): the sender gets 30 frames ahead; the buffer drops rather than grow.
    let o = run(3_000, 0.99, 10, 0, 5);
    assert_in_order(&o.played);
    assert!(o.max_depth <= 10, "depth {}", o.max_depth);
    assert!(
        o.stats.dropped >= 15 && o.stats.dropped <= 40,
        "{:?}",
        o.stats
    );
    assert_eq!(o.stats.lost, 0);
}

#[test]
fn a_sender_one_percent_slow_makes_it_wait_not_skip() {
    let o = run(3_000, 1.01, 10, 0, 9);
    assert_in_order(&o.played);
    assert_eq!(o.played.len(), 3_000, "nothing skipped: {:?}", o.stats);
    assert_eq!((o.stats.lost, o.stats.dropped), (0, 0));
    assert!(o.stats.waited >= 20, "{:?}", o.stats);
}

#[test]
fn duplicates_and_very_late_packets_are_counted_late() {
    let mut jb = JitterBuffer::new(1, 5);
    jb.push(10, b"a");
    jb.push(10, b"a");
    assert_eq!(jb.pop(), Playout::Frame(b"a".to_vec()));
    jb.push(12, b"c");
    assert_eq!(jb.pop(), Playout::Lost); // 11 is missing
    jb.push(11, b"b"); // too late now
    assert_eq!(jb.pop(), Playout::Frame(b"c".to_vec()));
    assert_eq!(jb.pop(), Playout::Waiting);
    assert_eq!(jb.stats().late, 2);
}

//! The jitter buffer: packets go in as they arrive (late, early, twice, out of order), frames
//! come out one per 20 ms tick of the playing clock. It waits for `target` frames before it
//! starts; a gap is played as a lost frame once later packets show it is one; when it runs dry
//! it waits (the sender's clock is slower than ours), and when it holds more than `max` it
//! drops the oldest (faster). Sequence numbers order it, extended across their wrap.

use std::collections::BTreeMap;

/// What the playing clock gets at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next frame's payload.
    Frame(Vec<u8>),
    /// The next frame is missing: conceal it.
    Lost,
    /// Nothing to play yet (filling up, or run dry): play silence or concealment, and do
    /// not count a frame as played.
    Waiting,
}

/// What happened to the packets, for RTCP and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played from a packet.
    pub played: u64,
    /// Frames concealed because their packet never came in time.
    pub lost: u64,
    /// Packets that came after their turn (played as lost already), or twice.
    pub late: u64,
    /// Packets dropped because the buffer held too much.
    pub dropped: u64,
    /// Ticks with nothing to play.
    pub waited: u64,
}

/// The buffer.
#[derive(Debug)]
pub struct JitterBuffer {
    frames: BTreeMap<u64, Vec<u8>>,
    /// The extended sequence number to play next, once known.
    next: Option<u64>,
    /// The highest extended sequence number seen.
    highest: Option<u64>,
    target: usize,
    max: usize,
    playing: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer that starts after `target` frames and holds at most `max`.
    pub fn new(target: usize, max: usize) -> Self {
        JitterBuffer {
            frames: BTreeMap::new(),
            next: None,
            highest: None,
            target: target.max(1),
            max: max.max(target + 1),
            playing: false,
            stats: JitterStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames held now.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// The highest sequence number seen, extended (for RTCP).
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// `seq` extended to 64 bits next to `reference`: the nearest value with those low bits.
    fn extend(seq: u16, reference: u64) -> u64 {
        let base = reference & !0xFFFF;
        let candidates = [base.wrapping_sub(0x1_0000), base, base + 0x1_0000];
        let mut best = base | u64::from(seq);
        let mut best_distance = u64::MAX;
        for c in candidates {
            let v = c | u64::from(seq);
            let d = v.abs_diff(reference);
            if d < best_distance {
                best_distance = d;
                best = v;
            }
        }
        best
    }

    /// A packet's payload arrived.
    pub fn push(&mut self, seq: u16, payload: &[u8]) {
        // Start one wrap up, so numbers just before a wrap extend without going below zero.
        let reference = self
            .highest
            .or(self.next)
            .unwrap_or(0x1_0000 + u64::from(seq));
        let ext = Self::extend(seq, reference);
        if self.next.is_some_and(|n| ext < n) || self.frames.contains_key(&ext) {
            self.stats.late += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.frames.insert(ext, payload.to_vec());
        if self.next.is_none() {
            self.next = self.frames.keys().next().copied();
        }
        while self.frames.len() > self.max {
            // The sender runs fast (or a burst came): drop the oldest to keep delay bounded.
            if let Some((&first, _)) = self.frames.iter().next() {
                self.frames.remove(&first);
                self.stats.dropped += 1;
                self.next = self.frames.keys().next().copied();
            }
        }
    }

    /// One tick of the playing clock.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.frames.len() < self.target {
                self.stats.waited += 1;
                return Playout::Waiting;
            }
            self.playing = true;
            self.next = self.frames.keys().next().copied();
        }
        let Some(next) = self.next else {
            self.stats.waited += 1;
            return Playout::Waiting;
        };
        if let Some(frame) = self.frames.remove(&next) {
            self.next = Some(next + 1);
            self.stats.played += 1;
            return Playout::Frame(frame);
        }
        if self.frames.is_empty() {
            // Run dry: wait for the frame rather than skip it (a slow sender, or a pause).
            self.stats.waited += 1;
            return Playout::Waiting;
        }
        // A later frame is here, so this one is lost (or late: it will be counted so).
        self.next = Some(next + 1);
        self.stats.lost += 1;
        Playout::Lost
    }
}

#[cfg(test)]
mod tests;

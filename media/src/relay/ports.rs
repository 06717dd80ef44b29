//! The relay's port range: pairs (an even RTP port and the RTCP port above it, RFC 3550 11)
//! handed out and taken back, so a session never holds a port another one uses.

use std::collections::BTreeSet;

/// Reads a port range, `LOW-HIGH`: both ports, LOW below HIGH, not below 1024.
pub fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (low, high) = s
        .split_once('-')
        .ok_or_else(|| format!("`{s}`: expected LOW-HIGH"))?;
    let low: u16 = low.parse().map_err(|_| format!("`{low}`: not a port"))?;
    let high: u16 = high.parse().map_err(|_| format!("`{high}`: not a port"))?;
    if low >= high || low < 1024 {
        return Err(format!("`{s}`: need 1024 <= LOW < HIGH"));
    }
    Ok((low, high))
}

/// Ports to hand out, by pairs.
#[derive(Debug)]
pub struct PortPool {
    /// Even ports free to hand out (each with its odd neighbour).
    free: BTreeSet<u16>,
    /// Every pair's RTP port, free or not.
    all: BTreeSet<u16>,
}

impl PortPool {
    /// The pairs within `low..=high` (an odd `low` starts at the next even port; a pair needs
    /// both its ports inside the range).
    pub fn new(low: u16, high: u16) -> Self {
        let start = low + (low % 2);
        let free: BTreeSet<u16> = (start..high)
            .step_by(2)
            .filter(|p| p.checked_add(1).is_some_and(|rtcp| rtcp <= high))
            .collect();
        PortPool {
            all: free.clone(),
            free,
        }
    }

    /// A free pair's RTP port, or None when every pair is in use.
    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_first()
    }

    /// Gives a pair back (a port not from this pool, or given twice, is ignored).
    pub fn give_back(&mut self, rtp: u16) {
        if self.all.contains(&rtp) {
            self.free.insert(rtp);
        }
    }

    /// Pairs free now.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Pairs in the range.
    pub fn total(&self) -> usize {
        self.all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_inside_the_range_and_come_back() {
        let mut p = PortPool::new(30001, 30008);
        assert_eq!(
            p.total(),
            3,
            "30002/3, 30004/5, 30006/7; 30008 has no partner inside"
        );
        let a = p.take().unwrap();
        assert_eq!(a % 2, 0);
        let b = p.take().unwrap();
        let c = p.take().unwrap();
        assert_eq!([a, b, c], [30002, 30004, 30006]);
        assert_eq!(p.take(), None, "exhausted");
        p.give_back(b);
        p.give_back(40000);
        p.give_back(30003);
        assert_eq!(p.free(), 1, "only a pair of ours comes back");
        assert_eq!(p.take(), Some(30004));
    }
}

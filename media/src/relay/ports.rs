//! The relay's port range: pairs (an even RTP port and the RTCP port above it, RFC 3550 11)
//! handed out and taken back, so a session never holds a port another one uses. A pair another
//! program holds (another relay on the same range, say) is passed over: the driver installs a
//! check that binds the pair before it is handed out.

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

/// How many pairs one take tries before it gives up.
const CHECKS_PER_TAKE: usize = 16;

/// Whether a pair (by its RTP port) can be used: the driver binds both ports and keeps them.
pub type PortCheck = Box<dyn FnMut(u16) -> bool + Send>;

/// Ports to hand out, by pairs.
pub struct PortPool {
    /// Even ports free to hand out (each with its odd neighbour).
    free: BTreeSet<u16>,
    /// Every pair's RTP port, free or not.
    all: BTreeSet<u16>,
    /// Pairs the check refused (held elsewhere); back in `free` when `free` runs out.
    elsewhere: Vec<u16>,
    check: Option<PortCheck>,
}

impl std::fmt::Debug for PortPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPool")
            .field("free", &self.free.len())
            .field("all", &self.all.len())
            .field("elsewhere", &self.elsewhere)
            .finish()
    }
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
            elsewhere: Vec::new(),
            check: None,
        }
    }

    /// Checks each pair with `check` before handing it out.
    pub fn set_check(&mut self, check: PortCheck) {
        self.check = Some(check);
    }

    /// A free pair's RTP port that passes the check, or None when every pair is in use or
    /// held elsewhere (at most [`CHECKS_PER_TAKE`] pairs are tried).
    pub fn take(&mut self) -> Option<u16> {
        let mut refilled = false;
        for _ in 0..CHECKS_PER_TAKE {
            let port = match self.free.pop_first() {
                Some(p) => p,
                None if refilled || self.elsewhere.is_empty() => return None,
                None => {
                    // The rest is taken: the pairs held elsewhere may be free by now.
                    self.free.extend(self.elsewhere.drain(..));
                    refilled = true;
                    continue;
                }
            };
            let usable = self.check.as_mut().is_none_or(|check| check(port));
            if usable {
                return Some(port);
            }
            self.elsewhere.push(port);
        }
        None
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

    #[test]
    fn pairs_held_elsewhere_are_passed_over_and_tried_again_when_the_rest_is_gone() {
        let mut p = PortPool::new(30000, 30007);
        let held = std::sync::Arc::new(std::sync::Mutex::new(vec![30000u16]));
        let h = held.clone();
        p.set_check(Box::new(move |port| !h.lock().unwrap().contains(&port)));
        assert_eq!(p.take(), Some(30002), "30000 is held by someone else");
        assert_eq!(p.take(), Some(30004));
        assert_eq!(p.take(), Some(30006));
        assert_eq!(p.take(), None, "30000 still held");
        held.lock().unwrap().clear();
        assert_eq!(p.take(), Some(30000), "let go of, it is ours again");
    }
}

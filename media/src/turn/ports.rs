//! The relayed ports TURN hands out: taken from the front, given back to the end, so a port
//! just freed is the last to be reused (a late packet for the old allocation does not reach
//! a new one; RFC 8656 7.2 asks for this).

use std::collections::VecDeque;

/// Ports free to relay on.
#[derive(Debug)]
pub struct RelayPorts {
    free: VecDeque<u16>,
}

impl RelayPorts {
    /// Every port in `low..=high`.
    pub fn new(low: u16, high: u16) -> Self {
        RelayPorts {
            free: (low..=high).collect(),
        }
    }

    /// A free port; an even one when `even` (EVEN-PORT), or None when there is none.
    pub fn take(&mut self, even: bool) -> Option<u16> {
        if !even {
            return self.free.pop_front();
        }
        let at = self.free.iter().position(|p| p % 2 == 0)?;
        self.free.remove(at)
    }

    /// A free even port whose odd neighbour is free too, both taken (EVEN-PORT with R): the
    /// even one.
    pub fn take_pair(&mut self) -> Option<u16> {
        let free: std::collections::HashSet<u16> = self.free.iter().copied().collect();
        let even = self
            .free
            .iter()
            .copied()
            .find(|p| p % 2 == 0 && p.checked_add(1).is_some_and(|odd| free.contains(&odd)))?;
        self.free.retain(|&p| p != even && p != even + 1);
        Some(even)
    }

    /// Gives a port back, last in line.
    pub fn give_back(&mut self, port: u16) {
        self.free.push_back(port);
    }

    /// Ports free now.
    pub fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_port_is_reused_last() {
        let mut p = RelayPorts::new(50_001, 50_004);
        assert_eq!(p.take(false), Some(50_001));
        assert_eq!(p.take(true), Some(50_002));
        p.give_back(50_001);
        assert_eq!(p.take(false), Some(50_003));
        assert_eq!(p.take(false), Some(50_004));
        assert_eq!(p.take(true), None, "only 50001 is left");
        assert_eq!(p.take(false), Some(50_001));
        assert_eq!(p.free(), 0);
    }

    #[test]
    fn a_pair_is_an_even_port_and_the_next_both_free() {
        let mut p = RelayPorts::new(50_000, 50_005);
        assert_eq!(p.take(false), Some(50_000));
        assert_eq!(p.take(false), Some(50_001));
        assert_eq!(p.take(false), Some(50_002));
        p.give_back(50_000);
        // 50000 is free but 50001 is not; 50004 and 50005 are.
        assert_eq!(p.take_pair(), Some(50_004));
        assert_eq!(p.take_pair(), None);
        assert_eq!(p.free(), 2, "50003 and 50000");
    }
}

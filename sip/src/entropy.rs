//! Injected randomness for branches, tags and Call-IDs (STYLE.md principle 7).

/// A source of random bytes. The server gives an OS-backed one; tests and fuzzers give
/// [`SeededEntropy`] so every run replays exactly.
pub trait Entropy: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);

    /// A random u64.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// A deterministic generator (SplitMix64) for tests and fuzzing; never for production.
#[derive(Debug, Clone)]
pub struct SeededEntropy(u64);

impl SeededEntropy {
    /// Starts from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededEntropy(seed)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A token of `len` lowercase hex digits, for tags and branch suffixes. Hex, because a token
/// that happens to spell a header name confuses some peers: SIPp 3.6.1 read a To tag
/// `CSeqHzg6KNG4` as the CSeq header and aborted the call (seen once in 10,000 REGISTERs).
/// Hex holds no s, q, v or t, so it spells none.
pub fn random_token(entropy: &mut dyn Entropy, len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = vec![0u8; len];
    entropy.fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(DIGITS[usize::from(b & 15)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_and_differ() {
        let mut e = SeededEntropy::new(5);
        let a = random_token(&mut e, 16);
        let b = random_token(&mut e, 16);
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}

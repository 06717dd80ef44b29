//! Nonces that carry their own issue time and a MAC, so any node with the secret can check them
//! without state, and the nonce-counts that stop a response from being replayed.

use openline_sip::Entropy;
use openline_sip::table::StrMap;
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;

/// What a nonce says about itself at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and within its lifetime; issued at that time.
    Fresh(u64),
    /// Ours but too old: a right answer earns `stale=true`.
    Stale(u64),
    /// Not ours, or altered.
    Invalid,
}

/// Issues and checks nonces: hex of issue time, 8 random bytes and a 12-byte MAC.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
    lifetime: u64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn mac(secret: &[u8; 32], issued: u64, random: &[u8]) -> [u8; 12] {
    let digest = Sha256::new()
        .chain_update(secret)
        .chain_update(issued.to_be_bytes())
        .chain_update(random)
        .finalize();
    let mut out = [0u8; 12];
    out.copy_from_slice(&digest[..12]);
    out
}

fn hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl NonceIssuer {
    /// An issuer whose nonces live `lifetime` seconds.
    pub fn new(secret: [u8; 32], lifetime: u64) -> Self {
        NonceIssuer { secret, lifetime }
    }

    /// Seconds a nonce stays fresh.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// A new nonce issued at `now`.
    pub fn issue(&self, now: u64, entropy: &mut dyn Entropy) -> String {
        let mut random = [0u8; 8];
        entropy.fill(&mut random);
        let mut s = String::with_capacity(56);
        hex(&now.to_be_bytes(), &mut s);
        hex(&random, &mut s);
        hex(&mac(&self.secret, now, &random), &mut s);
        s
    }

    /// Checks a nonce at `now`.
    pub fn check(&self, nonce: &str, now: u64) -> NonceState {
        let (Some(t), Some(r), Some(m)) = (nonce.get(..16), nonce.get(16..32), nonce.get(32..))
        else {
            return NonceState::Invalid;
        };
        let (Some(t), Some(r), Some(m)) = (unhex::<8>(t), unhex::<8>(r), unhex::<12>(m)) else {
            return NonceState::Invalid;
        };
        let issued = u64::from_be_bytes(t);
        let expected = mac(&self.secret, issued, &r);
        if expected
            .iter()
            .zip(m.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
            || issued > now + 5
        {
            return NonceState::Invalid;
        }
        if now - issued.min(now) > self.lifetime {
            NonceState::Stale(issued)
        } else {
            NonceState::Fresh(issued)
        }
    }
}

/// The highest nonce-count seen per nonce, for as long as the nonce lives (bounded).
#[derive(Debug, Default)]
pub struct NonceCounts {
    highest: StrMap<u32>,
    by_age: VecDeque<(u64, String)>,
}

/// Most nonces remembered; the oldest are forgotten first (they are near expiry anyway).
const MAX_TRACKED: usize = 200_000;

impl NonceCounts {
    /// Accepts `nc` for `nonce` (issued at `issued`) if it is higher than any seen; forgets
    /// nonces older than `lifetime`.
    pub fn accept(&mut self, nonce: &str, issued: u64, nc: u32, now: u64, lifetime: u64) -> bool {
        while let Some((t, _)) = self.by_age.front() {
            if *t + lifetime >= now && self.by_age.len() < MAX_TRACKED {
                break;
            }
            if let Some((_, n)) = self.by_age.pop_front() {
                self.highest.remove(&n);
            }
        }
        match self.highest.get_mut(nonce) {
            Some(h) if nc <= *h => false,
            Some(h) => {
                *h = nc;
                true
            }
            None => {
                self.highest.insert(nonce.to_string(), nc);
                self.by_age.push_back((issued, nonce.to_string()));
                true
            }
        }
    }

    /// How many nonces are tracked.
    pub fn len(&self) -> usize {
        self.highest.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.highest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openline_sip::SeededEntropy;

    #[test]
    fn fresh_stale_invalid() {
        let issuer = NonceIssuer::new([7; 32], 300);
        let n = issuer.issue(1000, &mut SeededEntropy::new(1));
        assert_eq!(issuer.check(&n, 1100), NonceState::Fresh(1000));
        assert_eq!(issuer.check(&n, 1301), NonceState::Stale(1000));
        let mut tampered = n.clone().into_bytes();
        tampered[50] = if tampered[50] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            issuer.check(&String::from_utf8(tampered).unwrap(), 1100),
            NonceState::Invalid
        );
        assert_eq!(
            NonceIssuer::new([8; 32], 300).check(&n, 1100),
            NonceState::Invalid
        );
        assert_eq!(issuer.check("short", 1100), NonceState::Invalid);
        assert_eq!(issuer.check(&"é".repeat(40), 1100), NonceState::Invalid);
    }

    #[test]
    fn replayed_counts_are_refused() {
        let mut c = NonceCounts::default();
        assert!(c.accept("n1", 1000, 1, 1000, 300));
        assert!(!c.accept("n1", 1000, 1, 1001, 300));
        assert!(c.accept("n1", 1000, 2, 1002, 300));
        assert!(c.accept("n2", 1000, 1, 1002, 300));
        // Once n1 is past its lifetime it is forgotten (and would be stale anyway).
        assert!(c.accept("n3", 1400, 1, 1400, 300));
        assert_eq!(c.len(), 1);
    }
}

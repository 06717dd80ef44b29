//! Stateless nonces for STUN and TURN challenges: the time issued and a MAC of it, so any
//! worker (or node sharing the key) can check one without remembering it.

use std::fmt::Write as _;

/// How long a nonce stays fresh (RFC 8489 9.2: the server decides; coturn uses 600 s).
pub const NONCE_LIFETIME: u64 = 600;

/// Issues and checks nonces with a secret key.
#[derive(Debug)]
pub struct NonceKeeper {
    key: [u8; 32],
}

impl NonceKeeper {
    /// A keeper using `key` (random at start).
    pub fn new(key: [u8; 32]) -> Self {
        NonceKeeper { key }
    }

    /// A nonce issued at `now`: 16 hex digits of time, 16 of MAC.
    pub fn issue(&self, now: u64) -> String {
        let mut out = format!("{now:016x}");
        for b in &self.mac(now)[..8] {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// Whether `nonce` is one of ours, issued less than [`NONCE_LIFETIME`] before `now`.
    pub fn is_fresh(&self, nonce: &str, now: u64) -> bool {
        if nonce.len() != 32 || !nonce.is_ascii() {
            return false;
        }
        let Ok(issued) = u64::from_str_radix(&nonce[..16], 16) else {
            return false;
        };
        // Compared as text, whole: the time part decides the MAC, so a forged time fails here.
        issued <= now && now - issued < NONCE_LIFETIME && self.issue(issued) == nonce
    }

    fn mac(&self, time: u64) -> [u8; 32] {
        hmac_sha256::HMAC::mac(time.to_be_bytes(), self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_fresh_for_its_lifetime_and_cannot_be_forged() {
        let k = NonceKeeper::new([7; 32]);
        let n = k.issue(1000);
        assert_eq!(n.len(), 32);
        assert!(k.is_fresh(&n, 1000));
        assert!(k.is_fresh(&n, 1000 + NONCE_LIFETIME - 1));
        assert!(!k.is_fresh(&n, 1000 + NONCE_LIFETIME), "stale");
        assert!(!k.is_fresh(&n, 999), "from the future");
        let forged = format!("{:016x}{}", 5000u64, &n[16..]);
        assert!(!k.is_fresh(&forged, 5000));
        assert!(!NonceKeeper::new([8; 32]).is_fresh(&n, 1000), "another key");
        assert!(!k.is_fresh("garbage", 1000));
        assert!(!k.is_fresh(&"é".repeat(16), 1000));
    }
}

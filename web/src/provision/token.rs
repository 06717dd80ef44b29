//! Provisioning tokens: 128 random bits in the link, their SHA-256 in the database (a copy of
//! the database does not hold usable links), one use, an expiry.

use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a token: {0}")]
pub struct TokenError(String);

/// A new token, as it goes into the link (32 hex digits).
pub fn new_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenError(e.to_string()))?;
    Ok(hex(&bytes))
}

/// What the database keeps of `token`.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whether `token` has the shape of ours (anything else is refused before the database).
pub fn well_formed(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_well_formed_and_hashed_apart() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert!(!well_formed("../../etc/passwd"));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_ne!(token_hash(&a), a);
    }
}

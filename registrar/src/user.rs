//! Users: an address of record and its HA1 values; the password itself is never kept.

use openline_sip::digest::{Algorithm, ha1};

/// A user who may register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `user@domain`, the domain lowercased.
    pub aor: String,
    /// H(user:realm:password) with MD5.
    pub ha1_md5: String,
    /// The same with SHA-256.
    pub ha1_sha256: String,
}

/// Why a user name does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not USER@DOMAIN")]
pub struct BadAor(pub String);

/// Splits and normalises `user@domain` (the domain is lowercased; the user part is kept as is).
pub fn normalize_aor(aor: &str) -> Result<(String, String), BadAor> {
    let (user, domain) = aor
        .rsplit_once('@')
        .ok_or_else(|| BadAor(aor.to_string()))?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_graphic() && !matches!(b, b'@' | b'<' | b'>' | b'"' | b':' | b';')
            })
    };
    if !valid(user) || !valid(domain) {
        return Err(BadAor(aor.to_string()));
    }
    Ok((user.to_string(), domain.to_ascii_lowercase()))
}

impl User {
    /// A user with `password`, the realm being the domain.
    pub fn new(aor: &str, password: &str) -> Result<Self, BadAor> {
        let (user, domain) = normalize_aor(aor)?;
        Ok(User {
            aor: format!("{user}@{domain}"),
            ha1_md5: ha1(Algorithm::Md5, &user, &domain, password),
            ha1_sha256: ha1(Algorithm::Sha256, &user, &domain, password),
        })
    }

    /// The HA1 for an algorithm.
    pub fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_keep_only_ha1() {
        let u = User::new("alice@Club-A.test", "s3cret").unwrap();
        assert_eq!(u.aor, "alice@club-a.test");
        assert_eq!(
            u.ha1_md5,
            ha1(Algorithm::Md5, "alice", "club-a.test", "s3cret")
        );
        assert!(!format!("{u:?}").contains("s3cret"));
        assert!(User::new("alice", "x").is_err());
        assert!(User::new("a;b@c", "x").is_err());
    }
}

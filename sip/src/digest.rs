//! HTTP Digest as SIP uses it (RFC 3261 section 22.4, RFC 7616, RFC 8760): HA1, HA2, the
//! response, challenges and credentials. Pure functions; nonces and policy live in the registrar.

use crate::header::AuthParams;
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A digest algorithm (the `-sess` variants are not offered, so never accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5: what Debian's SIP clients still speak.
    Md5,
    /// SHA-256: offered first (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// Reads the `algorithm` parameter; absent means MD5 (RFC 7616 section 3.3).
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of the hash of the parts joined by `:`.
    pub fn hash_hex(self, parts: &[&str]) -> String {
        fn feed<D: sha2::Digest>(mut d: D, parts: &[&str]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let out = d.finalize();
            let mut hex = String::with_capacity(out.len() * 2);
            for b in out.iter() {
                hex.push(char::from(DIGITS[usize::from(b >> 4)]));
                hex.push(char::from(DIGITS[usize::from(b & 15)]));
            }
            hex
        }
        match self {
            Algorithm::Md5 => feed(Md5::new(), parts),
            Algorithm::Sha256 => feed(Sha256::new(), parts),
        }
    }
}

/// HA1 = H(username:realm:password): what the user store keeps instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_hex(&[username, realm, password])
}

/// The expected `response` for qop=auth (or for no qop, RFC 2069 style, when `qop` is None).
pub fn expected_response(
    algorithm: Algorithm,
    ha1: &str,
    method: &str,
    credentials: &Credentials<'_>,
) -> String {
    let ha2 = algorithm.hash_hex(&[method, credentials.uri]);
    match credentials.qop {
        Some(qop) => algorithm.hash_hex(&[
            ha1,
            credentials.nonce,
            credentials.nc.unwrap_or(""),
            credentials.cnonce.unwrap_or(""),
            qop,
            &ha2,
        ]),
        None => algorithm.hash_hex(&[ha1, credentials.nonce, &ha2]),
    }
}

/// A WWW-Authenticate (or Proxy-Authenticate) value offering `algorithm` with qop=auth.
pub fn challenge(algorithm: Algorithm, realm: &str, nonce: &str, stale: bool) -> String {
    let mut c = format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        algorithm.as_str()
    );
    if stale {
        c.push_str(", stale=true");
    }
    c
}

/// What a user agent answers a challenge with: the user, the password, the request it
/// retries, and its client nonce and count (RFC 7616 3.4).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The user name.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// The method of the request retried.
    pub method: &'a str,
    /// Its Request-URI, as written.
    pub uri: &'a str,
    /// A fresh client nonce (hex or token characters).
    pub cnonce: &'a str,
    /// How many times this nonce was used before, plus one.
    pub nc: u32,
}

/// The Authorization (or Proxy-Authorization) value answering the challenge `challenge` (a
/// WWW-Authenticate or Proxy-Authenticate value); None for one we cannot answer (not Digest,
/// an algorithm other than MD5 or SHA-256, no realm or nonce, a qop without `auth`).
pub fn answer(challenge: &str, a: &Answer<'_>) -> Option<String> {
    let params = AuthParams::parse(challenge).filter(|p| p.is_scheme("Digest"))?;
    let algorithm = Algorithm::parse(params.get("algorithm").as_deref())?;
    // Values are copied into our quoted strings as they are: one holding a quote, a
    // backslash or a line break would break out of them (a header injected by the server
    // that challenges us). No server of ours sends such values; we do not answer them.
    let quotable = |v: &str| !v.contains(['"', '\\']) && !v.chars().any(char::is_control);
    let realm = params.get("realm").filter(|v| quotable(v))?;
    let nonce = params.get("nonce").filter(|v| quotable(v))?;
    if params.get("opaque").is_some_and(|v| !quotable(&v)) {
        return None;
    }
    let qop = match params.get("qop") {
        None => None,
        Some(q) => Some(
            q.split(',')
                .map(str::trim)
                .find(|q| q.eq_ignore_ascii_case("auth"))?
                .to_string(),
        ),
    };
    let ha1 = ha1(algorithm, a.username, &realm, a.password);
    let ha2 = algorithm.hash_hex(&[a.method, a.uri]);
    let nc = format!("{:08x}", a.nc);
    let response = match &qop {
        Some(q) => algorithm.hash_hex(&[&ha1, &nonce, &nc, a.cnonce, q, &ha2]),
        None => algorithm.hash_hex(&[&ha1, &nonce, &ha2]),
    };
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", response=\"{response}\", algorithm={}",
        a.username,
        a.uri,
        algorithm.as_str()
    );
    if let Some(q) = qop {
        v.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{}\"", a.cnonce));
    }
    if let Some(opaque) = params.get("opaque") {
        v.push_str(&format!(", opaque=\"{opaque}\""));
    }
    Some(v)
}

/// Why credentials could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// Not the Digest scheme.
    #[error("not Digest credentials")]
    NotDigest,
    /// A required parameter is missing.
    #[error("digest credentials without {0}")]
    Missing(&'static str),
    /// An algorithm we did not offer.
    #[error("unsupported digest algorithm")]
    Algorithm,
    /// qop present without nc/cnonce, or a qop other than auth, or a malformed nc.
    #[error("malformed digest qop, nc or cnonce")]
    Qop,
    /// A parameter holds an escape we cannot borrow (none of ours ever do).
    #[error("escaped characters in digest credentials")]
    Escaped,
}

/// Digest credentials from an Authorization header, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// username.
    pub username: &'a str,
    /// realm.
    pub realm: &'a str,
    /// nonce.
    pub nonce: &'a str,
    /// digest-uri.
    pub uri: &'a str,
    /// response (hex).
    pub response: &'a str,
    /// algorithm.
    pub algorithm: Algorithm,
    /// qop (only `auth` is accepted).
    pub qop: Option<&'a str>,
    /// nonce-count, 8 hex digits.
    pub nc: Option<&'a str>,
    /// cnonce.
    pub cnonce: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Reads Digest credentials; every field the response depends on must be there.
    pub fn parse(value: &'a str) -> Result<Self, CredentialsError> {
        let params = AuthParams::parse(value).ok_or(CredentialsError::NotDigest)?;
        if !params.is_scheme("Digest") {
            return Err(CredentialsError::NotDigest);
        }
        // One pass over the parameters (the first occurrence of a name wins, as with `get`).
        const NAMES: [&str; 9] = [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "qop",
            "nc",
            "cnonce",
        ];
        let mut found: [Option<&'a str>; 9] = [None; 9];
        for (name, raw) in params.iter() {
            let Some(slot) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) else {
                continue;
            };
            if found[slot].is_none() {
                found[slot] = match crate::lex::unquote(raw) {
                    std::borrow::Cow::Borrowed(v) => Some(v),
                    std::borrow::Cow::Owned(_) => return Err(CredentialsError::Escaped),
                };
            }
        }
        let [
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
        ] = found;
        let need =
            |v: Option<&'a str>, name: &'static str| v.ok_or(CredentialsError::Missing(name));
        let algorithm = Algorithm::parse(algorithm).ok_or(CredentialsError::Algorithm)?;
        if let Some(q) = qop {
            let nc_ok =
                nc.is_some_and(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !q.eq_ignore_ascii_case("auth") || !nc_ok || cnonce.is_none_or(str::is_empty) {
                return Err(CredentialsError::Qop);
            }
        }
        Ok(Credentials {
            username: need(username, "username")?,
            realm: need(realm, "realm")?,
            nonce: need(nonce, "nonce")?,
            uri: need(uri, "uri")?,
            response: need(response, "response")?,
            algorithm,
            qop,
            nc,
            cnonce,
        })
    }

    /// The nonce-count as a number.
    pub fn nonce_count(&self) -> Option<u32> {
        self.nc.and_then(|n| u32::from_str_radix(n, 16).ok())
    }
}

/// Compares our lowercase hex `expected` with a peer's `given` (any case) in time independent
/// of where they differ.
pub fn constant_time_eq(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_whose_values_would_break_out_of_our_quotes_is_not_answered() {
        let a = Answer {
            username: "alice",
            password: "wonder",
            method: "REGISTER",
            uri: "sip:club-a.test",
            cnonce: "0a4f113b",
            nc: 1,
        };
        // Found by the digest fuzz target: a realm with a line break (or a quote) went into
        // our header as it was.
        for bad in [
            "Digest realm=\"club-\r\nX-Injected: 1\", nonce=\"n\"",
            "Digest realm=\"a\", nonce=\"n\\\"x\"",
            "Digest realm=\"a\", nonce=\"n\", opaque=\"o\no\"",
        ] {
            assert_eq!(answer(bad, &a), None, "{bad}");
        }
        let good = answer(
            "Digest realm=\"club-a.test\", nonce=\"n1\", qop=\"auth\"",
            &a,
        );
        assert!(good.is_some_and(|g| Credentials::parse(&g).is_ok()));
    }

    // RFC 7616 section 3.9.1: the same request answered with MD5 and with SHA-256.
    const RFC7616: &str = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm=ALG, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, response=\"RESP\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    fn check(alg: Algorithm, expected: &str) {
        let value = RFC7616
            .replace("ALG", alg.as_str())
            .replace("RESP", expected);
        let c = Credentials::parse(&value).unwrap();
        let h1 = ha1(alg, c.username, c.realm, "Circle of Life");
        assert_eq!(expected_response(alg, &h1, "GET", &c), expected);
        assert!(constant_time_eq(
            &expected_response(alg, &h1, "GET", &c),
            c.response
        ));
    }

    #[test]
    fn an_answer_is_what_the_server_side_accepts() {
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let c = challenge(algorithm, "club-a.test", "n0nce", false);
            let a = Answer {
                username: "alice",
                password: "s3cret",
                method: "REGISTER",
                uri: "sip:club-a.test",
                cnonce: "c0ffee",
                nc: 1,
            };
            let value = answer(&c, &a).unwrap();
            let parsed = Credentials::parse(&value).unwrap();
            assert_eq!(parsed.algorithm, algorithm);
            assert_eq!(
                (parsed.username, parsed.realm, parsed.uri),
                ("alice", "club-a.test", "sip:club-a.test")
            );
            let ha1 = ha1(algorithm, "alice", "club-a.test", "s3cret");
            assert_eq!(
                parsed.response,
                expected_response(algorithm, &ha1, "REGISTER", &parsed)
            );
            let wrong = ha1_for_wrong();
            assert_ne!(
                parsed.response,
                expected_response(algorithm, &wrong, "REGISTER", &parsed)
            );
        }
        // Without qop (RFC 2069 style), with opaque, and refusals.
        let v = answer(
            "Digest realm=\"r\", nonce=\"n\", opaque=\"o\"",
            &Answer {
                username: "u",
                password: "p",
                method: "INVITE",
                uri: "sip:b@r",
                cnonce: "c",
                nc: 1,
            },
        )
        .unwrap();
        assert!(v.contains("opaque=\"o\"") && !v.contains("qop"), "{v}");
        let a = Answer {
            username: "u",
            password: "p",
            method: "M",
            uri: "u",
            cnonce: "c",
            nc: 1,
        };
        assert!(answer("Basic realm=\"r\"", &a).is_none());
        assert!(answer("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess", &a).is_none());
        assert!(answer("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"", &a).is_none());
        assert!(answer("Digest nonce=\"n\"", &a).is_none());
    }

    fn ha1_for_wrong() -> String {
        ha1(Algorithm::Md5, "alice", "club-a.test", "guess")
    }

    #[test]
    fn rfc7616_examples() {
        check(Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec");
        check(
            Algorithm::Sha256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
    }

    #[test]
    fn missing_fields_and_bad_qop() {
        let v = "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\"";
        assert_eq!(
            Credentials::parse(v),
            Err(CredentialsError::Missing("response"))
        );
        let v = "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\", qop=auth";
        assert_eq!(Credentials::parse(v), Err(CredentialsError::Qop));
        let v = "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\", algorithm=SHA-512-256";
        assert_eq!(Credentials::parse(v), Err(CredentialsError::Algorithm));
        assert_eq!(
            Credentials::parse("Basic abc=="),
            Err(CredentialsError::NotDigest)
        );
    }

    #[test]
    fn names_any_case_first_wins_escapes_only_in_fields_read() {
        let v = "Digest USERNAME=\"a\", Realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\", \
                 response=\"y\", opaque=\"q\\\"q\"";
        let c = Credentials::parse(v).unwrap();
        assert_eq!((c.username, c.realm, c.response), ("a", "r", "x"));
        assert_eq!(c.algorithm, Algorithm::Md5);
        let v =
            "Digest username=\"a\\\"b\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\"";
        assert_eq!(Credentials::parse(v), Err(CredentialsError::Escaped));
    }

    #[test]
    fn challenges() {
        assert_eq!(
            challenge(Algorithm::Sha256, "club-a.test", "abc", true),
            "Digest realm=\"club-a.test\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
    }
}

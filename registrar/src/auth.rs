//! Digest authentication of requests (RFC 3261 22, RFC 7616, RFC 8760): which answer a request
//! gets, with nonce expiry, nonce-count replay protection, the same answer for an unknown user
//! and a wrong password, and throttling after repeated failures.

use crate::nonce::{NonceCounts, NonceIssuer, NonceState};
use crate::user::User;
use openline_sip::digest::{
    Algorithm, Credentials, CredentialsError, challenge, constant_time_eq, expected_response,
};
use openline_sip::header::HeaderName;
use openline_sip::{Entropy, Message};
use std::collections::HashMap;
use std::net::IpAddr;

/// Authentication policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Seconds a nonce stays fresh.
    pub nonce_lifetime: u64,
    /// Failures (from one source, or for one user) that start a throttle.
    pub max_failures: u32,
    /// Window in seconds in which failures are counted.
    pub failure_window: u64,
    /// Seconds a throttled source or user is refused without checking.
    pub throttle_for: u64,
    /// Offer SHA-256 above MD5. Clients answer the topmost challenge they support (RFC 8760
    /// 2.4), and some (sipsak, SIPp) read only the first one and refuse SHA-256, so MD5 leads
    /// unless every client is known to be modern.
    pub prefer_sha256: bool,
    /// User-Agent prefixes (case-insensitive) of clients that give up when any challenge names an
    /// algorithm they lack, against RFC 8760 section 2.4: they are challenged with MD5 only.
    /// baresip 1.0.0 (libre 1.1.0) fails with "Function not implemented" (seen here).
    pub md5_only_agents: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_lifetime: 300,
            max_failures: 5,
            failure_window: 60,
            throttle_for: 60,
            prefer_sha256: false,
            md5_only_agents: vec!["baresip".to_string()],
        }
    }
}

/// The decision on a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are right: the user is `user@realm`.
    Authenticated(String),
    /// No usable credentials (none, an unknown nonce, a replayed count): challenge afresh;
    /// `stale` when the answer was right but the nonce had expired.
    Challenge {
        /// Say `stale=true`.
        stale: bool,
    },
    /// Wrong password or unknown user: one answer for both.
    Failed,
    /// Credentials missing a field or malformed: 400 with the reason.
    Malformed(CredentialsError),
    /// Too many failures lately from this source or for this user (the key says which).
    Throttled(String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: u64,
    blocked_until: u64,
}

/// Most failure records kept; expired ones are dropped first.
const MAX_FAILURE_RECORDS: usize = 100_000;

/// Verifies credentials and issues challenges.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    nonces: NonceIssuer,
    counts: NonceCounts,
    by_source: FailureLog<IpAddr>,
    by_user: FailureLog<String>,
}

impl Authenticator {
    /// An authenticator whose nonces are keyed by `secret`.
    pub fn new(config: AuthConfig, secret: [u8; 32]) -> Self {
        Authenticator {
            nonces: NonceIssuer::new(secret, config.nonce_lifetime),
            config,
            counts: NonceCounts::default(),
            by_source: FailureLog::default(),
            by_user: FailureLog::default(),
        }
    }

    /// The WWW-Authenticate values of a 401 for a client with this User-Agent: MD5 and SHA-256
    /// in order of preference (see [`AuthConfig::prefer_sha256`]), or MD5 alone for the clients
    /// in [`AuthConfig::md5_only_agents`].
    pub fn challenges(
        &self,
        now: u64,
        realm: &str,
        stale: bool,
        user_agent: Option<&str>,
        entropy: &mut dyn Entropy,
    ) -> Vec<String> {
        let md5 = challenge(
            Algorithm::Md5,
            realm,
            &self.nonces.issue(now, entropy),
            stale,
        );
        let legacy = user_agent.is_some_and(|ua| {
            self.config.md5_only_agents.iter().any(|p| {
                ua.len() >= p.len() && ua.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            })
        });
        if legacy {
            return vec![md5];
        }
        let sha = challenge(
            Algorithm::Sha256,
            realm,
            &self.nonces.issue(now, entropy),
            stale,
        );
        if self.config.prefer_sha256 {
            vec![sha, md5]
        } else {
            vec![md5, sha]
        }
    }

    /// Decides the credentials of `request` for `realm` (its Authorization headers, as a
    /// registrar or UAS reads them), looking users up with `user_of` (`user@realm` to user).
    pub fn verify<'u>(
        &mut self,
        now: u64,
        request: &Message<'_>,
        realm: &str,
        source: IpAddr,
        user_of: impl Fn(&str) -> Option<&'u User>,
    ) -> AuthOutcome {
        self.verify_in(
            HeaderName::Authorization,
            now,
            request,
            realm,
            source,
            user_of,
        )
    }

    /// Like [`Authenticator::verify`], for a proxy: the Proxy-Authorization headers (answered
    /// with 407 and Proxy-Authenticate).
    pub fn verify_proxy<'u>(
        &mut self,
        now: u64,
        request: &Message<'_>,
        realm: &str,
        source: IpAddr,
        user_of: impl Fn(&str) -> Option<&'u User>,
    ) -> AuthOutcome {
        self.verify_in(
            HeaderName::ProxyAuthorization,
            now,
            request,
            realm,
            source,
            user_of,
        )
    }

    fn verify_in<'u>(
        &mut self,
        header: HeaderName<'static>,
        now: u64,
        request: &Message<'_>,
        realm: &str,
        source: IpAddr,
        user_of: impl Fn(&str) -> Option<&'u User>,
    ) -> AuthOutcome {
        if self.by_source.is_blocked(&source, now) {
            return AuthOutcome::Throttled(format!("ip:{source}"));
        }
        // The Authorization for our realm, if any (a request may carry several).
        let mut found = None;
        for value in request.headers_named(header) {
            match Credentials::parse(value) {
                Ok(c) if c.realm.eq_ignore_ascii_case(realm) => {
                    found = Some(c);
                    break;
                }
                Ok(_) | Err(CredentialsError::NotDigest) => {}
                Err(e) => return AuthOutcome::Malformed(e),
            }
        }
        let Some(credentials) = found else {
            return AuthOutcome::Challenge { stale: false };
        };
        let aor = format!("{}@{}", credentials.username, realm.to_ascii_lowercase());
        if self.by_user.is_blocked(aor.as_str(), now) {
            return AuthOutcome::Throttled(format!("user:{aor}"));
        }
        let nonce = self.nonces.check(credentials.nonce, now);
        let issued = match nonce {
            NonceState::Invalid => return AuthOutcome::Challenge { stale: false },
            NonceState::Fresh(t) | NonceState::Stale(t) => t,
        };
        let user = user_of(&aor);
        // An unknown user costs the same hashing as a known one and gets the same answer.
        let dummy;
        let ha1 = match user {
            Some(u) => u.ha1(credentials.algorithm),
            None => {
                dummy = credentials.algorithm.hash_hex(&[
                    credentials.username,
                    realm,
                    "\u{0}no such user",
                ]);
                &dummy
            }
        };
        let expected = expected_response(
            credentials.algorithm,
            ha1,
            request.method().as_str(),
            &credentials,
        );
        if user.is_none() || !constant_time_eq(&expected, credentials.response) {
            let config = &self.config;
            let blocked = self.by_source.record(source, now, config)
                | self.by_user.record(aor.clone(), now, config);
            return if blocked {
                AuthOutcome::Throttled(format!("user:{aor}"))
            } else {
                AuthOutcome::Failed
            };
        }
        if matches!(nonce, NonceState::Stale(_)) {
            return AuthOutcome::Challenge { stale: true };
        }
        // Without qop there is no count: the nonce may be used once.
        let nc = credentials.nonce_count().unwrap_or(1);
        if !self
            .counts
            .accept(credentials.nonce, issued, nc, now, self.nonces.lifetime())
        {
            return AuthOutcome::Challenge { stale: false };
        }
        self.by_user.forget(aor.as_str());
        AuthOutcome::Authenticated(aor)
    }
}

/// Recent authentication failures per key (a source address, or a user), bounded.
#[derive(Debug)]
struct FailureLog<K> {
    map: HashMap<K, Failures>,
}

impl<K> Default for FailureLog<K> {
    fn default() -> Self {
        FailureLog {
            map: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> FailureLog<K> {
    fn is_blocked<Q>(&self, key: &Q, now: u64) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.get(key).is_some_and(|f| f.blocked_until > now)
    }

    fn forget<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.remove(key);
    }

    /// Counts a failure; true if it starts a throttle.
    fn record(&mut self, key: K, now: u64, config: &AuthConfig) -> bool {
        if self.map.len() >= MAX_FAILURE_RECORDS {
            let window = config.failure_window;
            self.map
                .retain(|_, f| f.blocked_until > now || f.since + window > now);
        }
        let f = self.map.entry(key).or_insert(Failures {
            count: 0,
            since: now,
            blocked_until: 0,
        });
        if f.since + config.failure_window <= now {
            *f = Failures {
                count: 0,
                since: now,
                blocked_until: 0,
            };
        }
        f.count += 1;
        if config.throttle_for > 0 && f.count >= config.max_failures {
            *f = Failures {
                count: 0,
                since: now,
                blocked_until: now + config.throttle_for,
            };
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openline_sip::SeededEntropy;
    use openline_sip::digest::ha1;

    const NOW: u64 = 1_800_000_000;
    const REALM: &str = "club-a.test";

    fn alice() -> User {
        User::new("alice@club-a.test", "s3cret").unwrap()
    }

    fn nonce_from(challenge: &str) -> String {
        openline_sip::header::AuthParams::parse(challenge)
            .unwrap()
            .get("nonce")
            .unwrap()
            .into_owned()
    }

    fn request(user: &str, password: &str, nonce: &str, nc: &str, alg: Algorithm) -> Vec<u8> {
        let uri = "sip:club-a.test";
        let h1 = ha1(alg, user, REALM, password);
        let creds = format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"RESP\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\"",
            alg.as_str()
        );
        let parsed = Credentials::parse(&creds).unwrap();
        let resp = expected_response(alg, &h1, "REGISTER", &parsed);
        format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\nFrom: <sip:{user}@{REALM}>;tag=1\r\nTo: <sip:{user}@{REALM}>\r\nCall-ID: a\r\nCSeq: 2 REGISTER\r\nAuthorization: {}\r\nContent-Length: 0\r\n\r\n",
            creds.replace("RESP", &resp)
        )
        .into_bytes()
    }

    fn verify(auth: &mut Authenticator, raw: &[u8], now: u64) -> AuthOutcome {
        let users = [alice()];
        let m = Message::parse(raw).unwrap();
        auth.verify(now, &m, REALM, "127.0.0.1".parse().unwrap(), |aor| {
            users.iter().find(|u| u.aor == aor)
        })
    }

    fn setup() -> (Authenticator, String, String) {
        let auth = Authenticator::new(AuthConfig::default(), [9; 32]);
        let offered = auth.challenges(
            NOW,
            REALM,
            false,
            Some("Linphone/5.1"),
            &mut SeededEntropy::new(3),
        );
        let [md5, sha] = [offered[0].clone(), offered[1].clone()];
        let legacy = auth.challenges(
            NOW,
            REALM,
            false,
            Some("baresip v1.0.0 (x86_64/linux)"),
            &mut SeededEntropy::new(3),
        );
        assert_eq!(legacy.len(), 1);
        assert!(legacy[0].contains("algorithm=MD5"));
        let preferring = Authenticator::new(
            AuthConfig {
                prefer_sha256: true,
                ..AuthConfig::default()
            },
            [9; 32],
        );
        assert!(
            preferring.challenges(NOW, REALM, false, None, &mut SeededEntropy::new(3))[0]
                .contains("SHA-256")
        );
        assert!(sha.contains("algorithm=SHA-256") && md5.contains("algorithm=MD5"));
        (auth, nonce_from(&sha), nonce_from(&md5))
    }

    #[test]
    fn both_algorithms_authenticate() {
        let (mut auth, sha, md5) = setup();
        assert_eq!(
            verify(
                &mut auth,
                &request("alice", "s3cret", &sha, "00000001", Algorithm::Sha256),
                NOW
            ),
            AuthOutcome::Authenticated("alice@club-a.test".into())
        );
        assert_eq!(
            verify(
                &mut auth,
                &request("alice", "s3cret", &md5, "00000001", Algorithm::Md5),
                NOW
            ),
            AuthOutcome::Authenticated("alice@club-a.test".into())
        );
    }

    #[test]
    fn replayed_nonce_count_is_challenged_again() {
        let (mut auth, sha, _) = setup();
        let raw = request("alice", "s3cret", &sha, "00000001", Algorithm::Sha256);
        assert!(matches!(
            verify(&mut auth, &raw, NOW),
            AuthOutcome::Authenticated(_)
        ));
        assert_eq!(
            verify(&mut auth, &raw, NOW + 1),
            AuthOutcome::Challenge { stale: false }
        );
        let next = request("alice", "s3cret", &sha, "00000002", Algorithm::Sha256);
        assert!(matches!(
            verify(&mut auth, &next, NOW + 2),
            AuthOutcome::Authenticated(_)
        ));
    }

    #[test]
    fn expired_nonce_with_right_answer_is_stale() {
        let (mut auth, sha, _) = setup();
        let raw = request("alice", "s3cret", &sha, "00000001", Algorithm::Sha256);
        assert_eq!(
            verify(&mut auth, &raw, NOW + 301),
            AuthOutcome::Challenge { stale: true }
        );
        let wrong = request("alice", "nope", &sha, "00000001", Algorithm::Sha256);
        assert_eq!(
            verify(&mut auth, &wrong, NOW + 301),
            AuthOutcome::Failed,
            "a wrong answer is never merely stale"
        );
    }

    #[test]
    fn unknown_user_and_wrong_password_look_the_same() {
        let (mut auth, sha, _) = setup();
        let wrong = verify(
            &mut auth,
            &request("alice", "nope", &sha, "00000001", Algorithm::Sha256),
            NOW,
        );
        let unknown = verify(
            &mut auth,
            &request("mallory", "s3cret", &sha, "00000001", Algorithm::Sha256),
            NOW,
        );
        assert_eq!(wrong, AuthOutcome::Failed);
        assert_eq!(unknown, wrong);
    }

    #[test]
    fn repeated_failures_throttle_then_expire() {
        let (mut auth, sha, _) = setup();
        let wrong = request("alice", "nope", &sha, "00000001", Algorithm::Sha256);
        for _ in 0..4 {
            assert_eq!(verify(&mut auth, &wrong, NOW), AuthOutcome::Failed);
        }
        assert!(matches!(
            verify(&mut auth, &wrong, NOW),
            AuthOutcome::Throttled(_)
        ));
        // Even the right password is refused while throttled...
        let right = request("alice", "s3cret", &sha, "00000001", Algorithm::Sha256);
        assert!(matches!(
            verify(&mut auth, &right, NOW + 10),
            AuthOutcome::Throttled(_)
        ));
        // ...and accepted once the throttle is over.
        assert!(matches!(
            verify(&mut auth, &right, NOW + 61),
            AuthOutcome::Authenticated(_)
        ));
    }

    #[test]
    fn a_zero_throttle_never_throttles() {
        let mut auth = Authenticator::new(
            AuthConfig {
                throttle_for: 0,
                ..AuthConfig::default()
            },
            [9; 32],
        );
        let sha =
            nonce_from(&auth.challenges(NOW, REALM, false, None, &mut SeededEntropy::new(3))[1]);
        let wrong = request("alice", "nope", &sha, "00000001", Algorithm::Sha256);
        for _ in 0..12 {
            assert_eq!(verify(&mut auth, &wrong, NOW), AuthOutcome::Failed);
        }
    }

    #[test]
    fn missing_fields_and_foreign_nonces() {
        let (mut auth, _, _) = setup();
        let raw = b"REGISTER sip:club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:alice@club-a.test>;tag=1\r\nTo: <sip:alice@club-a.test>\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\nAuthorization: Digest username=\"alice\", realm=\"club-a.test\", nonce=\"x\"\r\n\r\n";
        assert_eq!(
            verify(&mut auth, raw, NOW),
            AuthOutcome::Malformed(CredentialsError::Missing("uri"))
        );
        let foreign = request("alice", "s3cret", "0123", "00000001", Algorithm::Md5);
        assert_eq!(
            verify(&mut auth, &foreign, NOW),
            AuthOutcome::Challenge { stale: false }
        );
        let none = b"REGISTER sip:club-a.test SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:alice@club-a.test>;tag=1\r\nTo: <sip:alice@club-a.test>\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\n\r\n";
        assert_eq!(
            verify(&mut auth, none, NOW),
            AuthOutcome::Challenge { stale: false }
        );
    }
}

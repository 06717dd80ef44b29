//! Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate and
//! Authentication-Info (RFC 3261 section 20.7, 20.27, 20.44; RFC 7616, RFC 8760).

use crate::lex::{Cursor, is_token, split_list, unquote};
use std::borrow::Cow;

/// A challenge or credentials: a scheme and comma-separated `name=value` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// The scheme (`Digest`), or `None` for Authentication-Info, which has none.
    pub scheme: Option<&'a str>,
    /// The parameters as written.
    params: &'a str,
}

impl<'a> AuthParams<'a> {
    /// Parses `scheme LWS auth-param *(COMMA auth-param)` (a challenge or credentials).
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let scheme = c.token()?;
        if !c.skip_lws() && !c.at_end() {
            return None;
        }
        let v = AuthParams {
            scheme: Some(scheme),
            params: c.rest(),
        };
        v.validate().then_some(v)
    }

    /// Parses a list of auth-params with no scheme (Authentication-Info).
    pub fn parse_info(s: &'a str) -> Option<Self> {
        let v = AuthParams {
            scheme: None,
            params: s,
        };
        v.validate().then_some(v)
    }

    fn validate(&self) -> bool {
        self.params.trim().is_empty() || split_list(self.params).all(|p| split_param(p).is_some())
    }

    /// Whether the scheme is `name`, case-insensitively.
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.is_some_and(|s| s.eq_ignore_ascii_case(name))
    }

    /// Iterates `(name, raw value)`; values keep their quotes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let empty = self.params.trim().is_empty();
        split_list(self.params)
            .filter(move |_| !empty)
            .filter_map(split_param)
    }

    /// A parameter's value, unquoted (borrowed unless it held escapes).
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unquote(v))
    }
}

fn split_param(p: &str) -> Option<(&str, &str)> {
    let mut c = Cursor::new(p);
    let name = c.token()?;
    if !c.eat_separator(b'=') {
        return None;
    }
    let value = match c.peek() {
        Some(b'"') => c.quoted_string()?,
        _ => c.take_while(|b| is_token(b) || b == b'/' || b == b':'),
    };
    c.skip_lws();
    (c.at_end() && !value.is_empty()).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_credentials() {
        let a = AuthParams::parse(
            "Digest username=\"alice\", realm=\"club-a.test\",\r\n nonce=\"abc\", uri=\"sip:club-a.test\", response=\"0123\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"x\\\"y\"",
        )
        .unwrap();
        assert!(a.is_scheme("digest"));
        assert_eq!(a.get("username").unwrap(), "alice");
        assert_eq!(a.get("algorithm").unwrap(), "SHA-256");
        assert_eq!(a.get("nc").unwrap(), "00000001");
        assert_eq!(a.get("cnonce").unwrap(), "x\"y");
        assert_eq!(a.get("opaque"), None);
    }

    #[test]
    fn unknown_scheme_still_parses() {
        let a = AuthParams::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(!a.is_scheme("Digest"));
        assert_eq!(a.get("opaque-data").unwrap(), "here");
    }

    #[test]
    fn malformed() {
        assert!(AuthParams::parse("Digest realm").is_none());
        assert!(AuthParams::parse("Digest realm=\"open").is_none());
        assert!(AuthParams::parse_info("nextnonce=\"a\", qop=auth").is_some());
    }
}

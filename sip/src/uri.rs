//! SIP and SIPS URIs (RFC 3261 section 19.1), other schemes kept opaque, and hosts with IPv6
//! references.

use crate::lex::{PARAM, PASSWORD, URI_HEADER, USER, all_in, find_byte, rfind_byte};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URI was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("no scheme")]
    NoScheme,
    /// A character outside the URI grammar.
    #[error("invalid character")]
    InvalidChar,
    /// A host that is not a name, IPv4 address or IPv6 reference.
    #[error("invalid host")]
    Host,
    /// A port that is not a number up to 65535.
    #[error("invalid port")]
    Port,
    /// A `%` not followed by two hex digits.
    #[error("invalid escape")]
    Escape,
}

/// A host: a domain name or an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name as written (compare case-insensitively).
    Name(&'a str),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written as a bracketed reference).
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses a host; IPv6 must be bracketed.
    pub fn parse(s: &'a str) -> Result<Self, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return inner.parse().map(Host::V6).map_err(|_| UriError::Host);
        }
        if s.is_empty() || s.len() > 255 {
            return Err(UriError::Host);
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; '_' is tolerated as deployed DNS has
        // it. One pass: labels are non-empty and neither start nor end with '-'.
        let mut numeric = true;
        let mut label_len = 0usize;
        let mut prev = b'.';
        for &b in s.as_bytes() {
            match b {
                b'.' => {
                    if label_len == 0 || prev == b'-' {
                        return Err(UriError::Host);
                    }
                    label_len = 0;
                }
                b'-' if label_len == 0 => return Err(UriError::Host),
                b'a'..=b'z' | b'A'..=b'Z' | b'-' | b'_' => {
                    numeric = false;
                    label_len += 1;
                }
                b'0'..=b'9' => label_len += 1,
                _ => return Err(UriError::Host),
            }
            prev = b;
        }
        if prev == b'-' {
            return Err(UriError::Host);
        }
        if numeric {
            return parse_ipv4(s).map(Host::V4).ok_or(UriError::Host);
        }
        Ok(Host::Name(s))
    }

    /// The address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
        }
    }

    /// Whether two hosts are the same (names case-insensitively).
    pub fn same_as(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a.ip().is_some() && a.ip() == b.ip(),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Dotted-quad IPv4: four decimal octets of one to three digits, each at most 255.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in s.as_bytes().split(|&b| b == b'.') {
        if n == 4 || part.is_empty() || part.len() > 3 {
            return None;
        }
        let v = part.iter().try_fold(0u16, |v, &d| {
            d.is_ascii_digit().then(|| v * 10 + u16::from(d - b'0'))
        })?;
        octets[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(octets))
}

/// A `sip:` or `sips:` URI, borrowing the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, still escaped.
    pub user: Option<&'a str>,
    /// The password, still escaped (deprecated, but part of the grammar).
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The port, when given.
    pub port: Option<u16>,
    /// The parameters as written, without the leading `;`.
    pub params: &'a str,
    /// The headers as written, without the leading `?`.
    pub headers: Option<&'a str>,
}

/// A URI: SIP/SIPS parsed, anything else kept as `scheme:opaque`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>, &'a str),
    /// Another scheme (`tel:`, `isbn:`, ...): RFC 3261 lets us carry what we cannot read.
    Other {
        /// The scheme, as written.
        scheme: &'a str,
        /// The whole URI text.
        raw: &'a str,
    },
}

impl<'a> Uri<'a> {
    /// Parses a URI as found between `<` and `>` or in a Request-URI.
    pub fn parse(s: &'a str) -> Result<Self, UriError> {
        let colon = find_byte(s, b':').ok_or(UriError::NoScheme)?;
        let scheme = &s[..colon];
        let scheme_ok = scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(UriError::NoScheme);
        }
        let rest = &s[colon + 1..];
        let secure = if scheme.eq_ignore_ascii_case("sip") {
            false
        } else if scheme.eq_ignore_ascii_case("sips") {
            true
        } else {
            // Opaque: anything printable without white space or angle brackets.
            if rest.is_empty()
                || !rest
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b'"')
            {
                return Err(UriError::InvalidChar);
            }
            return Ok(Uri::Other { scheme, raw: s });
        };
        Ok(Uri::Sip(SipUri::parse_after_scheme(secure, rest)?, s))
    }

    /// The SIP URI, when it is one.
    pub fn sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u, _) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    /// The text the URI was parsed from.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(_, raw) => raw,
            Uri::Other { raw, .. } => raw,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> SipUri<'a> {
    fn parse_after_scheme(secure: bool, s: &'a str) -> Result<Self, UriError> {
        // The user part may hold ';', '?' and even ':' but never an unescaped '@'.
        let (userinfo, hostpart) = match find_byte(s, b'@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                // A password follows the first ':'; user chars never include ':'.
                let (u, p) = match find_byte(ui, b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !all_in(u, &USER) {
                    return Err(UriError::InvalidChar);
                }
                if let Some(p) = p {
                    if !all_in(p, &PASSWORD) {
                        return Err(UriError::InvalidChar);
                    }
                }
                (Some(u), p)
            }
        };
        let (hostport, headers) = match find_byte(hostpart, b'?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        let (hostport, params) = match find_byte(hostport, b';') {
            Some(sc) => (&hostport[..sc], &hostport[sc + 1..]),
            None => (hostport, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        if !all_in(params, &PARAM) {
            return Err(UriError::InvalidChar);
        }
        if let Some(h) = headers {
            if !all_in(h, &URI_HEADER) {
                return Err(UriError::InvalidChar);
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// Looks up a URI parameter by name (case-insensitive): `Some(None)` for a flag like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.split(';').find_map(|p| {
            let (n, v) = match p.find('=') {
                Some(e) => (&p[..e], Some(&p[e + 1..])),
                None => (p, None),
            };
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// The transport parameter, lowercased by the caller as needed.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Whether two URIs name the same place (RFC 3261 19.1.4): scheme, user, host and port
    /// alike, and the parameters that must match when either has them (transport, user,
    /// maddr, ttl, method); others, such as RFC 5626's `ob` a UA adds to its dialog
    /// Contact but not to its registered one, do not tell them apart.
    pub fn same_target(&self, other: &SipUri<'_>) -> bool {
        let param = |u: &SipUri<'_>, n: &str| u.param(n).flatten().map(str::to_ascii_lowercase);
        self.secure == other.secure
            && self.user == other.user
            && self.host.same_as(&other.host)
            && self.port == other.port
            && ["transport", "user", "maddr", "ttl", "method"]
                .iter()
                .all(|n| param(self, n) == param(other, n))
    }
}

/// Splits `host[:port]`, honouring IPv6 brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(Host<'_>, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = find_byte(s, b']').ok_or(UriError::Host)?;
        let after = &s[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (&s[..=end], Some(p)),
            None if after.is_empty() => (&s[..=end], None),
            None => return Err(UriError::Host),
        }
    } else {
        match rfind_byte(s, b':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| UriError::Port)?)
        }
        Some(_) => return Err(UriError::Port),
    };
    Ok((Host::parse(host)?, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        *Uri::parse(s).unwrap().sip().unwrap()
    }

    #[test]
    fn a_dialog_contact_with_ob_is_the_registered_one_but_another_transport_is_not() {
        let registered = sip("sip:k8d1@x9q.invalid;transport=ws");
        assert!(sip("sip:k8d1@X9Q.invalid;transport=WS;ob").same_target(&registered));
        assert!(!sip("sip:k8d1@x9q.invalid;transport=tcp").same_target(&registered));
        assert!(!sip("sip:other@x9q.invalid;transport=ws").same_target(&registered));
        assert!(!sip("sip:k8d1@x9q.invalid:5061;transport=ws").same_target(&registered));
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Name("example.com"));
    }

    #[test]
    fn crazy_user_with_password_separator() {
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password,
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
    }

    #[test]
    fn ipv6_reference_with_port_and_params() {
        let u = sip("sips:[2001:db8::10]:5071;transport=tls;lr");
        assert!(u.secure);
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5071));
        assert_eq!(u.transport(), Some("tls"));
        assert_eq!(u.param("lr"), Some(None));
    }

    #[test]
    fn headers_are_split_off() {
        let u = sip("sip:user@example.com?Route=%3Csip:example.com%3E");
        assert_eq!(u.headers, Some("Route=%3Csip:example.com%3E"));
    }

    #[test]
    fn opaque_schemes_are_kept() {
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other {
                scheme: "soap.beep",
                ..
            })
        ));
        assert!(matches!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent"),
            Ok(Uri::Other { .. })
        ));
    }

    #[test]
    fn ipv4_hosts() {
        assert_eq!(
            Host::parse("192.0.2.10"),
            Ok(Host::V4(Ipv4Addr::new(192, 0, 2, 10)))
        );
        assert!(Host::parse("256.1.1.1").is_err());
        assert!(Host::parse("1.2.3").is_err());
        assert!(Host::parse("1.2.3.4.5").is_err());
        assert!(Host::parse("1..3.4").is_err());
        assert_eq!(
            Host::parse("example-1.com."),
            Ok(Host::Name("example-1.com."))
        );
        assert!(Host::parse("-bad.com").is_err());
        assert!(Host::parse("bad-.com").is_err());
    }

    #[test]
    fn bad_uris() {
        assert!(Uri::parse("sip:user@exa mple.com").is_err());
        assert!(Uri::parse("sip:user@example.com:99999").is_err());
        assert!(Uri::parse("sip:us%zzer@example.com").is_err());
        assert!(Uri::parse("<sip:user@example.com>").is_err());
        assert!(Uri::parse("sip:[::1").is_err());
    }
}

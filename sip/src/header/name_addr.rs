//! `name-addr / addr-spec` followed by header parameters: From, To, Contact, Route,
//! Record-Route, Path, Refer-To (RFC 3261 section 20.10, 20.20, 20.39).

use super::params::Params;
use crate::lex::{Cursor, is_lws, trim_lws};
use crate::uri::Uri;

/// A display name, a URI and header parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: a quoted string with its quotes, or tokens.
    pub display: Option<&'a str>,
    /// The URI.
    pub uri: Uri<'a>,
    /// Whether the URI was in angle brackets.
    pub bracketed: bool,
    /// Header parameters after the URI (`tag`, `expires`, `q`, ...).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one value; the whole string must be consumed.
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        let v = Self::read(&mut c)?;
        c.skip_lws();
        c.at_end().then_some(v)
    }

    /// Reads a value at the cursor, stopping before a `,` or the end.
    pub(crate) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        c.skip_lws();
        let mut display = None;
        let bracketed;
        let uri_text;
        match c.peek()? {
            b'"' => {
                display = Some(c.quoted_string()?);
                c.skip_lws();
                uri_text = read_bracketed(c)?;
                bracketed = true;
            }
            b'<' => {
                uri_text = read_bracketed(c)?;
                bracketed = true;
            }
            _ => {
                // Either `*(token LWS) <uri>` or a bare addr-spec: tokens never hold ':',
                // so a ':' right after the first token means a URI scheme.
                let start = c.pos();
                let mut last_end = start;
                loop {
                    if c.token().is_none() {
                        break;
                    }
                    last_end = c.pos();
                    c.skip_lws();
                    if c.peek() == Some(b'<') {
                        break;
                    }
                }
                if c.peek() == Some(b'<') && last_end > start {
                    display = Some(c_since(c, start, last_end));
                    uri_text = read_bracketed(c)?;
                    bracketed = true;
                } else {
                    c.set_pos(start);
                    // addr-spec: the URI ends at ';' (parameters belong to the header), ',' or space.
                    let t = c.take_while(|b| b != b';' && b != b',' && !is_lws(b));
                    // A URI holding '?' (or ';' or ',') must be bracketed (RFC 3261 section 20).
                    if t.contains('?') {
                        return None;
                    }
                    uri_text = t;
                    bracketed = false;
                }
            }
        }
        let uri = Uri::parse(uri_text).ok()?;
        let params = Params::read(c)?;
        Some(NameAddr {
            display,
            uri,
            bracketed,
            params,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// The display name without quotes or escapes.
    pub fn display_name(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.display.map(crate::lex::unquote)
    }
}

fn c_since<'a>(c: &Cursor<'a>, start: usize, end: usize) -> &'a str {
    let mut tmp = c.clone();
    tmp.set_pos(end);
    trim_lws(tmp.since(start))
}

/// Reads `<uri>`: no white space is allowed inside the brackets.
fn read_bracketed<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    if !c.eat(b'<') {
        return None;
    }
    let t = c.take_while(|b| b != b'>' && !is_lws(b) && b != b'<');
    if !c.eat(b'>') || t.is_empty() {
        return None;
    }
    Some(t)
}

/// Finds the `tag` parameter of a From or To value without parsing the rest: the header
/// parameters start after the `>` of a bracketed URI, or at the first `;` of a bare one.
/// Malformed values give `None` here and are refused by the full parse on demand.
pub(crate) fn tag_of(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    let mut params_at = None;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                let close = b[i..].iter().position(|&c| c == b'>')?;
                params_at = Some(i + close + 1);
                break;
            }
            b';' if !quoted => {
                params_at = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    // Walk `;name[=value]` pairs by bytes (no `split`: this runs on every message).
    let mut rest = &value[params_at?..];
    while let Some(semi) = crate::lex::find_byte(rest, b';') {
        rest = &rest[semi + 1..];
        let end = crate::lex::find_byte(rest, b';').unwrap_or(rest.len());
        let param = &rest[..end];
        if let Some(eq) = crate::lex::find_byte(param, b'=') {
            if trim_lws(&param[..eq]).eq_ignore_ascii_case("tag") {
                return Some(trim_lws(&param[eq + 1..]));
            }
        }
        rest = &rest[end..];
    }
    None
}

/// Parses each element of a comma-separated list (Contact, Route, Record-Route); `None` marks a bad one.
pub fn parse_list<'a>(s: &'a str) -> impl Iterator<Item = Option<NameAddr<'a>>> + 'a {
    crate::lex::split_list(s).map(NameAddr::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Host;

    #[test]
    fn forms_of_from_and_to() {
        let n =
            NameAddr::parse(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert!(!n.bracketed);
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display_name().unwrap(), "J Rosenberg \\\"");
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display, Some("caller"));
        let n = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=x")
            .unwrap();
        assert_eq!(n.display, Some("token1~` token2'+_ token3*%!.-"));
        assert_eq!(n.uri.sip().unwrap().host, Host::Name("example.com"));
    }

    #[test]
    fn tags_without_a_full_parse() {
        assert_eq!(
            tag_of("Alice <sip:alice@club-a.test>;tag=1928301774"),
            Some("1928301774")
        );
        assert_eq!(
            tag_of(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
            Some("1918181833n")
        );
        assert_eq!(
            tag_of("\"a;tag=no\" <sip:x@y;tag=no>;foo;TAG=yes"),
            Some("yes")
        );
        assert_eq!(tag_of("<sip:x@y;tag=no>"), None);
        assert_eq!(tag_of("sip:x@y"), None);
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(n.uri.as_str(), "sip:+19725552222@gw1.example.net");
        assert_eq!(n.params.get("unknownparam"), Some(None));
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(n.uri.sip().unwrap().params, "unknownparam");
    }

    #[test]
    fn rfc4475_invalid_forms() {
        // badaspec: spaces inside the brackets.
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_none());
        // baddn: an unquoted display name with a comma.
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
        // quotbal: unbalanced quotes.
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_none());
        // regbadct: '?' in an unbracketed URI.
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_none());
    }

    #[test]
    fn bracketed_uri_may_carry_headers() {
        let n = NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").unwrap();
        assert_eq!(
            n.uri.sip().unwrap().headers,
            Some("Route=%3Csip:sip.example.com%3E")
        );
    }
}

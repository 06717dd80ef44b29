//! Content-Type (RFC 3261 section 20.15): `type/subtype *(;param)`.

use super::params::Params;
use crate::lex::Cursor;

/// A media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type (`application`).
    pub kind: &'a str,
    /// The subtype (`sdp`).
    pub subtype: &'a str,
    /// Parameters (`charset`, `boundary`, ...).
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses a media type; the whole value must be consumed.
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let kind = c.token()?;
        if !c.eat_separator(b'/') {
            return None;
        }
        let subtype = c.token()?;
        let params = Params::read(&mut c)?;
        c.skip_lws();
        c.at_end().then_some(MediaType {
            kind,
            subtype,
            params,
        })
    }

    /// Whether this is `kind/subtype`, case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let m = MediaType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(m.is("Multipart", "MIXED"));
        assert_eq!(m.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
        assert!(MediaType::parse("application").is_none());
        assert!(MediaType::parse("text/plain extra").is_none());
    }
}

//! Character classes and a cursor over header text (RFC 3261 section 25.1).
//!
//! Header values are borrowed from the received buffer with any line folding left in place, so
//! every scanner here treats CR and LF as linear white space: after the message has been split
//! into header lines, a CR or LF inside a value can only be part of a fold.

/// A byte class as a table: ASCII letters and digits plus `marks` and `extra`.
const fn byte_class(marks: &[u8], extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < marks.len() + extra.len() {
        let b = if j < marks.len() {
            marks[j]
        } else {
            extra[j - marks.len()]
        };
        t[b as usize] = true;
        j += 1;
    }
    t
}

/// `token` characters, as a table: the scanners' hottest test.
const TOKEN: [bool; 256] = byte_class(b"-.!%*_+`'~", b"");

/// `token` characters: alphanum and `-.!%*_+`'~`.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// The first position of `b` in `s`. A plain loop: SIP's strings are short, and `str::find`'s
/// set-up costs more than the scan (measured: 27% of a parse).
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().position(|&c| c == b)
}

/// The last position of `b` in `s`.
#[inline]
pub(crate) fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().rposition(|&c| c == b)
}

/// Linear white space, folds included.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear white space (folds included) from both ends.
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_lws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_lws(c)).map_or(start, |e| e + 1);
    // Both ends sit next to ASCII white space (or at the ends), so they are char boundaries.
    &s[start..end]
}

/// URI `unreserved` marks, and `%` for escapes; each URI class adds its own.
const URI_MARKS: &[u8] = b"-_.!~*'()%";

/// URI `user` characters (unreserved, escaped, user-unreserved).
pub(crate) const USER: [bool; 256] = byte_class(URI_MARKS, b"&=+$,;?/");
/// URI `password` characters.
pub(crate) const PASSWORD: [bool; 256] = byte_class(URI_MARKS, b"&=+$,");
/// URI parameter characters, with the `;` and `=` that join them.
pub(crate) const PARAM: [bool; 256] = byte_class(URI_MARKS, b"[]/:&+$=;");
/// URI header characters, with the `&` and `=` that join them.
pub(crate) const URI_HEADER: [bool; 256] = byte_class(URI_MARKS, b"[]/?:+$=&");

/// Whether every byte of `s` is in `class` and every `%` starts a two-hex-digit escape: one pass.
pub(crate) fn all_in(s: &str, class: &[bool; 256]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !class[usize::from(c)] {
            return false;
        }
        if c == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// A forward-only reader over a header value.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.s.len());
    }

    /// Text from `start` to the cursor.
    pub(crate) fn since(&self, start: usize) -> &'a str {
        &self.s[start..self.pos]
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skips linear white space; returns whether any was skipped.
    pub(crate) fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `b` if it is next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `b` with optional white space around it (SEMI, COLON, EQUAL, SLASH, COMMA).
    pub(crate) fn eat_separator(&mut self, b: u8) -> bool {
        let save = self.pos;
        self.skip_lws();
        if self.eat(b) {
            self.skip_lws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes bytes while `f` holds and returns them.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() && f(bytes[self.pos]) {
            self.pos += 1;
        }
        // Only ASCII predicates are used, so this always lands on a char boundary; a non-ASCII
        // byte stops the scan.
        &self.s[start..self.pos]
    }

    /// A non-empty token.
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string, returned with its quotes; escapes are kept as written.
    pub(crate) fn quoted_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.eat(b'"') {
            return None;
        }
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(&self.s[start..self.pos]);
                }
                // quoted-pair: any char but CR and LF may be escaped.
                b'\\' => {
                    match bytes.get(self.pos + 1) {
                        Some(b'\r' | b'\n') | None => break,
                        Some(_) => self.pos += 2,
                    }
                    // Step over the rest of an escaped multi-byte character.
                    while !self.s.is_char_boundary(self.pos) {
                        self.pos += 1;
                    }
                }
                _ => self.pos += 1,
            }
        }
        self.pos = start;
        None
    }
}

/// Splits a comma-separated header value at top-level commas (not inside quotes or `<...>`).
pub(crate) fn split_list(value: &str) -> ListIter<'_> {
    ListIter { rest: Some(value) }
}

/// Iterator of [`split_list`]; elements are trimmed of white space.
#[derive(Debug, Clone)]
pub(crate) struct ListIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> ListIter<'a> {
    /// What is left after the elements taken so far, untrimmed ("" at the end).
    pub(crate) fn rest_of_line(&self) -> &'a str {
        self.rest.map_or("", trim_lws)
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        if memchr::memchr(b',', s.as_bytes()).is_none() {
            // The common case: one element.
            self.rest = None;
            return Some(trim_lws(s));
        }
        let bytes = s.as_bytes();
        let (mut quoted, mut angle, mut i) = (false, false, 0);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_lws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim_lws(s))
    }
}

/// Removes the quotes and backslash escapes of a quoted string, borrowing when nothing is escaped.
pub(crate) fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    if !inner.contains('\\') {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_string_with_escaped_quote_and_backslash() {
        let mut c = Cursor::new(r#""J Rosenberg \\\""  <sip:a@b>"#);
        assert_eq!(c.quoted_string(), Some(r#""J Rosenberg \\\"""#));
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
    }

    #[test]
    fn unterminated_quote_is_rejected() {
        let mut c = Cursor::new(r#""Mr. J. User <sip:j.user@example.com>"#);
        assert_eq!(c.quoted_string(), None);
        assert_eq!(c.pos(), 0);
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v: Vec<_> = split_list(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w> , sip:q@r"#).collect();
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>", "sip:q@r"]);
    }

    #[test]
    fn escapes() {
        assert!(all_in("a%20b%7e", &USER));
        assert!(!all_in("a%2", &USER));
        assert!(!all_in("%zz", &USER));
        assert!(!all_in("a b", &PARAM));
    }
}

//! Header parameters: `*( SEMI generic-param )`, validated once and looked up on demand.

use crate::lex::{Cursor, is_token};

/// The parameters of a header value, as written (without the first `;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

fn is_value_char(b: u8) -> bool {
    // gen-value = token / host / quoted-string; hosts add ':' and brackets for IPv6.
    is_token(b) || matches!(b, b':' | b'[' | b']')
}

/// Reads one `name [= value]` at the cursor.
fn read_param<'a>(c: &mut Cursor<'a>) -> Option<(&'a str, Option<&'a str>)> {
    let name = c.token()?;
    if c.eat_separator(b'=') {
        let value = match c.peek() {
            Some(b'"') => c.quoted_string()?,
            _ => {
                let v = c.take_while(is_value_char);
                if v.is_empty() {
                    return None;
                }
                v
            }
        };
        Some((name, Some(value)))
    } else {
        Some((name, None))
    }
}

impl<'a> Params<'a> {
    /// Reads `*( SEMI param )` from the cursor; stops before anything that is not `;`.
    pub(crate) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        Self::read_each(c, |_, _| {})
    }

    /// Like [`Params::read`], showing each parameter to `each` as it goes.
    pub(crate) fn read_each(
        c: &mut Cursor<'a>,
        mut each: impl FnMut(&'a str, Option<&'a str>),
    ) -> Option<Self> {
        let mut start = None;
        loop {
            let save = c.pos();
            if !c.eat_separator(b';') {
                c.set_pos(save);
                break;
            }
            let param_start = c.pos();
            start.get_or_insert(param_start);
            let (name, value) = read_param(c)?;
            each(name, value);
        }
        let raw = match start {
            Some(s) => crate::lex::trim_lws(c.since(s)),
            None => "",
        };
        Some(Params { raw })
    }

    /// The parameters as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterates `(name, value)` pairs; a flag has no value; quoted values keep their quotes.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            c: Cursor::new(self.raw),
            first: true,
        }
    }

    /// Looks a parameter up by name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Iterator of [`Params::iter`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    c: Cursor<'a>,
    first: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        if !self.first && !self.c.eat_separator(b';') {
            return None;
        }
        self.first = false;
        self.c.skip_lws();
        read_param(&mut self.c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_params_with_folding_and_spaces() {
        let mut c = Cursor::new(
            " ;   tag    = 1918181833n ; newparam =\r\n      newvalue ;\r\n  flag ; q = 0.33",
        );
        let p = Params::read(&mut c).unwrap();
        assert!(c.at_end());
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        assert_eq!(p.get("newparam"), Some(Some("newvalue")));
        assert_eq!(p.get("flag"), Some(None));
        assert_eq!(p.get("q"), Some(Some("0.33")));
        assert_eq!(p.iter().count(), 4);
    }

    #[test]
    fn empty_params_are_rejected() {
        assert!(Params::read(&mut Cursor::new(";;")).is_none());
        assert!(Params::read(&mut Cursor::new(";a=")).is_none());
    }

    #[test]
    fn quoted_and_ipv6_values() {
        let p = Params::read(&mut Cursor::new(r#";received=[2001:db8::1];x="a;b""#)).unwrap();
        assert_eq!(p.get("received"), Some(Some("[2001:db8::1]")));
        assert_eq!(p.get("x"), Some(Some(r#""a;b""#)));
    }
}

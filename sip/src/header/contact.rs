//! Contact (RFC 3261 section 20.10): `*` or a list of addresses with `expires` and `q`.

use super::name_addr::NameAddr;
use super::scalar::delta_seconds;

/// One Contact header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `*`: every binding (only in a REGISTER with Expires: 0).
    Wildcard,
    /// An address.
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses every element of a Contact header value; `None` if any is malformed.
    pub fn parse_list(value: &'a str, mut each: impl FnMut(Contact<'a>)) -> Option<()> {
        if crate::lex::trim_lws(value) == "*" {
            each(Contact::Wildcard);
            return Some(());
        }
        for element in crate::lex::split_list(value) {
            each(Contact::Address(NameAddr::parse(element)?));
        }
        Some(())
    }
}

/// The `expires` parameter of a contact, saturating like the Expires header.
pub fn expires_param(addr: &NameAddr<'_>) -> Option<u32> {
    addr.params.get("expires").flatten().and_then(delta_seconds)
}

/// The `q` parameter in thousandths (`q=0.5` is 500); `None` if absent or malformed.
pub fn q_param(addr: &NameAddr<'_>) -> Option<u16> {
    let q = addr.params.get("q").flatten()?;
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (thousandths <= 1000).then_some(thousandths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_with_params() {
        let mut seen = Vec::new();
        Contact::parse_list(
            "\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33, <sip:b@c>;expires=280297596632815",
            |c| seen.push(c),
        )
        .unwrap();
        assert_eq!(seen.len(), 2);
        let Contact::Address(a) = seen[0] else {
            panic!()
        };
        assert_eq!(q_param(&a), Some(330));
        let Contact::Address(b) = seen[1] else {
            panic!()
        };
        assert_eq!(expires_param(&b), None, "beyond 2**32-1");
    }

    #[test]
    fn wildcard_and_bad() {
        let mut n = 0;
        Contact::parse_list(" * ", |c| {
            assert_eq!(c, Contact::Wildcard);
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(
            Contact::parse_list(
                "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                |_| {}
            )
            .is_none()
        );
    }
}

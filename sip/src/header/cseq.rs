//! CSeq (RFC 3261 section 20.16).

use crate::lex::Cursor;
use crate::method::Method;

/// A sequence number and the method it numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The number; RFC 3261 8.1.1.5 keeps it below 2**31.
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || !c.skip_lws() {
            return None;
        }
        let seq = parse_bounded(digits, (1 << 31) - 1)?;
        let method = Method::parse(c.token()?)?;
        c.skip_lws();
        c.at_end().then_some(CSeq { seq, method })
    }
}

/// Parses decimal digits (leading zeros allowed) up to `max`; `None` beyond it.
pub(crate) fn parse_bounded(digits: &str, max: u32) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in digits.bytes() {
        v = v * 10 + u64::from(b - b'0');
        if v > u64::from(max) {
            return None;
        }
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_and_leading_zeros() {
        assert_eq!(
            CSeq::parse("0009\r\n  INVITE"),
            Some(CSeq {
                seq: 9,
                method: Method::Invite
            })
        );
        assert_eq!(
            CSeq::parse("139122385 !interesting-Method0123456789_*+`.%indeed'~")
                .unwrap()
                .seq,
            139122385
        );
    }

    #[test]
    fn out_of_range_and_malformed() {
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse("2147483648 INVITE").is_none());
        assert!(CSeq::parse("2147483647 INVITE").is_some());
        assert!(CSeq::parse("INVITE").is_none());
        assert!(CSeq::parse("1INVITE").is_none());
        assert!(CSeq::parse("1 INVITE x").is_none());
    }
}

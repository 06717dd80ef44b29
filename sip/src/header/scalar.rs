//! Headers that hold one number: Max-Forwards, Content-Length, Expires, Min-Expires.

use super::cseq::parse_bounded;
use crate::lex::trim_lws;

/// Max-Forwards: 0 to 255 (RFC 3261 section 20.22; a larger value is malformed).
pub fn max_forwards(s: &str) -> Option<u8> {
    parse_bounded(trim_lws(s), 255).and_then(|v| u8::try_from(v).ok())
}

/// Content-Length, bounded by what we would ever accept in one message.
pub fn content_length(s: &str) -> Option<usize> {
    parse_bounded(trim_lws(s), 1 << 24).map(|v| v as usize)
}

/// delta-seconds (Expires, Min-Expires, the `expires` parameter): 0 to 2**32-1 (RFC 3261
/// section 20.19); a larger value is malformed, and a registrar answers it with 400.
pub fn delta_seconds(s: &str) -> Option<u32> {
    parse_bounded(trim_lws(s), u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(max_forwards("0068"), Some(68));
        assert_eq!(max_forwards("300"), None);
        assert_eq!(max_forwards("-1"), None);
        assert_eq!(content_length(" 150 "), Some(150));
        assert_eq!(content_length("-999"), None);
        assert_eq!(delta_seconds("1000000000000000000000000"), None);
        assert_eq!(delta_seconds("4294967295"), Some(u32::MAX));
        assert_eq!(delta_seconds("3600"), Some(3600));
        assert_eq!(delta_seconds("36x"), None);
    }
}

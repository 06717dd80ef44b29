//! Checks of headers that parsing leaves raw but that a request must still get right before a
//! transaction is made for it (RFC 4475 baddate, regbadct).

use super::Message;
use crate::ParseError;
use crate::header::{HeaderName, MediaType, scalar};

impl Message<'_> {
    /// Checks From, To, Contact, Content-Type, Expires and Date; the first bad one is named.
    pub fn check_headers(&self) -> Result<(), ParseError> {
        if self.from().is_none() {
            return Err(ParseError::Header("From"));
        }
        if self.to().is_none() {
            return Err(ParseError::Header("To"));
        }
        if self.contacts().is_none() {
            return Err(ParseError::Header("Contact"));
        }
        for h in &self.headers {
            let ok = match h.name {
                HeaderName::ContentType => MediaType::parse(h.value).is_some(),
                HeaderName::Expires => scalar::delta_seconds(h.value).is_some(),
                HeaderName::Date => is_rfc1123_gmt(h.value),
                _ => true,
            };
            if !ok {
                return Err(ParseError::Header(h.name.as_str_static()));
            }
        }
        Ok(())
    }
}

/// `wkday "," SP 2DIGIT SP month SP 4DIGIT SP HH:MM:SS SP "GMT"` (RFC 3261 section 20.17).
fn is_rfc1123_gmt(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = s.split(' ').collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let time_ok = |t: &str| {
        let f: Vec<&str> = t.split(':').collect();
        f.len() == 3 && f.iter().all(|x| digits(x, 2))
    };
    matches!(parts.as_slice(), [wd, d, m, y, t, "GMT"]
        if wd.strip_suffix(',').is_some_and(|w| DAYS.contains(&w))
            && digits(d, 2) && MONTHS.contains(m) && digits(y, 4) && time_ok(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(is_rfc1123_gmt("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!is_rfc1123_gmt("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(!is_rfc1123_gmt("Sat, 15 Oct 2005 04:44 GMT"));
    }
}

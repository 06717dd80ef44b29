//! Header names, with the compact forms of RFC 3261 section 7.3.3 and its extensions.

use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, $compact:literal)? ; )*) => {
        /// A header name: the ones we know by variant, any other as written.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName<'a> {
            $( #[doc = $canonical] $variant, )*
            /// A header we have no name for.
            Other(&'a str),
        }

        impl<'a> HeaderName<'a> {
            /// Names a header from its full or compact form, case-insensitively.
            pub fn parse(s: &'a str) -> Self {
                if s.len() == 1 {
                    let c = s.as_bytes()[0].to_ascii_lowercase();
                    $( $( if c == $compact.as_bytes()[0] { return HeaderName::$variant; } )? )*
                    return HeaderName::Other(s);
                }
                $( if s.eq_ignore_ascii_case($canonical) { return HeaderName::$variant; } )*
                HeaderName::Other(s)
            }

            /// The full name of a known header; `"extension"` for the others.
            pub fn as_str_static(&self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(_) => "extension",
                }
            }

            /// The full name as we print it.
            pub fn as_str(&self) -> &'a str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", "m";
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    Expires => "Expires";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Supported => "Supported", "k";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    Subject => "Subject", "s";
    Date => "Date";
    UserAgent => "User-Agent";
    Server => "Server";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    Path => "Path";
    MinExpires => "Min-Expires";
    RetryAfter => "Retry-After";
    Timestamp => "Timestamp";
    Identity => "Identity", "y";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
}

impl fmt::Display for HeaderName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::parse("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("C%6Fntact"), HeaderName::Other("C%6Fntact"));
        assert_eq!(HeaderName::parse("q"), HeaderName::Other("q"));
    }
}

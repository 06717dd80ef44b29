//! Why a message could not be accepted, split by who is at fault (STYLE.md principle 6).

/// Malformed input from the network: answered with a 400 (or 505) whose reason names the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The request or status line does not follow the grammar.
    #[error("malformed start line")]
    StartLine,
    /// The Request-URI is not a URI, or carries headers it may not carry.
    #[error("malformed Request-URI")]
    RequestUri,
    /// A SIP version other than 2.0.
    #[error("unsupported SIP version")]
    Version,
    /// A header line without a name and colon.
    #[error("malformed header line")]
    HeaderLine,
    /// A header whose value does not follow its grammar.
    #[error("malformed {0} header")]
    Header(&'static str),
    /// A header every message of this kind must carry.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that may appear once appears twice.
    #[error("duplicate {0} header")]
    Duplicate(&'static str),
    /// The method in CSeq differs from the request's method.
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// Content-Length says more bytes than arrived.
    #[error("Content-Length larger than the body")]
    BodyTruncated,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// No empty line ends the header section.
    #[error("header section not terminated")]
    Unterminated,
    /// The message exceeds the size we accept.
    #[error("message too large")]
    TooLarge,
}

impl ParseError {
    /// The status code a request with this problem is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version => 505,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }

    /// The reason phrase for that answer, naming the problem for whoever reads the trace.
    pub fn reason(&self) -> String {
        let base = match self.status() {
            505 => "Version Not Supported",
            513 => "Message Too Large",
            _ => "Bad Request",
        };
        format!("{base} ({self})")
    }
}

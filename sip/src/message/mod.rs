//! A SIP message borrowed from the buffer it arrived in.
//!
//! Parsing makes one pass over the header lines, reading eagerly what routing and transaction
//! matching need (top Via, From/To, Call-ID, CSeq, Max-Forwards, Content-Length, top Route) and
//! leaving every other header as a raw line to be read on demand by the views in
//! [`crate::header`].

mod build;
mod check;
mod forward;
mod parse;
mod print;
mod refusal;
mod salvage;

pub use build::{RequestBuilder, ResponseBuilder, standard_reason};
pub use forward::{RequestEdits, RouteEdit};
pub use parse::MAX_MESSAGE_SIZE;
pub(crate) use parse::find_head_end as parse_head_end;
pub(crate) use print::write_collapsed as write_collapsed_for_fuzz;
pub use refusal::Refusal;
pub use salvage::Salvaged;

use crate::header::{CSeq, Contact, Header, HeaderName, MediaType, NameAddr, Via};
use crate::method::Method;
use crate::uri::Uri;

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method Request-URI SIP/2.0`.
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI.
        uri: Uri<'a>,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code, 100 to 699.
        code: u16,
        /// The reason phrase, possibly empty.
        reason: &'a str,
    },
}

/// A parsed SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Request or status line.
    pub start: StartLine<'a>,
    /// Every header line in order.
    pub headers: Vec<Header<'a>>,
    /// The body: Content-Length bytes, or the rest of a datagram without one.
    pub body: &'a [u8],
    /// The topmost Via entry.
    pub top_via: Via<'a>,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: CSeq<'a>,
    /// The From tag (From itself is read on demand: [`Message::from`]).
    pub from_tag: Option<&'a str>,
    /// The To tag.
    pub to_tag: Option<&'a str>,
    /// Max-Forwards, when present (RFC 2543 peers may omit it).
    pub max_forwards: Option<u8>,
    /// The first Route entry, when present.
    pub top_route: Option<NameAddr<'a>>,
}

/// What a response echoes from the request it answers (RFC 3261 section 8.2.6.2).
#[derive(Debug, Clone, Copy)]
pub struct RequestEcho<'m, 'a> {
    /// The request's top Via, which gets `received`/`rport`.
    pub top_via: Via<'a>,
    /// The request's header lines: Via, From, To, Call-ID and CSeq are copied from them.
    pub headers: &'m [Header<'a>],
}

impl<'a> Message<'a> {
    /// Parses a message; the body is bounded by Content-Length or, without one, runs to the end.
    pub fn parse(buf: &'a [u8]) -> Result<Self, crate::ParseError> {
        parse::parse(buf)
    }

    /// The method of a request; for a response, the method in CSeq.
    pub fn method(&self) -> Method<'a> {
        match self.start {
            StartLine::Request { method, .. } => method,
            StartLine::Response { .. } => self.cseq.method,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<Uri<'a>> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: HeaderName<'_>) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value)
    }

    /// Every value of a header, in order (one per line, lists not split).
    pub fn headers_named<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value)
    }

    /// Every element of a comma-separated header, across all its lines.
    pub fn list<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.headers_named(name).flat_map(crate::lex::split_list)
    }

    /// Every Via entry, top first; a malformed one is `None` (the top one never is).
    pub fn vias(&self) -> impl Iterator<Item = Option<Via<'a>>> + '_ {
        self.list(HeaderName::Via).map(Via::parse)
    }

    /// From, parsed on demand; `None` if malformed (requests are checked by `check_headers`).
    pub fn from(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderName::From).and_then(NameAddr::parse)
    }

    /// To, parsed on demand.
    pub fn to(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderName::To).and_then(NameAddr::parse)
    }

    /// Every Contact value; `None` if any is malformed.
    pub fn contacts(&self) -> Option<Vec<Contact<'a>>> {
        let mut out = Vec::new();
        for v in self.headers_named(HeaderName::Contact) {
            Contact::parse_list(v, |c| out.push(c))?;
        }
        Some(out)
    }

    /// Content-Type, when present; `Some(None)` when malformed.
    pub fn content_type(&self) -> Option<Option<MediaType<'a>>> {
        self.header(HeaderName::ContentType).map(MediaType::parse)
    }

    /// The Expires header, when present; `Some(None)` when malformed.
    pub fn expires(&self) -> Option<Option<u32>> {
        self.header(HeaderName::Expires)
            .map(crate::header::scalar::delta_seconds)
    }

    /// What a response to this request copies from it.
    pub fn echo(&self) -> RequestEcho<'_, 'a> {
        RequestEcho {
            top_via: self.top_via,
            headers: &self.headers,
        }
    }
}

//! Cutting a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC 3261 section 18.3),
//! and the keep-alives of RFC 5626 section 4.4.1 (a CRLFCRLF ping is answered with a CRLF pong).

use crate::header::{HeaderName, scalar};
use crate::message::MAX_MESSAGE_SIZE;

/// The most header bytes we wait for before deciding the peer is not speaking SIP.
pub const MAX_HEADER_SIZE: usize = 16 * 1024;

/// What the framer found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message, ready for [`crate::Message::parse`].
    Message(Vec<u8>),
    /// A CRLFCRLF ping: answer with CRLF.
    Ping,
    /// A lone CRLF (a pong, or padding): nothing to do.
    Pong,
}

/// Why the stream cannot go on; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The header section grew past [`MAX_HEADER_SIZE`] without ending.
    #[error("header section longer than {MAX_HEADER_SIZE} bytes")]
    HeaderTooLong,
    /// Content-Length is missing its number, is repeated, or exceeds the message limit.
    #[error("unusable Content-Length")]
    BadContentLength,
    /// The whole message would exceed [`MAX_MESSAGE_SIZE`].
    #[error("message longer than {MAX_MESSAGE_SIZE} bytes")]
    TooLong,
}

/// A sans-IO framer: push bytes in, pull frames out.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Set once the stream can no longer be cut: every later call fails.
    broken: Option<FramingError>,
}

impl StreamFramer {
    /// A framer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// When Content-Length is unusable the header section alone is handed out once, so that the
    /// core can answer it with a 400 naming the problem; after that the stream is broken and the
    /// connection must close, since no one can tell where the next message starts.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        // Keep-alives and stray line ends between messages.
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        if self.buf.starts_with(b"\r\n") {
            if b"\r\n\r\n".starts_with(&self.buf) {
                return Ok(None); // may still become a ping
            }
            self.buf.drain(..2);
            return Ok(Some(Frame::Pong));
        }
        let Some((head_end, body_start)) = crate::message::parse_head_end(&self.buf) else {
            if self.buf.len() > MAX_HEADER_SIZE {
                return Err(FramingError::HeaderTooLong);
            }
            return Ok(None);
        };
        if head_end > MAX_HEADER_SIZE {
            return Err(FramingError::HeaderTooLong);
        }
        let length = match content_length(&self.buf[..head_end]) {
            Ok(n) => n,
            Err(e) => {
                self.broken = Some(e);
                let head = self.buf[..body_start].to_vec();
                self.buf.clear();
                return Ok(Some(Frame::Message(head)));
            }
        };
        let total = body_start + length;
        if total > MAX_MESSAGE_SIZE {
            return Err(FramingError::TooLong);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let message = std::mem::replace(&mut self.buf, rest);
        Ok(Some(Frame::Message(message)))
    }

    /// Flushes a CRLF that turned out not to be the start of a ping (call when the peer idles).
    pub fn take_pong(&mut self) -> bool {
        if self.buf == b"\r\n" {
            self.buf.clear();
            return true;
        }
        false
    }
}

/// Reads Content-Length from a header section; a stream message without one has no body
/// (RFC 3261 18.3 makes it mandatory on streams; RFC 2543 peers omit it on bodiless requests).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        if HeaderName::parse(name.trim_end()) != HeaderName::ContentLength {
            continue;
        }
        let value =
            std::str::from_utf8(&line[colon + 1..]).map_err(|_| FramingError::BadContentLength)?;
        let n = scalar::content_length(value).ok_or(FramingError::BadContentLength)?;
        if found.replace(n).is_some() {
            return Err(FramingError::BadContentLength);
        }
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_across_pushes_and_back_to_back() {
        let mut f = StreamFramer::new();
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&MSG[10..]);
        f.push(MSG);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(MSG.to_vec()))));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn keepalives() {
        let mut f = StreamFramer::new();
        f.push(b"\r\n\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Ok(None));
        assert!(f.take_pong());
        f.push(b"\r\nMESSAGE");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Pong)));
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        let mut f = StreamFramer::new();
        f.push(&vec![b'x'; MAX_HEADER_SIZE + 1]);
        assert_eq!(f.next_frame(), Err(FramingError::HeaderTooLong));
        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::TooLong));
        let mut f = StreamFramer::new();
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(_)))));
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::new();
        let head = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n";
        f.push(head);
        f.push(b"xy");
        assert_eq!(
            f.next_frame(),
            Ok(Some(Frame::Message(head.to_vec()))),
            "the head, to be answered"
        );
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
    }
}

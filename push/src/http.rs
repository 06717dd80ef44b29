//! The HTTP exchange a provider module asks for and reads back: plain data, so the modules
//! stay free of sockets and are tested without a network.

use std::time::Duration;

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST` for every push service.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A POST of `body` to `url`.
    pub fn post(url: String, body: Vec<u8>) -> Self {
        HttpRequest {
            method: "POST",
            url,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The first value of header `name`.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the driver).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in seconds (the HTTP-date form counts as a minute), else `default`.
    pub fn retry_after(&self, default: Duration) -> Duration {
        match self.header("retry-after") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(60))
                .clamp(Duration::from_secs(1), Duration::from_secs(3600)),
            None => default,
        }
    }

    /// The body as text, for a log line (cut short).
    pub fn reason(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(200).collect();
        format!("HTTP {}: {}", self.status, text.trim())
    }
}

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service took it.
    Sent,
    /// The service says the registration no longer exists (410, an unregistered token): the
    /// binding is forgotten.
    Gone,
    /// The service asks us to slow down (429, 503 with Retry-After): no push to it for this long.
    Throttled(Duration),
    /// Anything else: no push went out (the reason for the log).
    Failed(String),
}

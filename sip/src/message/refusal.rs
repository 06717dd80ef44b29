//! A request refused: what the registrar, the proxy and the text checks all answer with.

/// A status with a reason phrase that names the problem (`403 Forbidden (relaying not
/// allowed)`), and any headers the status calls for (Min-Expires, Accept, Retry-After,
/// Proxy-Authenticate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A refusal with no extra header.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Refusal {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// The same, with one more header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

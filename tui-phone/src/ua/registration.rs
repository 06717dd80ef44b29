//! Keeping one account registered (RFC 3261 section 10.2): REGISTER with our contact, answer a
//! 401/407 challenge once with digest credentials (again only when the server says the nonce
//! was stale), refresh before the granted expiry, follow a 423's Min-Expires, and after a
//! failure (time-out, transport error, 5xx, 403...) try again with a growing pause: the phone
//! never gives up on the network, only on a wrong password.

use openline_sip::Message;
use openline_sip::digest::{Answer, answer};
use openline_sip::header::HeaderName;
use std::time::{Duration, Instant};

/// Who registers: `user@domain` and the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user part of the address of record.
    pub user: String,
    /// The domain: the registrar's Request-URI and the AOR's host.
    pub domain: String,
    /// The password digest credentials are made from.
    pub password: String,
}

impl Account {
    /// The Authorization (or Proxy-Authorization) value answering `challenge` for `method` on
    /// `uri`; `None` when it is a challenge we cannot answer.
    pub fn answer(
        &self,
        challenge: &str,
        (method, uri): (&str, &str),
        (cnonce, nc): (&str, u32),
    ) -> Option<String> {
        let a = Answer {
            username: &self.user,
            password: &self.password,
            method,
            uri,
            cnonce,
            nc,
        };
        answer(challenge, &a)
    }
}

/// What the phone's user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegEvent {
    /// Registered for this many seconds (refreshed before they run out).
    Registered {
        /// Seconds the registrar granted.
        expires: u32,
    },
    /// No longer registered: the phone said goodbye (Expires: 0) and the registrar agreed.
    Unregistered,
    /// Not registered: why (another attempt follows unless the password was refused).
    Failed {
        /// The status code, or 0 for a time-out or transport error.
        code: u16,
        /// Said for the user.
        reason: String,
    },
}

/// What to do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send [`Registration::request`] now (with the credentials just learnt).
    Send,
    /// Nothing to send now; tell the user this.
    Tell(RegEvent),
    /// Nothing at all (a provisional response, or one for an older request).
    Nothing,
}

/// The longest pause between attempts after failures.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// One account's registration.
#[derive(Debug)]
pub struct Registration {
    account: Account,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// Seconds asked for.
    wanted: u32,
    /// The last challenge: (header to answer with, its value), and how often it was used.
    challenge: Option<(&'static str, String)>,
    nonce_count: u32,
    /// Whether the request out now carried credentials for the current challenge.
    answered: bool,
    /// When to send a REGISTER again (a refresh or a retry), if at all.
    wake: Option<Instant>,
    pause: Duration,
    /// Saying goodbye: the next REGISTER asks for 0 seconds, and nothing follows it.
    leaving: bool,
}

impl Registration {
    /// A registration for `account`, asking for `wanted` seconds; `call_id` and `from_tag`
    /// stay the same for every REGISTER (RFC 3261 10.2.4), so fresh random ones.
    pub fn new(account: Account, wanted: u32, call_id: String, from_tag: String) -> Self {
        Registration {
            account,
            call_id,
            from_tag,
            cseq: 0,
            wanted,
            challenge: None,
            nonce_count: 0,
            answered: false,
            wake: None,
            pause: Duration::from_secs(1),
            leaving: false,
        }
    }

    /// The next REGISTER: `via` is its Via value (with a fresh branch), `contact` our Contact
    /// value (`<sip:user@ip:port>`, with `+sip.instance` when the phone has one), `cnonce` a fresh client nonce for digest. Credentials go in when a challenge was
    /// received.
    pub fn request(&mut self, via: &str, contact: &str, cnonce: &str) -> Vec<u8> {
        self.cseq += 1;
        let uri = format!("sip:{}", self.account.domain);
        let aor = format!("<sip:{}@{}>", self.account.user, self.account.domain);
        let mut b =
            openline_sip::message::RequestBuilder::new(openline_sip::Method::Register, &uri)
                .header("Via", via)
                .header("Max-Forwards", 70)
                .header("From", format!("{aor};tag={}", self.from_tag))
                .header("To", &aor)
                .header("Call-ID", &self.call_id)
                .header("CSeq", format!("{} REGISTER", self.cseq))
                .header("Contact", contact)
                .header("Expires", if self.leaving { 0 } else { self.wanted })
                .header(
                    "User-Agent",
                    concat!("tui-phone/", env!("CARGO_PKG_VERSION")),
                );
        self.answered = false;
        if let Some((header, challenge)) = &self.challenge {
            self.nonce_count += 1;
            let answered =
                self.account
                    .answer(challenge, ("REGISTER", &uri), (cnonce, self.nonce_count));
            if let Some(value) = answered {
                b = b.header(header, value);
                self.answered = true;
            }
        }
        b.finish()
    }

    /// A final or provisional response to our REGISTER, at `now`.
    pub fn on_response(&mut self, now: Instant, response: &Message<'_>) -> Next {
        let Some(code) = response.status() else {
            return Next::Nothing;
        };
        if response.cseq.seq != self.cseq || code < 200 {
            return Next::Nothing;
        }
        match code {
            200..=299 if self.leaving => {
                self.wake = None;
                Next::Tell(RegEvent::Unregistered)
            }
            200..=299 => {
                let granted = granted(response).unwrap_or(self.wanted);
                self.pause = Duration::from_secs(1);
                // Refresh ahead of expiry: half-way for short grants, 30 s early for long ones.
                let early = (granted / 2).min(30);
                self.wake = Some(now + Duration::from_secs(u64::from(granted - early)));
                Next::Tell(RegEvent::Registered { expires: granted })
            }
            401 | 407 => {
                let header = if code == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                let asked = if code == 401 {
                    HeaderName::WwwAuthenticate
                } else {
                    HeaderName::ProxyAuthenticate
                };
                let Some(challenge) = pick_challenge(response, asked) else {
                    return self.failed(now, code, "the server's challenge cannot be answered");
                };
                let stale = challenge.to_ascii_lowercase().contains("stale=true");
                if self.answered && !stale {
                    // Our credentials were refused: trying again would lock the account.
                    self.wake = None;
                    return Next::Tell(RegEvent::Failed {
                        code,
                        reason: "wrong user name or password".into(),
                    });
                }
                self.challenge = Some((header, challenge));
                self.nonce_count = 0;
                Next::Send
            }
            // Openline (and others) answer credentials it refuses with 403: the same as a
            // second 401, a wrong password; retrying would lock the account.
            403 if self.answered => {
                self.wake = None;
                Next::Tell(RegEvent::Failed {
                    code,
                    reason: "wrong user name or password".into(),
                })
            }
            423 => match response
                .header(HeaderName::MinExpires)
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                Some(min) if min > self.wanted => {
                    self.wanted = min;
                    Next::Send
                }
                _ => self.failed(now, code, "the registrar wants a longer registration"),
            },
            _ => {
                let reason = match &response.start {
                    openline_sip::StartLine::Response { reason, .. } => reason.to_string(),
                    openline_sip::StartLine::Request { .. } => String::new(),
                };
                self.failed(now, code, &reason)
            }
        }
    }

    /// Says goodbye: the next [`Registration::request`] removes our binding (Expires: 0),
    /// and no refresh or retry follows.
    pub fn leave(&mut self) {
        self.leaving = true;
        self.wake = None;
    }

    /// The REGISTER got no answer (time-out) or could not be sent, at `now`.
    pub fn on_no_answer(&mut self, now: Instant) -> RegEvent {
        match self.failed(now, 0, "the server did not answer") {
            Next::Tell(e) => e,
            _ => RegEvent::Failed {
                code: 0,
                reason: "the server did not answer".into(),
            },
        }
    }

    /// When to send a REGISTER again (refresh or retry).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake
    }

    /// Whether a REGISTER is due at `now` (then send [`Registration::request`]).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.wake.is_some_and(|at| at <= now) {
            self.wake = None;
            true
        } else {
            false
        }
    }

    fn failed(&mut self, now: Instant, code: u16, reason: &str) -> Next {
        self.wake = (!self.leaving).then(|| now + self.pause);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Next::Tell(RegEvent::Failed {
            code,
            reason: reason.to_string(),
        })
    }
}

/// The seconds a 2xx grants: the Contact's expires, else the Expires header.
fn granted(response: &Message<'_>) -> Option<u32> {
    let from_contact = response.contacts().and_then(|contacts| {
        contacts.iter().find_map(|c| match c {
            openline_sip::header::Contact::Address(a) => {
                openline_sip::header::contact::expires_param(a)
            }
            openline_sip::header::Contact::Wildcard => None,
        })
    });
    from_contact.or_else(|| response.expires().flatten())
}

/// The challenge to answer: the first one we can (SHA-256 is offered first by openline, MD5
/// after it; either will do).
fn pick_challenge(response: &Message<'_>, name: HeaderName<'_>) -> Option<String> {
    let probe = Answer {
        username: "u",
        password: "p",
        method: "REGISTER",
        uri: "sip:x",
        cnonce: "c",
        nc: 1,
    };
    response
        .headers_named(name)
        .find(|v| answer(v, &probe).is_some())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;

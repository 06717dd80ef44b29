//! Presence from the phone's side (RFC 6665, RFC 3856, RFC 3903), sans-IO: a [`Watch`] is
//! one subscription to a contact's presence (SUBSCRIBE, refreshed before it lapses, its
//! NOTIFYs read), and [`Publication`] is what the user says of themselves (PUBLISH with a
//! note, refreshed by entity tag).

use openline_sip::Message;
use openline_sip::header::HeaderName;
use openline_sip::message::RequestBuilder;
use openline_sip::pidf::{self, Status};
use std::time::{Duration, Instant};

/// How long subscriptions and publications are asked for.
pub const EXPIRES: u32 = 600;

/// When to refresh what a 2xx granted: well before it lapses (at 80 %, at least 5 s ahead).
fn refresh_time(now: Instant, response: &Message<'_>) -> Instant {
    let granted = u64::from(response.expires().flatten().unwrap_or(EXPIRES));
    let ahead = (granted / 5).max(5);
    now + Duration::from_secs(granted.saturating_sub(ahead).max(1))
}

/// Whether `slot`'s time has come; it is emptied when it has.
fn take_due(slot: &mut Option<Instant>, now: Instant) -> bool {
    if slot.is_some_and(|t| t <= now) {
        *slot = None;
        return true;
    }
    false
}

/// What a contact's presence says, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Online or not, and the note.
    Known(Status),
    /// The contact has not allowed us (yet): nothing known.
    Pending,
    /// The subscription ended (refused, or terminated by the other side).
    Unknown,
}

/// The headers every SUBSCRIBE of a watch carries.
fn subscribe_request(
    (uri, to_tag): (&str, Option<&str>),
    (from, from_tag): (&str, &str),
    (call_id, cseq): (&str, u32),
    via: &str,
    contact: &str,
    expires: u32,
) -> Vec<u8> {
    let to = match to_tag {
        Some(tag) => format!("<{uri}>;tag={tag}"),
        None => format!("<{uri}>"),
    };
    RequestBuilder::new(openline_sip::Method::Subscribe, uri)
        .header("Via", via)
        .header("Max-Forwards", 70)
        .header("From", format!("<{from}>;tag={from_tag}"))
        .header("To", to)
        .header("Call-ID", call_id)
        .header("CSeq", format!("{cseq} SUBSCRIBE"))
        .header("Contact", contact)
        .header("Event", "presence")
        .header("Accept", pidf::CONTENT_TYPE)
        .header("Expires", expires)
        .finish()
}

/// One subscription to a contact's presence.
#[derive(Debug)]
pub struct Watch {
    /// Whose presence, `sip:user@domain`.
    pub presentity: String,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    refresh_at: Option<Instant>,
    /// Whether the last SUBSCRIBE carried credentials.
    pub authorized: bool,
    /// The subscription is gone (a refresh refused, a terminated NOTIFY): the next SUBSCRIBE
    /// starts a new dialog, after `retry` (doubling to a minute).
    lost: bool,
    retry: Duration,
}

/// First pause before subscribing again after a subscription was lost.
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Longest pause between attempts.
const MOST_RETRY: Duration = Duration::from_secs(60);

impl Watch {
    /// A new watch; [`Watch::request`] makes its first SUBSCRIBE.
    pub fn new(presentity: &str, call_id: String, from_tag: String) -> Self {
        Watch {
            presentity: presentity.to_string(),
            call_id,
            from_tag,
            to_tag: None,
            cseq: 0,
            refresh_at: None,
            authorized: false,
            lost: false,
            retry: FIRST_RETRY,
        }
    }

    /// Whether the next SUBSCRIBE must start a new dialog (then [`Watch::restart`] first).
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Starts over in a new dialog with `call_id` and `from_tag`.
    pub fn restart(&mut self, call_id: String, from_tag: String) {
        self.call_id = call_id;
        self.from_tag = from_tag;
        self.to_tag = None;
        self.cseq = 0;
        self.lost = false;
    }

    /// The subscription is gone: try again later in a new dialog (RFC 6665 4.1.3 and 4.1.2.2).
    fn lose(&mut self, now: Instant, retry: bool) {
        self.lost = true;
        self.refresh_at = retry.then(|| now + self.retry);
        self.retry = (self.retry * 2).min(MOST_RETRY);
    }

    /// The Call-ID of its dialog.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The next SUBSCRIBE (a refresh inside the dialog once there is one); `expires` 0 ends it.
    pub fn request(&mut self, from: &str, via: &str, contact: &str, expires: u32) -> Vec<u8> {
        self.cseq += 1;
        subscribe_request(
            (&self.presentity, self.to_tag.as_deref()),
            (from, &self.from_tag),
            (&self.call_id, self.cseq),
            via,
            contact,
            expires,
        )
    }

    /// A final response to our SUBSCRIBE: 2xx sets the dialog and the refresh time; anything
    /// else (past a challenge, which the phone answers) ends the watch.
    pub fn on_response(&mut self, now: Instant, response: &Message<'_>) -> Option<Seen> {
        let code = response.status().unwrap_or(0);
        if (200..300).contains(&code) {
            if self.to_tag.is_none() {
                self.to_tag = response.to_tag.map(str::to_string);
            }
            self.refresh_at = Some(refresh_time(now, response));
            self.retry = FIRST_RETRY;
            return None;
        }
        // A refused refresh (481: the server forgot us, say after a restart) or a refused
        // SUBSCRIBE: start over later, unless it was refused for good (403, 404, 489).
        let for_good = matches!(code, 403 | 404 | 489);
        self.lose(now, !for_good);
        Some(Seen::Unknown)
    }

    /// Whether a NOTIFY belongs to this watch.
    pub fn matches(&self, notify: &Message<'_>) -> bool {
        notify.call_id == self.call_id
            && notify.to_tag == Some(self.from_tag.as_str())
            && (self.to_tag.is_none() || notify.from_tag == self.to_tag.as_deref())
    }

    /// A NOTIFY of this watch: what it says (RFC 6665 4.1.3).
    pub fn on_notify(&mut self, now: Instant, notify: &Message<'_>) -> Seen {
        if self.to_tag.is_none() {
            // The NOTIFY may beat the 200 (RFC 6665 4.1.2.4): it sets the dialog too.
            self.to_tag = notify.from_tag.map(str::to_string);
        }
        let state = notify
            .header(HeaderName::Other("Subscription-State"))
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if state.starts_with("terminated") {
            // rejected and noresource are final; timeout, deactivated, probation (and no
            // reason) invite a new subscription.
            let final_reason =
                state.contains("reason=rejected") || state.contains("reason=noresource");
            self.lose(now, !final_reason);
            return Seen::Unknown;
        }
        if state.starts_with("pending") || notify.body.is_empty() {
            return Seen::Pending;
        }
        match pidf::parse(notify.body) {
            Ok(status) => Seen::Known(status),
            Err(_) => Seen::Unknown,
        }
    }

    /// When to refresh.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.refresh_at
    }

    /// Whether the refresh is due (once: it is not due again until the next 2xx).
    pub fn due(&mut self, now: Instant) -> bool {
        take_due(&mut self.refresh_at, now)
    }
}

/// What the user publishes of themselves.
#[derive(Debug, Default)]
pub struct Publication {
    /// The status published.
    pub status: Status,
    etag: Option<String>,
    refresh_at: Option<Instant>,
    /// Whether the last PUBLISH carried credentials.
    pub authorized: bool,
}

impl Publication {
    /// A PUBLISH of `status` (a refresh, by entity tag and without a body, when `status` is
    /// `None`).
    pub fn request(
        &mut self,
        (aor, tag, call_id): (&str, &str, &str),
        via: &str,
        status: Option<Status>,
    ) -> Vec<u8> {
        let mut b = RequestBuilder::new(openline_sip::Method::Publish, aor)
            .header("Via", via)
            .header("Max-Forwards", 70)
            .header("From", format!("<{aor}>;tag={tag}"))
            .header("To", format!("<{aor}>"))
            .header("Call-ID", call_id)
            .header("CSeq", "1 PUBLISH")
            .header("Event", "presence")
            .header("Expires", EXPIRES);
        if let Some(etag) = &self.etag {
            b = b.header("SIP-If-Match", etag);
        }
        match status {
            Some(s) => {
                let body = pidf::document(aor, &s);
                self.status = s;
                b.body(Some(pidf::CONTENT_TYPE), body.as_bytes())
            }
            None => b.finish(),
        }
    }

    /// A final response: 2xx keeps the entity tag and sets the refresh; 412 forgets the tag
    /// (the next PUBLISH starts afresh). True when it was accepted.
    pub fn on_response(&mut self, now: Instant, response: &Message<'_>) -> bool {
        let code = response.status().unwrap_or(0);
        if (200..300).contains(&code) {
            self.etag = response
                .header(HeaderName::Other("SIP-ETag"))
                .map(|e| e.trim().to_string());
            self.refresh_at = Some(refresh_time(now, response));
            return true;
        }
        if code == 412 {
            self.etag = None;
        }
        self.refresh_at = None;
        false
    }

    /// When to refresh.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.refresh_at
    }

    /// Whether the refresh is due (once: it is not due again until the next 2xx).
    pub fn due(&mut self, now: Instant) -> bool {
        take_due(&mut self.refresh_at, now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::*;

    fn response(text: &str) -> Message<'_> {
        Message::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_watch_refreshes_before_it_lapses_and_reads_its_notifies() {
        let now = Instant::now();
        let mut w = Watch::new("sip:bob@b.test", "cid".into(), "ft".into());
        let first = String::from_utf8(w.request(
            "sip:alice@a.test",
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1",
            "<sip:alice@127.0.0.1:5>",
            EXPIRES,
        ))
        .unwrap();
        assert!(
            first.contains("Event: presence\r\n") && first.contains("To: <sip:bob@b.test>\r\n")
        );
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\nFrom: <sip:alice@a.test>;tag=ft\r\nTo: <sip:bob@b.test>;tag=tt\r\nCall-ID: cid\r\nCSeq: 1 SUBSCRIBE\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(w.on_response(now, &response(ok)), None);
        assert_eq!(
            w.poll_timeout(),
            Some(now + Duration::from_secs(240)),
            "at 80 %"
        );
        assert!(!w.due(now + Duration::from_secs(239)));
        assert!(w.due(now + Duration::from_secs(240)));
        let refresh = String::from_utf8(w.request(
            "sip:alice@a.test",
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK2",
            "<sip:alice@127.0.0.1:5>",
            EXPIRES,
        ))
        .unwrap();
        assert!(
            refresh.contains("To: <sip:bob@b.test>;tag=tt\r\n")
                && refresh.contains("CSeq: 2 SUBSCRIBE")
        );
        let notify = |state: &str, body: &str| {
            format!(
                "NOTIFY sip:alice@127.0.0.1:5 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6;branch=z9hG4bKn\r\nFrom: <sip:bob@b.test>;tag=tt\r\nTo: <sip:alice@a.test>;tag=ft\r\nCall-ID: cid\r\nCSeq: 3 NOTIFY\r\nEvent: presence\r\nSubscription-State: {state}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let doc = pidf::document(
            "sip:bob@b.test",
            &Status {
                open: true,
                note: Some("hi".into()),
            },
        );
        let n = notify("active;expires=300", &doc);
        assert!(w.matches(&response(&n)));
        assert_eq!(
            w.on_notify(now, &response(&n)),
            Seen::Known(Status {
                open: true,
                note: Some("hi".into())
            })
        );
        assert_eq!(
            w.on_notify(now, &response(&notify("pending", ""))),
            Seen::Pending
        );
        assert_eq!(
            w.on_notify(now, &response(&notify("terminated;reason=timeout", ""))),
            Seen::Unknown
        );
        let other = n.replace("Call-ID: cid", "Call-ID: other");
        assert!(!w.matches(&response(&other)));
        assert!(w.is_lost());
        assert_eq!(
            w.poll_timeout(),
            Some(now + Duration::from_secs(2)),
            "terminated on timeout: subscribe again, in a new dialog, soon"
        );
        w.restart("cid2".into(), "ft2".into());
        let fresh = String::from_utf8(w.request(
            "sip:alice@a.test",
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK3",
            "<sip:alice@127.0.0.1:5>",
            EXPIRES,
        ))
        .unwrap();
        assert!(fresh.contains("Call-ID: cid2\r\n") && fresh.contains("To: <sip:bob@b.test>\r\n"));
        assert!(fresh.contains("CSeq: 1 SUBSCRIBE"));
        // A refresh refused with 481 (the server restarted): again, after 4 s this time.
        let gone = ok.replace("200 OK", "481 Call/Transaction Does Not Exist");
        assert_eq!(w.on_response(now, &response(&gone)), Some(Seen::Unknown));
        assert_eq!(w.poll_timeout(), Some(now + Duration::from_secs(4)));
        // Refused for good: no more attempts.
        let mut w2 = Watch::new("sip:x@b.test", "c".into(), "f".into());
        let forbidden = ok.replace("200 OK", "403 Forbidden");
        assert_eq!(
            w2.on_response(now, &response(&forbidden)),
            Some(Seen::Unknown)
        );
        assert_eq!(w2.poll_timeout(), None);
    }

    #[test]
    fn a_publication_keeps_its_entity_tag_and_forgets_it_on_412() {
        let now = Instant::now();
        let mut p = Publication::default();
        let first = String::from_utf8(p.request(
            ("sip:bob@b.test", "t", "c"),
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1",
            Some(Status {
                open: true,
                note: None,
            }),
        ))
        .unwrap();
        assert!(!first.contains("SIP-If-Match"));
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1\r\nFrom: <sip:bob@b.test>;tag=t\r\nTo: <sip:bob@b.test>\r\nCall-ID: c\r\nCSeq: 1 PUBLISH\r\nSIP-ETag: e7\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n";
        assert!(p.on_response(now, &response(ok)));
        let refresh = String::from_utf8(p.request(
            ("sip:bob@b.test", "t", "c"),
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK2",
            None,
        ))
        .unwrap();
        assert!(refresh.contains("SIP-If-Match: e7\r\n") && refresh.contains("Content-Length: 0"));
        let gone = ok.replace("200 OK", "412 Conditional Request Failed");
        assert!(!p.on_response(now, &response(&gone)));
        let again = String::from_utf8(p.request(
            ("sip:bob@b.test", "t", "c"),
            "SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK3",
            Some(Status::default()),
        ))
        .unwrap();
        assert!(!again.contains("SIP-If-Match"));
    }
}

//! The push services together, sans-IO: a job in, the HTTP request to make out; its response
//! in, the next request (FCM's token first, then the push) or what became of the push. A
//! service that asked us to slow down (429) gets nothing until its time is up: those pushes
//! fail at once rather than queue behind it.

use crate::apns::Apns;
use crate::fcm::Fcm;
use crate::http::{HttpRequest, HttpResponse, Outcome};
use crate::payload::Push;
use crate::target::{Provider, PushTarget};
use crate::webpush::WebPush;
use std::collections::HashMap;
use std::time::Instant;

/// One push to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Chosen by the caller; the outcome names it.
    pub id: u64,
    /// Where.
    pub target: PushTarget,
    /// What.
    pub push: Push,
}

/// Which request of a job is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// FCM's OAuth2 access token.
    Token,
    /// The push itself.
    Push,
}

/// What to do next for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make this request; `untrusted` when its URL came from a device (a Web Push endpoint),
    /// whose address must not be one of ours or the LAN's unless allowed.
    Send {
        /// Which request of the job it is.
        exchange: Exchange,
        /// The request.
        request: HttpRequest,
        /// The URL came from a device.
        untrusted: bool,
    },
    /// The job is over.
    Done(Outcome),
}

/// The configured services.
#[derive(Debug, Default)]
pub struct Pusher {
    /// Web Push with the server's VAPID key.
    pub webpush: Option<WebPush>,
    /// FCM with its service account.
    pub fcm: Option<Fcm>,
    /// APNs with the team's key.
    pub apns: Option<Apns>,
    /// Web Push endpoints may be on private addresses (a UnifiedPush distributor on the LAN).
    pub allow_private: bool,
    /// Services (or Web Push origins) that asked us to wait, until when.
    quiet: HashMap<String, Instant>,
}

impl Pusher {
    /// The VAPID public key, for `+sip.vapid`.
    pub fn vapid_key(&self) -> Option<String> {
        self.webpush.as_ref().map(WebPush::public_key)
    }

    fn quiet_key(target: &PushTarget) -> String {
        match target.provider {
            Provider::WebPush => url::Url::parse(&target.prid)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
            ref p => p.name().to_string(),
        }
    }

    /// The first step of `job` at `now` (`wall`: seconds since the epoch).
    pub fn start(&mut self, job: &Job, now: Instant, wall: u64) -> Step {
        let key = Self::quiet_key(&job.target);
        if let Some(until) = self.quiet.get(&key) {
            if *until > now {
                return Step::Done(Outcome::Throttled(*until - now));
            }
            self.quiet.remove(&key);
        }
        match &job.target.provider {
            Provider::WebPush => {
                let Some(webpush) = &self.webpush else {
                    return not_configured("Web Push");
                };
                if !self.allow_private && names_private_address(&job.target.prid) {
                    return Step::Done(Outcome::Failed(
                        "Web Push endpoint on a private address (allow_private is off)".into(),
                    ));
                }
                send(
                    webpush.request(&job.target, &job.push, wall),
                    Exchange::Push,
                    true,
                )
            }
            Provider::Fcm => {
                let Some(fcm) = &self.fcm else {
                    return not_configured("FCM");
                };
                if fcm.needs_token(wall) {
                    return send(fcm.token_request(wall), Exchange::Token, false);
                }
                send(fcm.request(&job.target, &job.push), Exchange::Push, false)
            }
            Provider::Apns { .. } => {
                let Some(apns) = &mut self.apns else {
                    return not_configured("APNs");
                };
                send(
                    apns.request(&job.target, &job.push, wall),
                    Exchange::Push,
                    false,
                )
            }
            Provider::Other(name) => Step::Done(Outcome::Failed(format!(
                "push service {name} is not supported"
            ))),
        }
    }

    /// The response to the `exchange` of `job` (Err: no response: refused, timed out).
    pub fn on_response(
        &mut self,
        job: &Job,
        exchange: Exchange,
        response: Result<HttpResponse, String>,
        now: Instant,
        wall: u64,
    ) -> Step {
        let response = match response {
            Ok(r) => r,
            Err(e) => return Step::Done(Outcome::Failed(e)),
        };
        let outcome = match (&job.target.provider, exchange) {
            (Provider::Fcm, Exchange::Token) => {
                let Some(fcm) = &mut self.fcm else {
                    return not_configured("FCM");
                };
                return match fcm.on_token(&response, wall) {
                    Ok(()) => send(fcm.request(&job.target, &job.push), Exchange::Push, false),
                    Err(e) => Step::Done(Outcome::Failed(e)),
                };
            }
            (Provider::Fcm, Exchange::Push) => match &mut self.fcm {
                Some(fcm) => fcm.outcome(&response),
                None => return not_configured("FCM"),
            },
            (Provider::Apns { .. }, _) => match &mut self.apns {
                Some(apns) => apns.outcome(&response),
                None => return not_configured("APNs"),
            },
            (Provider::WebPush, _) => WebPush::outcome(&response),
            (Provider::Other(_), _) => Outcome::Failed("not supported".into()),
        };
        if let Outcome::Throttled(wait) = &outcome {
            self.quiet.insert(Self::quiet_key(&job.target), now + *wait);
        }
        Step::Done(outcome)
    }
}

fn send(request: Result<HttpRequest, String>, exchange: Exchange, untrusted: bool) -> Step {
    match request {
        Ok(request) => Step::Send {
            exchange,
            request,
            untrusted,
        },
        Err(e) => Step::Done(Outcome::Failed(e)),
    }
}

fn not_configured(service: &str) -> Step {
    Step::Done(Outcome::Failed(format!("{service} is not configured")))
}

/// Whether an address is not on the public internet: loopback, private, link-local, unique
/// local, unspecified, the benchmarking range.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 198 && (v4.octets()[1] & 0xfe) == 18)
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(v4.into()))
        }
    }
}

/// Whether a URL's host is a literal private address (names are checked when resolved).
fn names_private_address(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => is_private(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_private(ip.into()),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => true,
    }
}

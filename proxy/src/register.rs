//! REGISTER for a domain served here: who may register, the digest exchange, the registrar
//! step, and the response that goes out once the change is durable.

use crate::repeated::Event;
use openline_registrar::auth::{AuthOutcome, Authenticator};
use openline_registrar::register::contact_values;
use openline_registrar::{Binding, ChangeSet, Location, RegistrarConfig, User, register};
use openline_sip::message::{ResponseBuilder, standard_reason};
use openline_sip::{Entropy, Message, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;

/// What to do with a REGISTER.
#[derive(Debug)]
pub enum RegisterAction {
    /// Send this response now.
    Reply(Vec<u8>),
    /// Send this challenge now and keep no transaction for it (RFC 3261 8.2.7).
    Challenge(Vec<u8>),
    /// Persist `change`, then send `reply`; if the store fails, restore `previous` and send
    /// [`failure_from`] the reply instead.
    Persist {
        /// The change.
        change: ChangeSet,
        /// The 200, already built.
        reply: Vec<u8>,
        /// The AOR's bindings before the change.
        previous: Vec<Binding>,
    },
}

/// The 503 sent instead of a prepared 200 when its binding could not be stored (the database
/// is away: the device should retry soon, or fail over to another server): the same echoed
/// headers under a new status line with Retry-After, without the Contact list. Built only on
/// failure.
pub fn failure_from(reply: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "SIP/2.0 503 Service Unavailable (binding not stored)\r\nRetry-After: {}\r\n",
        crate::capabilities::RETRY_AFTER
    )
    .into_bytes();
    let start = reply
        .iter()
        .position(|&b| b == b'\n')
        .map_or(reply.len(), |p| p + 1);
    for line in reply[start..].split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"Contact:") {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Everything the REGISTER path reads and writes.
pub struct Registrar<'c> {
    /// Domains served.
    pub domains: &'c [String],
    /// Users by `user@domain`.
    pub users: &'c HashMap<String, User>,
    /// Digest state.
    pub auth: &'c mut Authenticator,
    /// Bindings in memory.
    pub location: &'c mut Location,
    /// Limits.
    pub config: &'c RegistrarConfig,
    /// Randomness for nonces and tags.
    pub entropy: &'c mut dyn Entropy,
    /// The Server header value.
    pub server_header: &'c str,
    /// What the server can push through (RFC 8599).
    pub push: &'c crate::wake::PushPolicy,
    /// Repeated events, logged once per source per window.
    pub log: &'c mut crate::repeated::EventLog,
    /// The monotonic time now, for the log's windows.
    pub at: std::time::Instant,
}

fn reply(
    request: &Message<'_>,
    source: SocketAddr,
    code: u16,
    reason: &str,
    headers: &[(&str, String)],
    tag: &str,
    server: &str,
) -> Vec<u8> {
    let mut b = ResponseBuilder::new(code, reason, &request.echo(), source, Some(tag));
    for (name, value) in headers {
        b = b.header(name, value);
    }
    b.header("Server", server).finish()
}

impl Registrar<'_> {
    /// Decides a REGISTER received at `now` (seconds since the epoch).
    pub fn handle(
        &mut self,
        request: &Message<'_>,
        transport: Transport,
        source: SocketAddr,
        now: u64,
    ) -> RegisterAction {
        let tag = openline_sip::entropy::random_token(self.entropy, 16);
        let server = self.server_header;
        let refuse = |code: u16, reason: &str| {
            RegisterAction::Reply(reply(request, source, code, reason, &[], &tag, server))
        };
        // The Request-URI names the registrar's domain (RFC 3261 10.3 step 1): only ours.
        let Some(domain) = request
            .request_uri()
            .and_then(|u| u.sip().map(|s| s.host.to_string().to_ascii_lowercase()))
            .filter(|d| self.domains.iter().any(|ours| ours.eq_ignore_ascii_case(d)))
        else {
            return refuse(403, "Forbidden (not a domain served here)");
        };
        // The address of record comes from To, in the same domain (step 3).
        let Some(to) = request.to() else {
            return refuse(400, "Bad Request (malformed To header)");
        };
        let Some(to_uri) = to.uri.sip() else {
            return refuse(404, "Not Found (To is not a SIP URI)");
        };
        let to_domain = to_uri.host.to_string().to_ascii_lowercase();
        let Some(user) = to_uri.user.filter(|_| to_domain == domain) else {
            return refuse(404, "Not Found (To is not a user of this domain)");
        };
        let aor = format!("{user}@{domain}");
        let users = self.users;
        let outcome = self
            .auth
            .verify(now, request, &domain, source.ip(), |a| users.get(a));
        crate::metrics::auth(&outcome);
        match outcome {
            AuthOutcome::Authenticated(who) if who == aor => {}
            AuthOutcome::Authenticated(who) => {
                if let Some(count) = self.log.note(self.at, Event::OtherAor, &source.ip()) {
                    tracing::warn!(%who, %aor, %source, count, "{}", Event::OtherAor.what());
                }
                return refuse(403, "Forbidden (may only register your own address)");
            }
            AuthOutcome::Challenge { stale } => {
                let user_agent = request.header(openline_sip::header::HeaderName::UserAgent);
                let headers: Vec<(&str, String)> = self
                    .auth
                    .challenges(now, &domain, stale, user_agent, self.entropy)
                    .into_iter()
                    .map(|c| ("WWW-Authenticate", c))
                    .collect();
                return RegisterAction::Challenge(reply(
                    request,
                    source,
                    401,
                    "Unauthorized",
                    &headers,
                    &tag,
                    server,
                ));
            }
            AuthOutcome::Failed => return refuse(403, "Forbidden (authentication failed)"),
            AuthOutcome::Malformed(e) => return refuse(400, &format!("Bad Request ({e})")),
            AuthOutcome::Throttled(key) => {
                if let Some(count) = self.log.note(self.at, Event::AuthThrottled, &source.ip()) {
                    tracing::warn!(%key, %source, count, "{}", Event::AuthThrottled.what());
                }
                return refuse(403, "Forbidden (too many failed attempts, try later)");
            }
        }
        // RFC 8599: push parameters the device cannot mean are refused, naming the parameter.
        // Contacts are parsed again only when one may carry them (the usual REGISTER has none).
        let may_push = request
            .headers_named(openline_sip::header::HeaderName::Contact)
            .any(|c| c.contains("pn-") || c.contains("app-id"));
        let mut pushes = Vec::new();
        let contacts = if may_push { request.contacts() } else { None };
        for contact in contacts.unwrap_or_default() {
            if let openline_sip::header::Contact::Address(addr) = contact {
                match openline_push::PushTarget::from_contact(addr.uri.as_str()) {
                    Ok(Some(target)) => pushes.push(target),
                    Ok(None) => {}
                    Err(e) => return refuse(400, &format!("Bad Request ({e})")),
                }
            }
        }
        let flow = format!("{}:{source}", transport.as_via().to_ascii_lowercase());
        match register(
            request,
            &aor,
            &flow,
            now,
            self.location.bindings(&aor),
            self.config,
        ) {
            Err(openline_sip::message::Refusal {
                code,
                reason,
                headers,
            }) => RegisterAction::Reply(reply(
                request, source, code, &reason, &headers, &tag, server,
            )),
            Ok(registration) => {
                let mut contacts: Vec<(&str, String)> = contact_values(&registration.bindings, now)
                    .into_iter()
                    .map(|c| ("Contact", c))
                    .collect();
                // RFC 5626 section 6: a device that asked for outbound (instance and reg-id, and
                // "outbound" in Supported) learns that its flow will be used.
                let asked_outbound = request
                    .list(openline_sip::header::HeaderName::Supported)
                    .any(|t| t.trim().eq_ignore_ascii_case("outbound"));
                let flow_bound = registration
                    .change
                    .upserts
                    .iter()
                    .any(|b| b.instance.is_some() && b.reg_id.is_some());
                if asked_outbound && flow_bound {
                    contacts.push(("Require", "outbound".to_string()));
                }
                // One Feature-Caps per service we will push through (RFC 8599 4.1.2).
                let mut caps: Vec<String> = pushes
                    .iter()
                    .filter_map(|t| self.push.feature_caps(t))
                    .collect();
                caps.dedup();
                contacts.extend(caps.into_iter().map(|c| ("Feature-Caps", c)));
                let ok = reply(
                    request,
                    source,
                    200,
                    standard_reason(200),
                    &contacts,
                    &tag,
                    server,
                );
                if registration.change.is_empty() {
                    return RegisterAction::Reply(ok);
                }
                let previous = self.location.bindings(&aor).to_vec();
                // Routing sees the change at once; the 200 waits until it is durable.
                self.location.apply(&registration.change);
                RegisterAction::Persist {
                    change: registration.change,
                    reply: ok,
                    previous,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::failure_from;

    #[test]
    fn failure_keeps_the_echo_and_drops_the_contacts() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=1\r\nContact: <sip:a@c>;expires=60\r\nContent-Length: 0\r\n\r\n";
        let failed = failure_from(ok);
        assert_eq!(
            String::from_utf8(failed).unwrap(),
            "SIP/2.0 503 Service Unavailable (binding not stored)\r\nRetry-After: 5\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=1\r\nContent-Length: 0\r\n\r\n"
        );
    }
}

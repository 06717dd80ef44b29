//! REGISTER for a domain served here: who may register, the digest exchange, the registrar
//! step, and the response that goes out once the change is durable.

use openline_registrar::auth::{AuthOutcome, Authenticator};
use openline_registrar::register::contact_values;
use openline_registrar::{
    Binding, ChangeSet, Location, RegistrarConfig, Rejection, User, register,
};
use openline_sip::message::{ResponseBuilder, standard_reason};
use openline_sip::{Entropy, Message, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;

/// What to do with a REGISTER.
#[derive(Debug)]
pub enum RegisterAction {
    /// Send this response now.
    Reply(Vec<u8>),
    /// Persist `change`, then send `reply`; if the store fails, restore `previous` and send
    /// `failure` instead.
    Persist {
        /// The change.
        change: ChangeSet,
        /// The 200, already built.
        reply: Vec<u8>,
        /// A 500 saying the binding was not stored.
        failure: Vec<u8>,
        /// The AOR's bindings before the change.
        previous: Vec<Binding>,
    },
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
        let tag = openline_sip::entropy::random_token(self.entropy, 12);
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
        match self
            .auth
            .verify(now, request, &domain, source.ip(), |a| users.get(a))
        {
            AuthOutcome::Authenticated(who) if who == aor => {}
            AuthOutcome::Authenticated(who) => {
                tracing::warn!(%who, %aor, %source, "user tried to register another address of record");
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
                return RegisterAction::Reply(reply(
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
                tracing::warn!(%key, %source, "authentication throttled after repeated failures");
                return refuse(403, "Forbidden (too many failed attempts, try later)");
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
            Err(Rejection {
                code,
                reason,
                headers,
            }) => RegisterAction::Reply(reply(
                request, source, code, &reason, &headers, &tag, server,
            )),
            Ok(registration) => {
                let contacts: Vec<(&str, String)> = contact_values(&registration.bindings, now)
                    .into_iter()
                    .map(|c| ("Contact", c))
                    .collect();
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
                let failure = reply(
                    request,
                    source,
                    500,
                    "Server Internal Error (binding not stored)",
                    &[],
                    &tag,
                    server,
                );
                let previous = self.location.bindings(&aor).to_vec();
                // Routing sees the change at once; the 200 waits until it is durable.
                self.location.apply(&registration.change);
                RegisterAction::Persist {
                    change: registration.change,
                    reply: ok,
                    failure,
                    previous,
                }
            }
        }
    }
}

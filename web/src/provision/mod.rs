//! Phones set up from a link (issue #21): `GET /provision/TOKEN` answers, once, Linphone's
//! remote-provisioning XML for the user the token was made for; a token that is unknown,
//! used or expired gets 404 and a log line. The SIP server named in it is the address the
//! phone reached us at, on the port of our TCP listener (else UDP, else TLS by the domain).

pub mod linphone;
pub mod token;

use crate::listen::Arrival;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use openline_registrar::store::{ProvisionStore as _, Store, UserStore as _};
use std::net::SocketAddr;
use std::sync::Arc;

/// The route's path.
pub const PATH: &str = "/provision/{token}";

/// A SIP listener, as phones are told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipListener {
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// Where it is bound (perhaps a wildcard).
    pub addr: SocketAddr,
}

/// What the provisioning handler needs.
#[derive(Debug, Clone)]
pub struct Provisioning {
    /// Where tokens and users are.
    pub store: Store,
    /// Our SIP listeners.
    pub sip: Arc<Vec<SipListener>>,
    /// A fixed proxy for every document (`sip:HOST:PORT;transport=T`), instead of the
    /// address the phone reached us at.
    pub proxy: Option<String>,
    /// Asks the SIP side to load the users now and says when it has: a phone registers the
    /// moment it has its document, maybe before the periodic reload saw a user just added.
    pub users_fresh: Option<UsersFresh>,
}

/// A request to load the users now; the sender is answered once they are in use.
pub type UsersFresh = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>;

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// No randomness.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] openline_registrar::store::StoreError),
}

/// Makes a token for `aor`, valid `ttl` seconds from `now`, and stores its hash.
pub async fn issue(store: &Store, aor: &str, now: u64, ttl: u64) -> Result<String, IssueError> {
    let token = token::new_token()?;
    store
        .put_token(&token::token_hash(&token), aor, now.saturating_add(ttl))
        .await?;
    Ok(token)
}

/// The proxy a phone that reached us at `local` should use.
fn proxy_for(sip: &[SipListener], local: SocketAddr, domain: &str) -> Option<String> {
    let reachable = |l: &SipListener| {
        (l.addr.ip().is_unspecified() && l.addr.is_ipv4() == local.is_ipv4())
            || l.addr.ip() == local.ip()
    };
    for transport in ["tcp", "udp"] {
        if let Some(l) = sip
            .iter()
            .find(|l| l.transport == transport && reachable(l))
        {
            let host = match local.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
            return Some(format!(
                "sip:{host}:{};transport={transport}",
                l.addr.port()
            ));
        }
    }
    sip.iter()
        .find(|l| l.transport == "tls")
        .map(|l| format!("sip:{domain}:{};transport=tls", l.addr.port()))
}

#[allow(clippy::disallowed_methods)] // a handler is the driver: it reads the wall clock
fn wall_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Answers one provisioning request.
pub async fn answer(
    State(p): State<Provisioning>,
    axum::Extension(arrival): axum::Extension<Arrival>,
    Path(token): Path<String>,
) -> Response {
    let refuse = |why: &str| {
        tracing::warn!(peer = %arrival.peer, "provisioning link refused: {why}");
        StatusCode::NOT_FOUND.into_response()
    };
    if !arrival.secure {
        return refuse("asked over plain HTTP (links are served over HTTPS only)");
    }
    if !token::well_formed(&token) {
        return refuse("not a token of ours");
    }
    let aor = match p
        .store
        .take_token(&token::token_hash(&token), wall_clock())
        .await
    {
        Ok(Some(aor)) => aor,
        Ok(None) => return refuse("unknown, already used or expired"),
        Err(e) => {
            tracing::error!(error = %e, "provisioning: database");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let user = match p.store.users().await {
        Ok(users) => users.into_iter().find(|u| u.aor == aor),
        Err(e) => {
            tracing::error!(error = %e, "provisioning: database");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some(user) = user else {
        return refuse("its user was deleted");
    };
    let Some((name, domain)) = user.aor.rsplit_once('@') else {
        return refuse("its user has no domain");
    };
    let Some(proxy) = p
        .proxy
        .clone()
        .or_else(|| proxy_for(&p.sip, arrival.local, domain))
    else {
        return refuse("no SIP listener to name");
    };
    if let Some(fresh) = &p.users_fresh {
        let (done, loaded) = tokio::sync::oneshot::channel();
        if fresh.send(done).await.is_ok() {
            // Not answered in time: the document still works once the periodic reload runs.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), loaded).await;
        }
    }
    tracing::info!(peer = %arrival.peer, user = %user.aor, "provisioning link used");
    let xml = linphone::document(&linphone::Account {
        user: name,
        domain,
        ha1_md5: &user.ha1_md5,
        proxy: &proxy,
    });
    (
        [
            (header::CONTENT_TYPE, "application/xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        xml,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_is_where_the_phone_reached_us_on_the_sip_port() {
        let sip = vec![
            SipListener {
                transport: "udp",
                addr: "0.0.0.0:5060".parse().unwrap(),
            },
            SipListener {
                transport: "tcp",
                addr: "0.0.0.0:5070".parse().unwrap(),
            },
            SipListener {
                transport: "tls",
                addr: "0.0.0.0:5061".parse().unwrap(),
            },
        ];
        let local = "198.18.0.1:8443".parse().unwrap();
        assert_eq!(
            proxy_for(&sip, local, "club-a.test").as_deref(),
            Some("sip:198.18.0.1:5070;transport=tcp")
        );
        let v6 = "[2001:2::1]:8443".parse().unwrap();
        assert_eq!(
            proxy_for(&sip, v6, "club-a.test").as_deref(),
            Some("sip:club-a.test:5061;transport=tls")
        );
        let tls_only = vec![sip[2]];
        assert_eq!(
            proxy_for(&tls_only, local, "club-a.test").as_deref(),
            Some("sip:club-a.test:5061;transport=tls")
        );
    }
}

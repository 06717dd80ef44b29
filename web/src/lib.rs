//! What openline serves over HTTP and HTTPS (issue #21): the ACME challenge answers (HTTP-01
//! here, TLS-ALPN-01 in the TLS layer) and the one-time provisioning links phones are set up
//! from. The routes are axum's; each accepted connection is served on a task of its own.

pub mod acme_answer;
pub mod listen;
pub mod phone;
pub mod provision;
pub mod tls;

pub use listen::{Arrival, serve};
pub use provision::{Provisioning, SipListener};
pub use tls::WebTls;

use axum::Router;
use axum::routing::get;
use openline_certs::Challenges;

/// Every route: the HTTP-01 answers, the web phone, and the provisioning links when
/// `provisioning` is given (answered over HTTPS only: the document carries credentials).
pub fn router(
    challenges: Challenges,
    provisioning: Option<Provisioning>,
    phone: phone::PhoneConfig,
) -> Router {
    let acme = Router::new()
        .route(acme_answer::PATH, get(acme_answer::answer))
        .with_state(challenges)
        .merge(phone::routes(phone));
    match provisioning {
        Some(p) => acme.merge(
            Router::new()
                .route(provision::PATH, get(provision::answer))
                .with_state(p),
        ),
        None => acme,
    }
}

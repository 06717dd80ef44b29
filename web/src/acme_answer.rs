//! HTTP-01 (RFC 8555 section 8.3): `GET /.well-known/acme-challenge/TOKEN` answers the key
//! authorization while the order is open; any other token is 404.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use openline_certs::Challenges;

/// The route's path.
pub const PATH: &str = "/.well-known/acme-challenge/{token}";

/// Answers one HTTP-01 request.
pub async fn answer(State(challenges): State<Challenges>, Path(token): Path<String>) -> Response {
    match challenges.http(&token) {
        Some(key_authorization) => {
            tracing::info!("web: answered an HTTP-01 challenge");
            (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                key_authorization,
            )
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

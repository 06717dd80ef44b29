//! The web phone (issue #23): a page served by openline itself, its files built into the
//! binary, that signs in over the server's own `wss:` (or `ws:`) listener with JsSIP
//! (vendored, MIT: `web/phone/vendor`). `config.json` tells the page which ports those are.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::sync::Arc;

/// Where the page lives.
pub const PATH: &str = "/phone/";

/// The SIP WebSocket listeners the page may use, by port.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhoneConfig {
    /// Ports of `ws:` listeners (for a page over plain HTTP).
    pub ws: Vec<u16>,
    /// Ports of `wss:` listeners (for a page over HTTPS).
    pub wss: Vec<u16>,
}

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The page's routes.
pub fn routes(config: PhoneConfig) -> Router {
    Router::new()
        .route("/phone", get(|| async { Redirect::permanent(PATH) }))
        .route(
            PATH,
            get(|| async {
                file(
                    "text/html; charset=utf-8",
                    include_bytes!("../phone/index.html"),
                )
            }),
        )
        .route(
            "/phone/phone.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_bytes!("../phone/phone.js"),
                )
            }),
        )
        .route(
            "/phone/calls.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_bytes!("../phone/calls.js"),
                )
            }),
        )
        .route(
            "/phone/phone.css",
            get(|| async {
                file(
                    "text/css; charset=utf-8",
                    include_bytes!("../phone/phone.css"),
                )
            }),
        )
        .route(
            "/phone/jssip.min.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_bytes!("../phone/vendor/jssip.min.js"),
                )
            }),
        )
        .route(
            "/phone/config.json",
            get(|State(c): State<Arc<PhoneConfig>>| async move { Json((*c).clone()) }),
        )
        .with_state(Arc::new(config))
}

//! Waking phones that sleep (RFC 8599). `target` reads a device's `pn-*` parameters; each push
//! service is a sans-IO module that writes the HTTP request and reads the answer (`webpush`
//! with `ece` and VAPID, `fcm`, `apns`); `pusher` puts them together with back-off; `client`
//! is the only code with sockets: a task that makes the requests, bounded in number and time.

pub mod apns;
pub mod client;
pub mod ece;
pub mod fcm;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod payload;
pub mod pusher;
pub mod target;
pub mod webpush;

pub use http::Outcome;
pub use payload::{Push, Wake};
pub use pusher::{Job, Pusher};
pub use target::{BadParameter, Provider, PushTarget};

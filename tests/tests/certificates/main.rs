//! Certificates that take care of themselves (issue #21 item 4): openline obtains its
//! certificate from an ACME CA (pebble, Let's Encrypt's test server, on loopback), answers
//! HTTP-01 and TLS-ALPN-01 itself, renews before expiry and puts the new one in place for SIP
//! over TLS and HTTPS without a restart, with calls up; a CA that is down costs nothing but a
//! warning, and the certificate in use stays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod acme;

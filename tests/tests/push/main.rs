//! Waking sleeping phones on the wire (issue #22): stand-ins for the push services check what
//! the server sends them (VAPID verified, Web Push payloads decrypted with the device's keys,
//! FCM's grant and APNs' token verified), and devices that register only when pushed get their
//! messages and calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod calls;
mod messages;
mod services;

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, scratch_dir};
use std::path::Path;
use std::time::Duration;

/// The domain the test servers serve.
const DOMAIN: &str = "openline.test";
/// Long enough for anything that should arrive; it only costs time when something is missing.
const ARRIVES: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive.
const QUIET: Duration = Duration::from_millis(1500);

use openline_tests::subject::{db_bindings, wall};

fn password(user: &str) -> String {
    user.chars().rev().collect()
}

/// A server in `dir` with alice and bob (passwords: the name reversed) and this `[push]`
/// configuration.
fn server_with(dir: &Path, push: &str) -> Subject {
    let db = format!("sqlite://{}/openline.db", dir.display());
    for user in ["alice", "bob"] {
        add_user(&db, &format!("{user}@{DOMAIN}"), &password(user));
    }
    let config = dir.join("openline.toml");
    std::fs::write(&config, push).unwrap();
    Subject::start_on(&db, &["--config", &config.display().to_string()])
}

/// A device of `user` talking to `server`.
fn phone(user: &str, server: &Subject) -> Phone {
    Phone::new(user, DOMAIN, &password(user), server.udp)
}

/// A fresh scratch directory.
fn scratch(what: &str) -> std::path::PathBuf {
    scratch_dir(what)
}

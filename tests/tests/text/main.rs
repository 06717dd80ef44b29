//! Text messages on the wire (issue #5): MESSAGE to every device of a user, stored while the
//! user is offline and delivered when a device registers, in order, once each, surviving a
//! crash; copies of what a user sends for the user's other devices; the same on SQLite and
//! PostgreSQL, between two domains, and with baresip and SIPp.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod delivery;
mod federation;
mod peers;
mod tui_phone;

use openline_tests::phone::{Phone, Received};
use openline_tests::subject::{Subject, add_user, scratch_dir};
use std::time::Duration;

/// The domain the test servers serve.
const DOMAIN: &str = "openline.test";
/// Long enough for anything that should arrive; it only costs time when something is missing.
const ARRIVES: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive (a duplicate).
const QUIET: Duration = Duration::from_millis(1500);

/// A fresh SQLite database URL.
fn sqlite_db(what: &str) -> String {
    format!("sqlite://{}/openline.db", scratch_dir(what).display())
}

/// A server on `db` with alice, bob and carol (passwords: the user's name reversed).
fn server_on(db: &str, extra_args: &[&str]) -> Subject {
    for user in ["alice", "bob", "carol"] {
        add_user(db, &format!("{user}@{DOMAIN}"), &password(user));
    }
    Subject::start_on(db, extra_args)
}

fn password(user: &str) -> String {
    user.chars().rev().collect()
}

/// A device of `user` talking to `server`.
fn phone(user: &str, server: &Subject) -> Phone {
    Phone::new(user, DOMAIN, &password(user), server.udp)
}

/// The bodies of `messages`, in the order received.
fn bodies(messages: &[Received]) -> Vec<String> {
    messages.iter().map(Received::body).collect()
}

/// Sends a MESSAGE from `from` to `to` while `receivers` take what arrives (each answering as
/// set), so that a device that must answer does so while the sender waits; the sender's final
/// status and what each receiver got within `limit` (until `expect` each).
fn send_while_receiving(
    from: &mut Phone,
    to: &str,
    body: &str,
    receivers: &mut [&mut Phone],
    expect: usize,
    limit: Duration,
) -> (u16, Vec<Vec<Received>>) {
    std::thread::scope(|s| {
        let sender = s.spawn(|| from.message(to, body));
        let got = receivers
            .iter_mut()
            .map(|r| r.messages(expect, limit))
            .collect();
        (sender.join().unwrap(), got)
    })
}

//! A database that goes away (issue #9's bad input, true of one node too): REGISTER and a
//! MESSAGE that must be stored get 503 with Retry-After, nothing hangs, and the server
//! recovers by itself when PostgreSQL comes back. The test runs its own cluster, so it can
//! stop and start it without disturbing the suites that share the other one.

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, scratch_dir};
use std::process::Command;
use std::time::Duration;

/// `scripts/test-postgres ACTION DIR`; its standard output.
fn postgres(action: &str, dir: &std::path::Path) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-postgres");
    let out = Command::new(script).arg(action).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The status line and Retry-After of `response`.
fn status_and_retry(response: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(response);
    let status = text.lines().next().unwrap_or("").to_string();
    let retry = text
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .map(str::to_string);
    (status, retry)
}

#[test]
fn postgres_going_away_is_503_with_retry_after_and_the_server_recovers() {
    let dir = scratch_dir("registrar-db-away");
    let pg = dir.join("pg");
    let url = postgres("start", &pg);
    let _stop = Stop(pg.clone());
    add_user(&url, "bob@openline.test", "s3cret");
    add_user(&url, "alice@openline.test", "s3cret");
    let server = Subject::start_on(&url, &[]);
    let mut bob = Phone::new("bob", "openline.test", "s3cret", server.udp);
    let mut alice = Phone::new("alice", "openline.test", "s3cret", server.udp);
    assert_eq!(bob.register(300), 200);
    assert_eq!(alice.register(300), 200);
    assert_eq!(
        bob.register(0),
        200,
        "bob is offline: a message to him must be stored"
    );

    postgres("pause", &pg);
    let uri = "sip:openline.test";
    let extra = format!("Contact: <sip:bob@{}>\r\nExpires: 300\r\n", bob.addr);
    let refused = bob
        .last_response("REGISTER", uri, "<sip:bob@openline.test>", &extra, "", b"")
        .expect("an answer, not silence");
    let (status, retry) = status_and_retry(&refused);
    assert!(status.starts_with("SIP/2.0 503"), "{status}");
    assert_eq!(retry.as_deref(), Some("5"));
    let message = alice
        .last_response(
            "MESSAGE",
            "sip:bob@openline.test",
            "<sip:bob@openline.test>",
            "Content-Type: text/plain\r\n",
            "",
            b"while the database is away",
        )
        .expect("an answer, not silence");
    let (status, retry) = status_and_retry(&message);
    assert!(status.starts_with("SIP/2.0 503"), "{status}");
    assert_eq!(retry.as_deref(), Some("5"));

    postgres("resume", &pg);
    // The pool reconnects by itself: within a few tries the same requests succeed.
    let mut registered = 0;
    for _ in 0..20 {
        registered = bob.register(300);
        if registered == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(registered, 200, "the server came back with the database");
    assert_eq!(bob.register(0), 200);
    assert_eq!(
        alice.message("bob@openline.test", "after"),
        202,
        "stored again"
    );
}

/// Stops the test's cluster however the test ends.
struct Stop(std::path::PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-postgres");
        let _ = Command::new(script).arg("stop").arg(&self.0).output();
    }
}

//! The admin CLI against a running server (issue #11 item 5): `openline status` and
//! `openline peer list` ask over the control socket, which only the server's user may open;
//! `openline user passwd` changes a password and never creates a user.

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, openline_bin, scratch_dir};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

/// `openline ARGS`: whether it succeeded, and its standard output and error.
fn openline(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(openline_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_and_peer_list_answer_from_the_running_server() {
    let dir = scratch_dir("proxy-admin");
    let db = format!("sqlite://{}/openline.db", dir.display());
    openline_tests::subject::add_user(&db, "bob@openline.test", "s3cret");
    let server = Subject::start_on(&db, &["--peer", "club-b.test=tls:127.0.0.1:5999"]);
    let socket = dir.join("openline.db.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the server's user may ask");

    let mut bob = Phone::new("bob", "openline.test", "s3cret", server.udp);
    assert_eq!(bob.register(300), 200);
    let (ok, json, err) = openline(&["status", "--db", &db, "--json"]);
    assert!(ok, "{err}");
    assert!(
        json.contains(r#""openline.test":{"bindings":1,"messages_waiting":0,"users":1}"#),
        "{json}"
    );
    let (ok, text, _) = openline(&["status", "--db", &db]);
    assert!(ok);
    assert!(
        text.lines().any(|l| l.starts_with("openline.test")
            && l.split_whitespace().eq(["openline.test", "1", "1", "0"])),
        "{text}"
    );

    let (ok, peers, err) = openline(&["peer", "list", "--control", socket.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(peers.trim(), "club-b.test tls:127.0.0.1:5999");

    // passwd changes an existing user's password and refuses to invent one.
    let (ok, _, err) = openline(&[
        "user",
        "passwd",
        "bob@openline.test",
        "--password",
        "n3w",
        "--db",
        &db,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = openline(&[
        "user",
        "passwd",
        "bov@openline.test",
        "--password",
        "x",
        "--db",
        &db,
    ]);
    assert!(!ok);
    assert!(err.contains("no user bov@openline.test"), "{err}");
    // The running server picks the new password up by itself.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut renewed = Phone::new("bob", "openline.test", "n3w", server.udp);
    assert_eq!(renewed.register(300), 200);

    // No server there: one line naming the socket.
    drop(server);
    let (ok, _, err) = openline(&["status", "--db", &db]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("openline.db.sock"), "{err}");
}

//! The disk full: the server's database on a small tmpfs (a mount namespace of its own), the
//! tmpfs then filled to the last byte. New work is refused with 503 and Retry-After, the
//! server stays up, and once space returns it takes work again; every MESSAGE answered 202,
//! before or after, reaches its user once.

use openline_tests::phone::Phone;
use openline_tests::subject::{Subject, add_user, openline_bin, scratch_dir};
use std::process::Command;
use std::time::Duration;

const DOMAIN: &str = "openline.test";

/// alice's MESSAGE with `body` to bob: the final response's status, and the response.
fn send(alice: &mut Phone, body: &str) -> (u16, Vec<u8>) {
    let uri = format!("sip:bob@{DOMAIN}");
    let extra = "Content-Type: text/plain\r\n";
    let response = alice
        .last_response(
            "MESSAGE",
            &uri,
            &format!("<{uri}>"),
            extra,
            "",
            body.as_bytes(),
        )
        .unwrap_or_default();
    (
        openline_tests::wire::status(&response).unwrap_or(0),
        response,
    )
}

/// Runs `script` in the mount namespace of process `pid` (where the tmpfs is).
fn inside(pid: u32, script: &str) -> String {
    let out = Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--mount", "sh", "-c", script])
        .output()
        .expect("nsenter (util-linux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_full_disk_gets_503_loses_nothing_accepted_and_recovers() {
    let dir = scratch_dir("disk-full");
    let staging = dir.join("users.db");
    let staging_url = format!("sqlite://{}", staging.display());
    for user in ["alice", "bob"] {
        add_user(&staging_url, &format!("{user}@{DOMAIN}"), user);
    }
    // The server runs in its own mount namespace, on a 4 MiB tmpfs over `data`.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let wrapper = dir.join("on-tmpfs.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --mount --propagation private sh -c \
             'mount -t tmpfs -o size=4m tmpfs {data} && cp {staging} {data}/openline.db && exec {bin} \"$@\"' sh \"$@\"\n",
            data = data.display(),
            staging = staging.display(),
            bin = openline_bin().display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let db = format!("sqlite://{}/openline.db", data.display());
    let mut server = Subject::start_bin(&wrapper, &db, &[]);
    let pid = server.pid().expect("our own server");
    let mut alice = Phone::new("alice", DOMAIN, "alice", server.udp);
    let mut accepted = Vec::new();
    let body = |n: u32| format!("message {n} {}", "x".repeat(300));

    // Room: stored.
    for n in 0..5 {
        assert_eq!(send(&mut alice, &body(n)).0, 202);
        accepted.push(body(n));
    }
    // Full: fill the tmpfs to the last byte.
    inside(
        pid,
        &format!(
            "dd if=/dev/zero of={}/filler bs=64k 2>/dev/null; sync",
            data.display()
        ),
    );
    let free = inside(
        pid,
        &format!("df --output=avail -B1 {} | tail -1", data.display()),
    );
    assert_eq!(free.trim(), "0", "the tmpfs is not full");
    let mut refused = None;
    for n in 5..400 {
        match send(&mut alice, &body(n)) {
            (202, _) => accepted.push(body(n)),
            (503, response) => {
                refused = Some((n, response));
                break;
            }
            (other, _) => panic!("a MESSAGE on a full disk got {other}"),
        }
    }
    let (refused, response) = refused.expect("a full disk never refused a MESSAGE");
    let before_refusal = accepted.len();
    assert!(
        openline_tests::wire::header(&response, "Retry-After", None).is_some(),
        "503 without Retry-After"
    );
    let mut laptop = Phone::new("alice", DOMAIN, "alice", server.udp);
    assert_eq!(laptop.register(3600), 503, "a new binding on a full disk");
    assert!(server.is_running(), "the server died of a full disk");

    // Space returns: work is taken again, without a restart.
    inside(pid, &format!("rm {}/filler", data.display()));
    let mut again = None;
    for n in refused + 1..refused + 50 {
        if send(&mut alice, &body(n)).0 == 202 {
            accepted.push(body(n));
            again = Some(n);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(again.is_some(), "no recovery once space returned");
    assert_eq!(laptop.register(3600), 200);

    // Every 202 reaches bob, once.
    let mut bob = Phone::new("bob", DOMAIN, "bob", server.udp);
    assert_eq!(bob.register(3600), 200);
    let mut got: Vec<String> = bob
        .messages(accepted.len(), Duration::from_secs(15))
        .iter()
        .map(|m| m.body())
        .collect();
    // Then nothing more (a duplicate would come now).
    got.extend(
        bob.messages(1, Duration::from_secs(2))
            .iter()
            .map(|m| m.body()),
    );
    assert_eq!(
        got.len(),
        accepted.len(),
        "delivered {} of {} accepted",
        got.len(),
        accepted.len()
    );
    for body in &accepted {
        assert_eq!(
            got.iter().filter(|g| *g == body).count(),
            1,
            "not once: {}",
            &body[..12]
        );
    }
    eprintln!(
        "disk full: {} accepted before the 503 at message {refused}, recovered at {again:?}, {} delivered",
        before_refusal,
        got.len()
    );
}

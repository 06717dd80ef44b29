//! Linphone (linphone-cli 5.1): the one Debian client that answers SHA-256 digest (RFC 8760).
//! It takes the topmost challenge it supports (MD5 with the server's default order), or the
//! algorithm its account is pinned to.

use crate::{db_bindings, eventually, scratch};
use openline_tests::subject::Subject;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn linphone_answers_sha256_when_the_server_prefers_it() {
    let server =
        Subject::start_with_users(&[("carol@openline.test", "s3cret")], &["--prefer-sha256"]);
    register_with_sha256(&server, 5098, "");
}

#[test]
fn linphone_pinned_to_sha256_registers_with_default_challenges() {
    let server = Subject::start_with_users(&[("carol@openline.test", "s3cret")], &[]);
    register_with_sha256(&server, 5100, "algorithm=SHA-256\n");
}

/// Registers carol from linphonec on `port` (clear of the other peers' ports) and checks on the
/// wire, as linphone logged it, that both algorithms were offered and SHA-256 answered; and in
/// the database that the binding is there.
fn register_with_sha256(server: &Subject, port: u16, auth_extra: &str) {
    let work = scratch("linphone");
    let rc = work.join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_udp_port={port}\nsip_tcp_port=0\nsip_tls_port=0\n\
             register_only_when_network_is_up=0\nauto_net_state_mon=0\ndefault_proxy=0\n\
             [proxy_0]\nreg_proxy=<sip:{}:{};transport=udp>\nreg_identity=sip:carol@openline.test\n\
             reg_expires=600\nreg_sendregister=1\n\
             [auth_info_0]\nusername=carol\npasswd=s3cret\nrealm=openline.test\ndomain=openline.test\n{auth_extra}",
            server.udp.ip(),
            server.udp.port()
        ),
    )
    .unwrap();
    let log = work.join("linphone.log");
    let mut phone = Command::new("timeout")
        .args(["30s", "linphonec", "-c"])
        .arg(&rc)
        .args(["-d", "6", "-l"])
        .arg(&log)
        // Its database and state go to the scratch directory, not the user's home.
        .env("HOME", &work)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start linphonec (linphone-cli is installed by scripts/install-test-deps)");
    let mut control = phone.stdin.take().unwrap();
    // linphonec opens no SIP socket from its configuration alone when there is no sound card
    // and no network monitor: setting the port at its prompt opens it, and it registers.
    std::thread::sleep(Duration::from_millis(500));
    writeln!(control, "ports sip {port}").unwrap();
    let contact = format!("127.0.0.1:{port}");
    let bound = eventually(Duration::from_secs(15), || {
        db_bindings(&server.db)
            .iter()
            .any(|b| b.aor == "carol@openline.test" && b.contact.contains(&contact))
    });
    let _ = writeln!(control, "quit");
    drop(control);
    let _ = phone.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(bound, "linphone did not register:\n{said}");

    // What it sent: the credentials answer the SHA-256 challenge, and it saw both offered.
    let challenges: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("WWW-Authenticate:"))
        .collect();
    assert!(
        challenges.iter().any(|c| c.contains("algorithm=MD5"))
            && challenges.iter().any(|c| c.contains("algorithm=SHA-256")),
        "{challenges:?}"
    );
    let credentials: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("Authorization:"))
        .collect();
    assert!(
        !credentials.is_empty() && credentials.iter().all(|c| c.contains("algorithm=SHA-256")),
        "{credentials:?}"
    );
}

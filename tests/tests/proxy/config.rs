//! The config file: `openline check-config` refuses a mistake naming its file, line and column,
//! and `openline serve` refuses to start on one (its peer table is used on the wire by the
//! Kamailio test).

use openline_tests::subject::{openline_bin, scratch_dir};
use std::process::Command;

#[test]
fn a_config_mistake_is_named_by_file_line_and_column() {
    let dir = scratch_dir("config");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "domains = [\"club-a.test\"]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[peers]\n\"club-b.test\" = \"tls:127.0.0.1:5061\"\n",
    )
    .unwrap();
    let out = Command::new(openline_bin())
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "domains = [\"club-a.test\"]\n\nring_timeout = \"soon\"\n",
    )
    .unwrap();
    for args in [vec!["check-config"], vec!["serve", "--config"]] {
        let out = Command::new(openline_bin())
            .args(&args)
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted a bad file");
        assert!(
            stderr.contains(&format!("{}:3:16:", bad.display())),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_tls_listener_without_a_certificate_is_refused_at_start() {
    let dir = scratch_dir("config-tls");
    let db = format!("sqlite://{}/openline.db", dir.display());
    let out = Command::new(openline_bin())
        .args(["serve", "--listen", "tls:127.0.0.1:0", "--db", &db])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without a certificate");
    assert!(stderr.contains("needs a certificate and key"), "{stderr}");
    // A certificate file that is not there is named.
    let out = Command::new(openline_bin())
        .args(["serve", "--listen", "tls:127.0.0.1:0", "--db", &db])
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
}

#[test]
fn an_address_already_taken_is_named_at_start() {
    let dir = scratch_dir("config-taken");
    let db = format!("sqlite://{}/openline.db", dir.display());
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = format!("udp:{}", taken.local_addr().unwrap());
    let out = Command::new(openline_bin())
        .args(["serve", "--listen", &listen, "--db", &db])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on a taken address");
    assert!(
        stderr.contains(&format!("listening on {listen}: Address already in use")),
        "{stderr}"
    );
}

#[test]
fn the_systemd_unit_verifies_cleanly_and_is_hardened() {
    let dir = scratch_dir("config-unit");
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/openline.service"),
    )
    .unwrap();
    // verify checks that ExecStart's program exists: point it at the one built.
    let path = dir.join("openline.service");
    let bin = openline_bin();
    std::fs::write(
        &path,
        unit.replace("/usr/bin/openline", bin.to_str().unwrap()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (installed by scripts/install-test-deps)");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    // systemd's own exposure score: 0 (locked down) to 10 (exposed); fail above 2.0.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}

#[test]
fn a_database_that_cannot_be_opened_is_one_line_and_a_failed_exit() {
    for db in [
        "sqlite:///nonexistent/dir/openline.db",
        // Nothing listens on port 1: the pool gives up after its time-out, never hangs.
        "postgres://openline@127.0.0.1:1/openline",
    ] {
        let out = Command::new("timeout")
            .arg("60")
            .arg(openline_bin())
            .args(["serve", "--listen", "udp:127.0.0.1:0", "--db", db])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{db}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{db}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: serving: opening the database {db}: ")),
            "{stderr}"
        );
    }
}

#[test]
fn a_node_needs_postgresql_an_address_the_others_reach_and_a_name_of_its_own() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--node",
                "n1",
                "--db",
                "sqlite:///tmp/never.db",
                "--listen",
                "udp:127.0.0.1:0",
            ],
            "--db must be postgres://",
        ),
        (
            &[
                "--node",
                "n1",
                "--db",
                "postgres://x@127.0.0.1:1/x",
                "--listen",
                "udp:0.0.0.0:0",
            ],
            "--node-address udp:IP:PORT",
        ),
        (
            &["--node", "openline", "--db", "postgres://x@127.0.0.1:1/x"],
            "is taken",
        ),
    ];
    for (args, says) in cases {
        let out = Command::new("timeout")
            .arg("20")
            .arg(openline_bin())
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

//! Phones set up from a link (issue #21 item 5), on a LAN: the admin adds a user with
//! `--provision`, Linphone on another segment is given nothing but the link and registers with
//! what it fetched; the link works once, and a used, expired or guessed one gets 404 and is
//! logged.

use super::*;
use openline_tests::certs::TestPki;

/// What `curl` in `ns` gets for `url` (the HTTP status), trusting `ca`.
fn status_in(ns: &Namespace, url: &str, ca: &Path) -> String {
    let out = ns
        .command("timeout")
        .args([
            "10",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The link `openline user add AOR --provision BASE` printed, with `extra` options.
fn link_for(server: &Server, aor: &str, base: &str, extra: &[&str]) -> String {
    let out = std::process::Command::new(openline_tests::subject::openline_bin())
        .args([
            "user",
            "add",
            aor,
            "--password",
            "s3cret",
            "--provision",
            base,
        ])
        .args(["--db", &server.db()])
        .args(extra)
        .output()
        .expect("openline user add");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains('█'), "no QR code:\n{said}");
    assert!(
        said.contains(&format!("<sip:{aor};transport=tcp>;auth_pass=s3cret;")),
        "no baresip line:\n{said}"
    );
    said.lines()
        .find(|l| l.starts_with("https://"))
        .unwrap_or_else(|| panic!("no link:\n{said}"))
        .to_string()
}

#[test]
fn linphone_registers_from_a_one_time_link_and_the_link_works_once() {
    let server_ns = Namespace::new("srv");
    let lan = Namespace::new("lan");
    let link = Link::new(&server_ns, &lan, Family::V4);
    let ip = link.a(false);
    let dir = scratch_dir("provisioning");
    let pki = TestPki::new(&dir);
    let cert = pki.issue_for_address("server", ip);
    let (cert_file, key_file) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let server = Server::start(
        &server_ns,
        &[],
        &[
            "--domain",
            "club-a.test",
            "--web",
            "https:0.0.0.0:8443",
            "--tls-cert",
            &cert_file,
            "--tls-key",
            &key_file,
        ],
    );
    let base = format!("https://{ip}:8443");
    let url = link_for(&server, "carol@club-a.test", &base, &[]);

    // Nothing in its configuration but the link: it registers with the account it fetched,
    // through the address it reached the server at.
    let phone = Linphone::start_provisioned(&lan, &dir.join("carol"), &url, &pki.ca, 5072);
    let log = phone.log();
    assert!(log.contains("sip:carol@club-a.test"), "{log}");
    assert!(log.contains(&format!("{ip}:5060;transport=tcp")), "{log}");
    phone.quit();

    // Once only; an expired link and a guessed one are refused alike, and each is logged.
    assert_eq!(status_in(&lan, &url, &pki.ca), "404");
    let expired = link_for(&server, "dave@club-a.test", &base, &["--valid-hours", "0"]);
    assert_eq!(status_in(&lan, &expired, &pki.ca), "404");
    let guessed = format!("{base}/provision/{}", "0123456789abcdef".repeat(2));
    assert_eq!(status_in(&lan, &guessed, &pki.ca), "404");
    let refused = server.log().matches("provisioning link refused").count();
    assert_eq!(refused, 3, "{}", server.log());
    // The link over plain HTTP is no link at all: nothing answers HTTP on the HTTPS port.
    let plain = format!(
        "http://{ip}:8443/provision/{}",
        "0123456789abcdef".repeat(2)
    );
    assert_ne!(status_in(&lan, &plain, &pki.ca), "200");
}

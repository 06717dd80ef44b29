//! The Debian package (issue #21 item 6): `cargo deb` builds it from the release binary,
//! lintian finds no error in it, and `dpkg -i` puts the server, its unit and a configuration
//! that `openline check-config` passes in place, with a system user; purging removes them.
//! It installs into this machine, so it runs outside the private namespace (whose user
//! namespace maps no group the postinst could give the config to): scripts/test runs it on its
//! own (`test = false` keeps it out of the namespaced `cargo test --workspace`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_tests::subject::scratch_dir;
use std::path::Path;
use std::process::Command;

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .unwrap_or_else(|e| panic!("{program} (scripts/install-test-deps installs it): {e}"));
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

#[test]
fn the_deb_passes_lintian_and_installs_the_server_its_unit_config_and_user() {
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/openline");
    assert!(
        release.exists(),
        "build it first: cargo build --release -p openline-proxy"
    );
    let dir = scratch_dir("deb");
    let deb = dir.join("openline.deb");
    let deb_path = deb.to_str().unwrap();
    let (ok, said) = run(
        "cargo",
        &[
            "deb",
            "-p",
            "openline-proxy",
            "--no-build",
            "--strip",
            "--output",
            deb_path,
        ],
    );
    assert!(ok, "cargo deb: {said}");
    let (_, listing) = run("dpkg-deb", &["-c", deb_path]);
    for path in [
        "./usr/bin/openline",
        "./etc/openline/openline.toml",
        "./usr/lib/systemd/system/openline.service",
    ] {
        assert!(listing.contains(path), "{path} missing:\n{listing}");
    }
    let (_, lint) = run("lintian", &[deb_path]);
    let errors: Vec<&str> = lint.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian:\n{lint}");

    let (ok, said) = run("dpkg", &["-i", deb_path]);
    assert!(ok, "dpkg -i: {said}");
    let (ok, said) = run(
        "/usr/bin/openline",
        &["check-config", "/etc/openline/openline.toml"],
    );
    assert!(ok && said.contains(": ok"), "{said}");
    let (ok, user) = run("getent", &["passwd", "openline"]);
    assert!(ok && user.contains("/usr/sbin/nologin"), "{user}");
    let (ok, said) = run("stat", &["-c", "%G %a", "/etc/openline/openline.toml"]);
    assert!(ok && said.trim() == "openline 640", "{said}");
    let (ok, said) = run("dpkg", &["--purge", "openline"]);
    assert!(ok, "dpkg --purge: {said}");
    assert!(!Path::new("/usr/bin/openline").exists());
}

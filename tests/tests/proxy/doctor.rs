//! `openline doctor` (issue #21 item 3): a running server's listeners answer, a listener on an
//! address this machine lacks and a port another program holds are named with their fix, a
//! certificate that does not name the domain is refused, and the exit status says so.

use openline_tests::certs::TestPki;
use openline_tests::subject::{Subject, openline_bin, scratch_dir};
use std::process::Output;

fn doctor(args: &[&str]) -> (Option<i32>, String) {
    let out: Output = std::process::Command::new(openline_bin())
        .arg("doctor")
        .args(args)
        .output()
        .expect("openline doctor");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), said)
}

#[test]
fn doctor_finds_the_running_server_and_names_what_is_broken_with_its_fix() {
    let server = Subject::start(&["--domain", "openline.test"]);
    let (udp, tcp) = (format!("udp:{}", server.udp), format!("tcp:{}", server.tcp));
    let mine = [
        "--domain",
        "openline.test",
        "--db",
        &server.db,
        "--listen",
        &udp,
        "--listen",
        &tcp,
        "--media",
        "never",
    ];
    let (code, said) = doctor(&mine);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("is running"), "{said}");
    assert!(
        said.contains(&format!("{udp} answers OPTIONS on 127.0.0.1")),
        "{said}"
    );
    assert!(
        said.contains(&format!("{tcp} accepts connections on 127.0.0.1")),
        "{said}"
    );
    assert!(!said.contains("FAIL"), "{said}");

    // Not this machine's address; a port held by another program (no server at this db).
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let held_spec = format!("udp:{}", held.local_addr().unwrap());
    let dir = scratch_dir("doctor");
    let db = format!("sqlite://{}/none.db", dir.display());
    let (code, said) = doctor(&[
        "--domain",
        "openline.test",
        "--db",
        &db,
        "--media",
        "never",
        "--listen",
        "udp:198.51.100.9:5060",
        "--listen",
        &held_spec,
    ]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "FAIL listen  udp:198.51.100.9:5060: this machine has no address 198.51.100.9"
        ),
        "{said}"
    );
    assert!(
        said.contains(&format!("FAIL listen  {held_spec} cannot be bound")),
        "{said}"
    );
    assert!(said.contains("fix: another program holds it"), "{said}");
    assert!(said.contains("does not exist yet"), "{said}");

    // A certificate for another domain, as JSON.
    let pki = TestPki::new(&dir);
    let cert = pki.issue("elsewhere", &["elsewhere.test"]);
    let tls = pki.serve_args(&cert);
    let mut args = vec![
        "--domain",
        "openline.test",
        "--db",
        &db,
        "--media",
        "never",
        "--listen",
        "udp:127.0.0.1:0",
        "--json",
    ];
    args.extend(tls.iter().map(String::as_str));
    let (code, said) = doctor(&args);
    assert_eq!(code, Some(1), "{said}");
    let findings: serde_json::Value = serde_json::from_str(said.trim()).expect(&said);
    let tls_fail = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "tls")
        .expect(&said);
    assert_eq!(tls_fail["level"], "fail", "{said}");
    assert!(
        tls_fail["says"]
            .as_str()
            .unwrap()
            .contains("does not name openline.test"),
        "{said}"
    );
    drop(held);
    drop(server);
}

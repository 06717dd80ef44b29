//! Kamailio (Debian package) serves a third domain, club-c.test, beside openline's club-a.test:
//! an openline user calls a Kamailio user and a Kamailio user calls an openline user, each
//! registered at their own server, with SIPp at both ends.

use crate::sipp::{Callee, call_callee};
use openline_tests::subject::{Subject, scratch_dir};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kamailio with tests/peers/kamailio/federation.cfg on udp 127.0.0.1:5070, stopped on drop.
struct Kamailio(Child);

impl Kamailio {
    fn start(dir: &std::path::Path) -> Kamailio {
        let cfg =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kamailio/federation.cfg");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-w"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap())
            .spawn()
            .expect("start kamailio (installed by scripts/install-test-deps)");
        // Kamailio answers about half a second after it starts.
        std::thread::sleep(Duration::from_millis(1500));
        Kamailio(child)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to the main process: it stops its children.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

#[test]
fn openline_and_kamailio_users_call_each_other() {
    let dir = scratch_dir("proxy-kamailio");
    let kamailio = Kamailio::start(&dir);
    let kamailio_addr = "127.0.0.1:5070";
    // Openline listens on 5072 as well: Kamailio's config sends club-a.test there. Its peer
    // table comes from a config file; the command line adds what the Subject needs.
    let config = dir.join("openline.toml");
    std::fs::write(
        &config,
        "domains = [\"club-a.test\"]\n\n[peers]\n\"club-c.test\" = \"udp:127.0.0.1:5070\"\n",
    )
    .unwrap();
    let openline = Subject::start_with_users(
        &[
            ("alice@club-a.test", "s3cret"),
            ("dave@club-a.test", "s3cret"),
        ],
        &[
            "--config",
            config.to_str().unwrap(),
            "--domain",
            "club-a.test",
            "--listen",
            "udp:127.0.0.1:5072",
        ],
    );

    // alice@club-a.test (authenticating to openline) calls bob@club-c.test at Kamailio.
    let openline_addr = openline.udp.to_string();
    let bob = Callee {
        registrar: kamailio_addr,
        user: "bob",
        domain: "club-c.test",
        port: 5183,
    };
    let calls = call_callee(
        &dir,
        "to-kamailio",
        bob,
        (&openline_addr, "uac-auth.xml"),
        ("alice", "club-a.test"),
        5,
    );
    assert_eq!(calls.0, Some(5), "{}", calls.1);

    // carol@club-c.test calls dave@club-a.test: Kamailio relays to openline, which rings dave.
    let dave = Callee {
        registrar: &openline_addr,
        user: "dave",
        domain: "club-a.test",
        port: 5180,
    };
    let calls = call_callee(
        &dir,
        "from-kamailio",
        dave,
        (kamailio_addr, "uac-call.xml"),
        ("carol", "club-c.test"),
        5,
    );
    drop(kamailio);
    assert_eq!(calls.0, Some(5), "{}", calls.1);
}

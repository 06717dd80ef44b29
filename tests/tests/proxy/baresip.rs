//! baresip calls baresip through openline (../shared/peers/baresip): both register, alice is
//! challenged for her INVITE (407) and answers it, bob's phone rings, he accepts, alice hangs up.

use openline_tests::subject::{Subject, scratch_dir};
use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// One baresip UA driven through its stdin; its output goes to `log`.
struct Ua {
    child: Child,
    control: ChildStdin,
    log: PathBuf,
}

impl Ua {
    fn start(server: &Subject, account: &str, port: u16, log: PathBuf) -> Ua {
        let wrapper = openline_tests::corpora().join("../peers/baresip/baresip-ua");
        let mut child = Command::new(wrapper)
            .args([
                account,
                "s3cret",
                &server.udp.to_string(),
                &port.to_string(),
                "-",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            // Its own process group: the wrapper and baresip end together.
            .process_group(0)
            .spawn()
            .expect("start baresip-ua (baresip-core is installed by scripts/install-test-deps)");
        let control = child.stdin.take().unwrap();
        let ua = Ua {
            child,
            control,
            log,
        };
        ua.wait_for(&format!("{account}: {{0/UDP/v4}} 200 OK"));
        ua
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, text: &str) {
        let tries = 100;
        for _ in 0..tries {
            if self.said().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} never said {text:?}:\n{}",
            self.log.display(),
            self.said()
        );
    }

    fn command(&mut self, line: &str) {
        writeln!(self.control, "{line}").unwrap();
    }

    fn quit(mut self) {
        let _ = writeln!(self.control, "/quit");
        for _ in 0..50 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn log(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

#[test]
fn baresip_calls_baresip_through_the_proxy() {
    let server = Subject::start_with_users(
        &[
            ("alice@openline.test", "s3cret"),
            ("bob@openline.test", "s3cret"),
        ],
        &[],
    );
    let dir = scratch_dir("proxy-baresip");
    let mut alice = Ua::start(&server, "alice@openline.test", 5196, log(&dir, "alice"));
    let mut bob = Ua::start(&server, "bob@openline.test", 5198, log(&dir, "bob"));

    alice.command("/dial sip:bob@openline.test");
    bob.wait_for("Incoming call from:");
    bob.command("/accept");
    alice.wait_for("Call established: sip:bob@openline.test");
    bob.wait_for("Call established:");
    std::thread::sleep(Duration::from_millis(500));
    alice.command("/hangup");
    // The BYE follows the route set through the proxy to bob (baresip 1.0.0 reports a BYE
    // received as the session closing with ECONNRESET).
    bob.wait_for("sip:alice@openline.test: session closed: Connection reset by peer");
    assert!(
        !alice.said().contains("session closed:"),
        "alice's side saw an error:\n{}",
        alice.said()
    );
    alice.quit();
    bob.quit();
}

//! baresip calls baresip through openline (tests/peers/baresip): both register, alice is
//! challenged for her INVITE (407) and answers it, bob's phone rings, he accepts, alice hangs up.

use openline_tests::baresip::Ua;
use openline_tests::subject::{Subject, scratch_dir};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let mut alice = Ua::start(
        server.udp,
        "alice@openline.test",
        5196,
        log(&dir, "alice"),
        &[],
    );
    let mut bob = Ua::start(server.udp, "bob@openline.test", 5198, log(&dir, "bob"), &[]);

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

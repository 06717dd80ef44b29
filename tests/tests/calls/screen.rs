//! The full-screen tui-phone driven in tmux (send-keys, capture-pane): it registers, adds a
//! contact (shown online), sends a message and places a call that a headless phone answers, and what the
//! screen shows is asserted; started again, it shows the conversation it kept.

use super::*;
use std::process::Command;
use std::time::Instant;

/// A tmux server of its own (its socket named for this test) running one full-screen phone.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(socket: &str, phone: &[String]) -> Tmux {
        let t = Tmux {
            socket: socket.to_string(),
        };
        let status = Command::new("tmux")
            .args([
                "-L",
                socket,
                "new-session",
                "-d",
                "-s",
                "phone",
                "-x",
                "120",
                "-y",
                "30",
            ])
            .args(phone)
            .status()
            .expect("run tmux (installed by scripts/install-test-deps)");
        assert!(status.success());
        t
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "phone"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `text` and Enter.
    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "phone"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`, up to 10 s.
    fn shows(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the session (the phone) has ended, within 10 s.
    fn ended(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let alive = Command::new("tmux")
                .args(["-L", &self.socket, "has-session", "-t", "phone"])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn the_screen_sends_a_message_places_a_call_and_keeps_the_conversation() {
    let server = Subject::start_with_users(&users(), &[]);
    let dir = scratch_dir("calls-screen");
    let mut bob = phone("bob@openline.test", &server, &dir, (None, None));
    let alice_cmd: Vec<String> = [
        "timeout",
        "60",
        openline_tests::subject::workspace_bin("tui-phone")
            .to_str()
            .unwrap(),
        "--account",
        "alice@openline.test",
        "--password",
        "pw-a",
        &format!("--proxy=udp:{}", server.udp),
        "--data-dir",
        dir.join("alice").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let socket = format!("openline-screen-{}", std::process::id());
    let tmux = Tmux::start(&socket, &alice_cmd);
    tmux.shows("alice@openline.test - registered (");
    tmux.shows("F5 call");

    tmux.line("/add bob@openline.test");
    // The contact list shows bob online (+): the screen watches its contacts' presence.
    tmux.shows("+ bob@openline.test");
    tmux.line("hello from the screen");
    let got = bob.expect("message", WAIT);
    assert!(got.contains("hello from the screen"), "{got}");
    let shown = tmux.shows("delivered to sip:bob@openline.test");
    assert!(shown.contains("me: hello from the screen"), "{shown}");
    bob.command("msg alice@openline.test hello back");
    tmux.shows("them: hello back");

    tmux.keys(&["F5"]);
    bob.expect("incoming_call", WAIT);
    tmux.shows("Call: sip:bob@openline.test - ringing");
    bob.command("answer");
    let shown = tmux.shows("Call: sip:bob@openline.test - established");
    assert!(shown.contains("[opus, SRTP]"), "{shown}");
    tmux.shows("established 0:02");
    tmux.keys(&["F7"]);
    bob.expect("call_ended", WAIT);
    tmux.shows("No call");

    tmux.line("/quit");
    assert!(tmux.ended(), "the phone quits:\n{}", tmux.screen());
    drop(tmux);

    // Started again on the same data: the conversation is there.
    let tmux = Tmux::start(&socket, &alice_cmd);
    let shown = tmux.shows("me: hello from the screen");
    assert!(shown.contains("them: hello back"), "{shown}");
}

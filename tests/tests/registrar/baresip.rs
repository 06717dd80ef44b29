//! baresip (a real softphone) registering with a password, as an RFC 5626 outbound device.

use crate::{db_bindings, eventually, scratch};
use openline_tests::subject::Subject;
use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start_baresip(server: &Subject, dir: &Path, port: u16, log: &Path) -> Child {
    let ua = openline_tests::repo_file("tests/peers/baresip/baresip-ua");
    let child = Command::new(ua)
        .args([
            "bob@openline.test",
            "s3cret",
            &server.udp.to_string(),
            &port.to_string(),
            "-",
            "-",
        ])
        .env("DIR", dir)
        .env("EXTRA", ";sipnat=outbound")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        // Its own process group: the wrapper script and baresip die together.
        .process_group(0)
        .spawn();
    let child =
        child.expect("start baresip-ua (baresip-core is installed by scripts/install-test-deps)");
    let registered = eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("bob@openline.test: {1/UDP/v4} 200 OK")
    });
    assert!(
        registered,
        "baresip did not register:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}

#[test]
fn baresip_registers_and_its_device_keeps_one_binding() {
    let server = Subject::start_with_users(&[("bob@openline.test", "s3cret")], &[]);
    let work = scratch("baresip");
    let profile = work.join("profile");
    let mut phone = start_baresip(&server, &profile, 5094, &work.join("first.log"));
    let bindings = db_bindings(&server.db);
    assert_eq!(bindings.len(), 1);
    let instance = bindings[0]
        .instance
        .clone()
        .expect("baresip sends +sip.instance with sipnat=outbound");
    assert_eq!(bindings[0].reg_id, Some(1));
    assert!(
        bindings[0].contact.contains("127.0.0.1:5094"),
        "{}",
        bindings[0].contact
    );

    // The phone crashes (no un-REGISTER) and comes back on another port: same device, one binding.
    let group = format!("-{}", phone.id());
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    phone.wait().unwrap();
    // The wrapper's control FIFO outlives the crash; the profile's uuid (the device) is kept.
    let _ = std::fs::remove_file(profile.join("ctl"));
    let mut phone = start_baresip(&server, &profile, 5096, &work.join("second.log"));
    let bindings = db_bindings(&server.db);
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].instance.as_deref(), Some(instance.as_str()));
    assert!(
        bindings[0].contact.contains("127.0.0.1:5096"),
        "{}",
        bindings[0].contact
    );

    // /quit un-registers (Expires: 0, challenged and answered again).
    phone.stdin.as_mut().unwrap().write_all(b"/quit\n").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || db_bindings(&server.db)
            .is_empty()),
        "un-REGISTER removed the binding"
    );
    let _ = phone.wait();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", phone.id())])
        .status();
    let _ = std::fs::remove_dir_all(work);
}

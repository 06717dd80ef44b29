//! Calls for a sleeping phone (RFC 8599 section 6.1): the INVITE pushes the phone and waits;
//! the phone (SIPp) registers only once pushed, from a new address with the same instance,
//! and the call rings through to it there; a phone that never wakes leaves the caller a 480
//! after the wait; a caller who hangs up first hears 487, and the phone a second push that
//! stops its ringing.

// The caller runs beside the phone on a thread of its own, and the wait is timed coarsely.
#![allow(clippy::disallowed_methods)]

use super::*;
use openline_tests::media::free_udp_addr;
use openline_tests::push_device::WebPushDevice;
use openline_tests::push_service::{Answer, PushService, Request};
use std::sync::Arc;

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-00000000b0b1";

struct Setup {
    dir: std::path::PathBuf,
    service: PushService,
    server: Subject,
    keys: WebPushDevice,
    /// bob's push parameters, as his contact carries them.
    params: String,
}

/// A server waiting `wait` seconds for pushed phones, a distributor, and bob's phone
/// registered once with its push parameters and gone to sleep (its socket closed).
fn sleeping_bob(what: &str, wait: u64) -> Setup {
    let dir = scratch(what);
    let service = PushService::http(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(|_: &Request| Answer::new(201, "")),
    );
    let config = format!(
        "[push]\nwait = {wait}\nallow_private = true\n[push.webpush]\nvapid_key = \"{}\"\nsubject = \"mailto:admin@openline.test\"\n",
        dir.join("vapid.pem").display()
    );
    let server = server_with(&dir, &config);
    let keys = WebPushDevice::new();
    let params = format!(
        ";pn-provider=webpush;pn-prid={}/up/bob;pn-param={}",
        service.base,
        keys.pn_param()
    );
    let mut bob = phone("bob", &server);
    bob.instance = INSTANCE.to_string();
    bob.set_contact_params(&params);
    assert_eq!(bob.register(3600), 200);
    drop(bob);
    Setup {
        dir,
        service,
        server,
        keys,
        params,
    }
}

/// alice calls bob with `scenario` in the background; SIPp's output when it ends.
fn alice_calls(setup: &Setup, scenario: &str) -> std::thread::JoinHandle<std::process::Output> {
    let (server, scenario) = (setup.server.udp, scenario.to_string());
    let dir = setup.dir.join("alice");
    std::fs::create_dir_all(&dir).unwrap();
    std::thread::spawn(move || {
        openline_tests::sipp::call(
            &dir,
            server,
            &scenario,
            ("alice", DOMAIN, &password("alice")),
            ("bob", DOMAIN),
            Duration::from_secs(60),
        )
    })
}

/// The decrypted payloads of the pushes so far.
fn payloads(setup: &Setup, pushes: &[Request]) -> Vec<serde_json::Value> {
    pushes
        .iter()
        .map(|p| {
            let plain = setup.keys.decrypt(&p.body).expect("decrypts");
            serde_json::from_slice(&plain).expect("JSON")
        })
        .collect()
}

/// bob's phone, awake: answers one call on `port` (copying Record-Route, as RFC 3261 asks),
/// bounded in time, its messages traced in `dir`.
fn answering_phone(dir: &Path, port: u16) -> openline_tests::Background {
    let scenario = openline_tests::repo_file("bench/reference/signaling/scenarios/uas_call.xml");
    let child = std::process::Command::new("timeout")
        .args(["60", "sipp", "-sf"])
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-nostdin", "-trace_msg"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sipp (sip-tester is installed by scripts/install-test-deps)");
    openline_tests::Background(child)
}

fn succeeded(out: &std::process::Output) -> bool {
    out.status.success()
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_pushed_phone_registers_from_a_new_address_and_the_call_rings_through() {
    let setup = sleeping_bob("push-call", 20);
    let first_port = db_bindings(&setup.server.db)[0].contact.clone();
    let alice = alice_calls(&setup, "uac-auth.xml");

    let pushes = setup.service.wait_for(1, ARRIVES);
    let call = &payloads(&setup, &pushes)[0];
    assert_eq!(call["openline"], "call", "{call}");
    assert_eq!(call["loc-key"], "IC_MSG");
    assert_eq!(call["from-uri"], "sip:alice@openline.test");
    let call_id = call["call-id"].as_str().expect("the Call-ID").to_string();
    assert_eq!(pushes[0].header("urgency"), Some("high"));
    assert_eq!(pushes[0].header("ttl"), Some("30"));

    // Woken: the phone comes up on a new port, registers, and takes the call there.
    let bob_dir = setup.dir.join("bob");
    std::fs::create_dir_all(&bob_dir).unwrap();
    let port = free_udp_addr().port();
    let mut bob = answering_phone(&bob_dir, port);
    let contact = format!("sip:bob@127.0.0.1:{port}{}", setup.params);
    let register = openline_tests::sipp::scenario("register-device.xml");
    let registered = openline_tests::run_peer(
        &bob_dir,
        "sipp",
        [
            setup.server.udp.to_string().as_str(),
            "-sf",
            register.to_str().unwrap(),
            "-s",
            "bob",
            "-key",
            "domain",
            DOMAIN,
            "-key",
            "pw",
            &password("bob"),
            "-key",
            "contact",
            &contact,
            "-key",
            "instance",
            INSTANCE,
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &free_udp_addr().port().to_string(),
            "-nostdin",
        ],
        Duration::from_secs(20),
    );
    assert!(
        succeeded(&registered),
        "bob registers: {}",
        said(&registered)
    );
    let alice = alice.join().unwrap();
    assert!(succeeded(&alice), "alice: {}", said(&alice));
    let answered = bob.0.wait().unwrap();
    assert!(answered.success(), "bob's phone took one call");
    let trace = std::fs::read_dir(&bob_dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("bob's message trace");
    assert!(
        trace.contains(&format!("Call-ID: {call_id}")),
        "the INVITE bob got is the call he was pushed for"
    );

    // One binding for bob's phone, at its new address: nothing rings the old one.
    let bindings = db_bindings(&setup.server.db);
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert!(
        bindings[0].contact.contains(&format!(":{port};")),
        "{} (was {first_port})",
        bindings[0].contact
    );
    std::thread::sleep(QUIET);
    assert_eq!(
        setup.service.requests().len(),
        1,
        "answered by the pushed phone: no call-ended push"
    );
}

#[test]
fn a_phone_that_never_wakes_leaves_the_caller_a_480_after_the_wait() {
    let setup = sleeping_bob("push-call-480", 3);
    let started = std::time::Instant::now();
    let alice = alice_calls(&setup, "uac-auth-unanswered.xml")
        .join()
        .unwrap();
    let waited = started.elapsed();
    assert!(succeeded(&alice), "alice: {}", said(&alice));
    assert!(
        waited >= Duration::from_millis(2500),
        "480 after the wait, not before: {waited:?}"
    );
    let pushes = setup.service.wait_for(2, ARRIVES);
    let kinds: Vec<_> = payloads(&setup, &pushes)
        .iter()
        .map(|p| p["openline"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["call", "call-ended"],
        "the second push stops the ringing"
    );
}

#[test]
fn a_cancel_before_the_phone_wakes_stops_the_push_ringing() {
    let setup = sleeping_bob("push-call-cancel", 20);
    let started = std::time::Instant::now();
    let alice = alice_calls(&setup, "uac-auth-cancel.xml").join().unwrap();
    assert!(succeeded(&alice), "alice: {}", said(&alice));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "487 at the CANCEL, not the wait's end"
    );
    let pushes = setup.service.wait_for(2, ARRIVES);
    let payloads = payloads(&setup, &pushes);
    let kinds: Vec<_> = payloads
        .iter()
        .map(|p| p["openline"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["call", "call-ended"]);
    assert_eq!(
        payloads[0]["call-id"], payloads[1]["call-id"],
        "the same call"
    );
    assert_eq!(payloads[1]["loc-key"], "IC_END");
}

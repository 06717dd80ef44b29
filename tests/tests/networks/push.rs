//! A mobile that sleeps behind a NAT (issue #22): bob's Linphone registers over UDP through
//! the NAT with Web Push parameters, then quits, as a phone's app does when put away. alice
//! calls from the LAN; the server pushes (to a distributor standing in on its network), bob's
//! app comes back on another port (a new NAT mapping), registers, and the call rings through
//! to it there, with audio.

use super::*;
use openline_tests::push_device::WebPushDevice;
use openline_tests::push_service::{Answer, PushService, Request};
use std::sync::Arc;

/// The phone's device id, as Linphone keeps it (`+sip.instance` is `<urn:uuid:UUID>`).
const UUID: &str = "00000000-0000-4000-8000-0000000b0b22";

#[test]
fn a_sleeping_phone_behind_a_nat_is_pushed_and_takes_the_call_on_its_new_mapping() {
    let server_ns = Namespace::new("server");
    let router = Namespace::new("router");
    let mobile = Namespace::new("mobile");
    let lan = Namespace::new("lan");
    let wan = Link::new(&server_ns, &router, Family::V4);
    let mobile_link = Link::new(&router, &mobile, Family::V4);
    let lan_link = Link::new(&server_ns, &lan, Family::V4);
    router.forward();
    router.masquerade(&wan.interfaces.1, false);
    mobile.route_default(mobile_link.a(false));

    let dir = scratch_dir("push-nat");
    let service = PushService::http_in(
        &server_ns.path(),
        Arc::new(|_: &Request| Answer::new(201, "")),
    );
    let config = dir.join("openline.toml");
    std::fs::write(
        &config,
        format!(
            "[push]\nwait = 20\nallow_private = true\n[push.webpush]\nvapid_key = \"{}\"\nsubject = \"mailto:admin@club-a.test\"\n",
            dir.join("vapid.pem").display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &server_ns,
        &USERS,
        &[
            "--domain",
            "club-a.test",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let keys = WebPushDevice::new();
    let account = format!(
        "contact_uri_parameters=pn-provider=webpush;pn-prid={}/up/bob;pn-param={}\npush_notification_allowed=0\n",
        service.base,
        keys.pn_param()
    );
    let sections = format!("[misc]\nuuid={UUID}\n");
    let at = SocketAddr::new(wan.a(false), 5060);
    let bob_heard = dir.join("bob-heard.wav");
    let bob_tone = dir.join("bob-tone.wav");
    tone_wav(&bob_tone, 440.0, 60);
    let bob_setup = |port| Setup {
        account: "bob@club-a.test",
        password: "s3cret",
        server: at,
        transport: "udp",
        port,
        play: Some(&bob_tone),
        record: Some(&bob_heard),
    };
    let bob_dir = dir.join("bob");
    let bob = Linphone::start_with(
        &mobile,
        &bob_dir,
        &bob_setup(5421),
        (&account, &sections),
        false,
    );
    bob.quit();

    let tone = dir.join("tone.wav");
    tone_wav(&tone, 880.0, 60);
    let alice_heard = dir.join("alice-heard.wav");
    let mut alice = Linphone::start(
        &lan,
        &dir.join("alice"),
        &Setup {
            account: "alice@club-a.test",
            password: "s3cret",
            server: SocketAddr::new(lan_link.a(false), 5060),
            transport: "udp",
            port: 5423,
            play: Some(&tone),
            record: Some(&alice_heard),
        },
    );
    alice.command("call sip:bob@club-a.test");

    let pushes = service.wait_for(1, WAIT);
    let push = pushes.first().expect("bob's phone is pushed");
    let payload: serde_json::Value =
        serde_json::from_slice(&keys.decrypt(&push.body).expect("decrypts")).unwrap();
    assert_eq!(payload["openline"], "call", "{payload}");

    // The app wakes on another port: a new mapping at the NAT.
    let mut bob = Linphone::start_with(
        &mobile,
        &bob_dir,
        &bob_setup(5425),
        (&account, &sections),
        true,
    );
    bob.wait_for(
        "Receiving new incoming call from sip:alice@club-a.test",
        WAIT,
    );
    bob.command("answer");
    alice.wait_for_nth("connected.", 1, WAIT);
    std::thread::sleep(Duration::from_secs(4));
    bob.command("terminate");
    alice.wait_for_nth("ended", 1, WAIT);
    bob.quit();
    alice.quit();
    assert_hears(&bob_heard, 880.0, "bob, woken behind the NAT");
    assert_hears(&alice_heard, 440.0, "alice, calling bob behind the NAT");

    let log = server.log();
    assert!(log.contains("pushed device registered"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_eq!(service.requests().len(), 1, "answered: no call-ended push");
}

//! Messages for a sleeping phone: stored, one Web Push per device however many arrive until it
//! registers (VAPID signed, encrypted to the device, no text unless the operator allows it),
//! delivered when it registers; a subscription the service calls gone is forgotten.

use super::*;
use openline_tests::push_device::{WebPushDevice, vapid};
use openline_tests::push_service::{Answer, PushService, Request};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

/// A UnifiedPush distributor on the LAN (plain HTTP), answering each push with `status`.
fn distributor(status: Arc<AtomicU16>) -> PushService {
    PushService::http(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(move |_: &Request| Answer::new(status.load(Ordering::Relaxed), "")),
    )
}

fn webpush_config(dir: &Path, extra: &str) -> String {
    format!(
        "[push]\nallow_private = true\n{extra}\n[push.webpush]\nvapid_key = \"{}\"\nsubject = \"mailto:admin@openline.test\"\n",
        dir.join("vapid.pem").display()
    )
}

/// bob's phone subscribed at `service` with `keys`, registered over UDP (nothing says it is
/// awake: RFC 8599 pushes it first).
fn sleeping_phone(server: &Subject, service: &PushService, keys: &WebPushDevice) -> Phone {
    let mut bob = phone("bob", server);
    bob.set_contact_params(&format!(
        ";pn-provider=webpush;pn-prid={}/up/bob;pn-param={}",
        service.base,
        keys.pn_param()
    ));
    assert_eq!(bob.register(3600), 200);
    bob
}

/// The decrypted payload of a Web Push request, as JSON.
fn payload(keys: &WebPushDevice, push: &Request) -> serde_json::Value {
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    let plain = keys
        .decrypt(&push.body)
        .expect("decrypts with the device's keys");
    serde_json::from_slice(&plain).expect("a JSON payload")
}

#[test]
fn one_push_for_many_messages_then_delivered_on_register() {
    let dir = scratch("push-messages");
    let status = Arc::new(AtomicU16::new(201));
    let service = distributor(Arc::clone(&status));
    let server = server_with(&dir, &webpush_config(&dir, ""));
    let keys = WebPushDevice::new();
    let mut bob = sleeping_phone(&server, &service, &keys);
    let mut alice = phone("alice", &server);

    assert_eq!(alice.message("bob@openline.test", "first secret"), 202);
    assert_eq!(alice.message("bob@openline.test", "second secret"), 202);
    let pushes = service.wait_for(1, ARRIVES);
    assert_eq!(pushes.len(), 1, "one push for the first message");
    std::thread::sleep(QUIET);
    assert_eq!(
        service.requests().len(),
        1,
        "the second is collapsed into it"
    );
    assert!(
        bob.messages(1, Duration::from_millis(10)).is_empty(),
        "nothing before it wakes"
    );

    let push = &pushes[0];
    assert_eq!(
        (push.method.as_str(), push.path.as_str()),
        ("POST", "/up/bob")
    );
    assert_eq!(push.header("ttl"), Some("86400"));
    assert_eq!(push.header("urgency"), Some("normal"));
    assert!(push.header("topic").is_some_and(|t| t.len() <= 32));
    let (key, claims) = vapid(push).expect("VAPID verifies");
    let vapid_file = std::fs::read_to_string(dir.join("vapid.pem")).unwrap();
    assert_eq!(
        openline_tests::push_device::p256_public_key(&vapid_file),
        base64url(&key),
        "signed with the server's VAPID key"
    );
    assert_eq!(
        claims["aud"],
        service.base.as_str(),
        "the endpoint's origin"
    );
    assert_eq!(claims["sub"], "mailto:admin@openline.test");
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp > wall() && exp <= wall() + 24 * 3600, "exp {exp}");
    let json = payload(&keys, push);
    assert_eq!(json["openline"], "message");
    assert_eq!(json["to-uri"], "sip:bob@openline.test");
    assert_eq!(json["from-uri"], "sip:alice@openline.test");
    assert_eq!(
        json.get("text"),
        None,
        "no text unless the operator allows it"
    );
    assert!(!json.to_string().contains("secret"), "{json}");

    // Woken, the phone registers and gets both, in order.
    assert_eq!(bob.register(3600), 200);
    let got = bob.messages(2, ARRIVES);
    let bodies: Vec<String> = got.iter().map(|m| m.body()).collect();
    assert_eq!(bodies, ["first secret", "second secret"]);

    // Asleep again: the next message is worth a push again; the service says the
    // subscription is gone, and the binding goes with it.
    status.store(410, Ordering::Relaxed);
    assert_eq!(alice.message("bob@openline.test", "third"), 202);
    assert_eq!(
        service.wait_for(2, ARRIVES).len(),
        2,
        "a new push after it registered"
    );
    assert!(
        openline_tests::eventually(ARRIVES, || db_bindings(&server.db).is_empty()),
        "410: the binding is removed"
    );
    assert_eq!(
        alice.message("bob@openline.test", "fourth"),
        202,
        "still stored"
    );
    std::thread::sleep(QUIET);
    assert_eq!(service.requests().len(), 2, "no binding, no push");
}

/// The operator allows text and hides senders: the payload says so.
#[test]
fn text_only_when_the_operator_allows_it() {
    let dir = scratch("push-message-text");
    let service = distributor(Arc::new(AtomicU16::new(201)));
    let server = server_with(
        &dir,
        &webpush_config(&dir, "message_text = true\nsender = false"),
    );
    let keys = WebPushDevice::new();
    let _bob = sleeping_phone(&server, &service, &keys);
    let mut alice = phone("alice", &server);
    assert_eq!(alice.message("bob@openline.test", "lunch at noon?"), 202);
    let pushes = service.wait_for(1, ARRIVES);
    let json = payload(&keys, pushes.first().expect("a push"));
    assert_eq!(json["text"], "lunch at noon?");
    assert_eq!(json.get("from-uri"), None, "sender = false");
}

fn base64url(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// A push service that takes connections and never answers: each push costs one bounded
/// exchange (`[push] timeout`), the SIP side answers as ever, and once the exchange has
/// timed out the next message is worth a push again.
#[test]
#[allow(clippy::disallowed_methods)] // the hung service holds its connections on a thread
fn a_service_that_hangs_costs_a_bounded_exchange_not_the_sip_loop() {
    let dir = scratch("push-hangs");
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", hung.local_addr().unwrap());
    let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in hung.incoming().take(8).flatten() {
            held.lock().unwrap().push(stream);
        }
    });
    let server = server_with(&dir, &webpush_config(&dir, "timeout = 1"));
    let keys = WebPushDevice::new();
    let mut bob = phone("bob", &server);
    bob.set_contact_params(&format!(
        ";pn-provider=webpush;pn-prid={base}/up/bob;pn-param={}",
        keys.pn_param()
    ));
    assert_eq!(bob.register(3600), 200);
    let mut alice = phone("alice", &server);
    assert_eq!(alice.message("bob@openline.test", "one"), 202);
    assert!(openline_tests::eventually(ARRIVES, || connections
        .lock()
        .unwrap()
        .len()
        == 1));
    // While the push hangs, the server answers.
    assert_eq!(
        alice.message("bob@openline.test", "two"),
        202,
        "collapsed, answered"
    );
    assert_eq!(server_options(&server), Some(200), "the SIP loop goes on");
    // After the timeout the exchange is given up: a new message pushes again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(connections.lock().unwrap().len(), 1, "two was collapsed");
    assert_eq!(alice.message("bob@openline.test", "three"), 202);
    assert!(
        openline_tests::eventually(ARRIVES, || connections.lock().unwrap().len() == 2),
        "a second push after the first timed out"
    );
}

fn server_options(server: &Subject) -> Option<u16> {
    openline_tests::wire::udp_options_status(server.udp, "push-hangs-options")
}

//! Google's and Apple's push services, stood in for over TLS: FCM gets an RS256-signed grant
//! for its access token (fetched once, then reused), then a data message; APNs gets an HTTP/2
//! POST with an ES256 provider token, the right topic and push type; Apple's 410 forgets the
//! binding.

use super::*;
use openline_tests::certs::TestPki;
use openline_tests::push_device::{p256_public_key, rsa_public_key, verify_jwt};
use openline_tests::push_service::{Answer, PushService, Request};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

/// One TLS server at 127.0.0.1 standing for both Google and Apple; APNs answers `apns`.
fn google_and_apple(pki: &TestPki, apns: Arc<AtomicU16>) -> PushService {
    let cert = pki.issue_for_address("push-services", "127.0.0.1".parse().unwrap());
    PushService::https(
        "127.0.0.1:0".parse().unwrap(),
        (&cert.cert, &cert.key),
        "127.0.0.1",
        Arc::new(move |r: &Request| match r.path.as_str() {
            "/token" => Answer::new(200, r#"{"access_token":"ya29.stand-in","expires_in":3600}"#),
            p if p.starts_with("/v1/projects/") => {
                Answer::new(200, r#"{"name":"projects/club-project/messages/1"}"#)
            }
            p if p.starts_with("/3/device/") => match apns.load(Ordering::Relaxed) {
                200 => {
                    Answer::new(200, "").header("apns-id", "7b3a0f3e-0000-4000-8000-000000000001")
                }
                s => Answer::new(s, r#"{"reason":"Unregistered"}"#),
            },
            _ => Answer::new(404, ""),
        }),
    )
}

/// The service account, the `.p8` key and the `[push]` table naming them and the stand-in.
fn credentials(dir: &Path, pki: &TestPki, base: &str) -> String {
    let rsa = dir.join("account-key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    assert!(made.status.success(), "{made:?}");
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "club-project",
        "private_key": std::fs::read_to_string(&rsa).unwrap(),
        "client_email": "openline@club-project.iam.gserviceaccount.com",
        "token_uri": format!("{base}/token"),
    });
    std::fs::write(dir.join("account.json"), account.to_string()).unwrap();
    let p8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    std::fs::write(
        dir.join("AuthKey.p8"),
        openline_push::keys::pkcs8_to_pem(p8.as_ref()),
    )
    .unwrap();
    format!(
        "[push]\nca = \"{ca}\"\n[push.fcm]\nservice_account = \"{d}/account.json\"\napi = \"{base}\"\n\
         [push.apns]\nkey = \"{d}/AuthKey.p8\"\nkey_id = \"KEY0000001\"\nteam_id = \"TEAM123456\"\n\
         api = \"{base}\"\nsandbox_api = \"{base}\"\n",
        ca = pki.ca.display(),
        d = dir.display()
    )
}

fn requests_to(service: &PushService, prefix: &str) -> Vec<Request> {
    service
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect()
}

#[test]
fn fcm_gets_a_signed_grant_once_then_data_messages() {
    let dir = scratch("push-fcm");
    let pki = TestPki::new(&dir);
    let service = google_and_apple(&pki, Arc::new(AtomicU16::new(200)));
    let server = server_with(&dir, &credentials(&dir, &pki, &service.base));
    let mut bob = phone("bob", &server);
    bob.set_contact_params(";pn-provider=fcm;pn-prid=fcm-token-1;pn-param=club-project");
    assert_eq!(bob.register(3600), 200);
    let mut alice = phone("alice", &server);

    assert_eq!(alice.message("bob@openline.test", "hello"), 202);
    let got = service.wait_for(2, ARRIVES);
    assert_eq!(got.len(), 2, "{got:?}");
    let (grant, send) = (&got[0], &got[1]);

    assert_eq!(grant.path, "/token");
    let form = String::from_utf8_lossy(&grant.body).into_owned();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    let assertion = form.rsplit('=').next().unwrap();
    let key = std::fs::read_to_string(dir.join("account-key.pem")).unwrap();
    let (header, claims) = verify_jwt(
        assertion,
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &rsa_public_key(&key),
    )
    .expect("the grant is signed with the account's key");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        claims["iss"],
        "openline@club-project.iam.gserviceaccount.com"
    );
    assert_eq!(claims["aud"], format!("{}/token", service.base));
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );

    assert_eq!(send.path, "/v1/projects/club-project/messages:send");
    assert_eq!(send.header("authorization"), Some("Bearer ya29.stand-in"));
    let message = &send.json()["message"];
    assert_eq!(message["token"], "fcm-token-1");
    assert_eq!(message["data"]["openline"], "message");
    assert_eq!(message["data"]["from-uri"], "sip:alice@openline.test");
    assert_eq!(message["data"].get("text"), None);
    assert_eq!(message["android"]["priority"], "normal");

    // Woken and asleep again: the next push reuses the access token.
    assert_eq!(bob.register(3600), 200);
    assert_eq!(bob.messages(1, ARRIVES).len(), 1);
    assert_eq!(alice.message("bob@openline.test", "again"), 202);
    service.wait_for(3, ARRIVES);
    std::thread::sleep(QUIET);
    assert_eq!(requests_to(&service, "/token").len(), 1, "one grant");
    assert_eq!(requests_to(&service, "/v1/").len(), 2, "two pushes");
}

#[test]
fn apns_gets_http2_with_a_provider_token_and_410_forgets_the_device() {
    let dir = scratch("push-apns");
    let pki = TestPki::new(&dir);
    let apns = Arc::new(AtomicU16::new(200));
    let service = google_and_apple(&pki, Arc::clone(&apns));
    let server = server_with(&dir, &credentials(&dir, &pki, &service.base));
    let (voip, remote) = ("a1".repeat(32), "b2".repeat(32));
    let mut bob = phone("bob", &server);
    bob.set_contact_params(&format!(
        ";pn-provider=apns.dev;pn-prid={voip}:voip&{remote}:remote;pn-param=TEAM123456.org.openline.app.voip&remote"
    ));
    assert_eq!(bob.register(3600), 200);
    let mut alice = phone("alice", &server);

    assert_eq!(alice.message("bob@openline.test", "hello"), 202);
    let got = service.wait_for(1, ARRIVES);
    let push = got.first().expect("a push");
    assert_eq!(push.version, "HTTP/2.0", "APNs speaks HTTP/2 only");
    assert_eq!(
        push.path,
        format!("/3/device/{remote}"),
        "an alert to the remote token"
    );
    assert_eq!(push.header("apns-topic"), Some("org.openline.app"));
    assert_eq!(push.header("apns-push-type"), Some("alert"));
    let bearer = push.header("authorization").unwrap();
    let token = bearer.strip_prefix("bearer ").expect("bearer token");
    let p8 = std::fs::read_to_string(dir.join("AuthKey.p8")).unwrap();
    let (header, claims) = verify_jwt(
        token,
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        &p256_public_key(&p8),
    )
    .expect("signed with the team's key");
    assert_eq!(header["kid"], "KEY0000001");
    assert_eq!(claims["iss"], "TEAM123456");
    let body = push.json();
    assert_eq!(body["aps"]["alert"]["loc-key"], "IM_MSG");
    assert_eq!(body["aps"]["alert"]["body"], "", "no text");

    // The app was removed: Apple says 410, the binding goes.
    assert_eq!(bob.register(3600), 200);
    assert_eq!(bob.messages(1, ARRIVES).len(), 1);
    apns.store(410, Ordering::Relaxed);
    assert_eq!(alice.message("bob@openline.test", "anyone?"), 202);
    assert_eq!(service.wait_for(2, ARRIVES).len(), 2);
    assert!(
        openline_tests::eventually(ARRIVES, || db_bindings(&server.db).is_empty()),
        "410: the binding is removed"
    );
}

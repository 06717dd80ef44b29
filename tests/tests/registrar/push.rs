//! RFC 8599 on the REGISTER path: push parameters a device cannot mean are refused with 400
//! naming the parameter; a push binding for a configured service gets `Feature-Caps` with
//! `+sip.pns` (and the VAPID key for Web Push), one for a service not configured gets none; the
//! VAPID key is made once, 0600, and kept across restarts.

use crate::db_bindings;
use openline_tests::subject::Subject;
use openline_tests::wire;
use std::os::unix::fs::PermissionsExt as _;

use super::bad_input::{register_raw, register_with};

fn server_with_push(dir: &std::path::Path) -> Subject {
    let config = dir.join("openline.toml");
    let vapid = dir.join("vapid.pem");
    std::fs::write(
        &config,
        format!(
            "[push]\nwait = 20\n[push.webpush]\nvapid_key = \"{}\"\nsubject = \"mailto:admin@openline.test\"\n",
            vapid.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    Subject::start_with_users(
        &[("grace@openline.test", "pw-grace")],
        &["--config", &config],
    )
}

fn feature_caps(response: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(response)
        .lines()
        .filter_map(|l| l.strip_prefix("Feature-Caps: ").map(str::to_string))
        .collect()
}

const KEYS: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4.BTBZMqHH6r4Tts7J_aSIgg";

#[test]
fn push_parameters_are_checked_and_answered_with_feature_caps() {
    let dir = crate::scratch("push-register");
    let server = server_with_push(&dir);
    for (params, expected) in [
        (
            ";pn-provider=fcm",
            "SIP/2.0 400 Bad Request (malformed pn-prid parameter (missing beside pn-provider))",
        ),
        (
            ";pn-prid=abc",
            "SIP/2.0 400 Bad Request (malformed pn-provider parameter (missing beside pn-prid or pn-param))",
        ),
        (
            ";pn-provider=apns;pn-prid=zz;pn-param=T.org.x",
            "SIP/2.0 400 Bad Request (malformed pn-prid parameter (not an APNs device token (hex)))",
        ),
        (
            ";pn-provider=webpush;pn-prid=https://push.test/x;pn-param=AAAA.BBBB",
            "SIP/2.0 400 Bad Request (malformed pn-param parameter (p256dh is not an uncompressed P-256 key))",
        ),
        (
            ";pn-provider=webpush;pn-prid=file:/etc/passwd",
            "SIP/2.0 400 Bad Request (malformed pn-prid parameter (not an http(s) Web Push endpoint))",
        ),
        (
            ";pn-type=firebase;app-id=1",
            "SIP/2.0 400 Bad Request (malformed pn-tok parameter (missing beside pn-type))",
        ),
    ] {
        let contact = format!("Contact: <sip:grace@127.0.0.1:5151;transport=tcp{params}>\r\n");
        let answer = register_raw(&server, register_with(&contact, ""), "pw-grace");
        assert_eq!(wire::first_line(&answer), expected, "{params}");
    }
    assert!(db_bindings(&server.db).is_empty(), "nothing was bound");

    // Web Push: configured, so promised, with the key the device subscribes with.
    let webpush = format!(
        "Contact: <sip:grace@127.0.0.1:5151;pn-provider=webpush;pn-prid=https://push.test/up/1%3Fx%3D1;pn-param={KEYS}>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\"\r\n"
    );
    let ok = register_raw(&server, register_with(&webpush, ""), "pw-grace");
    assert_eq!(wire::first_line(&ok), "SIP/2.0 200 OK");
    let pem = std::fs::read(dir.join("vapid.pem")).unwrap();
    let mode = std::fs::metadata(dir.join("vapid.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the VAPID key is kept private");
    let der = openline_push::keys::pkcs8_from_pem(&pem).unwrap();
    let key = openline_push::webpush::WebPush::new(&der, String::new())
        .unwrap()
        .public_key();
    assert_eq!(
        feature_caps(&ok),
        vec![format!("*;+sip.pns=\"webpush\";+sip.vapid=\"{key}\"")]
    );
    // FCM is not configured here: bound, but nothing promised.
    let fcm = "Contact: <sip:grace@127.0.0.1:5152;pn-provider=fcm;pn-prid=tok-1;pn-param=proj>\r\n";
    let ok = register_raw(&server, register_with(fcm, ""), "pw-grace");
    assert_eq!(wire::first_line(&ok), "SIP/2.0 200 OK");
    assert!(feature_caps(&ok).is_empty(), "{:?}", feature_caps(&ok));
    let bindings = db_bindings(&server.db);
    assert_eq!(bindings.len(), 2);
    assert!(
        bindings
            .iter()
            .any(|b| b.contact.contains("pn-prid=https://push.test/up/1%3Fx%3D1")),
        "the push parameters are kept with the binding: {bindings:?}"
    );
    drop(server);

    // Restarted: the same key (devices subscribed with it).
    let server = server_with_push(&dir);
    let ok = register_raw(&server, register_with(&webpush, ""), "pw-grace");
    assert_eq!(
        feature_caps(&ok),
        vec![format!("*;+sip.pns=\"webpush\";+sip.vapid=\"{key}\"")]
    );
    assert_eq!(std::fs::read(dir.join("vapid.pem")).unwrap(), pem);
}

//! Where a device asked to be woken: the RFC 8599 `pn-*` parameters of its Contact URI
//! (`pn-provider`, `pn-prid`, `pn-param`, `pn-purr`), and the older forms Linphone sends
//! (`pn-type`, `pn-tok`, `app-id`).

use base64::Engine as _;
use std::borrow::Cow;

/// Which push service delivers to the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Apple Push Notification service; `sandbox` for development builds (`apns.dev`).
    Apns {
        /// The development environment.
        sandbox: bool,
    },
    /// Firebase Cloud Messaging, HTTP v1.
    Fcm,
    /// A Web Push (RFC 8030) endpoint: UnifiedPush distributors, browsers.
    WebPush,
    /// A service this server does not speak: the binding is kept, without push.
    Other(String),
}

impl Provider {
    /// The `pn-provider` value (RFC 8599 section 14 registry), which `+sip.pns` repeats.
    pub fn name(&self) -> &str {
        match self {
            Provider::Apns { sandbox: false } => "apns",
            Provider::Apns { sandbox: true } => "apns.dev",
            Provider::Fcm => "fcm",
            Provider::WebPush => "webpush",
            Provider::Other(name) => name,
        }
    }

    /// The service whose credentials deliver it (`apns` for both of Apple's environments),
    /// as `[push]` configures them; None for one this server does not speak.
    pub fn service(&self) -> Option<&'static str> {
        match self {
            Provider::Apns { .. } => Some("apns"),
            Provider::Fcm => Some("fcm"),
            Provider::WebPush => Some("webpush"),
            Provider::Other(_) => None,
        }
    }

    fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "apns" => Provider::Apns { sandbox: false },
            "apns.dev" => Provider::Apns { sandbox: true },
            "fcm" => Provider::Fcm,
            "webpush" => Provider::WebPush,
            other => Provider::Other(other.to_string()),
        }
    }
}

/// A device's push registration, read from its Contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PushTarget {
    /// The service.
    pub provider: Provider,
    /// The Push Resource ID: a device token, or the Web Push endpoint URL.
    pub prid: String,
    /// Service-specific: APNs `TEAMID.bundle.voip&remote`, the FCM project, the Web Push keys.
    pub param: Option<String>,
    /// RFC 8599 section 6 `pn-purr`, kept as the device sent it.
    pub purr: Option<String>,
}

/// A `pn-*` parameter that cannot be used; the REGISTER is refused with 400 naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {parameter} parameter ({why})")]
pub struct BadParameter {
    /// The parameter.
    pub parameter: &'static str,
    /// What is wrong with it.
    pub why: &'static str,
}

fn bad(parameter: &'static str, why: &'static str) -> BadParameter {
    BadParameter { parameter, why }
}

/// The longest value taken: device tokens are ~160 bytes, Web Push endpoints a few hundred.
const MAX_VALUE: usize = 2048;

/// The keys a Web Push subscription encrypts to (RFC 8291): `pn-param` carries them as
/// `<p256dh>.<auth>`, both base64url without padding (a dot is not in that alphabet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushKeys {
    /// The device's P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// The 16-byte authentication secret.
    pub auth: Vec<u8>,
}

impl WebPushKeys {
    /// Reads `p256dh.auth`.
    pub fn parse(param: &str) -> Result<Self, BadParameter> {
        let why = "Web Push keys are <p256dh>.<auth> in base64url";
        let (p256dh, auth) = param.split_once('.').ok_or(bad("pn-param", why))?;
        let decode = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|_| bad("pn-param", why))
        };
        let (p256dh, auth) = (decode(p256dh)?, decode(auth)?);
        if p256dh.len() != 65 || p256dh[0] != 4 {
            return Err(bad("pn-param", "p256dh is not an uncompressed P-256 key"));
        }
        if auth.len() != 16 {
            return Err(bad("pn-param", "auth is not 16 bytes"));
        }
        Ok(WebPushKeys { p256dh, auth })
    }
}

impl PushTarget {
    /// The push target of a Contact URI; None when it names none. The value of each parameter
    /// is percent-decoded (a Web Push endpoint arrives with `%3F` for `?`).
    pub fn from_contact(contact: &str) -> Result<Option<PushTarget>, BadParameter> {
        // The hot path: a contact without push parameters is not parsed further.
        if !contact.contains("pn-") && !contact.contains("app-id") {
            return Ok(None);
        }
        let Ok(uri) = openline_sip::Uri::parse(contact) else {
            return Ok(None);
        };
        let Some(sip) = uri.sip() else {
            return Ok(None);
        };
        let get = |name: &'static str| -> Result<Option<String>, BadParameter> {
            match sip.param(name) {
                None => Ok(None),
                Some(None) => Err(bad(name, "it has no value")),
                Some(Some(v)) => decoded(name, v).map(Some),
            }
        };
        let (provider, prid, param) = match get("pn-provider")? {
            Some(provider) => {
                if !provider
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return Err(bad("pn-provider", "not a token"));
                }
                let prid = get("pn-prid")?.ok_or(bad("pn-prid", "missing beside pn-provider"))?;
                (Provider::from_name(&provider), prid, get("pn-param")?)
            }
            None => match get("pn-type")? {
                // Linphone before RFC 8599: pn-type, pn-tok, app-id.
                Some(kind) => {
                    let provider = match kind.to_ascii_lowercase().as_str() {
                        "firebase" | "google" => Provider::Fcm,
                        "apple" => Provider::Apns { sandbox: false },
                        other => Provider::Other(other.to_string()),
                    };
                    let prid = get("pn-tok")?.ok_or(bad("pn-tok", "missing beside pn-type"))?;
                    (provider, prid, get("app-id")?)
                }
                None if get("pn-prid")?.is_some() || get("pn-param")?.is_some() => {
                    return Err(bad("pn-provider", "missing beside pn-prid or pn-param"));
                }
                None => return Ok(None),
            },
        };
        let purr = get("pn-purr")?;
        if purr.as_deref().is_some_and(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        }) {
            return Err(bad("pn-purr", "not a token"));
        }
        let target = PushTarget {
            provider,
            prid,
            param,
            purr,
        };
        target.check()?;
        Ok(Some(target))
    }

    /// What each service needs of its parameters.
    fn check(&self) -> Result<(), BadParameter> {
        if self.prid.is_empty() {
            return Err(bad("pn-prid", "empty"));
        }
        match &self.provider {
            Provider::Apns { .. } => {
                for (token, _) in self.apns_tokens() {
                    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad("pn-prid", "not an APNs device token (hex)"));
                    }
                }
                let param = self
                    .param
                    .as_deref()
                    .ok_or(bad("pn-param", "APNs needs TEAMID.bundle-id"))?;
                if !param.contains('.') {
                    return Err(bad("pn-param", "APNs needs TEAMID.bundle-id"));
                }
            }
            Provider::Fcm => {
                if !self.prid.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad("pn-prid", "not an FCM registration token"));
                }
            }
            Provider::WebPush => {
                let url = url::Url::parse(&self.prid)
                    .map_err(|_| bad("pn-prid", "not a Web Push endpoint URL"))?;
                if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
                    return Err(bad("pn-prid", "not an http(s) Web Push endpoint"));
                }
                if let Some(param) = &self.param {
                    WebPushKeys::parse(param)?;
                }
            }
            Provider::Other(_) => {}
        }
        Ok(())
    }

    /// APNs device tokens and what each is for: Linphone sends `tok1:voip&tok2:remote` with
    /// `pn-param=TEAM.bundle.voip&remote`; a bare token serves every push.
    pub fn apns_tokens(&self) -> Vec<(&str, Option<&str>)> {
        self.prid
            .split('&')
            .map(|part| match part.split_once(':') {
                Some((token, service)) => (token, Some(service)),
                None => (part, None),
            })
            .collect()
    }

    /// The Web Push keys, when the device gave them.
    pub fn webpush_keys(&self) -> Option<WebPushKeys> {
        self.param
            .as_deref()
            .and_then(|p| WebPushKeys::parse(p).ok())
    }

    /// A stable name for the push registration, for logs and collapsing: never the token.
    pub fn fingerprint(&self) -> String {
        use ring::digest;
        let d = digest::digest(&digest::SHA256, self.prid.as_bytes());
        let hex: String = d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", self.provider.name())
    }
}

fn decoded(name: &'static str, raw: &str) -> Result<String, BadParameter> {
    if raw.is_empty() {
        return Err(bad(name, "empty"));
    }
    if raw.len() > MAX_VALUE {
        return Err(bad(name, "longer than 2048 bytes"));
    }
    let value: Cow<'_, str> = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad(name, "not UTF-8 once percent-decoded"))?;
    if value.chars().any(char::is_control) {
        return Err(bad(name, "control characters"));
    }
    Ok(value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(contact: &str) -> Result<Option<PushTarget>, BadParameter> {
        PushTarget::from_contact(contact)
    }

    #[test]
    fn rfc8599_parameters_make_a_target() {
        let t = target("sip:bob@198.18.0.2:5060;transport=tcp;pn-provider=fcm;pn-prid=abc:APA91b-x_y;pn-param=club-project")
            .unwrap()
            .unwrap();
        assert_eq!(t.provider, Provider::Fcm);
        assert_eq!(t.prid, "abc:APA91b-x_y");
        assert_eq!(t.param.as_deref(), Some("club-project"));
        assert_eq!(target("sip:bob@198.18.0.2:5060").unwrap(), None);
    }

    #[test]
    fn linphone_forms_are_read() {
        let ios = target("sip:bob@h;pn-provider=apns.dev;pn-prid=00fc13adff78:voip&a1b2:remote;pn-param=ABCD1234.org.linphone.phone.voip&remote")
            .unwrap()
            .unwrap();
        assert_eq!(ios.provider, Provider::Apns { sandbox: true });
        assert_eq!(
            ios.apns_tokens(),
            vec![("00fc13adff78", Some("voip")), ("a1b2", Some("remote"))]
        );
        let legacy =
            target("sip:bob@h;pn-type=firebase;app-id=929724111839;pn-tok=dQw4w9WgXcQ;pn-silent=1")
                .unwrap()
                .unwrap();
        assert_eq!(legacy.provider, Provider::Fcm);
        assert_eq!(legacy.prid, "dQw4w9WgXcQ");
        assert_eq!(legacy.param.as_deref(), Some("929724111839"));
    }

    #[test]
    fn web_push_endpoint_is_percent_decoded() {
        let keys = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4.BTBZMqHH6r4Tts7J_aSIgg";
        let t = target(&format!(
            "sip:bob@h;pn-provider=webpush;pn-prid=https://push.club-a.test/up/abc%3Ftoken%3D1;pn-param={keys};pn-purr=r1"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(t.prid, "https://push.club-a.test/up/abc?token=1");
        assert_eq!(t.webpush_keys().unwrap().auth.len(), 16);
        assert_eq!(t.purr.as_deref(), Some("r1"));
    }

    #[test]
    fn malformed_parameters_are_named() {
        for (contact, parameter) in [
            ("sip:b@h;pn-provider=fcm", "pn-prid"),
            ("sip:b@h;pn-prid=abc", "pn-provider"),
            ("sip:b@h;pn-provider=fcm;pn-prid", "pn-prid"),
            ("sip:b@h;pn-provider=f%20cm;pn-prid=x", "pn-provider"),
            (
                "sip:b@h;pn-provider=apns;pn-prid=nothex;pn-param=T.b",
                "pn-prid",
            ),
            ("sip:b@h;pn-provider=apns;pn-prid=00ff", "pn-param"),
            ("sip:b@h;pn-provider=webpush;pn-prid=ftp://x/y", "pn-prid"),
            (
                "sip:b@h;pn-provider=webpush;pn-prid=https://x/y;pn-param=short.key",
                "pn-param",
            ),
            ("sip:b@h;pn-provider=fcm;pn-prid=%FF%FE", "pn-prid"),
            ("sip:b@h;pn-provider=fcm;pn-prid=a%0Ab", "pn-prid"),
            ("sip:b@h;pn-type=apple", "pn-tok"),
            ("sip:b@h;pn-provider=fcm;pn-prid=x;pn-purr=a%20b", "pn-purr"),
        ] {
            let err = target(contact).unwrap_err();
            assert_eq!(err.parameter, parameter, "{contact}: {err}");
        }
        let unknown = target("sip:b@h;pn-provider=acme;pn-prid=x")
            .unwrap()
            .unwrap();
        assert_eq!(unknown.provider, Provider::Other("acme".into()));
    }
}

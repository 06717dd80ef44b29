//! Apple Push Notification service over HTTP/2 with token authentication: an ES256 JWT from
//! the team's `.p8` key, renewed every 40 minutes (Apple refuses one older than an hour and
//! throttles renewals more often than every 20). Calls go as VoIP pushes to the VoIP token
//! (topic `<bundle>.voip`), messages as alerts to the remote token.

use crate::http::{HttpRequest, HttpResponse, Outcome};
use crate::jwt;
use crate::payload::{Push, Wake};
use crate::target::{Provider, PushTarget};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use std::time::Duration;

/// Production.
pub const API: &str = "https://api.push.apple.com";
/// Development builds (`pn-provider=apns.dev`).
pub const SANDBOX_API: &str = "https://api.sandbox.push.apple.com";

/// How long a provider token is used.
const TOKEN_LIFETIME: u64 = 40 * 60;

/// APNs with the team's key and the token in use.
#[derive(Debug)]
pub struct Apns {
    key: EcdsaKeyPair,
    key_id: String,
    team_id: String,
    api: String,
    sandbox_api: String,
    /// The JWT and when it was made (seconds since the epoch).
    token: Option<(String, u64)>,
}

/// An APNs key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("APNs key: {0}")]
pub struct KeyError(String);

/// Where a push goes and what it is, read from the device's parameters.
struct Route<'t> {
    token: &'t str,
    topic: String,
    push_type: &'static str,
}

impl Apns {
    /// From the `.p8` key (PEM PKCS#8), its key id and the team id; `api`/`sandbox_api`
    /// override Apple's hosts.
    pub fn new(
        p8: &[u8],
        key_id: String,
        team_id: String,
        (api, sandbox_api): (Option<&str>, Option<&str>),
    ) -> Result<Self, KeyError> {
        let der = crate::keys::pkcs8_from_pem(p8).map_err(KeyError)?;
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| KeyError(format!("not a P-256 key: {e}")))?;
        let base = |u: Option<&str>, d: &str| u.unwrap_or(d).trim_end_matches('/').to_string();
        Ok(Apns {
            key,
            key_id,
            team_id,
            api: base(api, API),
            sandbox_api: base(sandbox_api, SANDBOX_API),
            token: None,
        })
    }

    fn bearer(&mut self, now: u64) -> Result<String, String> {
        if let Some((t, made)) = &self.token {
            if now < made + TOKEN_LIFETIME {
                return Ok(t.clone());
            }
        }
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({"iss": self.team_id, "iat": now});
        let t = jwt::es256(&self.key, &header, &claims).ok_or("ES256 signing failed")?;
        self.token = Some((t.clone(), now));
        Ok(t)
    }

    /// The token and topic for this push: Linphone's `tok:voip&tok:remote` with
    /// `pn-param=TEAM.bundle.voip&remote`, or one token for everything.
    fn route<'t>(target: &'t PushTarget, push: &Push) -> Result<Route<'t>, String> {
        let param = target.param.as_deref().ok_or("no pn-param")?;
        let (_team, rest) = param.split_once('.').ok_or("pn-param is not TEAM.bundle")?;
        let services = ["voip&remote", "remote&voip", "voip", "remote"];
        let bundle = services
            .iter()
            .find_map(|s| rest.strip_suffix(&format!(".{s}")))
            .unwrap_or(rest);
        let tokens = target.apns_tokens();
        let wants_voip = matches!(push.wake, Wake::Call { .. } | Wake::CallEnded { .. });
        let pick = |service: &str| {
            tokens
                .iter()
                .find(|(_, s)| *s == Some(service))
                .or_else(|| tokens.iter().find(|(_, s)| s.is_none()))
                .map(|(t, _)| *t)
        };
        Ok(if wants_voip {
            let token = pick("voip").or_else(|| pick("remote")).ok_or("no token")?;
            Route {
                token,
                topic: format!("{bundle}.voip"),
                push_type: "voip",
            }
        } else {
            let token = pick("remote").or_else(|| pick("voip")).ok_or("no token")?;
            let background = matches!(push.wake, Wake::Request { .. });
            Route {
                token,
                topic: bundle.to_string(),
                push_type: if background { "background" } else { "alert" },
            }
        })
    }

    /// The HTTP/2 POST for `push` at `now` (seconds since the epoch).
    pub fn request(
        &mut self,
        target: &PushTarget,
        push: &Push,
        now: u64,
    ) -> Result<HttpRequest, String> {
        let route = Self::route(target, push)?;
        let base = match target.provider {
            Provider::Apns { sandbox: true } => &self.sandbox_api,
            _ => &self.api,
        };
        let url = format!("{base}/3/device/{}", route.token);
        let mut body = Value::Object(push.fields());
        let aps = match (&push.wake, route.push_type) {
            (Wake::Messages { text, .. }, "alert") => json!({
                "alert": {"loc-key": "IM_MSG", "body": text.clone().unwrap_or_default()},
                "sound": "default",
                "mutable-content": 1,
            }),
            (_, "background") => json!({"content-available": 1}),
            _ => json!({}),
        };
        body["aps"] = aps;
        let priority = if route.push_type == "background" {
            "5"
        } else {
            "10"
        };
        let token = self.bearer(now)?;
        Ok(HttpRequest::post(url, body.to_string().into_bytes())
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", route.topic)
            .header("apns-push-type", route.push_type)
            .header("apns-priority", priority)
            .header("apns-expiration", (now + push.ttl()).to_string())
            .header("apns-collapse-id", push.collapse_key()))
    }

    /// What Apple's answer means; an expired or refused provider token is made again.
    pub fn outcome(&mut self, response: &HttpResponse) -> Outcome {
        let reason = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        match (response.status, reason.as_str()) {
            (200, _) => Outcome::Sent,
            (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => Outcome::Gone,
            (403, "ExpiredProviderToken" | "InvalidProviderToken") => {
                self.token = None;
                Outcome::Failed(response.reason())
            }
            (429 | 503, _) => Outcome::Throttled(response.retry_after(Duration::from_secs(60))),
            _ => Outcome::Failed(response.reason()),
        }
    }
}

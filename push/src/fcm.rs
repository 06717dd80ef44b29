//! Firebase Cloud Messaging, HTTP v1: an OAuth2 access token from the service account's key
//! (RFC 7523 JWT bearer grant), then one POST per push. Base URLs come from the configuration so
//! tests and proxies can stand in for Google.

use crate::http::{HttpRequest, HttpResponse, Outcome};
use crate::jwt;
use crate::payload::Push;
use crate::target::PushTarget;
use ring::signature::RsaKeyPair;
use serde_json::{Value, json};
use std::time::Duration;

/// The default API base.
pub const API: &str = "https://fcm.googleapis.com";

/// FCM with its credentials and the access token held.
#[derive(Debug)]
pub struct Fcm {
    client_email: String,
    key: RsaKeyPair,
    token_uri: String,
    project_id: String,
    api: String,
    /// The access token and when it expires (seconds since the epoch).
    token: Option<(String, u64)>,
}

/// A service-account file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FCM service account: {0}")]
pub struct AccountError(String);

impl Fcm {
    /// From the service-account JSON Google gives (`client_email`, `private_key`, `project_id`,
    /// `token_uri`); `api` and `token_uri` override its URLs.
    pub fn from_service_account(
        json: &str,
        api: Option<&str>,
        token_uri: Option<&str>,
    ) -> Result<Self, AccountError> {
        let v: Value = serde_json::from_str(json).map_err(|e| AccountError(e.to_string()))?;
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| AccountError(format!("no \"{name}\"")))
        };
        let pem = field("private_key")?;
        let der = crate::keys::pkcs8_from_pem(pem.as_bytes())
            .map_err(|e| AccountError(format!("private_key: {e}")))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| AccountError(format!("private_key is not an RSA key: {e}")))?;
        Ok(Fcm {
            client_email: field("client_email")?,
            key,
            token_uri: match token_uri {
                Some(t) => t.to_string(),
                None => field("token_uri")?,
            },
            project_id: field("project_id")?,
            api: api.unwrap_or(API).trim_end_matches('/').to_string(),
            token: None,
        })
    }

    /// Whether a new access token is needed at `now` (none, or under a minute left).
    pub fn needs_token(&self, now: u64) -> bool {
        self.token
            .as_ref()
            .is_none_or(|(_, until)| *until < now + 60)
    }

    /// The token request: a JWT signed with the account's key (RFC 7523).
    pub fn token_request(&self, now: u64) -> Result<HttpRequest, String> {
        let claims = json!({
            "iss": self.client_email,
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let assertion = jwt::rs256(&self.key, &json!({"alg": "RS256", "typ": "JWT"}), &claims)
            .ok_or("RS256 signing failed")?;
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        Ok(HttpRequest::post(self.token_uri.clone(), body.into_bytes())
            .header("Content-Type", "application/x-www-form-urlencoded"))
    }

    /// Takes the token response.
    pub fn on_token(&mut self, response: &HttpResponse, now: u64) -> Result<(), String> {
        if response.status != 200 {
            return Err(format!("token refused: {}", response.reason()));
        }
        let v: Value = serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or("no access_token in the token response")?;
        let lifetime = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        self.token = Some((token.to_string(), now + lifetime));
        Ok(())
    }

    /// The POST for `push` (a data message: the app decides what to show).
    pub fn request(&self, target: &PushTarget, push: &Push) -> Result<HttpRequest, String> {
        let (token, _) = self.token.as_ref().ok_or("no access token")?;
        let data: serde_json::Map<String, Value> = push.fields();
        let message = json!({
            "message": {
                "token": target.prid,
                "data": data,
                "android": {
                    "priority": if push.is_urgent() { "high" } else { "normal" },
                    "ttl": format!("{}s", push.ttl()),
                    "collapse_key": push.collapse_key(),
                },
            }
        });
        let url = format!("{}/v1/projects/{}/messages:send", self.api, self.project_id);
        Ok(HttpRequest::post(url, message.to_string().into_bytes())
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json"))
    }

    /// What FCM's answer means; a 401 drops the access token so the next push gets a new one.
    pub fn outcome(&mut self, response: &HttpResponse) -> Outcome {
        let body = String::from_utf8_lossy(&response.body);
        match response.status {
            200 => Outcome::Sent,
            // The token is no longer registered (the app was removed or its data cleared).
            404 => Outcome::Gone,
            400 if body.contains("UNREGISTERED") => Outcome::Gone,
            401 => {
                self.token = None;
                Outcome::Failed(response.reason())
            }
            429 | 503 => Outcome::Throttled(response.retry_after(Duration::from_secs(60))),
            _ => Outcome::Failed(response.reason()),
        }
    }
}

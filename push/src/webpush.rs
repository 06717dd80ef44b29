//! Web Push (RFC 8030): the free way to wake a phone, through any UnifiedPush distributor or a
//! browser's push service. The payload is encrypted to the device (RFC 8291) and the server
//! identifies itself with a VAPID key (RFC 8292), whose public half the device subscribes with
//! (`+sip.vapid` in the 200 to its REGISTER, RFC 8599 section 12).

use crate::http::{HttpRequest, HttpResponse, Outcome};
use crate::jwt;
use crate::payload::Push;
use crate::target::PushTarget;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use std::time::Duration;

/// The server's Web Push identity.
#[derive(Debug)]
pub struct WebPush {
    key: EcdsaKeyPair,
    /// `mailto:` or `https:` contact for the push service's operator (RFC 8292 2.1).
    subject: String,
}

/// A VAPID key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VAPID key is not a PKCS#8 P-256 key: {0}")]
pub struct KeyError(String);

impl WebPush {
    /// From a PKCS#8 P-256 key.
    pub fn new(pkcs8: &[u8], subject: String) -> Result<Self, KeyError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError(e.to_string()))?;
        Ok(WebPush { key, subject })
    }

    /// A new key, PKCS#8 DER, to be kept (the devices subscribed with its public half).
    pub fn generate_key() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The public key, uncompressed, base64url: `+sip.vapid` and the `k=` of Authorization.
    pub fn public_key(&self) -> String {
        jwt::b64(self.key.public_key().as_ref())
    }

    /// The POST that delivers `push` to `target`'s endpoint at `now` (seconds since the epoch).
    pub fn request(
        &self,
        target: &PushTarget,
        push: &Push,
        now: u64,
    ) -> Result<HttpRequest, String> {
        let endpoint = url::Url::parse(&target.prid).map_err(|e| e.to_string())?;
        // RFC 8292 2: the audience is the origin of the push resource.
        let audience = endpoint.origin().ascii_serialization();
        let claims = json!({"aud": audience, "exp": now + 12 * 3600, "sub": self.subject});
        let token = jwt::es256(&self.key, &json!({"typ": "JWT", "alg": "ES256"}), &claims)
            .ok_or("VAPID signing failed")?;
        let mut request = HttpRequest::post(target.prid.clone(), Vec::new())
            .header("TTL", push.ttl().to_string())
            .header("Urgency", if push.is_urgent() { "high" } else { "normal" })
            .header(
                "Authorization",
                format!("vapid t={token}, k={}", self.public_key()),
            );
        // RFC 8030 5.4: a push with the same Topic replaces one the service still holds.
        request = request.header(
            "Topic",
            push.collapse_key().chars().take(32).collect::<String>(),
        );
        if let Some(keys) = target.webpush_keys() {
            let plaintext = serde_json::Value::Object(push.fields()).to_string();
            request.body =
                crate::ece::encrypt(&keys, plaintext.as_bytes()).map_err(|e| e.to_string())?;
            request = request
                .header("Content-Encoding", "aes128gcm")
                .header("Content-Type", "application/octet-stream");
        }
        // Without keys the push carries nothing (RFC 8030 5): it only wakes the device.
        Ok(request)
    }

    /// What the push service's answer means (RFC 8030 5, 6.2, 7.3; RFC 8292 4).
    pub fn outcome(response: &HttpResponse) -> Outcome {
        match response.status {
            200..=299 => Outcome::Sent,
            404 | 410 => Outcome::Gone,
            429 => Outcome::Throttled(response.retry_after(Duration::from_secs(60))),
            503 if response.header("retry-after").is_some() => {
                Outcome::Throttled(response.retry_after(Duration::from_secs(60)))
            }
            _ => Outcome::Failed(response.reason()),
        }
    }
}

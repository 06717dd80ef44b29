//! Compact JWS (RFC 7515) as the push services want it: ES256 for VAPID and APNs, RS256 for
//! Google's OAuth2 service-account grant.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::Value;

/// Base64url without padding, as JOSE writes everything.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// `header.claims.signature` signed with a P-256 key (the signature is r || s).
pub fn es256(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> Option<String> {
    let input = signing_input(header, claims);
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).ok()?;
    Some(format!("{input}.{}", b64(signature.as_ref())))
}

/// `header.claims.signature` signed with an RSA key, PKCS#1 v1.5 with SHA-256.
pub fn rs256(key: &RsaKeyPair, header: &Value, claims: &Value) -> Option<String> {
    let input = signing_input(header, claims);
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .ok()?;
    Some(format!("{input}.{}", b64(&signature)))
}

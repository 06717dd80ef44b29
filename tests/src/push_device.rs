//! The device's side of a push, for checking what a push service got: a Web Push subscription
//! whose messages it decrypts (RFC 8291), and the signature checks a service makes (VAPID's
//! ES256 JWT, RFC 8292; Google's RS256 grant; APNs' ES256 provider token).

use crate::push_service::Request;
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde_json::Value;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

/// A Web Push subscription's keys, as a browser or UnifiedPush app holds them.
pub struct WebPushDevice {
    secret: p256::SecretKey,
    /// The auth secret (16 bytes).
    auth: [u8; 16],
}

impl Default for WebPushDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl WebPushDevice {
    /// Fresh keys.
    pub fn new() -> WebPushDevice {
        let random = ring::rand::SystemRandom::new();
        let secret = loop {
            let mut bytes = [0u8; 32];
            random.fill(&mut bytes).expect("random");
            if let Ok(s) = p256::SecretKey::from_slice(&bytes) {
                break s;
            }
        };
        let mut auth = [0u8; 16];
        random.fill(&mut auth).expect("random");
        WebPushDevice { secret, auth }
    }

    fn public(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// `pn-param`: `<p256dh>.<auth>`, base64url.
    pub fn pn_param(&self) -> String {
        format!("{}.{}", b64(&self.public()), b64(&self.auth))
    }

    /// The plaintext of an `aes128gcm` body (one record, RFC 8188 and 8291).
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err("shorter than the aes128gcm header".into());
        }
        let (salt, rest) = body.split_at(16);
        let id_len = usize::from(rest[4]);
        let rest = &rest[5..];
        if rest.len() < id_len {
            return Err("key id cut short".into());
        }
        let (sender, ciphertext) = rest.split_at(id_len);
        let sender = p256::PublicKey::from_sec1_bytes(sender)
            .map_err(|_| "the key id is not the sender's P-256 key")?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public());
        info.extend_from_slice(sender.to_encoded_point(false).as_bytes());
        let ikm = hkdf(&self.auth, shared.raw_secret_bytes(), &info, 32);
        let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
        let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &cek).map_err(|_| "key")?,
        );
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "nonce")?;
        let mut record = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, ring::aead::Aad::empty(), &mut record)
            .map_err(|_| "the record does not decrypt with this subscription's keys")?;
        // The last record ends with the delimiter 2, then padding zeros.
        let end = plain
            .iter()
            .rposition(|b| *b != 0)
            .filter(|i| plain[*i] == 2)
            .ok_or("no last-record delimiter")?;
        Ok(plain[..end].to_vec())
    }
}

struct Length(usize);

impl ring::hkdf::KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = vec![0; len];
    prk.expand(&[info], Length(len))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF length");
    out
}

/// A compact JWS checked with `algorithm` and `public_key`: its header and claims.
pub fn verify_jwt(
    token: &str,
    algorithm: &'static dyn ring::signature::VerificationAlgorithm,
    public_key: &[u8],
) -> Result<(Value, Value), String> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a compact JWS: {token}"));
    };
    let signed = format!("{header}.{claims}");
    ring::signature::UnparsedPublicKey::new(algorithm, public_key)
        .verify(signed.as_bytes(), &unb64(signature)?)
        .map_err(|_| "the signature does not verify".to_string())?;
    let json = |part: &str| -> Result<Value, String> {
        serde_json::from_slice(&unb64(part)?).map_err(|e| e.to_string())
    };
    Ok((json(header)?, json(claims)?))
}

/// A Web Push request's VAPID credentials (RFC 8292 3): the key it names, and the claims of
/// the JWT once its ES256 signature verifies with that key.
pub fn vapid(request: &Request) -> Result<(String, Value), String> {
    let auth = request.header("authorization").ok_or("no Authorization")?;
    let params = auth
        .strip_prefix("vapid ")
        .ok_or_else(|| format!("not the vapid scheme: {auth}"))?;
    let param = |name: &str| {
        params
            .split(',')
            .find_map(|p| p.trim().strip_prefix(name))
            .map(str::to_string)
    };
    let (token, key) = (param("t=").ok_or("no t=")?, param("k=").ok_or("no k=")?);
    let (header, claims) = verify_jwt(
        &token,
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        &unb64(&key)?,
    )?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    Ok((key, claims))
}

/// The public half of a PKCS#8 P-256 key in a PEM file (an APNs `.p8`), uncompressed.
pub fn p256_public_key(pem: &str) -> Vec<u8> {
    use ring::signature::KeyPair as _;
    let der = openline_push::keys::pkcs8_from_pem(pem.as_bytes()).expect("PEM");
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &ring::rand::SystemRandom::new(),
    )
    .expect("a P-256 key")
    .public_key()
    .as_ref()
    .to_vec()
}

/// The public half of a PKCS#8 RSA key in a PEM string (a service account's), PKCS#1 DER.
pub fn rsa_public_key(pem: &str) -> Vec<u8> {
    use ring::signature::KeyPair as _;
    let der = openline_push::keys::pkcs8_from_pem(pem.as_bytes()).expect("PEM");
    ring::signature::RsaKeyPair::from_pkcs8(&der)
        .expect("an RSA key")
        .public_key()
        .as_ref()
        .to_vec()
}

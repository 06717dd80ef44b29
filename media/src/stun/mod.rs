//! The STUN server (RFC 8489), sans-IO: a datagram and its source in, the answer (if any) out.
//! A Binding request gets the source as XOR-MAPPED-ADDRESS, with SOFTWARE and FINGERPRINT.
//! A request carrying MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 is checked against the
//! long-term credentials (RFC 8489 9.2: USERNAME, REALM, NONCE; key MD5(user:realm:password))
//! and the answer carries the same integrity. The codec is stun-rs (DEPENDENCIES.md).

mod nonce;

pub use nonce::{NONCE_LIFETIME, NonceKeeper};

use std::collections::HashMap;
use std::net::SocketAddr;
use stun_rs::attributes::stun::{
    ErrorCode, Fingerprint, MessageIntegrity, MessageIntegritySha256, Nonce, Realm, Software,
    UnknownAttributes, UserName, XorMappedAddress,
};
use stun_rs::methods::BINDING;
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder,
    MessageEncoderBuilder, StunAttribute, StunMessage, StunMessageBuilder,
};

/// The first two bits of every STUN message are zero and bytes 4..8 hold this cookie.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// Room for any answer we build (attributes we write are bounded).
const ANSWER_ROOM: usize = 512;

/// Users who may authenticate, in one realm (long-term credentials, RFC 8489 9.2).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The realm challenges name.
    pub realm: String,
    /// Passwords by user name.
    pub users: HashMap<String, String>,
}

/// What became of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this back to the source.
    Reply(Vec<u8>),
    /// Nothing to send: why (counted by the driver; never an error to the sender).
    Dropped(Dropped),
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Not STUN (no magic cookie, or the top bits set): RTP, or noise.
    NotStun,
    /// STUN that does not decode.
    Malformed,
    /// An indication or a response: nothing to answer.
    NotARequest,
}

/// The STUN server's state: its name, the credentials, the nonce key.
#[derive(Debug)]
pub struct StunServer {
    software: String,
    credentials: Option<Credentials>,
    nonces: NonceKeeper,
}

impl StunServer {
    /// A server naming itself `software`, checking integrity against `credentials` (none: a
    /// request with integrity is refused with 401), its nonces keyed by `nonce_key`.
    pub fn new(software: &str, credentials: Option<Credentials>, nonce_key: [u8; 32]) -> Self {
        StunServer {
            software: software.to_string(),
            credentials,
            nonces: NonceKeeper::new(nonce_key),
        }
    }

    /// Whether a datagram is STUN at all (RFC 8489 section 5; RFC 7983 demultiplexing): two
    /// zero bits, then the magic cookie.
    pub fn is_stun(packet: &[u8]) -> bool {
        packet.len() >= 20 && packet[0] & 0xc0 == 0 && packet[4..8] == MAGIC_COOKIE
    }

    /// Handles one datagram from `source` at `now` (seconds since the epoch: nonces age).
    pub fn handle(&self, packet: &[u8], source: SocketAddr, now: u64) -> Outcome {
        if !Self::is_stun(packet) {
            return Outcome::Dropped(Dropped::NotStun);
        }
        let Ok((request, _)) = MessageDecoderBuilder::default().build().decode(packet) else {
            return Outcome::Dropped(Dropped::Malformed);
        };
        if request.class() != MessageClass::Request {
            return Outcome::Dropped(Dropped::NotARequest);
        }
        // RFC 8489 6.3.1.1: an attribute we must understand and do not is answered 420, naming
        // it in UNKNOWN-ATTRIBUTES.
        let mut unknown = UnknownAttributes::default();
        for a in request.attributes() {
            if let StunAttribute::Unknown(u) = a {
                if u.attribute_type().is_comprehension_required() {
                    unknown.add(u.attribute_type().as_u16());
                }
            }
        }
        if !unknown.attributes().is_empty() {
            return self.unknown_attributes(&request, unknown);
        }
        if request.method() != BINDING {
            // TURN's methods come with the TURN server; anything else is a request we do not
            // know (RFC 8489 6.3.1: 400 would do, but naming it helps).
            return self.error(&request, 400, "Bad Request: only Binding here", None);
        }
        let integrity = request.get::<MessageIntegrity>().is_some();
        let integrity_sha256 = request.get::<MessageIntegritySha256>().is_some();
        if !integrity && !integrity_sha256 {
            return self.success(&request, source, None, (false, false));
        }
        match self.authenticate(packet, &request, now) {
            Ok(key) => self.success(&request, source, Some(key), (integrity, integrity_sha256)),
            Err((code, reason, challenge)) => {
                self.error(&request, code, reason, challenge.then_some(now))
            }
        }
    }

    /// The key a request's integrity is checked with, or the error to answer: (code, reason,
    /// whether to include REALM and a fresh NONCE).
    fn authenticate(
        &self,
        packet: &[u8],
        request: &StunMessage,
        now: u64,
    ) -> Result<HMACKey, (u16, &'static str, bool)> {
        let text = |a: Option<&StunAttribute>, f: fn(&StunAttribute) -> Option<&str>| {
            a.and_then(f).map(str::to_string)
        };
        let user = text(request.get::<UserName>(), |a| {
            a.as_user_name().ok().map(UserName::as_str)
        });
        let realm = text(request.get::<Realm>(), |a| {
            a.as_realm().ok().map(Realm::as_str)
        });
        let nonce = text(request.get::<Nonce>(), |a| {
            a.as_nonce().ok().map(Nonce::as_str)
        });
        let Some(credentials) = &self.credentials else {
            return Err((401, "Unauthorized: no credentials here", false));
        };
        // RFC 8489 9.2.4: without all three it is a bad request; without the right realm or a
        // fresh nonce of ours, the client is told the current ones.
        let (Some(user), Some(realm), Some(nonce)) = (user, realm, nonce) else {
            return Err((400, "Bad Request: USERNAME, REALM and NONCE needed", false));
        };
        if realm != credentials.realm {
            return Err((401, "Unauthorized: unknown realm", true));
        }
        if !self.nonces.is_fresh(&nonce, now) {
            return Err((438, "Stale Nonce", true));
        }
        let Some(password) = credentials.users.get(&user) else {
            return Err((401, "Unauthorized", true));
        };
        let key =
            HMACKey::new_long_term(&user, &realm, password, Algorithm::from(AlgorithmId::MD5))
                .map_err(|_| (401, "Unauthorized", true))?;
        // Decoding again with the key checks MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
        let ctx = DecoderContextBuilder::default()
            .with_key(key.clone())
            .with_validation()
            .build();
        match MessageDecoderBuilder::default()
            .with_context(ctx)
            .build()
            .decode(packet)
        {
            Ok(_) => Ok(key),
            Err(_) => Err((401, "Unauthorized", true)),
        }
    }

    /// The Binding success response: where the request came from, our name, the integrity the
    /// request used (with `key`), FINGERPRINT.
    fn success(
        &self,
        request: &StunMessage,
        source: SocketAddr,
        key: Option<HMACKey>,
        (sha1, sha256): (bool, bool),
    ) -> Outcome {
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
            .with_transaction_id(*request.transaction_id())
            .with_attribute(XorMappedAddress::from(source));
        if let Ok(software) = Software::new(self.software.as_str()) {
            b = b.with_attribute(software);
        }
        if let Some(key) = key {
            if sha1 {
                b = b.with_attribute(MessageIntegrity::new(key.clone()));
            }
            if sha256 {
                b = b.with_attribute(MessageIntegritySha256::new(key));
            }
        }
        encode(b.with_attribute(Fingerprint::default()).build())
    }

    /// An error response; with a challenge (REALM and a fresh NONCE) when `challenge_at`.
    fn error(
        &self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        challenge_at: Option<u64>,
    ) -> Outcome {
        let mut b = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id());
        if let Ok(error) = stun_rs::ErrorCode::new(code, reason) {
            b = b.with_attribute(ErrorCode::new(error));
        }
        if let (Some(now), Some(credentials)) = (challenge_at, &self.credentials) {
            if let (Ok(realm), Ok(nonce)) = (
                Realm::new(credentials.realm.as_str()),
                Nonce::new(self.nonces.issue(now)),
            ) {
                b = b.with_attribute(realm).with_attribute(nonce);
            }
        }
        if let Ok(software) = Software::new(self.software.as_str()) {
            b = b.with_attribute(software);
        }
        encode(b.with_attribute(Fingerprint::default()).build())
    }
}

impl StunServer {
    /// 420 with the attributes not understood.
    fn unknown_attributes(&self, request: &StunMessage, unknown: UnknownAttributes) -> Outcome {
        let mut b = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id());
        if let Ok(error) = stun_rs::ErrorCode::new(420, "Unknown Attribute") {
            b = b.with_attribute(ErrorCode::new(error));
        }
        encode(
            b.with_attribute(unknown)
                .with_attribute(Fingerprint::default())
                .build(),
        )
    }
}

/// The message as bytes; a message we built that does not encode is a bug of ours, answered
/// with silence rather than a panic.
fn encode(message: StunMessage) -> Outcome {
    let mut buffer = [0u8; ANSWER_ROOM];
    match MessageEncoderBuilder::default()
        .build()
        .encode(&mut buffer, &message)
    {
        Ok(n) => Outcome::Reply(buffer[..n].to_vec()),
        Err(e) => {
            tracing::warn!(error = ?e, "could not encode a STUN answer");
            Outcome::Dropped(Dropped::Malformed)
        }
    }
}

#[cfg(test)]
mod tests;

//! The STUN server (RFC 8489), sans-IO: a datagram and its source in, the answer (if any) out.
//! A Binding request gets the source as XOR-MAPPED-ADDRESS, with SOFTWARE and FINGERPRINT.
//! A request carrying MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 is checked against the
//! long-term credentials (RFC 8489 9.2: USERNAME, REALM, NONCE; key MD5(user:realm:password);
//! `auth.rs`) and the answer carries the same integrity. The TURN
//! server builds on this one. The codec is stun-rs (DEPENDENCIES.md).

mod auth;
mod client;
mod nonce;

pub use auth::Credentials;
pub(crate) use auth::{Authenticated, Refusal};
pub use client::BindingClient;
pub use nonce::{NONCE_LIFETIME, NonceKeeper};

use std::net::SocketAddr;
use stun_rs::attributes::stun::{
    ErrorCode, Fingerprint, MessageIntegrity, MessageIntegritySha256, Nonce, Realm, Software,
    UnknownAttributes, XorMappedAddress,
};
use stun_rs::methods::BINDING;
use stun_rs::{
    MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunAttribute, StunMessage,
    StunMessageBuilder,
};

/// The first two bits of every STUN message are zero and bytes 4..8 hold this cookie.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// Room for any answer we build (attributes we write are bounded).
const ANSWER_ROOM: usize = 512;

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
    credentials: Option<Credentials>,
    nonces: NonceKeeper,
    /// SOFTWARE and REALM as attributes, made once: stun-rs checks their text with a PEG
    /// parser each time one is made.
    software: Option<Software>,
    realm: Option<Realm>,
    /// The NONCE attribute of the second it was issued in (a nonce is the same for a whole
    /// second): made once per second rather than once per challenge.
    nonce: std::cell::RefCell<Option<(u64, Nonce)>>,
}

impl StunServer {
    /// A server naming itself `software`, checking integrity against `credentials` (none: a
    /// request with integrity is refused with 401), its nonces keyed by `nonce_key`.
    pub fn new(software: &str, credentials: Option<Credentials>, nonce_key: [u8; 32]) -> Self {
        StunServer {
            software: Software::new(software).ok(),
            realm: credentials
                .as_ref()
                .and_then(|c| Realm::new(c.realm.as_str()).ok()),
            credentials,
            nonces: NonceKeeper::new(nonce_key),
            nonce: std::cell::RefCell::new(None),
        }
    }

    /// Whether a datagram is STUN at all (RFC 8489 section 5; RFC 7983 demultiplexing): two
    /// zero bits, then the magic cookie.
    pub fn is_stun(packet: &[u8]) -> bool {
        packet.len() >= 20 && packet[0] & 0xc0 == 0 && packet[4..8] == MAGIC_COOKIE
    }

    /// Handles one datagram from `source` at `now` (seconds since the epoch: nonces age).
    pub fn handle(&self, packet: &[u8], source: SocketAddr, now: u64) -> Outcome {
        let request = match self.read(packet) {
            Ok(r) => r,
            Err(outcome) => return outcome,
        };
        if request.class() != MessageClass::Request {
            return Outcome::Dropped(Dropped::NotARequest);
        }
        if request.method() != BINDING {
            // TURN's methods are the TURN server's; anything else is a request we do not know
            // (RFC 8489 6.3.1: 400 would do, but naming it helps).
            return self.refuse(&request, 400, "Bad Request: only Binding here", None, None);
        }
        self.binding(packet, &request, source, now)
    }

    /// Decodes a datagram; a request with comprehension-required attributes we do not know
    /// is answered 420 naming them (RFC 8489 6.3.1.1), an indication with them dropped.
    pub(crate) fn read(&self, packet: &[u8]) -> Result<StunMessage, Outcome> {
        if !Self::is_stun(packet) {
            return Err(Outcome::Dropped(Dropped::NotStun));
        }
        let Ok((message, _)) = MessageDecoderBuilder::default().build().decode(packet) else {
            return Err(Outcome::Dropped(Dropped::Malformed));
        };
        let mut unknown = UnknownAttributes::default();
        for a in message.attributes() {
            if let StunAttribute::Unknown(u) = a {
                if u.attribute_type().is_comprehension_required() {
                    unknown.add(u.attribute_type().as_u16());
                }
            }
        }
        if unknown.attributes().is_empty() {
            Ok(message)
        } else if message.class() == MessageClass::Request {
            Err(self.unknown_attributes(&message, unknown))
        } else {
            Err(Outcome::Dropped(Dropped::Malformed))
        }
    }

    /// A Binding request: the source as XOR-MAPPED-ADDRESS; with integrity when the request
    /// had it (and it checked out).
    pub(crate) fn binding(
        &self,
        packet: &[u8],
        request: &StunMessage,
        source: SocketAddr,
        now: u64,
    ) -> Outcome {
        let signed = request.get::<MessageIntegrity>().is_some()
            || request.get::<MessageIntegritySha256>().is_some();
        if !signed {
            return self.answer(request, vec![XorMappedAddress::from(source).into()], None);
        }
        match self.authenticate(packet, request, now) {
            Ok(auth) => self.answer(
                request,
                vec![XorMappedAddress::from(source).into()],
                Some(&auth),
            ),
            Err(refusal) => self.refused(request, refusal, now),
        }
    }

    /// Checks a request's credentials at `now` (seconds since the epoch).
    pub(crate) fn authenticate(
        &self,
        packet: &[u8],
        request: &StunMessage,
        now: u64,
    ) -> Result<Authenticated, Refusal> {
        auth::authenticate(
            self.credentials.as_ref(),
            &self.nonces,
            packet,
            request,
            now,
        )
    }

    /// The error answering a refused authentication, with a challenge when it calls for one.
    pub(crate) fn refused(&self, request: &StunMessage, refusal: Refusal, now: u64) -> Outcome {
        let challenge = refusal.challenge.then_some(now);
        self.refuse(request, refusal.code, refusal.reason, challenge, None)
    }

    /// A success response to `request` with `attributes`, our name, the integrity the request
    /// used (when authenticated), and FINGERPRINT.
    pub(crate) fn answer(
        &self,
        request: &StunMessage,
        attributes: Vec<StunAttribute>,
        auth: Option<&Authenticated>,
    ) -> Outcome {
        let mut b = StunMessageBuilder::new(request.method(), MessageClass::SuccessResponse)
            .with_transaction_id(*request.transaction_id());
        for a in attributes {
            b = b.with_attribute(a);
        }
        self.finish(request, b, auth)
    }

    /// An error response; with a challenge (REALM and a fresh NONCE) when `challenge_at`, and
    /// integrity when the request was authenticated.
    pub(crate) fn refuse(
        &self,
        request: &StunMessage,
        code: u16,
        reason: &str,
        challenge_at: Option<u64>,
        auth: Option<&Authenticated>,
    ) -> Outcome {
        let mut b = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id());
        if let Ok(error) = stun_rs::ErrorCode::new(code, reason) {
            b = b.with_attribute(ErrorCode::new(error));
        }
        if let (Some(now), Some(realm)) = (challenge_at, &self.realm) {
            if let Some(nonce) = self.nonce_at(now) {
                b = b.with_attribute(realm.clone()).with_attribute(nonce);
            }
        }
        self.finish(request, b, auth)
    }

    /// The NONCE a challenge at `now` carries.
    fn nonce_at(&self, now: u64) -> Option<Nonce> {
        let mut cached = self.nonce.borrow_mut();
        if let Some((at, nonce)) = cached.as_ref() {
            if *at == now {
                return Some(nonce.clone());
            }
        }
        let nonce = Nonce::new(self.nonces.issue(now)).ok()?;
        *cached = Some((now, nonce.clone()));
        Some(nonce)
    }

    /// SOFTWARE, the integrity of `auth`, FINGERPRINT when the request had one; then the bytes.
    /// FINGERPRINT mirrors the request (as ICE, RFC 8445 7.3, asks of answers): computing it
    /// was 6 % of the CPU per Binding answer, for clients that did not ask for it.
    fn finish(
        &self,
        request: &StunMessage,
        mut b: StunMessageBuilder,
        auth: Option<&Authenticated>,
    ) -> Outcome {
        if let Some(software) = &self.software {
            b = b.with_attribute(software.clone());
        }
        if let Some(auth) = auth {
            let (sha1, sha256) = auth.kinds;
            if sha1 {
                b = b.with_attribute(MessageIntegrity::new(auth.key.clone()));
            }
            if sha256 {
                b = b.with_attribute(MessageIntegritySha256::new(auth.key.clone()));
            }
        }
        if request.get::<Fingerprint>().is_some() {
            b = b.with_attribute(Fingerprint::default());
        }
        encode(&b.build())
    }

    /// 420 naming attribute types we will not act on.
    pub(crate) fn unknown(&self, request: &StunMessage, types: &[u16]) -> Outcome {
        let mut unknown = UnknownAttributes::default();
        for &t in types {
            unknown.add(t);
        }
        self.unknown_attributes(request, unknown)
    }

    /// 420 with the attributes not understood.
    fn unknown_attributes(&self, request: &StunMessage, unknown: UnknownAttributes) -> Outcome {
        let mut b = StunMessageBuilder::new(request.method(), MessageClass::ErrorResponse)
            .with_transaction_id(*request.transaction_id());
        if let Ok(error) = stun_rs::ErrorCode::new(420, "Unknown Attribute") {
            b = b.with_attribute(ErrorCode::new(error));
        }
        self.finish(request, b.with_attribute(unknown), None)
    }
}

#[cfg(test)]
impl StunServer {
    /// A nonce issued at `now`, as a challenge would carry.
    pub(crate) fn nonce_for_tests(&self, now: u64) -> String {
        self.nonces.issue(now)
    }

    /// The password `user` has at `now`.
    pub(crate) fn password_for_tests(&self, user: &str, now: u64) -> Option<String> {
        let c = self.credentials.as_ref()?;
        c.password(user, now).map(std::borrow::Cow::into_owned)
    }
}

/// The message as bytes; a message we built that does not encode is a bug of ours, answered
/// with silence rather than a panic.
pub(crate) fn encode(message: &StunMessage) -> Outcome {
    let mut buffer = [0u8; ANSWER_ROOM];
    match MessageEncoderBuilder::default()
        .build()
        .encode(&mut buffer, message)
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

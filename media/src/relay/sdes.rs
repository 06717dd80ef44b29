//! SDES-SRTP (RFC 4568) on the phone's side of a bridged session: what the phone sends is
//! decrypted with its key before it goes into the browser's leg, and what goes to it is
//! encrypted with ours. One suite, AES_CM_128_HMAC_SHA1_80, the one every SIP phone speaks.

use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

/// A master key and salt (16 + 14 bytes), as `a=crypto` carries it.
pub type SrtpKey = [u8; 30];

/// The phone side's SRTP: theirs in, ours out.
pub(super) struct PhoneSrtp {
    inbound: Context,
    outbound: Context,
}

impl std::fmt::Debug for PhoneSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneSrtp")
    }
}

/// An SRTP context for one direction with `key` (AES_CM_128_HMAC_SHA1_80, ring), as the
/// gateway's phone side and tui-phone use it.
/// The library's refusal, as text (its error type lives in a crate of its own).
pub fn srtp_context(key: &SrtpKey) -> Result<Context, String> {
    Context::new(
        &key[..16],
        &key[16..],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        &rtc_crypto::providers::RingCrypto,
    )
    .map_err(|e| e.to_string())
}

impl PhoneSrtp {
    /// SRTP with the phone's key `theirs` and our key `ours`; None for a key the library
    /// refuses.
    pub(super) fn new(ours: &SrtpKey, theirs: &SrtpKey) -> Option<Self> {
        Some(PhoneSrtp {
            inbound: srtp_context(theirs).ok()?,
            outbound: srtp_context(ours).ok()?,
        })
    }

    /// The phone's SRTP packet in the clear; None when it does not authenticate.
    pub(super) fn decrypt(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.inbound.decrypt_rtp(packet).ok().map(|p| p.to_vec())
    }

    /// An RTP packet for the phone, encrypted.
    pub(super) fn encrypt(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.outbound.encrypt_rtp(packet).ok().map(|p| p.to_vec())
    }
}

//! The `[push]` table (issue #22): how long a call waits for a sleeping phone, what a push may
//! say, and the credentials of each push service. Keys are read when the server starts.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[push]`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSection {
    /// How long a request waits for a pushed device to register (RFC 8599; default 20 s).
    pub wait: Duration,
    /// The longest one exchange with a push service may take (default 10 s).
    pub timeout: Duration,
    /// Pushes carry a message's text (default off: Google and Apple would read it).
    pub message_text: bool,
    /// Pushes carry the caller's or sender's address (default on, so the phone can show it).
    pub sender: bool,
    /// Web Push endpoints may be on private addresses (a UnifiedPush distributor on the LAN).
    pub allow_private: bool,
    /// PEM roots the services' certificates must chain to; the system bundle when absent.
    pub ca: Option<PathBuf>,
    /// Web Push (RFC 8030) with this server's VAPID key.
    pub webpush: Option<WebPushSection>,
    /// Firebase Cloud Messaging HTTP v1.
    pub fcm: Option<FcmSection>,
    /// Apple APNs with token authentication.
    pub apns: Option<ApnsSection>,
}

/// `[push.webpush]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushSection {
    /// The VAPID key (PEM PKCS#8 P-256), made at first start when missing.
    #[serde(default = "vapid_default")]
    pub vapid_key: PathBuf,
    /// `mailto:` or `https:` contact the push services may use (RFC 8292 2.1).
    pub subject: String,
}

fn vapid_default() -> PathBuf {
    PathBuf::from("vapid.pem")
}

/// `[push.fcm]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSection {
    /// The service-account JSON from the Firebase console.
    pub service_account: PathBuf,
    /// Instead of `https://fcm.googleapis.com`.
    pub api: Option<String>,
    /// Instead of the file's `token_uri`.
    pub token_uri: Option<String>,
}

/// `[push.apns]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSection {
    /// The `.p8` key from Apple's developer account.
    pub key: PathBuf,
    /// Its key id.
    pub key_id: String,
    /// The team id.
    pub team_id: String,
    /// Instead of `https://api.push.apple.com`.
    pub api: Option<String>,
    /// Instead of `https://api.sandbox.push.apple.com`.
    pub sandbox_api: Option<String>,
}

/// `[push]` as TOML gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    wait: Option<u64>,
    timeout: Option<u64>,
    message_text: Option<bool>,
    sender: Option<bool>,
    allow_private: Option<bool>,
    ca: Option<PathBuf>,
    webpush: Option<WebPushSection>,
    fcm: Option<FcmSection>,
    apns: Option<ApnsSection>,
}

impl RawPush {
    /// The section with its defaults; `at` is where it starts, for errors.
    pub(super) fn read<E>(
        self,
        at: usize,
        invalid: impl Fn(usize, String) -> E,
    ) -> Result<PushSection, E> {
        let wait = self.wait.unwrap_or(20);
        if !(1..=120).contains(&wait) {
            return Err(invalid(
                at,
                format!("[push] wait = {wait}: from 1 to 120 seconds"),
            ));
        }
        let timeout = self.timeout.unwrap_or(10);
        if !(1..=60).contains(&timeout) {
            return Err(invalid(
                at,
                format!("[push] timeout = {timeout}: from 1 to 60 seconds"),
            ));
        }
        if self.webpush.is_none() && self.fcm.is_none() && self.apns.is_none() {
            return Err(invalid(
                at,
                "[push] names no service: add [push.webpush], [push.fcm] or [push.apns]".into(),
            ));
        }
        Ok(PushSection {
            wait: Duration::from_secs(wait),
            timeout: Duration::from_secs(timeout),
            message_text: self.message_text.unwrap_or(false),
            sender: self.sender.unwrap_or(true),
            allow_private: self.allow_private.unwrap_or(false),
            ca: self.ca,
            webpush: self.webpush,
            fcm: self.fcm,
            apns: self.apns,
        })
    }
}

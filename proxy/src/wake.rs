//! Phones that sleep (RFC 8599, issue #22): what this server can push through, and what the
//! 200 to a REGISTER tells a device about it (`Feature-Caps: *;+sip.pns="..."`, with the VAPID
//! key for Web Push). The pushes themselves are built in `openline-push`.

use openline_push::{Provider, PushTarget};
use std::time::Duration;

/// What the core knows of push: the policy from `[push]` and the services configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPolicy {
    /// Push services with credentials, by `pn-provider` name (`apns` covers `apns.dev`).
    pub providers: Vec<String>,
    /// The VAPID public key, base64url, when Web Push is configured.
    pub vapid: Option<String>,
    /// How long a request waits for a pushed device to register.
    pub wait: Duration,
    /// Pushes may carry a message's text.
    pub message_text: bool,
    /// Pushes may carry the sender's address.
    pub sender: bool,
}

impl PushPolicy {
    /// Whether pushes through `provider` can be sent.
    pub fn supports(&self, provider: &Provider) -> bool {
        provider
            .service()
            .is_some_and(|name| self.providers.iter().any(|p| p == name))
    }

    /// The Feature-Caps value for a REGISTER that bound `target` (RFC 8599 section 4.1.2 and
    /// 12.2): None when we cannot push through its service, so the device knows to stay awake.
    pub fn feature_caps(&self, target: &PushTarget) -> Option<String> {
        if !self.supports(&target.provider) {
            return None;
        }
        let mut caps = format!("*;+sip.pns=\"{}\"", target.provider.name());
        if let (Provider::WebPush, Some(key)) = (&target.provider, &self.vapid) {
            caps.push_str(&format!(";+sip.vapid=\"{key}\""));
        }
        Some(caps)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn feature_caps_name_only_configured_services() {
        let policy = PushPolicy {
            providers: vec!["webpush".into(), "apns".into()],
            vapid: Some("BKEY".into()),
            ..PushPolicy::default()
        };
        let target = |c: &str| PushTarget::from_contact(c).unwrap().unwrap();
        assert_eq!(
            policy.feature_caps(&target(
                "sip:a@h;pn-provider=webpush;pn-prid=https://p.test/x"
            )),
            Some("*;+sip.pns=\"webpush\";+sip.vapid=\"BKEY\"".into())
        );
        assert_eq!(
            policy.feature_caps(&target(
                "sip:a@h;pn-provider=apns.dev;pn-prid=00ff;pn-param=T.b"
            )),
            Some("*;+sip.pns=\"apns.dev\"".into())
        );
        assert_eq!(
            policy.feature_caps(&target("sip:a@h;pn-provider=fcm;pn-prid=x")),
            None
        );
    }
}

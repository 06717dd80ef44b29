//! The push services' credentials, read at start: a key that cannot be read stops the server
//! with the file named, rather than a phone that never rings. The VAPID key is made on first
//! start and kept (devices subscribed with its public half).

use crate::config::PushSection;
use anyhow::Context as _;
use openline_push::{Pusher, apns::Apns, fcm::Fcm, keys, webpush::WebPush};
use std::path::Path;

/// Reads every configured service's credentials. Never logs them.
pub(super) fn load(section: &PushSection) -> anyhow::Result<Pusher> {
    let mut pusher = Pusher::default();
    pusher.allow_private = section.allow_private;
    if let Some(w) = &section.webpush {
        let der = vapid_key(&w.vapid_key)?;
        pusher.webpush = Some(
            WebPush::new(&der, w.subject.clone())
                .with_context(|| format!("{}", w.vapid_key.display()))?,
        );
    }
    if let Some(f) = &section.fcm {
        let json = std::fs::read_to_string(&f.service_account)
            .with_context(|| format!("reading {}", f.service_account.display()))?;
        pusher.fcm = Some(
            Fcm::from_service_account(&json, f.api.as_deref(), f.token_uri.as_deref())
                .with_context(|| format!("{}", f.service_account.display()))?,
        );
    }
    if let Some(a) = &section.apns {
        let p8 = std::fs::read(&a.key).with_context(|| format!("reading {}", a.key.display()))?;
        let apis = (a.api.as_deref(), a.sandbox_api.as_deref());
        pusher.apns = Some(
            Apns::new(&p8, a.key_id.clone(), a.team_id.clone(), apis)
                .with_context(|| format!("{}", a.key.display()))?,
        );
    }
    let services = services(&pusher);
    tracing::info!(?services, wait = ?section.wait, message_text = section.message_text, "push notifications");
    Ok(pusher)
}

/// The services with credentials, by `pn-provider` name.
fn services(pusher: &Pusher) -> Vec<&'static str> {
    [
        pusher.webpush.as_ref().map(|_| "webpush"),
        pusher.fcm.as_ref().map(|_| "fcm"),
        pusher.apns.as_ref().map(|_| "apns"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Tells the core which services it may promise devices.
pub(super) fn advertise(pusher: &Pusher, policy: &mut crate::wake::PushPolicy) {
    policy.providers = services(pusher).into_iter().map(String::from).collect();
    policy.vapid = pusher.vapid_key();
}

/// The VAPID key at `path`, made (0600) when the file does not exist yet.
fn vapid_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(pem) => keys::pkcs8_from_pem(&pem)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let der = WebPush::generate_key()?;
            openline_certs::files::write_whole(path, keys::pkcs8_to_pem(&der).as_bytes(), true)
                .with_context(|| format!("writing the new VAPID key {}", path.display()))?;
            tracing::info!(path = %path.display(), "made a VAPID key for Web Push");
            Ok(der)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Starts the push driver: jobs in on the sender returned, outcomes out on `outcomes`.
pub(super) fn start(
    pusher: Pusher,
    section: &PushSection,
    outcomes: tokio::sync::mpsc::UnboundedSender<(u64, openline_push::Outcome)>,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedSender<openline_push::Job>> {
    let ca = section
        .ca
        .clone()
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let roots = openline_push::client::load_roots(&ca)
        .map_err(anyhow::Error::msg)
        .context("the push services' roots")?;
    let settings = openline_push::client::Settings {
        timeout: section.timeout,
        max_in_flight: 256,
        roots,
    };
    Ok(openline_push::client::spawn(pusher, settings, outcomes))
}

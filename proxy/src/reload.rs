//! SIGHUP: read the config again and, only if all of it is good, put in place what can change
//! while running: other domains' servers, certificates, log levels, and the users from the
//! database. A file with any mistake is refused whole, named with its line, and the running
//! configuration stays. Listeners, the database and the domains need a restart (said so).

use crate::logging::Levels;
use crate::server::{Reload, ServeConfig};
use openline_sip_net::Tls;
use tokio::sync::mpsc;

/// Reads the configuration as `openline serve` was started (the file under the command line).
pub trait ReadConfig: Fn() -> anyhow::Result<(ServeConfig, Option<String>)> {}
impl<F: Fn() -> anyhow::Result<(ServeConfig, Option<String>)>> ReadConfig for F {}

/// Waits for SIGHUP and reloads, for as long as the server listens to `reloads`.
pub async fn on_sighup(
    read: impl ReadConfig,
    levels: Levels,
    running: ServeConfig,
    reloads: mpsc::Sender<Reload>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler: reloading needs a restart");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reading the configuration again");
        let Some(reload) = check(&read, &levels, &running) else {
            continue;
        };
        if reloads.send(reload).await.is_err() {
            return;
        }
    }
}

/// The new configuration, checked whole and its log levels applied; None (said why) when
/// any of it is wrong.
fn check(read: &impl ReadConfig, levels: &Levels, running: &ServeConfig) -> Option<Reload> {
    let (new, log) = match read() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration refused, the running one is kept: {e:#}");
            return None;
        }
    };
    let tls = match &new.tls {
        Some(files) => match Tls::load(files) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("certificates refused, the running configuration is kept: {e}");
                return None;
            }
        },
        None => None,
    };
    if let Err(e) = levels.set(log.as_deref()) {
        tracing::error!("log levels refused, the running configuration is kept: {e}");
        return None;
    }
    for (what, changed) in [
        ("listen", new.listen != running.listen),
        ("db", new.db != running.db),
        ("domains", new.core.domains != running.core.domains),
    ] {
        if changed {
            tracing::warn!(
                setting = what,
                "changed in the file: takes effect at the next restart"
            );
        }
    }
    Some(Reload {
        peers: new.core.peers,
        tls,
    })
}

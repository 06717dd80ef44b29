//! The HTTP(S) side of `openline serve` and ACME (issue #21): the web listeners (challenge
//! answers, provisioning links), the ACME manager, and putting a new certificate in place
//! for SIP over TLS, TURN's streams and HTTPS alike, as SIGHUP does.

use super::ServeConfig;
use anyhow::Context as _;
use openline_certs::{AcmeConfig, AcmeFiles, CertInfo, Challenges, Event, Manager};
use openline_registrar::store::Store;
use openline_sip_net::{Tls, TlsFiles};
use openline_web::{Provisioning, SipListener, WebTls};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// The web listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebServe {
    /// Where: plain HTTP (HTTP-01 answers) or HTTPS (links, TLS-ALPN-01 answers).
    pub listen: Vec<WebListen>,
    /// The SIP proxy provisioning documents name, instead of the address the phone used.
    pub proxy: Option<String>,
}

/// One web listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebListen {
    /// HTTPS.
    pub tls: bool,
    /// Where.
    pub addr: SocketAddr,
}

/// Certificates from an ACME CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeServe {
    /// The CA and the challenge.
    pub config: AcmeConfig,
    /// Where the account is kept.
    pub dir: PathBuf,
}

/// The web side while it runs.
#[derive(Debug)]
pub(super) struct Web {
    tls: WebTls,
    /// When the certificate in use expires (seconds since the epoch; 0: unknown).
    not_after: Arc<AtomicU64>,
}

/// Before TLS is loaded: with ACME and no certificate yet, a self-signed stand-in, so the
/// listeners (which the CA must reach) can start.
pub(super) fn prepare(config: &ServeConfig) -> anyhow::Result<()> {
    if let (Some(acme), Some(files)) = (&config.acme, &config.tls) {
        std::fs::create_dir_all(&acme.dir)
            .with_context(|| format!("making the ACME directory {}", acme.dir.display()))?;
        let made = openline_certs::standin::ensure(&files.cert, &files.key, &config.core.domains)?;
        if made {
            tracing::warn!(
                cert = %files.cert.display(),
                "TLS starts with a self-signed stand-in until the ACME CA issues a certificate"
            );
        }
    }
    Ok(())
}

/// Binds the web listeners and starts the ACME manager; its events arrive on `events`.
pub(super) async fn start(
    config: &ServeConfig,
    store: &Store,
    sip: &[(openline_sip::Transport, SocketAddr)],
    (events, users_fresh): (mpsc::Sender<Event>, openline_web::provision::UsersFresh),
) -> anyhow::Result<Web> {
    let challenges = Challenges::new();
    let tls = WebTls::new(challenges.clone());
    let not_after = Arc::new(AtomicU64::new(0));
    if let Some(files) = &config.tls {
        if config
            .web
            .as_ref()
            .is_some_and(|w| w.listen.iter().any(|l| l.tls))
        {
            tls.load(&files.cert, &files.key)
                .context("loading the certificate for HTTPS")?;
        }
        if let Ok(info) = CertInfo::from_pem_file(&files.cert) {
            not_after.store(info.not_after, Ordering::Relaxed);
        }
    }
    if let Some(web) = &config.web {
        let listeners: Vec<SipListener> = sip
            .iter()
            .filter_map(|(t, addr)| {
                let transport = match t {
                    openline_sip::Transport::Udp => "udp",
                    openline_sip::Transport::Tcp => "tcp",
                    openline_sip::Transport::Tls => "tls",
                    _ => return None,
                };
                Some(SipListener {
                    transport,
                    addr: *addr,
                })
            })
            .collect();
        let provisioning = Provisioning {
            store: store.clone(),
            sip: Arc::new(listeners),
            proxy: web.proxy.clone(),
            users_fresh: Some(users_fresh),
        };
        let port_of = |want: openline_sip::Transport| {
            sip.iter()
                .filter(|(t, _)| *t == want)
                .map(|(_, a)| a.port())
                .collect()
        };
        let phone = openline_web::phone::PhoneConfig {
            ws: port_of(openline_sip::Transport::Ws),
            wss: port_of(openline_sip::Transport::Wss),
        };
        let router = openline_web::router(challenges.clone(), Some(provisioning), phone);
        for l in &web.listen {
            let socket = tokio::net::TcpListener::bind(l.addr)
                .await
                .with_context(|| {
                    format!(
                        "web: listening on {}:{}",
                        if l.tls { "tls" } else { "tcp" },
                        l.addr
                    )
                })?;
            tracing::info!(addr = %l.addr, https = l.tls, "web listening");
            let tls = l.tls.then(|| tls.clone());
            tokio::spawn(openline_web::serve(socket, tls, router.clone()));
        }
    }
    if let (Some(acme), Some(files)) = (&config.acme, &config.tls) {
        let manager = Manager::new(
            acme.config.clone(),
            AcmeFiles::new(&acme.dir, files.cert.clone(), files.key.clone()),
            config.core.domains.clone(),
            challenges,
        );
        tokio::spawn(manager.run(move |event| {
            // The loop is never so far behind that four events queue; if it were, the
            // files on disk are already the new ones and the next reload takes them.
            let _ = events.try_send(event);
        }));
    }
    Ok(Web { tls, not_after })
}

impl Web {
    /// What the ACME manager did: a new certificate goes in place for every TLS user.
    pub(super) fn on_acme(
        &self,
        event: Event,
        files: Option<&TlsFiles>,
        sip: &openline_sip_net::Sender,
    ) {
        match event {
            Event::Issued(_) => {
                crate::metrics::acme_order(true);
                // The expiry gauge follows what was loaded, read back from the files.
                if let Some(files) = files {
                    self.reload(files, sip);
                }
            }
            Event::Failed { .. } => crate::metrics::acme_order(false),
        }
    }

    /// Loads the certificate files again for SIP over TLS and HTTPS (after ACME issued).
    fn reload(&self, files: &TlsFiles, sip: &openline_sip_net::Sender) {
        match Tls::load(files) {
            Ok(tls) => {
                if let Err(e) = sip.reload_tls(tls) {
                    tracing::debug!(error = %e, "no SIP TLS to reload");
                }
            }
            Err(e) => {
                tracing::error!("certificates refused, the running ones are kept: {e}");
                return;
            }
        }
        self.reload_https(Some(files));
        tracing::info!(cert = %files.cert.display(), "certificates put in place");
    }

    /// Loads the certificate files again for HTTPS (SIP's were loaded by the caller).
    pub(super) fn reload_https(&self, files: Option<&TlsFiles>) {
        let Some(files) = files else { return };
        if let Err(e) = self.tls.load(&files.cert, &files.key) {
            tracing::error!("HTTPS certificate refused, the running one is kept: {e}");
        }
        if let Ok(info) = CertInfo::from_pem_file(&files.cert) {
            self.not_after.store(info.not_after, Ordering::Relaxed);
        }
    }

    /// Brings the expiry gauge up to `now`.
    pub(super) fn set_levels(&self, now: u64) {
        let not_after = self.not_after.load(Ordering::Relaxed);
        if not_after > 0 {
            crate::metrics::set_certificate_expiry(not_after, now);
        }
    }
}
